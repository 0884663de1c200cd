//! A restart keeps everything: after `TestDomain::restart` every record,
//! every index (lists by organization, country, topic, status and
//! instrument), every history entry and the change stream are as before, the
//! summary equals a full recount of the records, and writes go on from the
//! same revision with the same etags.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, Context};
use cetrack_contract::proto::*;
use cetrack_contract::summary::{recount, LastChange, SummaryWindow};
use cetrack_contract::{dates, Domain};
use cetrack_tests::*;

const WAIT: Duration = Duration::from_secs(10);
const RECORDS: usize = 60;

const ORGANIZATIONS: [(&str, &str, &str); 6] = [
    ("us-nsf", "National Science Foundation", "US"),
    ("kr-msit", "Ministry of Science and ICT", "KR"),
    (
        "us-nist",
        "National Institute of Standards and Technology",
        "US",
    ),
    (
        "kr-kriss",
        "Korea Research Institute of Standards and Science",
        "KR",
    ),
    ("jp-meti", "Ministry of Economy, Trade and Industry", "JP"),
    ("in-dst", "Department of Science and Technology", "IN"),
];
const TOPICS: [&str; 4] = ["ai-safety", "talent", "standards", "joint-research"];
const COUNTRIES: [&str; 4] = ["US", "KR", "JP", "IN"];

/// A varied, valid initiative: its status, instrument, participants, topics,
/// dates, milestones and funding all depend on `n`.
fn varied(domain: Domain, n: usize) -> Initiative {
    use LifecycleStatus::*;
    let mut init = sample(domain, &format!("Initiative {n}"), 2023 + (n % 8) as i32);
    init.status = [
        Proposed, Announced, InProgress, Suspended, Completed, Cancelled,
    ][n % 6] as i32;
    init.instrument = [
        Instrument::Mou,
        Instrument::JointResearchProgramme,
        Instrument::WorkingGroup,
        Instrument::TestbedOrPilot,
        Instrument::ExchangeProgramme,
    ][n % 5] as i32;
    init.planned_start = Some(year(2022));
    init.participants = (0..1 + n % 3)
        .map(|k| {
            let (id, name, cc) = ORGANIZATIONS[(n + 2 * k) % ORGANIZATIONS.len()];
            participant(
                org(id, name, "", cc, OrganizationType::MinistryOrAgency),
                ParticipantRole::Partner,
            )
        })
        .collect();
    init.topics = TOPICS
        .iter()
        .enumerate()
        .filter(|(k, _)| (n >> k) & 1 == 1)
        .map(|(_, t)| t.to_string())
        .collect();
    init.milestones = (0..n % 3)
        .map(|k| Milestone {
            id: format!("m{k}"),
            title: format!("Milestone {k}"),
            due: Some(quarter(
                2024 + ((n + k) % 4) as i32,
                1 + ((n + k) % 4) as i32,
            )),
            status: if (n + k).is_multiple_of(5) {
                MilestoneStatus::Met as i32
            } else {
                MilestoneStatus::Scheduled as i32
            },
            ..Default::default()
        })
        .collect();
    init.funding = (0..n % 3)
        .map(|k| FundingCommitment {
            amount: Some(Money {
                currency_code: ["USD", "KRW", "EUR"][(n + k) % 3].into(),
                units: 1_000 * (n as i64 + 1),
                nanos: ((n * 7_919) % 1_000) as i32 * 1_000_000,
            }),
            qualifier: [
                AmountQualifier::Exact,
                AmountQualifier::AtLeast,
                AmountQualifier::UpTo,
                AmountQualifier::About,
            ][(n + k) % 4] as i32,
            ..Default::default()
        })
        .collect();
    init
}

