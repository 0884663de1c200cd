//! Restricted records never leak. System A holds public records and
//! restricted ones whose titles, ids, organizations, topics and amounts
//! carry a marker; system B holds the same public records only. A caller
//! without clearance calls every read RPC, view and stream of A (domain and
//! gateway, the domains' reads also through the gateway's DomainService,
//! with every filter that could touch the restricted records, after deletes
//! and while restricted writes go on): no response byte holds
//! the marker, and every count equals B's. A cleared caller does see the
//! restricted records (the data is really there).

use std::time::Duration;

use anyhow::Context;

use cetrack_contract::auth::{Clearance, Role};
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_tests::*;
use prost::Message;

/// In every marked string, lower case.
const MARK: &str = "zqxmark";
/// The marked organization.
const MARKED_ORG: &str = "zqxmark-org";
/// The domains that hold restricted records.
const MARKED_DOMAINS: [Domain; 3] = [Domain::Quantum, Domain::Ai, Domain::Biotech];
/// How long a change may take to arrive on a stream.
const ARRIVAL: Duration = Duration::from_secs(10);

fn marked(domain: Domain, n: usize) -> Initiative {
    let mut i = sample(domain, &format!("ZQXMARK secret title {n}"), 2025);
    i.sensitivity = Sensitivity::Restricted as i32;
    i.summary = "ZQXMARK summary".into();
    i.topics.push("zqxmark-topic".into());
    i.participants.push(participant(
        org(
            MARKED_ORG,
            "ZQXMARK Organization",
            "ZQX",
            "KR",
            OrganizationType::Industry,
        ),
        ParticipantRole::Partner,
    ));
    i.funding.push(FundingCommitment {
        date: None,
        amount: Some(Money {
            currency_code: "JPY".into(),
            units: 777_777_777,
            nanos: 0,
        }),
        qualifier: AmountQualifier::Exact as i32,
        committing_organization_id: MARKED_ORG.into(),
        kind: FundingKind::Pledged as i32,
        note: "zqxmark note".into(),
    });
    i.status = LifecycleStatus::InProgress as i32;
    i
}

/// Fails when the encoding of `m` holds the marker.
fn clean<M: Message + std::fmt::Debug>(what: &str, m: &M) {
    let bytes = m.encode_to_vec().to_ascii_lowercase();
    let found = bytes.windows(MARK.len()).any(|w| w == MARK.as_bytes());
    assert!(!found, "{what} leaks a restricted record: {m:?}");
}

/// The same public records in a system.
async fn write_public(s: &Stack) -> anyhow::Result<()> {
    for d in Domain::ALL {
        for n in 0..2 {
            s.create(
                d,
                &format!("public-{n}"),
                sample(d, &format!("Public {n}"), 2025 + n),
            )
            .await?;
        }
        // One whose id sorts after the marked ones: a page that ends on it
        // has walked past them.
        s.create(d, "zzz-public", sample(d, "Public last", 2026))
            .await?;
    }
    Ok(())
}

/// Fails when page token `token` holds the marker, as it is or decoded.
fn clean_token(what: &str, token: &str) {
    use base64::Engine;
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .unwrap_or_default();
    for bytes in [
        token.as_bytes().to_ascii_lowercase(),
        decoded.to_ascii_lowercase(),
    ] {
        let found = bytes.windows(MARK.len()).any(|w| w == MARK.as_bytes());
        assert!(
            !found,
            "{what}'s page token names a restricted record: {token}"
        );
    }
}

/// Every entry of ListDueMilestones `req`, page by page from the last entry
/// of the page before.
async fn due_all(
    c: &mut Client,
    mut req: ListDueMilestonesRequest,
) -> anyhow::Result<Vec<DueMilestone>> {
    let mut all: Vec<DueMilestone> = Vec::new();
    loop {
        let page = c.list_due_milestones(req.clone()).await?.into_inner();
        all.extend(page.entries);
        if !page.more {
            return Ok(all);
        }
        let last = all.last().context("a page that has more is not empty")?;
        req.start_after = Some(cetrack_contract::timeline::after(last));
    }
}

/// The summary without what differs between two systems by construction
/// (revisions and times).
fn counts(mut s: DomainSummary) -> DomainSummary {
    s.last_revision = 0;
    s.last_change_time = None;
    s
}

