//! Hostile input: requests built to cost the server as much as possible get
//! a short, bounded answer; records, pages and streams have caps a caller
//! cannot pass; what was refused left the store as it was.

use anyhow::Context;
use cetrack_contract::auth::{Clearance, Role};
use cetrack_contract::codec::SMALL_REQUEST_BYTES;
use cetrack_contract::error::{MAX_ECHO, MAX_VIOLATIONS, MAX_VIOLATION_BYTES};
use cetrack_contract::pagination::{MAX_EXAMINED, MAX_PAGE_BYTES};
use cetrack_contract::proto::*;
use cetrack_contract::rules::{MAX_MASK_PATHS, MAX_PROGRESS_UPDATES, MAX_RECORD_BYTES};
use cetrack_contract::Domain;
use cetrack_domain_service::{MAX_WATCHES, MAX_WATCHES_PER_CALLER};
use cetrack_tests::*;
use futures::StreamExt;
use prost::Message;
use tonic::Code;

const D: Domain = Domain::Quantum;

/// How many one-byte values fit in a request under the 4 MiB message limit.
const MANY: usize = 4_000_000;
/// How many fit in a request that is not refused for its size alone (64 KiB
/// for a request without a record).
const SOME: usize = 60_000;

/// Asserts that `status` is INVALID_ARGUMENT, short, with at most
/// MAX_VIOLATIONS violations and one more saying how many were cut when
/// `cut`; the violations.
fn short_invalid(status: &tonic::Status, cut: bool) -> Vec<(String, String)> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().len() < 4_096,
        "a message of {} bytes",
        status.message().len()
    );
    assert!(
        status.details().len() < 64 * 1024,
        "details of {} bytes",
        status.details().len()
    );
    let violations = field_violations(status);
    assert!(
        violations.len() <= MAX_VIOLATIONS + 1,
        "{}",
        violations.len()
    );
    let last = violations.last().map(|v| v.1.as_str()).unwrap_or_default();
    assert_eq!(
        last.contains("more violations not listed"),
        cut,
        "{violations:?}"
    );
    // Each cut at 300 characters (at most 4 bytes each), all together at
    // MAX_VIOLATION_BYTES but for the one saying how many more.
    for (field, description) in &violations {
        assert!(
            field.len() <= 1_200 && description.len() <= 1_200,
            "{field}: {description}"
        );
    }
    let bytes: usize = violations.iter().map(|(f, d)| f.len() + d.len()).sum();
    assert!(
        bytes <= MAX_VIOLATION_BYTES + 200,
        "{bytes} bytes of violations"
    );
    violations
}

#[tokio::test]
async fn millions_of_repeated_values_cost_one_short_error() -> anyhow::Result<()> {
    let s = Stack::start().await?;
    let mut direct = s.domain(D);
    let mut via = connect(s.gateway_server.addr).await?;
    let mut gateway = s.gateway.clone();
    s.create(D, "kept", sample(D, "Kept", 2027)).await?;
    let before = list_all(&mut direct, &D.parent(), None, 100).await?;

    // Four million statuses: refused for the request's size, before it is
    // decoded.
    let huge = ListInitiativesRequest {
        parent: D.parent(),
        filter: Some(InitiativeFilter {
            statuses: vec![LifecycleStatus::InProgress as i32; MANY],
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(huge.encoded_len() > 3_900_000);
    for status in [
        expect_err(direct.list_initiatives(huge.clone()).await),
        expect_err(via.list_initiatives(huge).await),
    ] {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(
            status
                .message()
                .contains("a valid one is at most 65536 bytes"),
            "{status:?}"
        );
    }

    // Sixty thousand statuses, valid or not: refused before they are looked
    // at.
    for value in [LifecycleStatus::InProgress as i32, 99] {
        let filter = InitiativeFilter {
            statuses: vec![value; SOME],
            ..Default::default()
        };
        let list = ListInitiativesRequest {
            parent: D.parent(),
            filter: Some(filter.clone()),
            ..Default::default()
        };
        assert!(list.encoded_len() > 59_000);
        for status in [
            expect_err(direct.list_initiatives(list.clone()).await),
            expect_err(via.list_initiatives(list.clone()).await),
        ] {
            let v = short_invalid(&status, false);
            assert_eq!(v.len(), 1, "{v:?}");
            assert_eq!(v[0].0, "filter.statuses");
        }
        let search = SearchInitiativesRequest {
            filter: Some(filter),
            domains: vec![1; 1000],
            ..Default::default()
        };
        let status = expect_err(gateway.search_initiatives(search).await);
        let v = short_invalid(&status, false);
        assert_eq!(
            v.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
            ["domains", "filter.statuses"]
        );
    }

    // The same value a few times is one value.
    let once = InitiativeFilter {
        statuses: vec![LifecycleStatus::Announced as i32],
        ..Default::default()
    };
    let repeated = InitiativeFilter {
        statuses: vec![LifecycleStatus::Announced as i32; 32],
        ..Default::default()
    };
    assert_eq!(
        list_all(&mut direct, &D.parent(), Some(once), 10).await?,
        list_all(&mut direct, &D.parent(), Some(repeated), 10).await?
    );

    // Half a million mask paths: refused for the request's size; a hundred
    // thousand: one violation; nothing changed.
    let update = |paths: usize| UpdateInitiativeRequest {
        initiative: Some(Initiative {
            name: format!("{}/initiatives/kept", D.parent()),
            title: "Changed".into(),
            ..Default::default()
        }),
        update_mask: Some(mask(&vec!["title"; paths])),
        ..Default::default()
    };
    for status in [
        expect_err(direct.update_initiative(update(500_000)).await),
        expect_err(via.update_initiative(update(500_000)).await),
    ] {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().contains("a valid one is at most"),
            "{status:?}"
        );
    }
    for status in [
        expect_err(direct.update_initiative(update(100_000)).await),
        expect_err(via.update_initiative(update(100_000)).await),
    ] {
        let v = short_invalid(&status, false);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].0, "update_mask.paths");
        assert!(
            v[0].1.contains(&format!("at most {MAX_MASK_PATHS} paths")),
            "{v:?}"
        );
    }
    assert_eq!(list_all(&mut direct, &D.parent(), None, 100).await?, before);
    Ok(())
}

