//! The gateway when a domain fails: one domain runs as a child process of
//! its real binary (so that it can be killed with SIGKILL or frozen with
//! SIGSTOP), the six others and the gateway in this process, all on
//! ephemeral ports over temporary directories. Run after `cargo build
//! --workspace` (the domain binaries must be built).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_tests::*;
use nix::sys::signal::Signal;

/// The deadline the tests' calls to the gateway carry: far longer than the
/// gateway's own bound, so that a slow machine cannot make a call run out
/// of time.
const CALL_DEADLINE: Duration = Duration::from_secs(30);
/// What the tests assert a view takes at most with a domain down or hung:
/// the gateway's deadline for one domain, plus generous room for the rest
/// of the call on a busy machine (still far below CALL_DEADLINE).
const GATEWAY_BOUND: Duration = Duration::from_secs(6);
/// How long a recovery may take.
const RECOVERY: Duration = Duration::from_secs(20);
/// The pause between two polls of a condition.
const POLL_PAUSE: Duration = Duration::from_millis(50);
/// How long a change may take to arrive on the merged stream.
const ARRIVAL: Duration = Duration::from_secs(15);

/// Creates a sample initiative `id` directly at `domain`.
async fn create(s: &Stack, domain: Domain, id: &str) -> anyhow::Result<Initiative> {
    s.create(domain, id, sample(domain, id, 2027)).await
}

/// The domain run as a child process.
fn child_domain(s: &Stack) -> Domain {
    s.child.as_ref().map(|c| c.domain).expect("a child domain")
}

/// GetOverview under [`CALL_DEADLINE`]; also returns how long it took.
async fn overview(s: &Stack) -> anyhow::Result<(Overview, Duration)> {
    let mut req = tonic::Request::new(GetOverviewRequest::default());
    req.set_timeout(CALL_DEADLINE);
    let started = Instant::now();
    let o = s.gateway.clone().get_overview(req).await?.into_inner();
    Ok((o, started.elapsed()))
}

/// Polls the overview until the child's domain is available again.
async fn overview_once_recovered(s: &Stack) -> anyhow::Result<Overview> {
    let give_up = Instant::now() + RECOVERY;
    let child = child_domain(s);
    loop {
        let (o, _) = overview(s).await?;
        if entry(&o, child).available {
            return Ok(o);
        }
        anyhow::ensure!(
            Instant::now() < give_up,
            "{child} still unavailable after {RECOVERY:?}: {:?}",
            entry(&o, child)
        );
        tokio::time::sleep(POLL_PAUSE).await;
    }
}

/// A request carrying [`CALL_DEADLINE`].
fn within_deadline<T>(message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.set_timeout(CALL_DEADLINE);
    r
}

fn entry(o: &Overview, d: Domain) -> DomainOverview {
    o.domains
        .iter()
        .find(|e| e.domain == d.to_proto() as i32)
        .cloned()
        .unwrap_or_else(|| panic!("no entry for {d}"))
}

fn unavailable_domains(u: &[DomainUnavailable]) -> Vec<i32> {
    u.iter().map(|x| x.domain).collect()
}

