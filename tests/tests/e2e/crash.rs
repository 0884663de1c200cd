//! SIGKILL while 64 writers create initiatives through gRPC, three times over
//! the same data directory: after each restart every acknowledged create is
//! there with the content acknowledged, the store opened cleanly, the
//! revisions are exactly 1..=N with one record per revision (nothing
//! half-written), the summary counts what a list returns, every record has
//! its history and the change stream replays every revision once, in order.
//! Every write carries a request id: the writes cut off by the kill are
//! retried after the restart with the same id, and each retry answers what
//! the store holds (the first result when the cut-off write had become
//! durable), with no duplicate.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context};
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_tests::*;
use futures::TryStreamExt;
use tokio::sync::Notify;
use tonic::Code;

const DOMAIN: Domain = Domain::Connectivity;
const ROUNDS: usize = 3;
const WRITERS: usize = 64;
const WRITES_PER_WRITER: usize = 30;
/// Acknowledged creates of a round after which the process is killed.
const KILL_AFTER: usize = 500;
const WAIT: Duration = Duration::from_secs(20);

/// What the writers of one round saw.
#[derive(Default)]
struct Acknowledged {
    /// Every create that returned Ok, by id.
    records: Mutex<BTreeMap<String, Initiative>>,
    /// How many there are.
    count: AtomicUsize,
    /// Fired once `count` reaches [`KILL_AFTER`].
    reached: Notify,
}

/// Creates `r{round}-w{writer}-{i}` for i in 0..WRITES_PER_WRITER until a
/// call fails; returns the failure and the request it cut off, if any.
async fn writer(
    mut client: Client,
    round: usize,
    w: usize,
    acked: Arc<Acknowledged>,
) -> Option<(tonic::Status, CreateInitiativeRequest)> {
    for i in 0..WRITES_PER_WRITER {
        let id = format!("r{round}-w{w}-{i}");
        let mut init = sample(
            DOMAIN,
            &format!("Crash round {round} writer {w} #{i}"),
            2030,
        );
        init.summary = format!("written by writer {w} of round {round}, write {i}");
        let mut request = create_request(DOMAIN, &id, init);
        request.request_id = format!("create-{id}");
        match client.create_initiative(request.clone()).await {
            Ok(r) => {
                acked
                    .records
                    .lock()
                    .unwrap_or_else(|_| panic!("a writer panicked holding the acknowledgements"))
                    .insert(id, r.into_inner());
                if acked.count.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
                    acked.reached.notify_one();
                }
            }
            Err(status) => return Some((status, request)),
        }
    }
    None
}

