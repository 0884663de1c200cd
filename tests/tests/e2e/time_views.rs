//! Time: every view "as of" a day answers for the world on that day by the
//! dates the records carry (valid time), and "as known on" a day answers as
//! the tracker would have then (record time). The scenario of the time
//! issue, written today about 2024 and 2025: a commitment made on
//! 2023-12-08 started in 2024-Q2, its launch was met in 2024-06, a report due
//! in 2024-Q3 was never met, a progress update speaks for 2024-09, and KRW
//! money dated 2025-03 joins the undated USD pledge. Every view is asked for
//! days before, between and after those events, and must agree with the
//! same expectations.

use cetrack_contract::dates;
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_tests::*;

const D: Domain = Domain::Biotech;

/// What every view must say on one day.
#[derive(Debug, Clone, Copy)]
struct Expected {
    day: (i32, i32, i32),
    /// The commitment exists.
    exists: bool,
    status: LifecycleStatus,
    /// Milestones met.
    met: i64,
    /// Milestones overdue.
    overdue: i64,
    /// The progress update counts.
    progress: bool,
    /// The KRW money counts.
    krw: bool,
}

const DAYS: [Expected; 7] = [
    Expected {
        day: (2023, 12, 7),
        exists: false,
        status: LifecycleStatus::Unspecified,
        met: 0,
        overdue: 0,
        progress: false,
        krw: false,
    },
    Expected {
        day: (2024, 3, 1),
        exists: true,
        status: LifecycleStatus::Announced,
        met: 0,
        overdue: 0,
        progress: false,
        krw: false,
    },
    Expected {
        day: (2024, 5, 1),
        exists: true,
        status: LifecycleStatus::InProgress,
        met: 0,
        overdue: 0,
        progress: false,
        krw: false,
    },
    Expected {
        day: (2024, 7, 1),
        exists: true,
        status: LifecycleStatus::InProgress,
        met: 1,
        overdue: 0,
        progress: false,
        krw: false,
    },
    Expected {
        day: (2025, 1, 15),
        exists: true,
        status: LifecycleStatus::InProgress,
        met: 1,
        overdue: 1,
        progress: true,
        krw: false,
    },
    Expected {
        day: (2025, 6, 1),
        exists: true,
        status: LifecycleStatus::InProgress,
        met: 1,
        overdue: 1,
        progress: true,
        krw: true,
    },
    // Today: the record as it stands.
    Expected {
        day: (0, 0, 0),
        exists: true,
        status: LifecycleStatus::InProgress,
        met: 1,
        overdue: 1,
        progress: true,
        krw: true,
    },
];

fn day_of(e: &Expected) -> CalendarDate {
    if e.day.0 == 0 {
        dates::to_calendar(dates::today())
    } else {
        calendar(e.day.0, e.day.1, e.day.2)
    }
}