/// Asserts the overview answered in time with `down` unavailable, showing
/// the last summary it saw with `count` initiatives, and every other domain
/// fresh.
fn assert_down(o: &Overview, took: Duration, down: Domain, count: i64) {
    assert!(
        took < GATEWAY_BOUND,
        "the overview took {took:?}, past the gateway's bound {GATEWAY_BOUND:?} (its deadline for a domain: {CHILD_DOMAIN_DEADLINE:?})"
    );
    let e = entry(o, down);
    assert!(!e.available, "{down} is marked unavailable: {e:?}");
    assert!(!e.error.is_empty());
    let last = e.summary.as_ref().expect("the last summary seen");
    assert_eq!(last.initiative_count, count);
    let age = e.summary_age.expect("the age of the last summary");
    assert!(
        age.seconds > 0 || age.nanos > 0,
        "a last known summary is not fresh: {age:?}"
    );
    for other in Domain::ALL.into_iter().filter(|d| *d != down) {
        let e = entry(o, other);
        assert!(e.available, "{other}: {e:?}");
        assert_eq!(e.summary_age, Some(pbjson_types::Duration::default()));
    }
    let totals = o.totals.as_ref().unwrap();
    assert!(!totals.complete, "the totals leave {down} out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_domain_is_unavailable_and_the_gateway_recovers_by_itself() -> anyhow::Result<()> {
    let mut s = Stack::with_child_process(Domain::Quantum).await?;
    // KRISS takes part in quantum only.
    let mut q1 = sample(Domain::Quantum, "q1", 2027);
    q1.participants.push(participant(
        org(
            "kr-kriss",
            "Korea Research Institute of Standards and Science",
            "KRISS",
            "KR",
            OrganizationType::NationalLabOrInstitute,
        ),
        ParticipantRole::Partner,
    ));
    let q1 = s
        .domain(Domain::Quantum)
        .create_initiative(create_request(Domain::Quantum, "q1", q1))
        .await?
        .into_inner();
    let a1 = create(&s, Domain::Ai, "a1").await?;

    // The gateway sees every domain once.
    let (o, _) = overview(&s).await?;
    assert!(o.domains.iter().all(|e| e.available), "{o:?}");
    assert_eq!(
        entry(&o, Domain::Quantum).summary.unwrap().initiative_count,
        1
    );
    assert_eq!(o.totals.as_ref().unwrap().initiative_count, 2);
    assert!(o.totals.unwrap().complete);

    // The same record through the gateway's DomainService, which passes
    // the call on over a connection of its own.
    let mut routed = connect(s.gateway_server.addr).await?;
    let read = |name: &str| {
        within_deadline(GetInitiativeRequest {
            name: name.to_string(),
        })
    };
    assert_eq!(
        routed.get_initiative(read(&q1.name)).await?.into_inner(),
        q1
    );

    s.child()?.process.kill9().await?;
    // Its connection is gone: UNAVAILABLE, naming the domain.
    let status = routed.get_initiative(read(&q1.name)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("quantum"), "{status:?}");

    // The overview answers within its deadline: quantum is unavailable, its
    // last summary shown with its age; the totals leave it out.
    let (o, took) = overview(&s).await?;
    assert_down(&o, took, Domain::Quantum, 1);
    assert_eq!(o.totals.as_ref().unwrap().initiative_count, 1);

    // So does every other cross-domain view, naming quantum.
    let found = search_within_bound(&s).await?;
    assert_eq!(found.initiatives, vec![a1.clone()]);
    assert_eq!(
        unavailable_domains(&found.unavailable),
        vec![Domain::Quantum.to_proto() as i32]
    );
    let p = s
        .gateway
        .clone()
        .get_organization_portfolio(within_deadline(GetOrganizationPortfolioRequest {
            organization_id: "us-nsf".into(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    assert_eq!(p.entries.len(), 1);
    assert_eq!(p.entries[0].name, a1.name);
    assert_eq!(
        unavailable_domains(&p.unavailable),
        vec![Domain::Quantum.to_proto() as i32]
    );
    let t = s
        .gateway
        .clone()
        .list_milestone_timeline(within_deadline(ListMilestoneTimelineRequest {
            due_after: Some(CalendarDate {
                year: 2027,
                month: 1,
                day: 1,
            }),
            due_before: Some(CalendarDate {
                year: 2027,
                month: 12,
                day: 31,
            }),
            ..Default::default()
        }))
        .await?
        .into_inner();
    assert_eq!(t.entries.len(), 1);
    assert_eq!(t.entries[0].initiative, a1.name);
    assert_eq!(
        unavailable_domains(&t.unavailable),
        vec![Domain::Quantum.to_proto() as i32]
    );
    let f = s
        .gateway
        .clone()
        .generate_fact_sheet(within_deadline(GenerateFactSheetRequest::default()))
        .await?
        .into_inner();
    assert_eq!(f.initiative_count, 1);
    assert!(f
        .markdown
        .contains("*The quantum service did not answer; its commitments are not listed.*"));
    // An organization found in none of the domains that answered is
    // NOT_FOUND, though it takes part in quantum.
    let status = s
        .gateway
        .clone()
        .get_organization_portfolio(within_deadline(GetOrganizationPortfolioRequest {
            organization_id: "kr-kriss".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    // The one call that needs quantum alone fails with UNAVAILABLE.
    let status = s
        .gateway
        .clone()
        .get_initiative(within_deadline(GetInitiativeRequest {
            name: q1.name.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");

    // Quantum comes back on its port over the same data: the gateway, not
    // restarted, answers from it again.
    s.restart_child().await?;
    // The first call passed through after the restart reaches it (a new
    // connection, without a failed call first).
    assert_eq!(
        routed.get_initiative(read(&q1.name)).await?.into_inner(),
        q1
    );
    let o = overview_once_recovered(&s).await?;
    assert_eq!(
        entry(&o, Domain::Quantum).summary.unwrap().initiative_count,
        1
    );
    let totals = o.totals.unwrap();
    assert!(totals.complete);
    assert_eq!(totals.initiative_count, 2);
    let got = s
        .gateway
        .clone()
        .get_initiative(within_deadline(GetInitiativeRequest {
            name: q1.name.clone(),
        }))
        .await?
        .into_inner();
    assert_eq!(got, q1);
    let found = s
        .gateway
        .clone()
        .search_initiatives(within_deadline(SearchInitiativesRequest::default()))
        .await?
        .into_inner();
    assert_eq!(found.initiatives, vec![a1, q1.clone()]);
    assert!(found.unavailable.is_empty());
    let p = s
        .gateway
        .clone()
        .get_organization_portfolio(within_deadline(GetOrganizationPortfolioRequest {
            organization_id: "kr-kriss".into(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    assert_eq!(p.entries.len(), 1);
    assert_eq!(p.entries[0].name, q1.name);
    assert_eq!(p.entries[0].role, ParticipantRole::Partner as i32);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_domain_does_not_hold_up_the_views() -> anyhow::Result<()> {
    let mut s = Stack::with_child_process(Domain::Energy).await?;
    let e1 = create(&s, Domain::Energy, "e1").await?;
    let b1 = create(&s, Domain::Biotech, "b1").await?;
    let (o, _) = overview(&s).await?;
    assert!(o.domains.iter().all(|e| e.available), "{o:?}");

    // Frozen: its connections stay open, it answers nothing.
    s.child()?.process.signal(Signal::SIGSTOP)?;
    let (o, took) = overview(&s).await?;
    assert_down(&o, took, Domain::Energy, 1);
    assert_eq!(o.totals.unwrap().initiative_count, 1);
    let started = Instant::now();
    let found = s
        .gateway
        .clone()
        .search_initiatives(within_deadline(SearchInitiativesRequest::default()))
        .await?
        .into_inner();
    assert!(started.elapsed() < GATEWAY_BOUND);
    assert_eq!(found.initiatives, vec![b1.clone()]);
    assert_eq!(
        unavailable_domains(&found.unavailable),
        vec![Domain::Energy.to_proto() as i32]
    );

    // Thawed, it is back in the overview.
    s.child()?.process.signal(Signal::SIGCONT)?;
    let o = overview_once_recovered(&s).await?;
    assert!(o.totals.unwrap().complete);
    let found = s
        .gateway
        .clone()
        .search_initiatives(within_deadline(SearchInitiativesRequest::default()))
        .await?
        .into_inner();
    assert_eq!(found.initiatives, vec![b1, e1]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_merged_stream_survives_a_domain_restart_with_every_change_once() -> anyhow::Result<()>
{
    let mut s = Stack::with_child_process(Domain::Ai).await?;
    let mut stream = s
        .gateway
        .clone()
        .watch_all_changes(WatchAllChangesRequest::default())
        .await?
        .into_inner();
    let mut events = Vec::new();
    let has = |events: &[DomainChange], d: Domain, r: i64| merged_keys(events).contains(&(d, r));

    // Before: ai 1-2, biotech 1.
    create(&s, Domain::Ai, "a1").await?;
    create(&s, Domain::Ai, "a2").await?;
    create(&s, Domain::Biotech, "b1").await?;
    events.extend(
        read_merged_until(&mut stream, ARRIVAL, |e| {
            has(e, Domain::Ai, 2) && has(e, Domain::Biotech, 1)
        })
        .await?,
    );

    // Twice: ai is killed; biotech changes while ai is down; ai comes back
    // on its port over the same data and changes again.
    let mut ai_names = vec![
        (1, "domains/ai/initiatives/a1".to_string()),
        (2, "domains/ai/initiatives/a2".to_string()),
    ];
    for round in 0..2 {
        s.child()?.process.kill9().await?;
        create(&s, Domain::Biotech, &format!("b-down-{round}")).await?;
        s.restart_child().await?;
        let created = create(&s, Domain::Ai, &format!("a-back-{round}")).await?;
        ai_names.push((created.revision, created.name.clone()));
        let mut ai = s.domain(Domain::Ai);
        let updated = ai
            .update_initiative(UpdateInitiativeRequest {
                initiative: Some(Initiative {
                    status: LifecycleStatus::InProgress as i32,
                    ..created
                }),
                update_mask: Some(pbjson_types::FieldMask {
                    paths: vec!["status".into()],
                }),
                request_id: String::new(),
                reporter: "test".into(),
            })
            .await?
            .into_inner();
        ai_names.push((updated.revision, updated.name.clone()));
        create(&s, Domain::Biotech, &format!("b-up-{round}")).await?;
    }

    // A sentinel change in each of the two domains: a change skipped or
    // repeated shows before its domain's sentinel, since each domain's
    // changes arrive in order.
    let ai_sentinel = create(&s, Domain::Ai, "sentinel").await?;
    ai_names.push((ai_sentinel.revision, ai_sentinel.name.clone()));
    let bio_sentinel = create(&s, Domain::Biotech, "sentinel").await?;
    events.extend(
        read_merged_until(&mut stream, ARRIVAL, |e| {
            has(e, Domain::Ai, ai_sentinel.revision)
                && has(e, Domain::Biotech, bio_sentinel.revision)
        })
        .await?,
    );
    let revisions = merged_revisions(&events);
    assert_eq!(
        revisions,
        BTreeMap::from([
            (Domain::Biotech, (1..=bio_sentinel.revision).collect()),
            (Domain::Ai, (1..=ai_sentinel.revision).collect()),
        ]),
        "every change of each domain exactly once, in order"
    );
    assert_eq!(ai_sentinel.revision, 7);
    let ai_events: Vec<(i64, String)> = events
        .iter()
        .filter(|e| e.domain == Domain::Ai.to_proto() as i32)
        .map(|e| {
            let c = e.change.as_ref().unwrap();
            (c.revision, c.name.clone())
        })
        .collect();
    assert_eq!(ai_events, ai_names);

    // The last cursor covers both domains: resuming from it after a
    // disconnect delivers only what comes next.
    let cursor = events.last().unwrap().cursor.clone();
    drop(stream);
    let mut resumed = s
        .gateway
        .clone()
        .watch_all_changes(WatchAllChangesRequest {
            cursor,
            domains: vec![],
        })
        .await?
        .into_inner();
    let next = create(&s, Domain::Ai, "after").await?;
    let got = read_merged_until(&mut resumed, ARRIVAL, |e| !e.is_empty()).await?;
    assert_eq!(merged_keys(&got), vec![(Domain::Ai, next.revision)]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_domain_up_every_view_still_answers() -> anyhow::Result<()> {
    // Addresses where nothing listens (nor can, while `dead` lives).
    let dead = Domain::ALL
        .into_iter()
        .map(|d| Ok((d, dead_local_addr()?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (_server, mut g) = start_test_gateway(dead.iter().map(|(d, a)| (*d, a.addr))).await?;

    let mut req = tonic::Request::new(GetOverviewRequest::default());
    req.set_timeout(CALL_DEADLINE);
    let o = g.get_overview(req).await?.into_inner();
    assert_eq!(o.domains.len(), 7);
    for e in &o.domains {
        assert!(!e.available);
        assert!(!e.error.is_empty());
        assert_eq!(e.summary, None, "no summary was ever seen");
        assert_eq!(e.summary_age, None);
    }
    let totals = o.totals.unwrap();
    assert!(!totals.complete);
    assert_eq!(totals.initiative_count, 0);

    let found = g
        .search_initiatives(within_deadline(SearchInitiativesRequest::default()))
        .await?
        .into_inner();
    assert!(found.initiatives.is_empty());
    assert_eq!(found.next_page_token, "");
    assert_eq!(found.unavailable.len(), 7);

    // With no domain to judge on, an organization is not "not found".
    let status = g
        .get_organization_portfolio(within_deadline(GetOrganizationPortfolioRequest {
            organization_id: "us-nsf".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    let status = g
        .get_initiative(within_deadline(GetInitiativeRequest {
            name: "domains/ai/initiatives/x".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    let f = g
        .generate_fact_sheet(within_deadline(GenerateFactSheetRequest::default()))
        .await?
        .into_inner();
    assert_eq!(f.unavailable.len(), 7);
    assert_eq!(f.markdown.matches("did not answer").count(), 7);
    Ok(())
}

/// A domain that goes away in the middle of an answer (a routed change
/// stream, the domain killed): the caller's stream ends with UNAVAILABLE
/// naming the domain, as any call to a domain that is down, not with a
/// reset stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_domain_killed_mid_stream_ends_it_unavailable() -> anyhow::Result<()> {
    const K: Domain = Domain::Connectivity;
    let mut s = Stack::with_child_process(K).await?;
    s.create(K, "first", sample(K, "First", 2027)).await?;
    let mut via = connect(s.gateway_server.addr).await?;
    let mut stream = watch(&mut via, &K.parent(), 0).await?;
    assert_eq!(
        next_change(&mut stream, Duration::from_secs(10))
            .await?
            .revision,
        1
    );
    s.child()?.process.kill9().await?;
    let ended = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .map_err(|_| anyhow::anyhow!("the stream went silent"))?;
    let status = ended.expect_err("a change from a killed domain");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("connectivity"), "{status:?}");
    Ok(())
}

/// A search page the first domain in name order fills is answered from that
/// domain alone: a later domain that is down is not asked, so it is not
/// reported; the pages after it ask the others, and report it.
#[tokio::test]
async fn a_search_page_the_first_domain_fills_asks_no_other() -> anyhow::Result<()> {
    let mut s = Stack::with_child_process(Domain::Semiconductors).await?;
    let ai: Vec<Initiative> =
        futures::future::try_join_all(["a1", "a2", "a3"].map(|id| create(&s, Domain::Ai, id)))
            .await?;
    let e1 = create(&s, Domain::Energy, "e1").await?;
    s.child()?.process.kill9().await?;
    let page = |token: String| {
        let mut g = s.gateway.clone();
        async move {
            anyhow::Ok(
                g.search_initiatives(within_deadline(SearchInitiativesRequest {
                    page_size: 2,
                    page_token: token,
                    ..Default::default()
                }))
                .await?
                .into_inner(),
            )
        }
    };
    let first = page(String::new()).await?;
    assert_eq!(first.initiatives, ai[..2].to_vec());
    assert!(first.unavailable.is_empty(), "{:?}", first.unavailable);
    assert!(!first.next_page_token.is_empty());
    // The rest: the last of ai, then energy; semiconductors (last in name
    // order) is asked and reported down.
    let second = page(first.next_page_token).await?;
    assert_eq!(second.initiatives, vec![ai[2].clone(), e1]);
    assert_eq!(
        unavailable_domains(&second.unavailable),
        vec![Domain::Semiconductors.to_proto() as i32]
    );
    assert_eq!(second.next_page_token, "");
    Ok(())
}

/// A search of everything through the gateway of `s`, answered within the
/// gateway's bound.
async fn search_within_bound(s: &Stack) -> anyhow::Result<SearchInitiativesResponse> {
    let started = Instant::now();
    let found = s
        .gateway
        .clone()
        .search_initiatives(within_deadline(SearchInitiativesRequest::default()))
        .await?
        .into_inner();
    assert!(started.elapsed() < GATEWAY_BOUND, "{:?}", started.elapsed());
    Ok(found)
}

/// A search whose first domain in name order hangs still answers within
/// the gateway's bound, from the others, naming the hung one.
#[tokio::test]
async fn a_search_whose_first_domain_hangs_answers_from_the_others() -> anyhow::Result<()> {
    let mut s = Stack::with_child_process(Domain::Ai).await?;
    create(&s, Domain::Ai, "a1").await?;
    let b1 = create(&s, Domain::Biotech, "b1").await?;
    s.child()?.process.signal(Signal::SIGSTOP)?;
    let found = search_within_bound(&s).await?;
    assert_eq!(found.initiatives, vec![b1]);
    assert_eq!(
        unavailable_domains(&found.unavailable),
        vec![Domain::Ai.to_proto() as i32]
    );
    s.child()?.process.signal(Signal::SIGCONT)?;
    Ok(())
}