/// Checks the store behind `client` after a restart: every acknowledged
/// create (of every round so far) is there as acknowledged, revisions are
/// 1..=N with one record each, the summary and histories agree, the change
/// stream replays everything. Returns the number of records.
async fn check_recovered(
    client: &mut Client,
    acknowledged: &HashMap<String, Initiative>,
) -> anyhow::Result<usize> {
    let parent = DOMAIN.parent();
    let listed = list_all(client, &parent, None, 1000).await?;
    let by_name: HashMap<&str, &Initiative> = listed.iter().map(|i| (i.name.as_str(), i)).collect();
    ensure!(by_name.len() == listed.len(), "a record is listed twice");
    for (id, acked) in acknowledged {
        let got = client
            .get_initiative(GetInitiativeRequest {
                name: acked.name.clone(),
            })
            .await
            .with_context(|| format!("acknowledged {id} is gone"))?
            .into_inner();
        ensure!(got == *acked, "{id} reads {got:?}, acknowledged {acked:?}");
        ensure!(
            by_name.get(acked.name.as_str()) == Some(&acked),
            "{id} is not listed as acknowledged"
        );
    }

    // Only creates happened: revision k made exactly one record, and every
    // committed revision, acknowledged or not, is a whole record.
    let mut revisions: Vec<i64> = listed.iter().map(|i| i.revision).collect();
    revisions.sort_unstable();
    let n = listed.len();
    ensure!(
        revisions == (1..=n as i64).collect::<Vec<_>>(),
        "the revisions of the {n} records are not 1..={n}"
    );
    let summary = client
        .get_domain_summary(GetDomainSummaryRequest {
            parent: parent.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    ensure!(
        summary.initiative_count == n as i64,
        "the summary counts {} initiatives, the list has {n}",
        summary.initiative_count
    );
    ensure!(
        summary.last_revision == n as i64,
        "the summary's last revision is {}, {n} records",
        summary.last_revision
    );

    // Each record's history is its one creation.
    futures::stream::iter(listed.iter().map(Ok::<_, anyhow::Error>))
        .try_for_each_concurrent(16, |record| {
            let mut client = client.clone();
            async move {
                let history = history_all(&mut client, &record.name, 100).await?;
                ensure!(
                    history.len() == 1,
                    "{} has {} history entries",
                    record.name,
                    history.len()
                );
                let change = &history[0];
                ensure!(
                    change.r#type == ChangeType::Created as i32
                        && change.revision == record.revision
                        && change.initiative.as_ref() == Some(record),
                    "the history of {} does not match it: {change:?}",
                    record.name
                );
                Ok(())
            }
        })
        .await?;

    // The change stream replays revisions 1..=N once each, in order.
    let mut stream = watch(client, &parent, 0).await?;
    let replayed = next_changes(&mut stream, n, WAIT).await?;
    for (k, change) in replayed.iter().enumerate() {
        ensure!(
            change.revision == k as i64 + 1,
            "the change stream gives revision {} at position {k}",
            change.revision
        );
        ensure!(
            by_name.get(change.name.as_str()).map(|i| i.revision) == Some(change.revision),
            "revision {} changes {}, which does not hold it",
            change.revision,
            change.name
        );
    }
    Ok(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill() -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let mut process = spawn_domain(DOMAIN, dir.path()).await?;
    let mut acknowledged = HashMap::new();
    let mut records = 0;
    for round in 0..ROUNDS {
        let client = connect(process.addr).await?;
        let acked = Arc::new(Acknowledged::default());
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| tokio::spawn(writer(client.clone(), round, w, acked.clone())))
            .collect();
        tokio::time::timeout(WAIT, acked.reached.notified())
            .await
            .with_context(|| format!("round {round}: {KILL_AFTER} writes were not acknowledged"))?;
        process.child.start_kill()?;
        let status = tokio::time::timeout(WAIT, process.child.wait())
            .await
            .context("the killed process did not go away")??;
        assert_eq!(status.signal(), Some(9), "round {round}: {status:?}");

        let mut failures = Vec::new();
        let mut cut_off = Vec::new();
        for w in writers {
            if let Some((status, request)) = tokio::time::timeout(WAIT, w).await?? {
                failures.push(status);
                cut_off.push(request);
            }
        }
        for status in &failures {
            // The connection went away; no other error is acceptable.
            assert!(
                matches!(
                    status.code(),
                    Code::Unavailable | Code::Unknown | Code::Cancelled
                ),
                "round {round}: a write failed with {status:?}"
            );
        }
        let acked = Arc::try_unwrap(acked)
            .map_err(|_| anyhow!("a writer still holds the acknowledgements"))?
            .records
            .into_inner()
            .map_err(|_| anyhow!("poisoned"))?;
        assert!(
            acked.len() >= KILL_AFTER && acked.len() < WRITERS * WRITES_PER_WRITER,
            "round {round}: {} writes acknowledged; the kill did not interrupt the writers",
            acked.len()
        );
        assert!(!failures.is_empty(), "round {round}: no write was cut off");
        acknowledged.extend(acked);

        // The store opens cleanly on the same directory.
        process = spawn_domain(DOMAIN, dir.path()).await?;
        let mut client = connect(process.addr).await?;
        // Each cut-off write retried with its request id: it answers what
        // the store holds (the first result when the write had become
        // durable before the kill, a new write otherwise), and a second
        // retry answers the same.
        let before = client
            .get_domain_summary(GetDomainSummaryRequest {
                parent: DOMAIN.parent(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .last_revision;
        let mut replayed = 0;
        for request in cut_off {
            let id = request.initiative_id.clone();
            let first = client
                .create_initiative(request.clone())
                .await?
                .into_inner();
            let again = client.create_initiative(request).await?.into_inner();
            assert_eq!(
                again, first,
                "round {round}: {id}: a retry answers as the first"
            );
            let stored = client
                .get_initiative(GetInitiativeRequest {
                    name: first.name.clone(),
                })
                .await?
                .into_inner();
            assert_eq!(
                stored, first,
                "round {round}: {id}: the answer is what is stored"
            );
            if first.revision <= before {
                replayed += 1;
            }
            acknowledged.insert(id, first);
        }
        let n = check_recovered(&mut client, &acknowledged)
            .await
            .with_context(|| format!("after round {round}"))?;
        assert!(n >= records + KILL_AFTER, "round {round}: only {n} records");
        assert!(n >= acknowledged.len());
        records = n;
        println!(
            "round {round}: {} acknowledged so far, {n} records, {} writes cut off ({replayed} had become durable: replayed), {:?}",
            acknowledged.len(),
            failures.len(),
            started.elapsed()
        );
    }
    send_signal(&process.child, nix::sys::signal::Signal::SIGTERM)?;
    let status = wait_exit(&mut process.child, WAIT).await?;
    assert_eq!(status.code(), Some(0));
    Ok(())
}