/// Writes the scenario through the gateway; returns the record's name.
async fn scenario(s: &Stack) -> anyhow::Result<String> {
    let mut init = sample(D, "Bioeconomy R&D collaboration", 2026);
    init.milestones.push(Milestone {
        id: "report".into(),
        title: "First joint report".into(),
        due: Some(quarter(2024, 3)),
        ..Default::default()
    });
    init.milestones[0].due = Some(year(2024));
    let created = s.create(D, "bioeconomy", init).await?;
    assert_eq!(
        created.status_date,
        Some(dates::day(2023, 12, 8)),
        "a new record's status dates from its earliest dated source"
    );
    let mut d = s.domain(D);
    let started = s
        .update(
            Initiative {
                status: LifecycleStatus::InProgress as i32,
                status_date: Some(quarter(2024, 2)),
                ..created.clone()
            },
            &["status", "status_date"],
        )
        .await?;
    assert_eq!(
        started
            .status_history
            .iter()
            .map(|h| (h.status, h.effective))
            .collect::<Vec<_>>(),
        vec![
            (
                LifecycleStatus::Announced as i32,
                Some(dates::day(2023, 12, 8))
            ),
            (LifecycleStatus::InProgress as i32, Some(quarter(2024, 2))),
        ]
    );
    d.update_milestone(UpdateMilestoneRequest {
        name: created.name.clone(),
        milestone: Some(Milestone {
            id: "launch".into(),
            status: MilestoneStatus::Met as i32,
            date_met: Some(month(2024, 6)),
            ..Default::default()
        }),
        update_mask: Some(mask(&["status", "date_met"])),
        ..Default::default()
    })
    .await?;
    d.add_progress_update(AddProgressUpdateRequest {
        name: created.name.clone(),
        progress_update: Some(ProgressUpdate {
            as_of: Some(month(2024, 9)),
            reporting_organization_id: "us-nsf".into(),
            text: "First joint call awarded".into(),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await?;
    let now = d
        .get_initiative(GetInitiativeRequest {
            name: created.name.clone(),
        })
        .await?
        .into_inner();
    let mut funding = now.funding.clone();
    funding.push(FundingCommitment {
        amount: Some(Money {
            currency_code: "KRW".into(),
            units: 13_000_000_000,
            nanos: 0,
        }),
        committing_organization_id: "kr-msit".into(),
        date: Some(month(2025, 3)),
        ..Default::default()
    });
    s.update(Initiative { funding, ..now }, &["funding"])
        .await?;
    Ok(created.name)
}

fn count(s: &DomainSummary, status: LifecycleStatus) -> i64 {
    s.by_status
        .iter()
        .find(|c| c.status == status as i32)
        .map(|c| c.count)
        .unwrap_or(0)
}

fn currencies(funding: &[FundingTotal]) -> Vec<String> {
    funding
        .iter()
        .filter_map(|f| f.total.as_ref())
        .map(|m| m.currency_code.clone())
        .collect()
}

fn check_summary(s: &DomainSummary, e: &Expected, view: &str) {
    let at = format!("{view} as of {:?}", e.day);
    assert_eq!(s.initiative_count, i64::from(e.exists), "{at}");
    if e.exists {
        assert_eq!(count(s, e.status), 1, "{at}: {s:?}");
    }
    let m = s.milestones.unwrap_or_default();
    assert_eq!((m.met, m.overdue), (e.met, e.overdue), "{at}");
    assert_eq!(m.total, if e.exists { 2 } else { 0 }, "{at}");
    let want: Vec<&str> = match (e.exists, e.krw) {
        (false, _) => vec![],
        (true, false) => vec!["USD"],
        (true, true) => vec!["KRW", "USD"],
    };
    assert_eq!(currencies(&s.funding), want, "{at}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_view_answers_for_the_world_on_the_day_asked() -> anyhow::Result<()> {
    let s = Stack::start().await?;
    let name = scenario(&s).await?;
    let mut g = s.gateway.clone();
    let mut d = s.domain(D);
    for e in &DAYS {
        let as_of = day_of(e);
        // The domain's summary, from its counters.
        let summary = d
            .get_domain_summary(GetDomainSummaryRequest {
                parent: D.parent(),
                due_within_days: 30,
                as_of: Some(as_of),
                ..Default::default()
            })
            .await?
            .into_inner();
        check_summary(&summary, e, "GetDomainSummary");
        // The same recounted from the versions known today: the same answer.
        let recounted = d
            .get_domain_summary(GetDomainSummaryRequest {
                parent: D.parent(),
                due_within_days: 30,
                as_of: Some(as_of),
                as_known_on: Some(dates::to_calendar(dates::today())),
                ..Default::default()
            })
            .await?
            .into_inner();
        assert_eq!(
            DomainSummary {
                as_known_on: None,
                ..recounted.clone()
            },
            summary,
            "counters and recount agree as of {:?}",
            e.day
        );

        // The overview.
        let o = g
            .get_overview(GetOverviewRequest {
                document: String::new(),
                due_within_days: 30,
                as_of: Some(as_of),
                as_known_on: None,
            })
            .await?
            .into_inner();
        let t = o.totals.clone().unwrap_or_default();
        assert_eq!(t.initiative_count, i64::from(e.exists), "{:?}", e.day);
        let m = t.milestones.unwrap_or_default();
        assert_eq!(
            (m.met, m.overdue),
            (e.met, e.overdue),
            "overview {:?}",
            e.day
        );

        // Search by the status of that day, and by overdue.
        let search = |statuses: Vec<i32>, overdue_only: bool| {
            let mut g = g.clone();
            async move {
                anyhow::Ok(
                    g.search_initiatives(SearchInitiativesRequest {
                        filter: Some(InitiativeFilter {
                            statuses,
                            overdue_only,
                            as_of: Some(as_of),
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .await?
                    .into_inner()
                    .initiatives,
                )
            }
        };
        for st in [LifecycleStatus::Announced, LifecycleStatus::InProgress] {
            let found = search(vec![st as i32], false).await?;
            assert_eq!(
                found.len(),
                usize::from(e.exists && e.status == st),
                "search {st:?} as of {:?}",
                e.day
            );
            if let Some(i) = found.first() {
                assert_eq!(i.status, st as i32);
                assert_eq!(i.progress_updates.len(), usize::from(e.progress));
            }
        }
        let overdue = search(vec![], true).await?;
        assert_eq!(overdue.len(), usize::from(e.overdue > 0), "{:?}", e.day);

        // The portfolio of NSF.
        let p = g
            .get_organization_portfolio(GetOrganizationPortfolioRequest {
                organization_id: "us-nsf".into(),
                due_within_days: 30,
                as_of: Some(as_of),
                as_known_on: None,
                ..Default::default()
            })
            .await;
        match (e.exists, p) {
            (false, Err(status)) => assert_eq!(status.code(), tonic::Code::NotFound),
            (true, Ok(p)) => {
                let p = p.into_inner();
                assert_eq!(p.entries.len(), 1);
                assert_eq!(p.entries[0].status, e.status as i32, "{:?}", e.day);
                assert_eq!(p.entries[0].milestones_overdue.len() as i64, e.overdue);
            }
            (exists, other) => panic!("portfolio as of {:?} (exists {exists}): {other:?}", e.day),
        }

        // The timeline: overdue milestones of that day.
        let tl = g
            .list_milestone_timeline(ListMilestoneTimelineRequest {
                include_overdue: true,
                as_of: Some(as_of),
                ..Default::default()
            })
            .await?
            .into_inner();
        assert_eq!(
            tl.entries.iter().filter(|t| t.overdue).count() as i64,
            e.overdue,
            "timeline {:?}",
            e.day
        );
        assert!(
            tl.entries.iter().all(|t| t
                .milestone
                .as_ref()
                .is_some_and(|m| m.status == MilestoneStatus::Scheduled as i32)),
            "only milestones still scheduled on that day: {:?}",
            tl.entries
        );

        // With met milestones, over 2024-2030: the launch is there once met
        // (as met), the report as scheduled or overdue.
        let wide = g
            .list_milestone_timeline(ListMilestoneTimelineRequest {
                due_after: Some(calendar(2024, 1, 1)),
                due_before: Some(calendar(2030, 12, 31)),
                include_met: true,
                as_of: Some(as_of),
                ..Default::default()
            })
            .await?
            .into_inner();
        let met_entries = wide
            .entries
            .iter()
            .filter(|t| {
                t.milestone
                    .as_ref()
                    .is_some_and(|m| m.status == MilestoneStatus::Met as i32)
            })
            .count() as i64;
        assert_eq!(met_entries, e.met, "met on the timeline {:?}", e.day);
        assert_eq!(
            wide.entries.len(),
            if e.exists { 2 } else { 0 },
            "both milestones, whatever their state, {:?}",
            e.day
        );

        // The fact sheet.
        let f = g
            .generate_fact_sheet(GenerateFactSheetRequest {
                as_of: Some(as_of),
                ..Default::default()
            })
            .await?
            .into_inner();
        let md = &f.markdown;
        assert_eq!(f.initiative_count, i32::from(e.exists), "{md}");
        if e.exists {
            let label = match e.status {
                LifecycleStatus::Announced => "Announced",
                _ => "In progress",
            };
            let iso = format!("{}-{:02}-{:02}", as_of.year, as_of.month, as_of.day);
            assert!(
                md.contains(&format!("Status as of {iso}: **{label}**")),
                "{:?}:\n{md}",
                e.day
            );
            assert_eq!(
                md.contains("Milestone: Launch, due 2024: met (2024-06)"),
                e.met == 1,
                "{md}"
            );
            assert_eq!(
                md.contains("First joint report, due 2024-Q3: scheduled, **overdue**"),
                e.overdue == 1,
                "{md}"
            );
            assert_eq!(md.contains("First joint call awarded"), e.progress, "{md}");
            assert_eq!(md.contains("KRW 13,000,000,000"), e.krw, "{md}");
        }
    }

    // Record time: nothing was known at the end of yesterday; as known today
    // the answers are those above.
    let yesterday = dates::today().previous_day().map(dates::to_calendar);
    let known_then = d
        .get_domain_summary(GetDomainSummaryRequest {
            parent: D.parent(),
            as_known_on: yesterday,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(known_then.initiative_count, 0);
    assert_eq!(known_then.last_revision, 0);
    assert_eq!(known_then.as_known_on, yesterday);
    let o = g
        .get_overview(GetOverviewRequest {
            as_known_on: yesterday,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(o.totals.unwrap_or_default().initiative_count, 0);
    assert_eq!(o.as_known_on, yesterday);
    let found = g
        .search_initiatives(SearchInitiativesRequest {
            filter: Some(InitiativeFilter {
                as_known_on: yesterday,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert!(found.initiatives.is_empty());
    let f = g
        .generate_fact_sheet(GenerateFactSheetRequest {
            as_known_on: yesterday,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(f.initiative_count, 0, "{}", f.markdown);

    // A version of the past is not the record to update: no etag.
    let past = g
        .search_initiatives(SearchInitiativesRequest {
            filter: Some(InitiativeFilter {
                as_of: Some(calendar(2024, 3, 1)),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(past.initiatives.len(), 1);
    assert!(past.initiatives[0].etag.is_empty());
    let current = d
        .get_initiative(GetInitiativeRequest { name })
        .await?
        .into_inner();
    assert!(!current.etag.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dated_facts_must_have_happened_and_follow_each_other() -> anyhow::Result<()> {
    let s = Stack::start().await?;
    let created = s.create(D, "dated", sample(D, "Dated", 2030)).await?;
    let mut d = s.domain(D);
    let tomorrow = dates::today().next_day().map(dates::as_day);
    let update = |status: LifecycleStatus, date: Option<ApproximateDate>| UpdateInitiativeRequest {
        initiative: Some(Initiative {
            status: status as i32,
            status_date: date,
            ..created.clone()
        }),
        update_mask: Some(mask(&["status", "status_date"])),
        ..Default::default()
    };
    // A status that takes effect tomorrow has not happened.
    let err = d
        .update_initiative(update(LifecycleStatus::InProgress, tomorrow))
        .await
        .expect_err("a status dated in the future");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(violated_fields(&err), vec!["initiative.status_date"]);
    // Nor may it start before the status it follows (2023-12-08).
    let err = d
        .update_initiative(update(LifecycleStatus::InProgress, Some(year(2022))))
        .await
        .expect_err("a status before the one it follows");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message()
            .contains("before the date of the status it follows"),
        "{err:?}"
    );
    // Without a date, a status change takes effect the day it is recorded.
    let started = s
        .update(
            Initiative {
                status: LifecycleStatus::InProgress as i32,
                ..created.clone()
            },
            &["status"],
        )
        .await?;
    assert_eq!(started.status_date, Some(dates::as_day(dates::today())));
    assert_eq!(started.status_history.len(), 2);
    // Naming status_date alone corrects the current status's date.
    let corrected = s
        .update(
            Initiative {
                status_date: Some(quarter(2024, 2)),
                ..started.clone()
            },
            &["status_date"],
        )
        .await?;
    assert_eq!(corrected.status_history.len(), 2);
    assert_eq!(
        corrected.status_history[1].effective,
        Some(quarter(2024, 2))
    );
    // A read-modify-write with `*` sends the old status date back: a new
    // status then takes effect the day it is recorded, not on that date.
    let suspended = s
        .update(
            Initiative {
                status: LifecycleStatus::Suspended as i32,
                ..corrected.clone()
            },
            &["*"],
        )
        .await?;
    assert_eq!(suspended.status_date, Some(dates::as_day(dates::today())));
    assert_eq!(suspended.status_history.len(), 3);
    // The history is output only.
    let err = d
        .update_initiative(UpdateInitiativeRequest {
            initiative: Some(suspended.clone()),
            update_mask: Some(mask(&["status_history"])),
            ..Default::default()
        })
        .await
        .expect_err("status_history is output only");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    // A milestone met without a date was met the day it is recorded; one
    // met tomorrow has not been.
    let milestone = |date_met: Option<ApproximateDate>| UpdateMilestoneRequest {
        name: created.name.clone(),
        milestone: Some(Milestone {
            id: "launch".into(),
            status: MilestoneStatus::Met as i32,
            date_met,
            ..Default::default()
        }),
        update_mask: Some(mask(&["status", "date_met"])),
        ..Default::default()
    };
    let err = d
        .update_milestone(milestone(tomorrow))
        .await
        .expect_err("met tomorrow");
    assert_eq!(violated_fields(&err), vec!["milestone.date_met"]);
    let met = d.update_milestone(milestone(None)).await?.into_inner();
    assert_eq!(
        met.milestones[0].date_met,
        Some(dates::as_day(dates::today()))
    );
    Ok(())
}

/// Whitespace (and no-break spaces) collapsed to one space.
fn flat(text: &str) -> String {
    text.replace('\u{a0}', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fact_sheet_of_a_document_follows_its_order_and_sections() -> anyhow::Result<()> {
    const OTHER: &str = "Joint Statement of Another Dialogue";
    const TITLE: &str = "Joint Fact Sheet: Launching the U.S.-ROK Next Generation Critical and Emerging Technologies Dialogue";
    let source = flat(include_str!(
        "../../../cli/data/us-rok-cet-dialogue-joint-fact-sheet-2023-12-08.md"
    ));
    let s = Stack::start().await?;
    let seed = include_str!("../../../cli/data/us-rok-cet-2023-12-08.jsonl");
    let mut seeded = 0;
    for line in seed.lines().filter(|l| !l.trim().is_empty()) {
        let req: CreateInitiativeRequest = serde_json::from_str(line)?;
        let domain: Domain = req.parent.trim_start_matches("domains/").parse()?;
        s.domain(domain).create_initiative(req).await?;
        seeded += 1;
    }
    // A commitment of another document is not printed.
    let mut other = sample(D, "Another dialogue's commitment", 2026);
    other.sources[0].document = OTHER.into();
    s.create(D, "other-document", other).await?;

    let f = s
        .gateway
        .clone()
        .generate_fact_sheet(GenerateFactSheetRequest {
            as_of: Some(calendar(2023, 12, 8)),
            document: TITLE.into(),
            include_quotes: true,
            ..Default::default()
        })
        .await?
        .into_inner();
    let md = &f.markdown;
    assert_eq!(f.initiative_count, seeded, "{md}");
    assert!(md.starts_with(&format!("# {TITLE}\n")), "{md}");
    assert!(!md.contains("Another dialogue"), "{md}");

    // The sections: the introduction, the document's bold headings in their
    // order, the closing.
    let mut headings = vec!["Introduction".to_string()];
    let mut rest = source.as_str();
    while let Some(start) = rest.find("**") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("**") else { break };
        headings.push(after[..end].trim().trim_end_matches(':').trim().to_string());
        rest = &after[end + 2..];
    }
    headings.push("Closing".to_string());
    let printed: Vec<String> = md
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(str::to_string)
        .collect();
    assert_eq!(printed, headings, "{md}");

    // The bullets: each record's quoted words are the source's, and they
    // come in the source's order (the records of one bullet together).
    let mut last = 0;
    let mut bullets = std::collections::BTreeSet::new();
    let quotes: Vec<&str> = md
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("-   Source: \u{201c}"))
        .collect();
    assert_eq!(quotes.len(), seeded as usize, "{md}");
    for q in quotes {
        let q = flat(q.trim_end_matches('\u{201d}'));
        let head: String = q.chars().take(60).collect();
        let at = source
            .find(&head)
            .unwrap_or_else(|| panic!("not in the source: {q}"));
        assert!(at >= last, "out of the source's order: {q}\n{md}");
        last = at;
        bullets.insert(at);
    }
    // 26 bullets and sentences (cli/data/README.md).
    assert_eq!(bullets.len(), 26);
    assert_eq!(
        md.matches("Status as of 2023-12-08:").count(),
        seeded as usize
    );

    // Two documents side by side: the overview and search count one of them
    // when asked, and the whole fact sheet has a part for each.
    let mut g = s.gateway.clone();
    for (document, count) in [("", seeded + 1), (TITLE, seeded), (OTHER, 1)] {
        let o = g
            .get_overview(GetOverviewRequest {
                document: document.into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        assert_eq!(o.document, document);
        assert_eq!(
            o.totals.unwrap_or_default().initiative_count,
            i64::from(count),
            "overview of {document:?}"
        );
        let found = g
            .search_initiatives(SearchInitiativesRequest {
                filter: Some(InitiativeFilter {
                    document: document.into(),
                    ..Default::default()
                }),
                page_size: 1_000,
                ..Default::default()
            })
            .await?
            .into_inner();
        assert_eq!(
            found.initiatives.len(),
            count as usize,
            "search of {document:?}"
        );
    }
    let whole = g
        .generate_fact_sheet(GenerateFactSheetRequest::default())
        .await?
        .into_inner();
    let parts: Vec<&str> = whole
        .markdown
        .lines()
        .filter(|l| l.starts_with("## "))
        .collect();
    assert_eq!(
        parts,
        vec![
            "## Joint Fact Sheet: Launching the U.S.-ROK Next Generation Critical and Emerging Technologies Dialogue (2023-12-08)",
            "## Joint Statement of Another Dialogue (2023-12-08)",
        ],
        "{}",
        whole.markdown
    );
    Ok(())
}
