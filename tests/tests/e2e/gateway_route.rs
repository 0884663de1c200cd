//! One address for every caller: the gateway serves DomainService too, and
//! every call through it answers as the same call made to the domain
//! directly (message; code, message text, error details and the other
//! headers and trailers), for success and for each error code; a watch
//! through it resumes exactly; a call cancelled at the gateway ends at the
//! domain as cancelled; an unknown domain is INVALID_ARGUMENT; a domain that
//! is down is UNAVAILABLE, named.

use std::time::Duration;

use cetrack_contract::auth::{Clearance, Role};
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_tests::*;

const D: Domain = Domain::Energy;
const WAIT: Duration = Duration::from_secs(10);

/// Metadata (headers and trailers) a caller reads, but for the ones that
/// differ by when and through what a response was sent.
fn sent(m: &tonic::metadata::MetadataMap) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = m
        .clone()
        .into_headers()
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "date" | "content-length"))
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
        .collect();
    all.sort();
    all
}

/// What a failed call tells its caller: code, message, error details and
/// the rest of the trailers.
fn failure<T: std::fmt::Debug>(
    r: Result<tonic::Response<T>, tonic::Status>,
) -> (tonic::Code, String, Vec<u8>, Vec<(String, String)>) {
    let s = r.expect_err("the call must fail");
    (
        s.code(),
        s.message().to_string(),
        s.details().to_vec(),
        sent(s.metadata()),
    )
}