/// Sorts the repeated fields of a summary so that two can be compared.
fn normalized(mut s: DomainSummary) -> DomainSummary {
    s.by_status.sort_by_key(|c| c.status);
    s.by_instrument.sort_by_key(|c| c.instrument);
    s.funding.sort_by(|a, b| {
        let key = |f: &FundingTotal| {
            (
                f.total.as_ref().map(|m| m.currency_code.clone()),
                f.qualifier,
            )
        };
        key(a).cmp(&key(b))
    });
    s.organizations
        .sort_by(|a, b| a.organization_id.cmp(&b.organization_id));
    s
}

/// The summary the records imply, for the same window and last change.
fn recounted(
    domain: Domain,
    all: &[Initiative],
    server: &DomainSummary,
) -> anyhow::Result<DomainSummary> {
    let as_of = server.as_of.as_ref().context("no as_of")?;
    let window = SummaryWindow {
        as_of: dates::calendar(as_of, "as_of").map_err(|v| anyhow!("{v:?}"))?,
        due_within_days: server.due_within_days,
    };
    let last = LastChange {
        revision: server.last_revision as u64,
        time: server.last_change_time,
    };
    Ok(recount(domain, all, window, last))
}

/// Everything a client can read of a domain.
#[derive(Debug, PartialEq)]
struct Snapshot {
    all: Vec<Initiative>,
    lists: BTreeMap<String, Vec<Initiative>>,
    histories: BTreeMap<String, Vec<Change>>,
    summaries: Vec<DomainSummary>,
    changes: Vec<Change>,
}

async fn snapshot(t: &TestDomain, ever_created: &[String]) -> anyhow::Result<Snapshot> {
    let mut c = t.client.clone();
    let parent = t.parent();
    let all = list_all(&mut c, &parent, None, 7).await?;
    let mut filters: Vec<(String, InitiativeFilter)> = Vec::new();
    for (id, _, _) in ORGANIZATIONS {
        filters.push((
            format!("organization {id}"),
            InitiativeFilter {
                organization_id: id.into(),
                ..Default::default()
            },
        ));
    }
    for cc in COUNTRIES {
        filters.push((
            format!("country {cc}"),
            InitiativeFilter {
                country_code: cc.into(),
                ..Default::default()
            },
        ));
    }
    for topic in TOPICS {
        filters.push((
            format!("topic {topic}"),
            InitiativeFilter {
                topic: topic.into(),
                ..Default::default()
            },
        ));
    }
    for status in 1..=6 {
        filters.push((
            format!("status {status}"),
            InitiativeFilter {
                statuses: vec![status],
                ..Default::default()
            },
        ));
    }
    for instrument in 1..=11 {
        filters.push((
            format!("instrument {instrument}"),
            InitiativeFilter {
                instruments: vec![instrument],
                ..Default::default()
            },
        ));
    }
    let mut lists = BTreeMap::new();
    for (label, filter) in filters {
        let listed = list_all(&mut c, &parent, Some(filter.clone()), 5).await?;
        // The index agrees with a scan of every record.
        let scanned: Vec<&Initiative> = all.iter().filter(|i| matches(&filter, i)).collect();
        assert_eq!(listed.iter().collect::<Vec<_>>(), scanned, "{label}");
        lists.insert(label, listed);
    }
    let mut histories = BTreeMap::new();
    for id in ever_created {
        let name = t.name(id);
        histories.insert(id.clone(), history_all(&mut c, &name, 3).await?);
    }
    let mut summaries = Vec::new();
    for (as_of, days) in [(calendar(2025, 10, 1), 365), (calendar(2024, 6, 30), 0)] {
        let s = summary_at(&mut c, &parent, as_of, days).await?;
        assert_eq!(
            normalized(s.clone()),
            normalized(recounted(t.domain, &all, &s)?),
            "the summary differs from a recount"
        );
        summaries.push(s);
    }
    let last = summaries[0].last_revision;
    let mut stream = watch(&mut c, &parent, 0).await?;
    let changes = next_changes(&mut stream, last as usize, WAIT).await?;
    Ok(Snapshot {
        all,
        lists,
        histories,
        summaries,
        changes,
    })
}