#[tokio::test]
async fn no_response_of_any_read_holds_a_restricted_record_for_an_uncleared_caller(
) -> anyhow::Result<()> {
    let a = Stack::start().await?;
    let b = Stack::start().await?;
    write_public(&a).await?;
    write_public(&b).await?;
    // The restricted records of A: created, changed, one deleted, one with a
    // progress update and a met milestone.
    for d in MARKED_DOMAINS {
        for n in 0..3 {
            a.create(d, &format!("zqxmark-{n}"), marked(d, n)).await?;
        }
        let name = format!("{}/initiatives/zqxmark-0", d.parent());
        let mut renamed = marked(d, 0);
        renamed.name = name.clone();
        renamed.title = "ZQXMARK renamed".into();
        a.update(renamed, &["title"]).await?;
        a.domain(d)
            .add_progress_update(AddProgressUpdateRequest {
                name: name.clone(),
                progress_update: Some(ProgressUpdate {
                    as_of: Some(year(2025)),
                    reporting_organization_id: MARKED_ORG.into(),
                    text: "ZQXMARK progress".into(),
                    assessment: CompletionAssessment::Substantial as i32,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await?;
        // A restricted milestone met in 2025: the timeline with met ones
        // must not show it.
        a.domain(d)
            .update_milestone(UpdateMilestoneRequest {
                name: format!("{}/initiatives/zqxmark-1", d.parent()),
                milestone: Some(Milestone {
                    id: "launch".into(),
                    status: MilestoneStatus::Met as i32,
                    date_met: Some(year(2025)),
                    ..Default::default()
                }),
                update_mask: Some(mask(&["status", "date_met"])),
                ..Default::default()
            })
            .await?;
        a.domain(d)
            .delete_initiative(DeleteInitiativeRequest {
                name: format!("{}/initiatives/zqxmark-2", d.parent()),
                ..Default::default()
            })
            .await?;
    }
    // Restricted writes go on while the uncleared caller reads.
    let writer = {
        let mut client = a.domain(Domain::Quantum);
        tokio::spawn(async move {
            for n in 0..200 {
                let r = client
                    .add_progress_update(AddProgressUpdateRequest {
                        name: "domains/quantum/initiatives/zqxmark-1".into(),
                        progress_update: Some(ProgressUpdate {
                            as_of: Some(year(2025)),
                            reporting_organization_id: MARKED_ORG.into(),
                            text: format!("ZQXMARK concurrent {n}"),
                            assessment: CompletionAssessment::Limited as i32,
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .await;
                if r.is_err() {
                    return r.map(|_| ());
                }
            }
            Ok(())
        })
    };

    let viewer = token(
        "uncleared",
        Some("us-nsf"),
        &[Role::Viewer],
        None,
        Clearance::Public,
    );
    let domain_client = |s: &Stack, d: Domain| {
        let addr = s.domains.iter().find(|t| t.domain == d).map(|t| t.addr());
        let viewer = viewer.clone();
        async move { connect_as(addr.expect("every domain runs"), Some(&viewer)).await }
    };
    // The viewer's client of domain `d` in `a`: at the domain, or through
    // the gateway's DomainService.
    let reader = |d: Domain, via_gateway: bool| {
        let gateway = a.gateway_server.addr;
        let direct = domain_client(&a, d);
        let viewer = viewer.clone();
        async move {
            match via_gateway {
                true => connect_as(gateway, Some(&viewer)).await,
                false => direct.await,
            }
        }
    };

    // Every domain read, with every filter that could touch the records,
    // also as of a past day (valid time) and as known on a day (record
    // time).
    let today = cetrack_contract::dates::to_calendar(cetrack_contract::dates::today());
    let yesterday = cetrack_contract::dates::today()
        .previous_day()
        .map(cetrack_contract::dates::to_calendar);
    let filters = [
        InitiativeFilter {
            as_known_on: Some(today),
            ..Default::default()
        },
        InitiativeFilter {
            as_known_on: yesterday,
            ..Default::default()
        },
        InitiativeFilter {
            as_of: Some(calendar(2024, 6, 1)),
            as_known_on: Some(today),
            statuses: vec![LifecycleStatus::InProgress as i32],
            ..Default::default()
        },
        InitiativeFilter {
            document: sample(Domain::Ai, "x", 2025).sources[0].document.clone(),
            ..Default::default()
        },
        // A due window: read from the planned end and milestone indexes.
        InitiativeFilter {
            due_after: Some(calendar(2024, 1, 1)),
            due_before: Some(calendar(2030, 12, 31)),
            include_met_milestones: true,
            ..Default::default()
        },
        InitiativeFilter::default(),
        InitiativeFilter {
            organization_id: MARKED_ORG.into(),
            ..Default::default()
        },
        InitiativeFilter {
            organization_id: "us-nsf".into(),
            ..Default::default()
        },
        InitiativeFilter {
            topic: "zqxmark-topic".into(),
            ..Default::default()
        },
        InitiativeFilter {
            text: "zqxmark".into(),
            ..Default::default()
        },
        InitiativeFilter {
            statuses: vec![LifecycleStatus::InProgress as i32],
            ..Default::default()
        },
        InitiativeFilter {
            country_code: "KR".into(),
            ..Default::default()
        },
        InitiativeFilter {
            overdue_only: true,
            as_of: Some(calendar(2030, 1, 1)),
            ..Default::default()
        },
    ];
    // Each domain's reads at the domain and through the gateway's
    // DomainService.
    for (d, via_gateway) in Domain::ALL
        .into_iter()
        .flat_map(|d| [(d, false), (d, true)])
    {
        let mut ca = reader(d, via_gateway).await?;
        let mut cb = domain_client(&b, d).await?;
        for f in &filters {
            let (la, tokens) = list_pages(&mut ca, &d.parent(), Some(f.clone()), 1).await?;
            for t in &tokens {
                clean_token("ListInitiatives", t);
            }
            let lb = list_all(&mut cb, &d.parent(), Some(f.clone()), 1).await?;
            for i in &la {
                clean("ListInitiatives", i);
            }
            assert_eq!(ids(&la), ids(&lb), "{d} {f:?}");
        }
        for as_of in [calendar(2024, 6, 1), calendar(2030, 1, 1)] {
            let sa = summary_at(&mut ca, &d.parent(), as_of, 3_000).await?;
            let sb = summary_at(&mut cb, &d.parent(), as_of, 3_000).await?;
            clean("GetDomainSummary", &sa);
            assert_eq!(counts(sa), counts(sb), "{d} summary");
            for known in [Some(today), yesterday] {
                let req = GetDomainSummaryRequest {
                    parent: d.parent(),
                    due_within_days: 3_000,
                    as_of: Some(as_of),
                    as_known_on: known,
                    ..Default::default()
                };
                let sa = ca.get_domain_summary(req.clone()).await?.into_inner();
                let sb = cb.get_domain_summary(req).await?.into_inner();
                clean("GetDomainSummary as known on", &sa);
                assert_eq!(counts(sa), counts(sb), "{d} summary as known on {known:?}");
            }
        }
        // The timeline's part: every page of one entry, with and without
        // overdue and met ones, today and on other days.
        for (as_of, extra) in [
            (None, false),
            (Some(calendar(2024, 6, 1)), true),
            (Some(calendar(2030, 1, 1)), true),
        ] {
            let req = ListDueMilestonesRequest {
                parent: d.parent(),
                due_after: Some(calendar(2020, 1, 1)),
                due_before: Some(calendar(2040, 12, 31)),
                include_overdue: extra,
                include_met: extra,
                as_of,
                page_size: 1,
                ..Default::default()
            };
            let ea = due_all(&mut ca, req.clone()).await?;
            let eb = due_all(&mut cb, req).await?;
            for e in &ea {
                clean("ListDueMilestones", e);
            }
            assert_eq!(ea, eb, "{d} due milestones as of {as_of:?}");
        }
        for n in 0..3 {
            let name = format!("{}/initiatives/zqxmark-{n}", d.parent());
            let got = ca
                .get_initiative(GetInitiativeRequest { name: name.clone() })
                .await;
            assert_eq!(
                got.map(|_| ()).map_err(|s| s.code()),
                Err(tonic::Code::NotFound),
                "{name}"
            );
            let h = ca
                .list_history(ListHistoryRequest {
                    name: name.clone(),
                    ..Default::default()
                })
                .await;
            assert_eq!(
                h.map(|_| ()).map_err(|s| s.code()),
                Err(tonic::Code::NotFound),
                "history of {name}"
            );
        }
        for i in list_all(&mut cb, &d.parent(), None, 50).await? {
            for c in history_all(&mut ca, &i.name, 2).await? {
                clean("ListHistory", &c);
            }
        }
    }

    // Every gateway view.
    let mut ga = gateway_as(a.gateway_server.addr, Some(&viewer)).await?;
    let mut gb = gateway_as(b.gateway_server.addr, Some(&viewer)).await?;
    let sample_document = sample(Domain::Ai, "x", 2025).sources[0].document.clone();
    for (as_of, as_known_on, document) in [
        (None, None, ""),
        (Some(calendar(2024, 6, 1)), None, ""),
        (Some(calendar(2030, 1, 1)), None, ""),
        (None, Some(today), ""),
        (Some(calendar(2030, 1, 1)), Some(today), ""),
        (None, None, sample_document.as_str()),
    ] {
        let req = GetOverviewRequest {
            document: document.to_string(),
            as_known_on,
            as_of,
            due_within_days: 3_000,
        };
        let oa = ga.get_overview(req.clone()).await?.into_inner();
        let ob = gb.get_overview(req).await?.into_inner();
        clean("GetOverview", &oa);
        assert_eq!(oa.totals, ob.totals, "overview totals as of {as_of:?}");
        let sheet = GenerateFactSheetRequest {
            as_of,
            as_known_on,
            include_quotes: true,
            ..Default::default()
        };
        let fa = ga.generate_fact_sheet(sheet.clone()).await?.into_inner();
        let fb = gb.generate_fact_sheet(sheet).await?.into_inner();
        clean("GenerateFactSheet", &fa);
        assert_eq!(fa.initiative_count, fb.initiative_count);
        assert_eq!(fa.markdown, fb.markdown);
    }
    for f in &filters {
        let req = SearchInitiativesRequest {
            filter: Some(f.clone()),
            page_size: 1_000,
            ..Default::default()
        };
        let sa = ga.search_initiatives(req.clone()).await?.into_inner();
        let sb = gb.search_initiatives(req).await?.into_inner();
        clean("SearchInitiatives", &sa);
        assert_eq!(ids(&sa.initiatives), ids(&sb.initiatives), "search {f:?}");
        // A page at a time: no token names a restricted record either.
        let mut page_token = String::new();
        loop {
            let page = ga
                .search_initiatives(SearchInitiativesRequest {
                    filter: Some(f.clone()),
                    page_size: 1,
                    page_token,
                    ..Default::default()
                })
                .await?
                .into_inner();
            clean("SearchInitiatives", &page);
            if page.next_page_token.is_empty() {
                break;
            }
            clean_token("SearchInitiatives", &page.next_page_token);
            page_token = page.next_page_token;
        }
    }
    // The portfolio a page at a time: its tokens carry the domains' own.
    let mut page_token = String::new();
    let mut entries = 0;
    loop {
        let page = ga
            .get_organization_portfolio(GetOrganizationPortfolioRequest {
                organization_id: "us-nsf".into(),
                page_size: 1,
                page_token,
                ..Default::default()
            })
            .await?
            .into_inner();
        clean("GetOrganizationPortfolio", &page);
        entries += page.entries.len();
        if page.next_page_token.is_empty() {
            break;
        }
        clean_token("GetOrganizationPortfolio", &page.next_page_token);
        page_token = page.next_page_token;
    }
    assert_eq!(entries, Domain::ALL.len() * 3);
    for as_known_on in [None, Some(today)] {
        let pa = ga
            .get_organization_portfolio(GetOrganizationPortfolioRequest {
                organization_id: "us-nsf".into(),
                due_within_days: 3_000,
                as_known_on,
                ..Default::default()
            })
            .await?
            .into_inner();
        clean("GetOrganizationPortfolio", &pa);
        assert_eq!(pa.entries.len(), Domain::ALL.len() * 3);
    }
    let hidden = ga
        .get_organization_portfolio(GetOrganizationPortfolioRequest {
            organization_id: MARKED_ORG.into(),
            ..Default::default()
        })
        .await;
    assert_eq!(
        hidden.map(|_| ()).map_err(|s| s.code()),
        Err(tonic::Code::NotFound)
    );
    let window = ListMilestoneTimelineRequest {
        due_after: Some(calendar(2020, 1, 1)),
        due_before: Some(calendar(2030, 12, 31)),
        include_overdue: true,
        as_of: Some(calendar(2030, 1, 1)),
        page_size: 1_000,
        ..Default::default()
    };
    for window in [
        window.clone(),
        ListMilestoneTimelineRequest {
            include_met: true,
            ..window.clone()
        },
        ListMilestoneTimelineRequest {
            as_known_on: Some(today),
            ..window
        },
    ] {
        let ta = ga
            .list_milestone_timeline(window.clone())
            .await?
            .into_inner();
        let tb = gb.list_milestone_timeline(window).await?.into_inner();
        clean("ListMilestoneTimeline", &ta);
        assert_eq!(ta.entries.len(), tb.entries.len());
    }
    for n in 0..3 {
        let name = format!("domains/ai/initiatives/zqxmark-{n}");
        let got = ga.get_initiative(GetInitiativeRequest { name }).await;
        assert_eq!(
            got.map(|_| ()).map_err(|s| s.code()),
            Err(tonic::Code::NotFound)
        );
    }

    // The streams: every event up to a public sentinel written after every
    // restricted write.
    writer.await??;
    for d in Domain::ALL {
        a.create(d, "sentinel", sample(d, "Sentinel", 2027)).await?;
    }
    for (d, via_gateway) in Domain::ALL
        .into_iter()
        .flat_map(|d| [(d, false), (d, true)])
    {
        let mut ca = reader(d, via_gateway).await?;
        let mut stream = watch(&mut ca, &d.parent(), 0).await?;
        loop {
            let c = next_change(&mut stream, ARRIVAL).await?;
            clean("WatchChanges", &c);
            if c.name.ends_with("/sentinel") {
                break;
            }
        }
    }
    let mut merged = ga
        .watch_all_changes(WatchAllChangesRequest::default())
        .await?
        .into_inner();
    let events = read_merged_until(&mut merged, ARRIVAL, |events| {
        events
            .iter()
            .filter(|e| {
                e.change
                    .as_ref()
                    .is_some_and(|c| c.name.ends_with("/sentinel"))
            })
            .count()
            == Domain::ALL.len()
    })
    .await?;
    for e in &events {
        clean("WatchAllChanges", e);
    }

    // A cleared caller sees them: the data the test hides is really there.
    let cleared = token(
        "cleared",
        None,
        &[Role::Viewer],
        None,
        Clearance::Restricted,
    );
    let mut gc = gateway_as(a.gateway_server.addr, Some(&cleared)).await?;
    let seen = gc
        .search_initiatives(SearchInitiativesRequest {
            filter: Some(InitiativeFilter {
                organization_id: MARKED_ORG.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(seen.initiatives.len(), MARKED_DOMAINS.len() * 2, "{seen:?}");
    Ok(())
}

/// A record marked RESTRICTED and then deleted keeps its past hidden: its
/// history (the public versions before the marking included) is NOT_FOUND
/// for a caller without clearance, as it was before the deletion.
#[tokio::test]
async fn a_deleted_restricted_record_has_no_history_for_an_uncleared_caller() -> anyhow::Result<()>
{
    const D: Domain = Domain::Quantum;
    let t = TestDomain::start(D).await?;
    let mut admin = t.client.clone();
    let created = admin
        .create_initiative(create_request(
            D,
            "once-public",
            sample(D, "Once public", 2027),
        ))
        .await?
        .into_inner();
    admin
        .update_initiative(UpdateInitiativeRequest {
            initiative: Some(Initiative {
                sensitivity: Sensitivity::Restricted as i32,
                ..created.clone()
            }),
            update_mask: Some(mask(&["sensitivity"])),
            ..Default::default()
        })
        .await?;
    let viewer = token("uncleared", None, &[Role::Viewer], None, Clearance::Public);
    let mut v = connect_as(t.addr(), Some(&viewer)).await?;
    let history = |v: &mut Client| {
        let mut v = v.clone();
        let name = created.name.clone();
        async move {
            v.list_history(ListHistoryRequest {
                name,
                ..Default::default()
            })
            .await
            .map(|_| ())
            .map_err(|s| s.code())
        }
    };
    assert_eq!(history(&mut v).await, Err(tonic::Code::NotFound));
    admin
        .delete_initiative(DeleteInitiativeRequest {
            name: created.name.clone(),
            ..Default::default()
        })
        .await?;
    assert_eq!(
        history(&mut v).await,
        Err(tonic::Code::NotFound),
        "after the deletion"
    );
    assert!(
        history(&mut admin).await.is_ok(),
        "a cleared caller still reads it"
    );
    Ok(())
}

#[tokio::test]
async fn the_gateways_last_summaries_reach_only_callers_who_may_read_the_domain(
) -> anyhow::Result<()> {
    let s = Stack::start().await?;
    s.create(
        Domain::Quantum,
        "counted",
        sample(Domain::Quantum, "Counted", 2027),
    )
    .await?;
    // An admin's overview: the gateway keeps every domain's summary.
    let seen = s
        .gateway
        .clone()
        .get_overview(GetOverviewRequest::default())
        .await?
        .into_inner();
    assert!(seen
        .domains
        .iter()
        .all(|d| d.available && d.summary.is_some()));

    // A viewer of ai alone, cleared like the admin: the other domains
    // refuse them, and the gateway shows them nothing it kept either.
    let scoped = token(
        "ai-viewer",
        None,
        &[Role::Viewer],
        Some(&["ai"]),
        Clearance::Restricted,
    );
    let mut g = gateway_as(s.gateway_server.addr, Some(&scoped)).await?;
    let o = g
        .get_overview(GetOverviewRequest::default())
        .await?
        .into_inner();
    for d in &o.domains {
        if d.domain == Domain::Ai.to_proto() as i32 {
            assert!(d.available && d.summary.is_some(), "{d:?}");
        } else {
            assert!(!d.available, "{d:?}");
            assert_eq!(d.summary, None, "no summary of a domain they may not read");
            assert_eq!(d.summary_age, None);
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_gateway_keeps_last_summaries_per_clearance_with_its_own_identity() -> anyhow::Result<()>
{
    let mut s = Stack::start().await?;
    let q = Domain::Quantum;
    s.create(q, "open", sample(q, "Open", 2027)).await?;
    let mut marked = sample(q, "zqxmark-summary", 2027);
    marked.sensitivity = Sensitivity::Restricted as i32;
    s.create(q, "marked", marked).await?;

    // A public viewer's overview while quantum is up: the gateway asks
    // quantum as itself, for each clearance, beside the viewer's call.
    let viewer = token("viewer", None, &[Role::Viewer], None, Clearance::Public);
    let mut public = gateway_as(s.gateway_server.addr, Some(&viewer)).await?;
    let up = public
        .get_overview(GetOverviewRequest::default())
        .await?
        .into_inner();
    let quantum = |o: &Overview| {
        o.domains
            .iter()
            .find(|d| d.domain == q.to_proto() as i32)
            .cloned()
            .expect("quantum in the overview")
    };
    assert_eq!(quantum(&up).summary.map(|x| x.initiative_count), Some(1));

    // Quantum goes away: each caller sees the last summary of their own
    // clearance, kept by the gateway's identity, not by the viewer's.
    let i = s
        .domains
        .iter()
        .position(|t| t.domain == q)
        .expect("quantum runs");
    if let Some(server) = s.domains[i].server.take() {
        server.stop().await?;
    }
    let down = public.get_overview(GetOverviewRequest::default()).await?;
    let bytes = down.get_ref().encode_to_vec();
    assert!(!String::from_utf8_lossy(&bytes).contains(MARK));
    let down = quantum(&down.into_inner());
    assert!(!down.available);
    assert_eq!(
        down.summary.map(|x| x.initiative_count),
        Some(1),
        "public records only"
    );
    let cleared = s
        .gateway
        .clone()
        .get_overview(GetOverviewRequest::default())
        .await?;
    let cleared = quantum(&cleared.into_inner());
    assert!(!cleared.available);
    assert_eq!(
        cleared.summary.map(|x| x.initiative_count),
        Some(2),
        "the restricted record counted for a cleared caller"
    );
    Ok(())
}

/// The overview of today from a gateway that answers from memory (the
/// gateway binary with its own cleared identity, following every domain's
/// change stream): to a caller without clearance it shows what system B
/// shows, whose domains never held a restricted record, and no byte of one:
/// when the summaries come from memory, and after a restricted write passed
/// through that gateway (kept summaries out of date, fetched again, kept).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_from_memory_shows_an_uncleared_caller_no_restricted_record(
) -> anyhow::Result<()> {
    let a = Stack::start().await?;
    let b = Stack::start().await?;
    write_public(&a).await?;
    write_public(&b).await?;
    let (live, metrics) =
        spawn_gateway_with_metrics(a.domains.iter().map(|t| (t.domain, t.addr()))).await?;
    scrape_until(metrics, |t| {
        Domain::ALL
            .iter()
            .all(|d| value(t, "cetrack_gateway_following", &[("domain", d.slug())]) == Some(1.0))
    })
    .await?;
    // A's restricted records, written at the domains while the gateway
    // follows them: two marked ones per marked domain, and one made
    // restricted after it was public.
    for d in MARKED_DOMAINS {
        for n in 0..2 {
            a.create(d, &format!("zqxmark-{n}"), marked(d, n)).await?;
        }
        let once = a
            .create(d, "once-public", sample(d, "Once public", 2027))
            .await?;
        a.update(
            Initiative {
                sensitivity: Sensitivity::Restricted as i32,
                ..once
            },
            &["sensitivity"],
        )
        .await?;
    }
    let expected = |public: i64| public + (MARKED_DOMAINS.len() * 3) as i64;
    let public_total = (Domain::ALL.len() * 3) as i64;
    let mut admin = gateway_as(live.addr, Some(&admin_token())).await?;
    let total = |o: &Overview| o.totals.as_ref().map_or(0, |t| t.initiative_count);
    // The admin's overview counts them once the streams have brought them.
    let started = std::time::Instant::now();
    while total(
        &admin
            .get_overview(GetOverviewRequest::default())
            .await?
            .into_inner(),
    ) != expected(public_total)
    {
        anyhow::ensure!(
            started.elapsed() < ARRIVAL,
            "the streams did not bring the writes"
        );
    }

    let viewer = token("uncleared", None, &[Role::Viewer], None, Clearance::Public);
    let from_memory = gateway_as(live.addr, Some(&viewer)).await?;
    let mut from_b = gateway_as(b.gateway_server.addr, Some(&viewer)).await?;
    let summaries = |o: &Overview| -> Vec<(i32, Option<DomainSummary>)> {
        o.domains
            .iter()
            .map(|e| (e.domain, e.summary.clone().map(counts)))
            .collect()
    };
    let answered = |t: &str| -> f64 {
        Domain::ALL
            .iter()
            .filter_map(|d| {
                value(
                    t,
                    "cetrack_gateway_summaries_from_memory_total",
                    &[("domain", d.slug())],
                )
            })
            .sum()
    };
    let seen_by_b = from_b
        .get_overview(GetOverviewRequest::default())
        .await?
        .into_inner();
    assert_eq!(total(&seen_by_b), public_total);
    // The uncleared caller's overview of today from the gateway that
    // answers from memory: what B shows, and not a byte of a marked record.
    let viewer_sees_b = |round: &'static str| {
        let mut from_memory = from_memory.clone();
        let b = seen_by_b.clone();
        async move {
            let got = from_memory
                .get_overview(GetOverviewRequest::default())
                .await?
                .into_inner();
            let what = format!("GetOverview from memory, {round}");
            clean(&what, &got);
            assert_eq!(summaries(&got), summaries(&b), "{what}");
            assert_eq!(got.totals, b.totals, "{what}");
            anyhow::Ok(())
        }
    };
    viewer_sees_b("first").await?;
    // Nothing changed since: every summary of the second comes from memory.
    let before = answered(&scrape(metrics).await?);
    viewer_sees_b("second").await?;
    let after = answered(&scrape(metrics).await?);
    assert_eq!(after - before, Domain::ALL.len() as f64, "from memory");

    // A restricted write passed through that gateway: the viewer's next
    // overviews (fetched again, then from memory) still show nothing of it;
    // the admin's counts it.
    connect(live.addr)
        .await?
        .create_initiative(create_request(
            Domain::Quantum,
            "zqxmark-9",
            marked(Domain::Quantum, 9),
        ))
        .await?;
    viewer_sees_b("after the write").await?;
    viewer_sees_b("after the write, again").await?;
    let all = admin
        .get_overview(GetOverviewRequest::default())
        .await?
        .into_inner();
    assert_eq!(total(&all), expected(public_total) + 1);
    live.terminate().await?;
    Ok(())
}