#[tokio::test]
async fn every_call_through_the_gateway_answers_as_the_domain_does() -> anyhow::Result<()> {
    let s = Stack::start().await?;
    let mut direct = s.domain(D);
    let mut via = connect(s.gateway_server.addr).await?;
    let name = format!("{}/initiatives/routed", D.parent());

    // Success: a write through the gateway, read back both ways.
    let mut create = create_request(D, "routed", sample(D, "Routed", 2027));
    create.request_id = "routed-create".into();
    let created = via.create_initiative(create.clone()).await?.into_inner();
    let get = GetInitiativeRequest { name: name.clone() };
    let (a, b) = (
        direct.get_initiative(get.clone()).await?,
        via.get_initiative(get.clone()).await?,
    );
    assert_eq!(sent(a.metadata()), sent(b.metadata()), "the same headers");
    assert_eq!(a.into_inner(), created);
    assert_eq!(b.into_inner(), created);
    // A retry through the gateway is the domain's replay.
    assert_eq!(
        via.create_initiative(create.clone()).await?.into_inner(),
        created
    );
    let list = ListInitiativesRequest {
        parent: D.parent(),
        page_size: 1,
        ..Default::default()
    };
    assert_eq!(
        direct.list_initiatives(list.clone()).await?.into_inner(),
        via.list_initiatives(list).await?.into_inner()
    );
    let summary = GetDomainSummaryRequest {
        parent: D.parent(),
        ..Default::default()
    };
    assert_eq!(
        direct
            .get_domain_summary(summary.clone())
            .await?
            .into_inner(),
        via.get_domain_summary(summary).await?.into_inner()
    );
    let history = ListHistoryRequest {
        name: name.clone(),
        ..Default::default()
    };
    assert_eq!(
        direct.list_history(history.clone()).await?.into_inner(),
        via.list_history(history).await?.into_inner()
    );
    let due = ListDueMilestonesRequest {
        parent: D.parent(),
        due_after: Some(calendar(2020, 1, 1)),
        due_before: Some(calendar(2040, 12, 31)),
        ..Default::default()
    };
    let due_direct = direct.list_due_milestones(due.clone()).await?.into_inner();
    assert!(!due_direct.entries.is_empty(), "the record's milestones");
    assert_eq!(due_direct, via.list_due_milestones(due).await?.into_inner());

    // Each error code, the same both ways.
    let mut invalid = create_request(D, "Bad Id", sample(D, "", 2027));
    invalid
        .initiative
        .as_mut()
        .expect("a record")
        .participants
        .clear();
    let stale = UpdateInitiativeRequest {
        initiative: Some(Initiative {
            name: name.clone(),
            etag: "\"r999\"".into(),
            title: "Stale".into(),
            ..Default::default()
        }),
        update_mask: Some(mask(&["title"])),
        ..Default::default()
    };
    let mut reused = create_request(D, "other", sample(D, "Other", 2027));
    reused.request_id = "routed-create".into();
    let bad_page = ListInitiativesRequest {
        parent: D.parent(),
        page_token: "not-a-token".into(),
        ..Default::default()
    };
    let missing = GetInitiativeRequest {
        name: format!("{}/initiatives/missing", D.parent()),
    };
    macro_rules! same {
        ($direct:ident, $via:ident, $what:literal, $method:ident, $req:expr, $code:expr) => {{
            let a = failure($direct.$method($req.clone()).await);
            let b = failure($via.$method($req.clone()).await);
            assert_eq!(a.0, $code, "{}: {a:?}", $what);
            assert_eq!(a, b, "{}: direct and through the gateway", $what);
        }};
    }
    same!(
        direct,
        via,
        "invalid",
        create_initiative,
        invalid,
        tonic::Code::InvalidArgument
    );
    same!(
        direct,
        via,
        "duplicate",
        create_initiative,
        create_request(D, "routed", sample(D, "Again", 2027)),
        tonic::Code::AlreadyExists
    );
    same!(
        direct,
        via,
        "missing",
        get_initiative,
        missing,
        tonic::Code::NotFound
    );
    same!(
        direct,
        via,
        "stale etag",
        update_initiative,
        stale,
        tonic::Code::Aborted
    );
    same!(
        direct,
        via,
        "request id reused",
        create_initiative,
        reused,
        tonic::Code::FailedPrecondition
    );
    same!(
        direct,
        via,
        "bad page token",
        list_initiatives,
        bad_page,
        tonic::Code::InvalidArgument
    );
    let viewer = token("viewer", None, &[Role::Viewer], None, Clearance::Public);
    let direct_addr = s
        .domains
        .iter()
        .find(|t| t.domain == D)
        .map(|t| t.addr())
        .expect("energy runs");
    let mut direct = connect_as(direct_addr, Some(&viewer)).await?;
    let mut via = connect_as(s.gateway_server.addr, Some(&viewer)).await?;
    same!(
        direct,
        via,
        "a viewer writing",
        delete_initiative,
        DeleteInitiativeRequest {
            name: name.clone(),
            ..Default::default()
        },
        tonic::Code::PermissionDenied
    );

    // An unknown domain is the caller's mistake, named.
    let unknown = failure(
        via.get_initiative(GetInitiativeRequest {
            name: "domains/chemistry/initiatives/x".into(),
        })
        .await,
    );
    assert_eq!(unknown.0, tonic::Code::InvalidArgument);
    assert_eq!(
        field_violations(&tonic::Status::with_details(unknown.0, unknown.1.clone(), unknown.2.clone().into())),
        vec![("name".to_string(), "unknown domain `chemistry`; expected one of semiconductors, biotech, energy, quantum, ai, connectivity, partnerships".to_string())]
    );
    Ok(())
}

#[tokio::test]
async fn a_watch_through_the_gateway_resumes_exactly() -> anyhow::Result<()> {
    let s = Stack::start().await?;
    let mut via = connect(s.gateway_server.addr).await?;
    for n in 0..3 {
        s.create(D, &format!("w{n}"), sample(D, "W", 2027)).await?;
    }
    let mut stream = watch(&mut via, &D.parent(), 0).await?;
    let first = next_changes(&mut stream, 2, WAIT).await?;
    assert_eq!(first.iter().map(|c| c.revision).collect::<Vec<_>>(), [1, 2]);
    drop(stream);
    let mut resumed = watch(&mut via, &D.parent(), 2).await?;
    s.create(D, "w3", sample(D, "W", 2027)).await?;
    let rest = next_changes(&mut resumed, 2, WAIT).await?;
    assert_eq!(
        rest.iter().map(|c| c.revision).collect::<Vec<_>>(),
        [3, 4],
        "exactly the revisions after the cursor"
    );
    Ok(())
}

