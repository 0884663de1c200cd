//! SIGTERM while writers are calling and a WatchChanges stream and
//! grpc.health.v1 Watch streams are open: the process exits with code 0
//! promptly (well before the server's shutdown grace: the streams end instead
//! of holding the shutdown), the health watches see NOT_SERVING, the change
//! watch delivered changes in order without a gap, every
//! acknowledged write is there after a restart, and a watch resumed from the
//! last revision received gets every later change.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_tests::*;
use nix::sys::signal::Signal;
use tokio::sync::Notify;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const DOMAIN: Domain = Domain::Biotech;
const WRITERS: usize = 16;
const WRITES_PER_WRITER: usize = 100;
/// Acknowledged writes after which SIGTERM is sent.
const SIGTERM_AFTER: usize = 100;
/// How long the process may take to exit after SIGTERM: well under the
/// server's shutdown grace, after which it would close open calls anyway.
const PROMPT: Duration = Duration::from_secs(5);
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
    let mut process = spawn_domain(DOMAIN, dir.path()).await?;
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
                            if let Ok(mut records) = acked.records.lock() {
                                records.insert(id, r.into_inner());
                            }
                            if acked.count.fetch_add(1, Ordering::SeqCst) + 1 == SIGTERM_AFTER {
                                acked.reached.notify_one();
                            }
                        }
                        Err(status) => return Some(status),
                    }
                }
                None
            })
        })
        .collect();
    tokio::time::timeout(WAIT, acked.reached.notified())
        .await
        .context("the writes were not acknowledged")?;

    send_signal(&process.child, Signal::SIGTERM)?;
    let signalled = Instant::now();
    let status = wait_exit(&mut process.child, PROMPT)
        .await
        .context("the process did not exit promptly after SIGTERM")?;
    assert_eq!(status.code(), Some(0), "{status:?}");
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
        if let Some(status) = tokio::time::timeout(WAIT, w).await?? {
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
    let mut process = spawn_domain(DOMAIN, dir.path()).await?;
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
    send_signal(&process.child, Signal::SIGTERM)?;
    assert_eq!(wait_exit(&mut process.child, PROMPT).await?.code(), Some(0));
    Ok(())
}