/// What the filters of [`snapshot`] select, computed by the test.
fn matches(f: &InitiativeFilter, i: &Initiative) -> bool {
    let orgs = || {
        i.participants
            .iter()
            .filter_map(|p| p.organization.as_ref())
    };
    (f.statuses.is_empty() || f.statuses.contains(&i.status))
        && (f.instruments.is_empty() || f.instruments.contains(&i.instrument))
        && (f.organization_id.is_empty() || orgs().any(|o| o.id == f.organization_id))
        && (f.country_code.is_empty() || orgs().any(|o| o.country_code == f.country_code))
        && (f.topic.is_empty() || i.topics.contains(&f.topic))
}

#[tokio::test]
async fn everything_survives_a_restart_on_every_domain() -> anyhow::Result<()> {
    for domain in Domain::ALL {
        restart(domain)
            .await
            .with_context(|| format!("the {domain} domain"))?;
    }
    Ok(())
}

async fn restart(domain: Domain) -> anyhow::Result<()> {
    use LifecycleStatus::*;
    let mut t = TestDomain::start(domain).await?;
    let ids: Vec<String> = (0..RECORDS).map(|n| format!("init-{n:02}")).collect();
    let items = ids
        .iter()
        .enumerate()
        .map(|(n, id)| (id.clone(), varied(domain, n)))
        .collect();
    let created = create_concurrently(&t.client, domain, items, 8).await?;
    let mut c = t.client.clone();

    // Updates that move status, participants, topics and funding.
    let open_ones = created.iter().filter(|i| {
        matches!(
            LifecycleStatus::try_from(i.status),
            Ok(Proposed | Announced | InProgress)
        )
    });
    for init in open_ones.take(12) {
        let mut changed = init.clone();
        changed.status = Cancelled as i32;
        changed.topics.retain(|t| t != "talent");
        changed.participants.truncate(1);
        changed.funding.truncate(1);
        c.update_initiative(UpdateInitiativeRequest {
            initiative: Some(changed),
            update_mask: Some(mask(&["status", "topics", "participants", "funding"])),
            reporter: "kr-msit".into(),
            ..Default::default()
        })
        .await?;
    }
    // Progress reports and milestone updates.
    for init in created.iter().step_by(5) {
        c.add_progress_update(AddProgressUpdateRequest {
            name: init.name.clone(),
            progress_update: Some(ProgressUpdate {
                as_of: Some(year(2025)),
                reporting_organization_id: "us-nsf".into(),
                text: format!("Report on {}", init.title),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?;
        if let Some(m) = init.milestones.first() {
            c.update_milestone(UpdateMilestoneRequest {
                name: init.name.clone(),
                milestone: Some(Milestone {
                    id: m.id.clone(),
                    status: MilestoneStatus::PartiallyMet as i32,
                    date_met: Some(year(2025)),
                    ..Default::default()
                }),
                update_mask: Some(mask(&["status", "date_met"])),
                reporter: "us-nsf".into(),
                ..Default::default()
            })
            .await?;
        }
    }
    // Deletions.
    for init in created.iter().skip(3).step_by(7) {
        c.delete_initiative(DeleteInitiativeRequest {
            name: init.name.clone(),
            reporter: "us-nist".into(),
            ..Default::default()
        })
        .await?;
    }

    let before = snapshot(&t, &ids).await?;
    assert!(before.all.len() < RECORDS, "some were deleted");
    assert!(before.all.len() > RECORDS / 2);
    let open = watch(&mut c, &t.parent(), before.summaries[0].last_revision).await?;

    t.restart().await?;

    // A watch of the old server ended with it instead of holding it up.
    let mut open = open;
    let ended = tokio::time::timeout(WAIT, open.message())
        .await
        .context("a watch outlived its server")?;
    assert!(!matches!(ended, Ok(Some(_))), "{ended:?}");

    let after = snapshot(&t, &ids).await?;
    assert_eq!(after.all, before.all);
    assert_eq!(after.lists, before.lists);
    assert_eq!(after.histories, before.histories);
    assert_eq!(after.summaries, before.summaries);
    assert_eq!(after.changes, before.changes);

    // Writes go on: the etag read before the restart is still current, and
    // the next revision follows the last one.
    let survivor = before.all.first().context("nothing left")?;
    let mut c = t.client.clone();
    let updated = c
        .update_initiative(UpdateInitiativeRequest {
            initiative: Some(Initiative {
                title: "After the restart".into(),
                ..survivor.clone()
            }),
            update_mask: Some(mask(&["title"])),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(updated.revision, before.summaries[0].last_revision + 1);
    assert_ne!(updated.etag, survivor.etag);
    Ok(())
}

/// A milestone `id` due in `due`, with `status`.
fn milestone(id: &str, due: ApproximateDate, status: MilestoneStatus) -> Milestone {
    Milestone {
        id: id.into(),
        title: format!("Milestone {id}"),
        due: Some(due),
        status: status as i32,
        date_met: (status == MilestoneStatus::Met).then(|| year(2024)),
        ..Default::default()
    }
}

/// A funding commitment of `units` and `nanos` of `currency`.
fn funding(
    currency: &str,
    units: i64,
    nanos: i32,
    qualifier: AmountQualifier,
) -> FundingCommitment {
    FundingCommitment {
        date: None,
        amount: Some(Money {
            currency_code: currency.into(),
            units,
            nanos,
        }),
        qualifier: qualifier as i32,
        committing_organization_id: "us-nsf".into(),
        kind: FundingKind::Pledged as i32,
        note: String::new(),
    }
}

/// The summary of a small, varied data set, written out by hand from the
/// contract's rules (not from `summary::recount`), as of 2025-06-15 with a
/// 30-day window: after the writes and after a restart.
#[tokio::test]
async fn the_summary_equals_one_computed_by_hand() -> anyhow::Result<()> {
    use LifecycleStatus::*;
    const D: Domain = Domain::Ai;
    let mut t = TestDomain::start(D).await?;

    // a: announced, then moved to in progress; one milestone due in 2025
    // (ends 2025-12-31: neither due soon nor overdue); USD 10M at least.
    let a = sample(D, "A", 2025);
    // b: in progress, an MOU, planned end 2026; milestones due 2025-Q2 (ends
    // 2025-06-30: due soon), due 2024 (overdue), met; USD 2.5M at least and
    // KRW 5bn exactly; a third organization.
    let mut b = sample(D, "B", 2026);
    b.status = InProgress as i32;
    b.instrument = Instrument::Mou as i32;
    b.milestones = vec![
        milestone("soon", quarter(2025, 2), MilestoneStatus::Scheduled),
        milestone("late", year(2024), MilestoneStatus::Scheduled),
        Milestone {
            date_met: Some(quarter(2024, 4)),
            ..milestone("done", year(2024), MilestoneStatus::Met)
        },
    ];
    b.funding = vec![
        funding("USD", 2_500_000, 0, AmountQualifier::AtLeast),
        funding("KRW", 5_000_000_000, 0, AmountQualifier::Exact),
    ];
    b.participants.push(participant(
        org(
            "kr-nrf",
            "National Research Foundation of Korea",
            "NRF",
            "KR",
            OrganizationType::MinistryOrAgency,
        ),
        ParticipantRole::Partner,
    ));
    // c: completed, an MOU; its milestone due 2023 counts in the total but
    // is neither overdue nor due soon (the initiative is closed); USD 1M and
    // 250,000.5 at least.
    let mut c = sample(D, "C", 2023);
    c.status = Completed as i32;
    c.planned_start = Some(year(2022));
    c.instrument = Instrument::Mou as i32;
    c.funding = vec![
        funding("USD", 1_000_000, 0, AmountQualifier::AtLeast),
        funding("USD", 250_000, 500_000_000, AmountQualifier::AtLeast),
    ];
    // d: announced, planned end 2024 (passed: an overdue initiative); its
    // milestone due 2025-Q3 (ends 2025-09-30: not within 30 days); no
    // funding; only NSF.
    let mut d = sample(D, "D", 2024);
    d.milestones = vec![milestone(
        "q3",
        quarter(2025, 3),
        MilestoneStatus::Scheduled,
    )];
    d.funding.clear();
    d.participants.truncate(1);
    // e: created and deleted: it counts nowhere.
    let e = sample(D, "E", 2027);
    for (id, init) in [("a", a), ("b", b), ("c", c), ("d", d), ("e", e)] {
        t.client
            .create_initiative(create_request(D, id, init))
            .await?;
    }
    t.client
        .update_initiative(UpdateInitiativeRequest {
            initiative: Some(Initiative {
                name: t.name("a"),
                status: InProgress as i32,
                // Recorded today, in effect since March 2025.
                status_date: Some(ApproximateDate {
                    precision: DatePrecision::Month as i32,
                    year: 2025,
                    month: 3,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: Some(mask(&["status", "status_date"])),
            request_id: String::new(),
            reporter: "us-nsf".into(),
        })
        .await?;
    t.client
        .delete_initiative(DeleteInitiativeRequest {
            name: t.name("e"),
            ..Default::default()
        })
        .await?;

    let usd = |units, nanos| Money {
        currency_code: "USD".into(),
        units,
        nanos,
    };
    let organization = |id: &str, name: &str, cc: &str, count| OrganizationCount {
        organization_id: id.into(),
        name: name.into(),
        country_code: cc.into(),
        initiative_count: count,
    };
    let expected = DomainSummary {
        as_known_on: None,
        parent: D.parent(),
        domain: D.to_proto() as i32,
        initiative_count: 4,
        by_status: vec![
            StatusCount {
                status: Announced as i32,
                count: 1,
            },
            StatusCount {
                status: InProgress as i32,
                count: 2,
            },
            StatusCount {
                status: Completed as i32,
                count: 1,
            },
        ],
        by_instrument: vec![
            InstrumentCount {
                instrument: Instrument::Mou as i32,
                count: 2,
            },
            InstrumentCount {
                instrument: Instrument::JointResearchProgramme as i32,
                count: 2,
            },
        ],
        milestones: Some(MilestoneCounts {
            due_soon: 1,
            overdue: 1,
            met: 1,
            total: 6,
        }),
        overdue_initiatives: 1,
        funding: vec![
            FundingTotal {
                total: Some(Money {
                    currency_code: "KRW".into(),
                    units: 5_000_000_000,
                    nanos: 0,
                }),
                qualifier: AmountQualifier::Exact as i32,
                commitment_count: 1,
            },
            FundingTotal {
                // 10,000,000 + 2,500,000 + 1,000,000 + 250,000.5
                total: Some(usd(13_750_000, 500_000_000)),
                qualifier: AmountQualifier::AtLeast as i32,
                commitment_count: 4,
            },
        ],
        organizations: vec![
            organization("kr-msit", "Ministry of Science and ICT", "KR", 3),
            organization("kr-nrf", "National Research Foundation of Korea", "KR", 1),
            organization("us-nsf", "National Science Foundation", "US", 4),
        ],
        // Five creates, an update, a delete.
        last_revision: 7,
        last_change_time: None,
        as_of: Some(calendar(2025, 6, 15)),
        due_within_days: 30,
    };
    for when in ["after the writes", "after a restart"] {
        let parent = t.parent();
        let mut got = summary_at(&mut t.client, &parent, calendar(2025, 6, 15), 30).await?;
        assert!(got.last_change_time.take().is_some(), "{when}");
        assert_eq!(got, expected, "{when}");
        t.restart().await?;
    }
    Ok(())
}
