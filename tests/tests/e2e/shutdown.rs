//! SIGTERM with calls held in flight: each of them finishes and is durable,
//! new calls are refused with UNAVAILABLE, and the process waits for them.
//!
//! SIGTERM while writers are calling and a WatchChanges stream and
//! grpc.health.v1 Watch streams are open: the process exits with code 0
//! promptly (before the server's shutdown grace: the streams end instead
//! of holding the shutdown), the health watches see NOT_SERVING, the change
//! watch delivered changes in order without a gap, every
//! acknowledged write is there after a restart, and a watch resumed from the
//! last revision received gets every later change.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use cetrack_contract::codec::Codec;
use cetrack_contract::proto::domain_service_client::DomainServiceClient;
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_tests::*;
use nix::sys::signal::Signal;
use tokio::sync::Notify;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const DOMAIN: Domain = Domain::Biotech;
const WRITERS: usize = 16;
const WRITES_PER_WRITER: usize = 100;
/// Acknowledged writes after which SIGTERM is sent.
const SIGTERM_AFTER: usize = 100;
/// What the server logs when calls still open at the end of its shutdown
/// grace are closed: a prompt exit never logs it (asserted on the log, not on
/// a time a busy machine could exceed).
const GRACE_EXPIRED: &str = "calls still open after the shutdown grace";
const WAIT: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Acknowledged {
    records: Mutex<BTreeMap<String, Initiative>>,
    count: AtomicUsize,
    reached: Notify,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_with_calls_in_flight_and_an_open_watch_exits_0() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let process = spawn_domain(DOMAIN, dir.path()).await?;
    let mut client = connect(process.addr).await?;
    let parent = DOMAIN.parent();
    client
        .create_initiative(create_request(
            DOMAIN,
            "before",
            sample(DOMAIN, "Before", 2028),
        ))
        .await?;
    // The watch is open and has delivered the first change: its server side
    // is running and waiting for more.
    let mut stream = watch(&mut client, &parent, 0).await?;
    let first = next_change(&mut stream, WAIT).await?;
    assert_eq!(first.revision, 1);
    let mut health_watches = Vec::new();
    for service in ["", DOMAIN_SERVICE] {
        let channel = tonic::transport::Channel::from_shared(format!("http://{}", process.addr))?
            .connect()
            .await?;
        let mut watch = HealthClient::new(channel)
            .watch(HealthCheckRequest {
                service: service.into(),
            })
            .await?
            .into_inner();
        let status = tokio::time::timeout(WAIT, watch.message())
            .await??
            .context("the health watch ended")?;
        assert_eq!(status.status, ServingStatus::Serving as i32);
        health_watches.push((service, watch));
    }

    let acked = Arc::new(Acknowledged::default());
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let mut client = client.clone();
            let acked = acked.clone();
            tokio::spawn(async move {
                for i in 0..WRITES_PER_WRITER {
                    let id = format!("w{w}-{i}");
                    let result = client
                        .create_initiative(create_request(
                            DOMAIN,
                            &id,
                            sample(DOMAIN, &format!("Writer {w} #{i}"), 2028),
                        ))
                        .await;
                    match result {
                        Ok(r) => {
                            // A poisoned lock fails the test (the writer's
                            // join) instead of dropping the acknowledgement.
                            acked
                                .records
                                .lock()
                                .map_err(|_| anyhow!("poisoned"))?
                                .insert(id, r.into_inner());
                            if acked.count.fetch_add(1, Ordering::SeqCst) + 1 == SIGTERM_AFTER {
                                acked.reached.notify_one();
                            }
                        }
                        Err(status) => return Ok(Some(status)),
                    }
                }
                anyhow::Ok(None)
            })
        })
        .collect();
    tokio::time::timeout(WAIT, acked.reached.notified())
        .await
        .context("the writes were not acknowledged")?;

    let signalled = Instant::now();
    let exited = process
        .terminate()
        .await
        .context("the process did not exit after SIGTERM")?;
    assert_eq!(exited.status.code(), Some(0), "{exited:?}");
    // Promptly: the open streams ended instead of holding the shutdown until
    // its grace closed them.
    let log = exited.stderr_text();
    assert!(!log.contains(GRACE_EXPIRED), "{log}");
    println!("exited {:?} after SIGTERM", signalled.elapsed());

    // The watch ended; what it delivered is in order without a gap.
    let mut last = first.revision;
    loop {
        match tokio::time::timeout(WAIT, stream.message()).await {
            Err(_) => panic!("the watch is still open after the process exited"),
            Ok(Ok(Some(change))) => {
                assert_eq!(change.revision, last + 1, "the watch skipped a change");
                last = change.revision;
            }
            Ok(Ok(None)) | Ok(Err(_)) => break,
        }
    }

    // The health watches said NOT_SERVING before they ended.
    for (service, mut watch) in health_watches {
        let mut statuses = Vec::new();
        while let Ok(Some(s)) = tokio::time::timeout(WAIT, watch.message()).await? {
            statuses.push(s.status);
        }
        assert!(
            statuses.contains(&(ServingStatus::NotServing as i32)),
            "the health watch of {service:?} got {statuses:?}"
        );
    }

    let mut cut_off = 0;
    for w in writers {
        if let Some(status) = tokio::time::timeout(WAIT, w).await??? {
            cut_off += 1;
            // A call the server never accepted: refused while shutting down,
            // cut off, or sent on the connection after the server's GOAWAY
            // (tonic reports that transport error as INTERNAL). None of
            // them was acknowledged.
            let goaway =
                status.code() == Code::Internal && status.message().contains("h2 protocol error");
            assert!(
                goaway
                    || matches!(
                        status.code(),
                        Code::Unavailable | Code::Unknown | Code::Cancelled
                    ),
                "a write failed with {status:?}"
            );
        }
    }
    let acked = Arc::try_unwrap(acked)
        .map_err(|_| anyhow!("a writer still holds the acknowledgements"))?
        .records
        .into_inner()
        .map_err(|_| anyhow!("poisoned"))?;
    assert!(
        acked.len() < WRITERS * WRITES_PER_WRITER && cut_off > 0,
        "the writers were not running when the process stopped"
    );

    // After a restart: every acknowledged write, and the watch resumed from
    // the last revision received gets every later change.
    let process = spawn_domain(DOMAIN, dir.path()).await?;
    let mut client = connect(process.addr).await?;
    for (id, written) in &acked {
        let got = client
            .get_initiative(GetInitiativeRequest {
                name: written.name.clone(),
            })
            .await
            .with_context(|| format!("acknowledged {id} is gone"))?
            .into_inner();
        assert_eq!(&got, written);
    }
    let summary = client
        .get_domain_summary(GetDomainSummaryRequest {
            parent: parent.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    // `before` and every acknowledged create.
    assert!(summary.last_revision > acked.len() as i64);
    let mut resumed = watch(&mut client, &parent, last).await?;
    let rest = next_changes(&mut resumed, (summary.last_revision - last) as usize, WAIT).await?;
    let revisions: Vec<i64> = rest.iter().map(|c| c.revision).collect();
    assert_eq!(
        revisions,
        (last + 1..=summary.last_revision).collect::<Vec<_>>()
    );
    drop((resumed, client));
    let exited = process.terminate().await?;
    assert_eq!(exited.status.code(), Some(0), "{exited:?}");
    assert!(!exited.stderr_text().contains(GRACE_EXPIRED));
    Ok(())
}

/// Calls held in flight when SIGTERM arrives.
const HELD: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_finishes_the_calls_in_flight_and_refuses_new_ones() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (process, metrics) = spawn_domain_with_metrics(DOMAIN, dir.path()).await?;
    let addr = process.addr;
    let mut client = connect(addr).await?;
    let before = client
        .create_initiative(create_request(
            DOMAIN,
            "before",
            sample(DOMAIN, "Before", 2028),
        ))
        .await?
        .into_inner();

    // HELD CreateInitiative calls that the server has begun (their headers
    // are in, the metrics count them in flight) and whose request messages
    // the client holds back until released.
    let (release, released) = tokio::sync::watch::channel(false);
    let channel = channel_as(addr, Some(&admin_token())).await?;
    let held: Vec<_> = (0..HELD)
        .map(|i| {
            let (channel, mut released) = (channel.clone(), released.clone());
            let request = create_request(
                DOMAIN,
                &format!("held-{i}"),
                sample(DOMAIN, &format!("Held {i}"), 2029),
            );
            tokio::spawn(async move {
                let message = futures::stream::once(async move {
                    // The sender lives until every call is answered.
                    let _ = released.wait_for(|go| *go).await;
                    request
                });
                let mut grpc = tonic::client::Grpc::new(channel);
                grpc.ready().await.map_err(|e| anyhow!("not ready: {e}"))?;
                let answer = grpc
                    .client_streaming(
                        tonic::Request::new(message),
                        PathAndQuery::from_static("/cet.v1.DomainService/CreateInitiative"),
                        Codec::<CreateInitiativeRequest, Initiative>::default(),
                    )
                    .await;
                anyhow::Ok(answer.map(tonic::Response::into_inner))
            })
        })
        .collect();
    let creating = [("service", DOMAIN.slug()), ("method", "CreateInitiative")];
    scrape_until(metrics, |t| {
        value(t, "cetrack_grpc_in_flight", &creating) == Some(HELD as f64)
    })
    .await?;

    // SIGTERM: the server says NOT_SERVING and stops taking calls.
    let mut health = HealthClient::new(
        Channel::from_shared(format!("http://{addr}"))?
            .connect()
            .await?,
    )
    .watch(HealthCheckRequest {
        service: String::new(),
    })
    .await?
    .into_inner();
    let serving = tokio::time::timeout(WAIT, health.message())
        .await??
        .context("the health watch ended")?;
    assert_eq!(serving.status, ServingStatus::Serving as i32);
    send_signal(&process.child, Signal::SIGTERM)?;
    let said = tokio::time::timeout(WAIT, health.message())
        .await??
        .context("the health watch ended without a status")?;
    assert_eq!(said.status, ServingStatus::NotServing as i32);

    // A new call, on a new connection, is refused with UNAVAILABLE (a read
    // that raced the listener closing may still have been answered).
    let get_before = GetInitiativeRequest {
        name: before.name.clone(),
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut fresh = lazy_client(addr)?;
        match fresh.get_initiative(get_before.clone()).await {
            Err(status) if status.code() == Code::Unavailable => break,
            Ok(_) if tokio::time::Instant::now() < deadline => {}
            other => bail!("a new call after SIGTERM: {other:?}"),
        }
    }
    let mut fresh = lazy_client(addr)?;
    let refused = fresh
        .create_initiative(create_request(
            DOMAIN,
            "after",
            sample(DOMAIN, "After", 2029),
        ))
        .await
        .expect_err("a write after SIGTERM was accepted");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    // The process waits for the calls in flight.
    let mut process = process;
    assert!(
        process.child.try_wait()?.is_none(),
        "the process exited with calls in flight"
    );

    // Released, each call in flight finishes and succeeds.
    release.send(true)?;
    let mut answered = Vec::new();
    for call in held {
        let initiative = tokio::time::timeout(WAIT, call)
            .await
            .context("a call in flight was not answered")???
            .map_err(|status| anyhow!("a call in flight failed: {status:?}"))?;
        answered.push(initiative);
    }
    let exited = process.wait().await?;
    assert_eq!(exited.status.code(), Some(0), "{exited:?}");
    let log = exited.stderr_text();
    assert!(!log.contains(GRACE_EXPIRED), "{log}");

    // Durable: after a restart, every answered call's record as answered,
    // nothing of the refused write.
    let process = spawn_domain(DOMAIN, dir.path()).await?;
    let mut client = connect(process.addr).await?;
    for written in &answered {
        let got = client
            .get_initiative(GetInitiativeRequest {
                name: written.name.clone(),
            })
            .await
            .with_context(|| format!("{} is gone", written.name))?
            .into_inner();
        assert_eq!(&got, written);
    }
    let missing = client
        .get_initiative(GetInitiativeRequest {
            name: format!("{}/initiatives/after", DOMAIN.parent()),
        })
        .await
        .expect_err("the refused write is there");
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(last_revision(&mut client, DOMAIN).await?, 1 + HELD as i64);
    let exited = process.terminate().await?;
    assert_eq!(exited.status.code(), Some(0), "{exited:?}");
    Ok(())
}

/// A client of the server at `addr` as the test admin on a channel that
/// connects at its first call (so a refused connection is the call's
/// UNAVAILABLE).
fn lazy_client(addr: std::net::SocketAddr) -> anyhow::Result<Client> {
    let channel = Channel::from_shared(format!("http://{addr}"))?.connect_lazy();
    Ok(DomainServiceClient::new(
        tonic::service::interceptor::InterceptedService::new(
            channel,
            Bearer::new(Some(&admin_token())),
        ),
    ))
}