#[tokio::test]
async fn a_request_with_thousands_of_mistakes_hears_of_fifty() -> anyhow::Result<()> {
    let mut t = TestDomain::start(D).await?;
    let mut bad = sample(D, "Bad", 2027);
    bad.participants = (0..100)
        .map(|i| Participant {
            organization: Some(Organization {
                id: format!("NOT A SLUG {i}"),
                country_code: "nowhere".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let status = expect_err(
        t.client
            .create_initiative(create_request(D, "bad", bad))
            .await,
    );
    let v = short_invalid(&status, true);
    assert_eq!(v.len(), MAX_VIOLATIONS + 1);
    assert_eq!(v[MAX_VIOLATIONS].0, "request");
    // The message names the first few and points to the details.
    assert!(
        status.message().contains("more (see the error details)"),
        "{}",
        status.message()
    );

    // A value echoed back is cut short.
    let long = "x".repeat(20_000);
    let status = expect_err(
        t.client
            .get_initiative(GetInitiativeRequest {
                name: format!("domains/{long}/initiatives/{long}"),
            })
            .await,
    );
    let v = short_invalid(&status, false);
    assert!(v[0].1.len() < MAX_ECHO + 300, "{}", v[0].1);
    assert!(v[0].1.contains("bytes)"), "{}", v[0].1);
    let status = expect_err(
        t.client
            .get_initiative(GetInitiativeRequest {
                name: format!("domains/{long}"),
            })
            .await,
    );
    short_invalid(&status, false);
    Ok(())
}

#[tokio::test]
async fn records_have_a_size_and_a_progress_cap() -> anyhow::Result<()> {
    let mut t = TestDomain::start(D).await?;
    // Over the record cap, within what a create request may carry (a
    // request far over it is refused for its size before it is decoded).
    let big = heavy(D, "Big", 28);
    assert!(big.encoded_len() > MAX_RECORD_BYTES);
    assert!(big.encoded_len() < MAX_RECORD_BYTES + SMALL_REQUEST_BYTES - 1024);
    let status = expect_err(
        t.client
            .create_initiative(create_request(D, "big", big.clone()))
            .await,
    );
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("bytes"), "{status:?}");
    assert!(list_all(&mut t.client, &D.parent(), None, 10)
        .await?
        .is_empty());

    // Grown past the cap by an update: refused, the record as it was.
    let small = t
        .client
        .create_initiative(create_request(D, "grows", sample(D, "Grows", 2027)))
        .await?
        .into_inner();
    let status = expect_err(
        t.client
            .update_initiative(UpdateInitiativeRequest {
                initiative: Some(Initiative {
                    name: small.name.clone(),
                    ..big.clone()
                }),
                update_mask: Some(mask(&["milestones"])),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let name = small.name.clone();
    assert_eq!(
        t.client
            .get_initiative(GetInitiativeRequest { name: name.clone() })
            .await?
            .into_inner(),
        small
    );

    // Progress updates: up to the cap, then FAILED_PRECONDITION.
    let add = |n: usize| AddProgressUpdateRequest {
        name: name.clone(),
        progress_update: Some(ProgressUpdate {
            as_of: Some(year(2025)),
            text: format!("Update {n}"),
            reporting_organization_id: "us-nsf".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let client = t.client.clone();
    let added = futures::stream::iter(0..MAX_PROGRESS_UPDATES)
        .map(|n| {
            let mut c = client.clone();
            let r = add(n);
            async move { c.add_progress_update(r).await.map(|_| ()) }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    assert!(
        added.iter().all(Result::is_ok),
        "{:?}",
        added.iter().find(|r| r.is_err())
    );
    let status = expect_err(t.client.add_progress_update(add(0)).await);
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let now = t
        .client
        .get_initiative(GetInitiativeRequest { name })
        .await?
        .into_inner();
    assert_eq!(now.progress_updates.len(), MAX_PROGRESS_UPDATES);
    Ok(())
}

#[tokio::test]
async fn a_page_is_bounded_in_bytes_and_in_records_examined() -> anyhow::Result<()> {
    let mut t = TestDomain::start(D).await?;
    // Five records of about 700 kB: a page holds two.
    let fat = heavy(D, "Fat", 19);
    let items = (0..5).map(|i| (format!("fat-{i}"), fat.clone())).collect();
    create_concurrently(&t.client, D, items, 5).await?;
    let page = t
        .client
        .list_initiatives(ListInitiativesRequest {
            parent: t.parent(),
            page_size: 100,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(page.initiatives.len(), 2);
    assert!(page.encoded_len() <= MAX_PAGE_BYTES + 1024);
    assert!(!page.next_page_token.is_empty());
    assert_eq!(
        list_all(&mut t.client, &D.parent(), None, 100).await?.len(),
        5
    );
    let name = format!("{}/initiatives/fat-0", D.parent());
    for n in 0..4 {
        t.client
            .update_initiative(UpdateInitiativeRequest {
                initiative: Some(Initiative {
                    name: name.clone(),
                    title: format!("Fat {n}"),
                    ..Default::default()
                }),
                update_mask: Some(mask(&["title"])),
                ..Default::default()
            })
            .await?;
    }
    let history = t
        .client
        .list_history(ListHistoryRequest {
            name: name.clone(),
            page_size: 100,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert!(history.changes.len() < 5 && !history.next_page_token.is_empty());
    assert_eq!(history_all(&mut t.client, &name, 100).await?.len(), 5);

    // More records than one page examines, none matching: a page answers
    // with what it found (nothing) and a token to go on, and the walk ends.
    let items = (0..MAX_EXAMINED)
        .map(|i| (format!("r{i:05}"), sample(D, "Many", 2027)))
        .collect();
    create_concurrently(&t.client, D, items, 32).await?;
    let nothing = InitiativeFilter {
        text: "matches-no-record".into(),
        ..Default::default()
    };
    let first = t
        .client
        .list_initiatives(ListInitiativesRequest {
            parent: t.parent(),
            page_size: 10,
            filter: Some(nothing.clone()),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert!(first.initiatives.is_empty());
    assert!(!first.next_page_token.is_empty(), "a token to go on");
    // The page ended on a record the caller was not given: the token does
    // not name it (its position is sealed), and still goes on.
    {
        use base64::Engine;
        let bytes =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&first.next_page_token)?;
        let names_one = bytes
            .windows(6)
            .any(|w| w[0] == b'r' && w[1] == b'0' && w[2..].iter().all(u8::is_ascii_digit));
        assert!(!names_one, "the token names a record it did not return");
    }
    assert!(list_all(&mut t.client, &D.parent(), Some(nothing), 10)
        .await?
        .is_empty());
    Ok(())
}

#[tokio::test]
async fn change_streams_are_capped() -> anyhow::Result<()> {
    let t = TestDomain::start(D).await?;
    let callers = MAX_WATCHES / MAX_WATCHES_PER_CALLER;
    // One caller (a token of its own) per connection: a connection carries
    // at most 256 calls at once.
    let mut clients = Vec::new();
    for n in 0..=callers {
        let token = token(
            &format!("watcher-{n}"),
            None,
            &[Role::Viewer],
            None,
            Clearance::Public,
        );
        clients.push(connect_as(t.addr(), Some(&token)).await?);
    }
    let mut open: Vec<Vec<_>> = Vec::new();
    for c in clients.iter_mut().take(callers) {
        let mut mine = Vec::new();
        for _ in 0..MAX_WATCHES_PER_CALLER {
            mine.push(watch(c, &t.parent(), 0).await?);
        }
        open.push(mine);
    }
    let request = || WatchChangesRequest {
        parent: t.parent(),
        after_revision: 0,
    };
    // The server holds MAX_WATCHES: one more, of a caller who has none, is
    // refused.
    let full = expect_err(clients[callers].watch_changes(request()).await);
    assert_eq!(full.code(), Code::ResourceExhausted, "{full:?}");
    assert!(full.message().contains("the most it keeps"), "{full:?}");
    // One caller closes one of theirs: a caller with none may open one (once
    // the server has seen it go); the one who closed may not go past their
    // own cap again.
    drop(open[0].pop());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match watch(&mut clients[callers], &t.parent(), 0).await {
            Ok(stream) => {
                open[0].push(stream);
                break;
            }
            Err(e) if tokio::time::Instant::now() < deadline => {
                assert!(e.to_string().contains("change streams open"), "{e}");
                tokio::task::yield_now().await;
            }
            Err(e) => return Err(e),
        }
    }
    // Per caller: with room in the server, a caller at their cap is refused.
    drop(open[1].pop());
    drop(open[1].pop());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let one_more = clients[2].watch_changes(request()).await;
        let status = expect_err(one_more);
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        if status.message().contains("one caller") {
            break;
        }
        // The server has not yet seen the two streams go.
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{status:?}");
        tokio::task::yield_now().await;
    }
    Ok(())
}

/// The gateway caps the change streams (routed WatchChanges and
/// WatchAllChanges together) one caller holds; another caller still opens
/// theirs, and a stream closed frees its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gateways_change_streams_are_capped_per_caller() -> anyhow::Result<()> {
    use cetrack_gateway::domains::MAX_STREAMS_PER_CALLER;
    let s = Stack::start().await?;
    let addr = s.gateway_server.addr;
    let heavy = token(
        "heavy-watcher",
        None,
        &[Role::Viewer],
        None,
        Clearance::Public,
    );
    let other = token(
        "other-watcher",
        None,
        &[Role::Viewer],
        None,
        Clearance::Public,
    );
    // Half merged streams, half routed watches, on a few connections.
    let mut merged = Vec::new();
    let mut routed = Vec::new();
    for n in 0..MAX_STREAMS_PER_CALLER {
        if n % 50 == 0 {
            merged.push((gateway_as(addr, Some(&heavy)).await?, Vec::new()));
            routed.push((connect_as(addr, Some(&heavy)).await?, Vec::new()));
        }
        if n % 2 == 0 {
            let (g, open) = merged.last_mut().context("a connection")?;
            open.push(
                g.watch_all_changes(WatchAllChangesRequest::default())
                    .await?
                    .into_inner(),
            );
        } else {
            let (c, open) = routed.last_mut().context("a connection")?;
            open.push(watch(c, &D.parent(), 0).await?);
        }
    }
    let (g, _) = merged.first_mut().context("a connection")?;
    let refused = expect_err(g.watch_all_changes(WatchAllChangesRequest::default()).await);
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("one caller"), "{refused:?}");
    let (c, _) = routed.first_mut().context("a connection")?;
    let refused = expect_err(
        c.watch_changes(WatchChangesRequest {
            parent: D.parent(),
            after_revision: 0,
        })
        .await,
    );
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");

    // Another caller opens theirs.
    let mut g2 = gateway_as(addr, Some(&other)).await?;
    let _theirs = g2
        .watch_all_changes(WatchAllChangesRequest::default())
        .await?
        .into_inner();
    // One closed: the heavy caller opens one again (once the gateway has
    // seen it go).
    drop(routed[0].1.pop());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let (c, open) = routed.first_mut().context("a connection")?;
    loop {
        match watch(c, &D.parent(), 0).await {
            Ok(stream) => {
                open.push(stream);
                break;
            }
            Err(e) if tokio::time::Instant::now() < deadline => {
                assert!(e.to_string().contains("change streams open"), "{e}");
                tokio::task::yield_now().await;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A request over the 4 MiB message limit is refused before it is decoded,
/// as the caller's mistake (OUT_OF_RANGE naming the limit: tonic's code for
/// it), at a domain and at the gateway, and the server goes on serving.
#[tokio::test]
async fn a_message_over_the_limit_is_refused_naming_it() -> anyhow::Result<()> {
    let s = Stack::start().await?;
    s.create(D, "kept", sample(D, "Kept", 2027)).await?;
    let oversized = || ListInitiativesRequest {
        parent: D.parent(),
        filter: Some(InitiativeFilter {
            text: "x".repeat(5 * 1024 * 1024),
            ..Default::default()
        }),
        ..Default::default()
    };
    for mut client in [s.domain(D), connect(s.gateway_server.addr).await?] {
        let status = expect_err(client.list_initiatives(oversized()).await);
        assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
        assert!(status.message().contains("4194304"), "{status:?}");
        let kept = client
            .get_initiative(GetInitiativeRequest {
                name: format!("{}/initiatives/kept", D.parent()),
            })
            .await?
            .into_inner();
        assert_eq!(kept.title, "Kept");
    }
    Ok(())
}