#[tokio::test]
async fn a_domain_that_is_down_is_unavailable_by_name() -> anyhow::Result<()> {
    // An address nothing listens on (nor can, while `dead` lives).
    let dead = dead_local_addr()?;
    let (gateway, _) = start_test_gateway([(D, dead.addr)]).await?;
    let mut via = connect(gateway.addr).await?;
    let status = via
        .get_initiative(GetInitiativeRequest {
            name: format!("{}/initiatives/x", D.parent()),
        })
        .await
        .expect_err("energy is down");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("energy"), "{status:?}");
    gateway.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_call_cancelled_at_the_gateway_is_cancelled_at_the_domain() -> anyhow::Result<()> {
    // The domain as its own process, so its metrics are its own.
    let dir = tempfile::tempdir()?;
    let (domain, metrics) = spawn_domain_with_metrics(D, dir.path()).await?;
    let (gateway, _) = start_test_gateway([(D, domain.addr)]).await?;
    let mut via = connect(gateway.addr).await?;
    let watching = |t: &str| {
        value(
            t,
            "cetrack_grpc_in_flight",
            &[("service", D.slug()), ("method", "WatchChanges")],
        )
    };

    // A watch with nothing to send stays open at the domain...
    let stream = watch(&mut via, &D.parent(), 0).await?;
    scrape_until(metrics, |t| watching(t) == Some(1.0)).await?;
    // ...until the caller goes away at the gateway: the domain's call ends
    // too, as cancelled.
    drop(stream);
    let text = scrape_until(metrics, |t| watching(t) == Some(0.0)).await?;
    assert_eq!(
        requests_of(&text, D.slug(), "WatchChanges", "CANCELLED"),
        Some(1.0),
        "{text}"
    );
    gateway.stop().await?;
    Ok(())
}

/// Watches through the gateway whose callers stop reading hold what the
/// domain sent them in the gateway (HTTP/2 flow control: 2 MB a stream, 5 MB
/// a connection by default). On the connection that carries the gateway's
/// other calls to the domain, four of them would use up its window and every
/// call to that domain would wait; the gateway keeps its streams on a
/// connection of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_watches_do_not_hold_up_calls_to_the_same_domain() -> anyhow::Result<()> {
    let s = Stack::start().await?;
    // About 11 MB of changes for every watch from the start.
    for i in 0..30 {
        s.create(D, &format!("big-{i}"), heavy(D, &format!("Big {i}"), 10))
            .await?;
    }
    let mut stalled = Vec::new();
    for _ in 0..4 {
        // Each on a connection of its own to the gateway: what it holds
        // back there is the caller's business.
        let mut staller = connect(s.gateway_server.addr).await?;
        let mut stream = watch(&mut staller, &D.parent(), 0).await?;
        // Flowing: the first change arrived; the rest is never read.
        next_change(&mut stream, WAIT).await?;
        stalled.push(stream);
    }
    // Another caller's calls to the same domain through the gateway answer,
    // one after another, while the backlog of the stalled watches fills
    // every window it can.
    let mut caller = connect(s.gateway_server.addr).await?;
    let name = format!("{}/initiatives/big-0", D.parent());
    for _ in 0..50 {
        let mut request = tonic::Request::new(GetInitiativeRequest { name: name.clone() });
        request.set_timeout(Duration::from_secs(5));
        let got = caller.get_initiative(request).await?.into_inner();
        assert_eq!(got.name, name);
    }
    // And a new watch of the same domain delivers its whole backlog.
    let mut fresh = watch(&mut caller, &D.parent(), 0).await?;
    let all = next_changes(&mut fresh, 30, WAIT).await?;
    assert_eq!(all.len(), 30);
    drop(stalled);
    Ok(())
}
