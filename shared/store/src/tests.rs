//! Tests of the store: what `open` refuses, group commit, and that the
//! change log never shows a revision before it is durable.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use super::*;
use cetrack_contract::proto::{Initiative, StatusChange};

/// sled's own threads may hold a database's file lock for a moment after
/// its last handle is dropped; how long an open waits for that.
const LOCK_WAIT: Duration = Duration::from_secs(10);

fn config(domain: Domain, path: &Path) -> StoreConfig {
    StoreConfig {
        domain,
        path: path.to_path_buf(),
        cache_capacity: 8 * 1024 * 1024,
    }
}

fn lock_held(e: &OpenError) -> bool {
    matches!(e, OpenError::Locked { .. })
}

/// Opens a store, retrying while the files are still locked by a handle
/// that is going away (polling that condition, bounded by [`LOCK_WAIT`]).
pub(crate) fn open(domain: Domain, path: &Path) -> std::result::Result<Store, OpenError> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match Store::open(&config(domain, path)) {
            Err(e) if lock_held(&e) && Instant::now() < deadline => std::thread::yield_now(),
            other => return other,
        }
    }
}

/// Opens sled directly, retrying while the files are still locked.
fn open_sled(path: &Path) -> sled::Db {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new().path(path).open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                std::thread::yield_now()
            }
            other => return other.expect("sled opens"),
        }
    }
}

/// Writes `record` as it is, whatever the current version.
fn set(record: Initiative) -> impl Fn(Option<&Initiative>) -> Result<Plan> + Send + 'static {
    move |_| {
        Ok(Plan::Put {
            record: record.clone(),
            change_type: ChangeType::Updated,
        })
    }
}

fn put(title: String) -> impl Fn(Option<&Initiative>) -> Result<Plan> + Send + 'static {
    move |current| {
        assert!(current.is_none(), "ids are not reused in these tests");
        Ok(Plan::Put {
            record: Initiative {
                title: title.clone(),
                ..Default::default()
            },
            change_type: ChangeType::Created,
        })
    }
}

fn revision_of(outcome: Outcome) -> u64 {
    match outcome {
        Outcome::Written(change) => change.revision as u64,
        other => panic!("expected a written change, got {other:?}"),
    }
}

#[test]
fn a_store_of_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(Domain::Ai, dir.path()).unwrap();
        assert_eq!(store.domain(), Domain::Ai);
    }
    {
        let db = open_sled(dir.path());
        let meta = db.open_tree("meta").unwrap();
        meta.insert(META_SCHEMA, &(SCHEMA_VERSION + 1).to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    match open(Domain::Ai, dir.path()) {
        Err(OpenError::NewerSchema {
            found, supported, ..
        }) => {
            assert_eq!(found, SCHEMA_VERSION + 1);
            assert_eq!(supported, SCHEMA_VERSION);
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
}

#[test]
fn a_store_of_another_domain_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(Domain::Energy, dir.path()).unwrap());
    match open(Domain::Quantum, dir.path()) {
        Err(OpenError::WrongDomain {
            found, expected, ..
        }) => {
            assert_eq!(found, "energy");
            assert_eq!(expected, Domain::Quantum);
        }
        other => panic!("expected WrongDomain, got {other:?}"),
    }
    assert_eq!(
        open(Domain::Energy, dir.path()).unwrap().domain(),
        Domain::Energy
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_log_is_refused_not_replaced_by_an_empty_store() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(Domain::Ai, dir.path()).unwrap();
        store
            .write("kept", None, "test", put("Kept".into()))
            .await
            .unwrap();
    }
    let db = dir.path().join("db");
    let len = std::fs::metadata(&db).unwrap().len() as usize;
    std::fs::write(&db, vec![0u8; len]).unwrap();
    match open(Domain::Ai, dir.path()) {
        Err(OpenError::Damaged { reason, .. }) => assert!(reason.contains("unreadable")),
        other => panic!("expected Damaged, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_without_a_marker_gets_one() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join(MARKER_FILE);
    {
        let store = open(Domain::Ai, dir.path()).unwrap();
        store
            .write("kept", None, "test", put("Kept".into()))
            .await
            .unwrap();
    }
    assert!(marker.exists());
    std::fs::remove_file(&marker).unwrap();
    let store = open(Domain::Ai, dir.path()).unwrap();
    assert!(marker.exists());
    assert_eq!(store.get("kept").unwrap().unwrap().title, "Kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_are_acknowledged_only_once_durable() {
    const WRITES: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let store = open(Domain::Partnerships, dir.path()).unwrap();
    let tasks: Vec<_> = (0..WRITES)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let outcome = store
                    .write(&format!("w{i}"), None, "test", put(format!("Write {i}")))
                    .await
                    .unwrap();
                let revision = revision_of(outcome);
                // Acknowledged: a flush covering it has completed.
                assert!(
                    store.durable_revision() >= revision,
                    "revision {revision} acknowledged before it was durable ({})",
                    store.durable_revision()
                );
                revision
            })
        })
        .collect();
    let mut revisions = BTreeSet::new();
    for t in tasks {
        assert!(revisions.insert(t.await.unwrap()));
    }
    assert_eq!(revisions, (1..=WRITES).collect());
    assert_eq!(store.durable_revision(), WRITES);
    assert_eq!(*store.subscribe().borrow(), WRITES);
    assert_eq!(store.all().unwrap().len() as u64, WRITES);
    let changes = store.changes_after(0, 1000).unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|c| c.revision as u64)
            .collect::<Vec<_>>(),
        (1..=WRITES).collect::<Vec<_>>()
    );
}

/// One write of a batch, as the writer thread queues it.
fn request(
    id: &str,
    request_id: Option<&str>,
    plan: impl Fn(Option<&Initiative>) -> Result<Plan> + Send + 'static,
) -> write::Request {
    let idempotency = request_id.map(|r| Idempotency {
        method: "create",
        request_id: r.into(),
        fingerprint: b"the same request".to_vec(),
    });
    write::Request::new(id, idempotency, "test", plan)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writes_of_one_transaction_see_each_other_and_are_refused_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(Domain::Quantum, dir.path()).unwrap();
    let answers = store.inner.apply_batch(&[
        request("a", None, put("A".into())),
        request("b", None, |_| {
            Err(Error::FailedPrecondition("refused by its plan".into()))
        }),
        // Sees `a` as the write before it left it.
        request("a", None, |current| {
            let mut record = current
                .cloned()
                .ok_or_else(|| Error::NotFound("a".into()))?;
            assert_eq!(record.title, "A");
            record.title = "A, renamed".into();
            Ok(Plan::Put {
                record,
                change_type: ChangeType::Updated,
            })
        }),
        request("c", Some("once"), put("C".into())),
        // The same request id and request again: the first answer.
        request("c", Some("once"), put("C".into())),
        request("gone", None, |_| Ok(Plan::Delete)),
        // Too large for a record: refused by the rules, after its plan.
        request("huge", None, put("x".repeat(4 * 1024 * 1024))),
    ]);
    let kinds: Vec<String> = answers
        .iter()
        .map(|a| match a {
            Ok(Outcome::Written(c)) => format!("written {}", c.revision),
            Ok(Outcome::Replayed(i)) => format!("replayed {}", i.title),
            Ok(Outcome::Unchanged(_)) => "unchanged".into(),
            Err(e) => format!(
                "refused {}",
                format!("{e:?}").split('(').next().unwrap_or("")
            ),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "written 1",
            "refused FailedPrecondition",
            "written 2",
            "written 3",
            "replayed C",
            "refused NotFound",
            "refused FailedPrecondition",
        ]
    );
    // What the refused writes did: nothing.
    assert_eq!(store.get("a").unwrap().unwrap().title, "A, renamed");
    assert!(store.get("b").unwrap().is_none());
    assert!(store.get("huge").unwrap().is_none());
    assert_eq!(store.stats().unwrap().initiatives, 2);
    // Acknowledged once a flush covers them; then the log shows them all.
    store
        .write("d", None, "test", put("D".into()))
        .await
        .unwrap();
    let log: Vec<(i64, String)> = store
        .changes_after(0, 100)
        .unwrap()
        .into_iter()
        .map(|c| (c.revision, c.initiative.unwrap_or_default().title))
        .collect();
    assert_eq!(
        log,
        [
            (1, "A".to_string()),
            (2, "A, renamed".to_string()),
            (3, "C".to_string()),
            (4, "D".to_string())
        ]
    );
    assert_eq!(store.history("a", 0, 10, |_| true).unwrap().items.len(), 2);
}

/// A record that moves many counters: a status, an instrument, two
/// organizations (labels), funding and an open milestone due on a day.
fn counted(org: &str, name: &str, status: i32, usd: i64) -> Initiative {
    use cetrack_contract::proto::{
        ApproximateDate, DatePrecision, FundingCommitment, Milestone, Money, Organization,
        Participant,
    };
    let participant = |id: &str, name: &str, country: &str| Participant {
        organization: Some(Organization {
            id: id.into(),
            name: name.into(),
            country_code: country.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    Initiative {
        title: format!("With {name}"),
        status,
        instrument: 2,
        participants: vec![
            participant(org, name, "US"),
            participant("kr-msit", "MSIT", "KR"),
        ],
        funding: vec![FundingCommitment {
            amount: Some(Money {
                currency_code: "USD".into(),
                units: usd,
                nanos: 0,
            }),
            ..Default::default()
        }],
        milestones: vec![Milestone {
            id: "launch".into(),
            due: Some(ApproximateDate {
                precision: DatePrecision::Month as i32,
                year: 2031,
                month: 6,
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// What a batch writes once for all its writes (the counters they move, the
/// labels they record, the last revision) is what the same writes made one
/// by one would leave: the summary from the counters, kept and read again
/// after a reopen, is the summary counted record by record, the labels are
/// the last ones recorded, and the next write takes the next revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_writes_its_shared_counters_once_as_its_writes_would() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(Domain::Energy, dir.path()).unwrap();
    // Counters moved up and down inside one batch, one back to nothing (a
    // record created and deleted), a label recorded twice, a refused write
    // among them.
    let answers = store.inner.apply_batch(&[
        request("a", None, set(counted("us-doe", "DOE", 1, 10))),
        request("b", None, set(counted("us-doe", "U.S. DOE", 1, 5))),
        request("c", None, set(counted("us-nsf", "NSF", 2, 7))),
        request("refused", None, |_| {
            Err(Error::FailedPrecondition("refused by its plan".into()))
        }),
        request("a", None, set(counted("us-doe", "U.S. DOE", 3, 12))),
        request("c", None, |_| Ok(Plan::Delete)),
    ]);
    let revisions: Vec<Option<u64>> = answers
        .into_iter()
        .map(|a| match a {
            Ok(Outcome::Written(c)) => Some(c.revision as u64),
            _ => None,
        })
        .collect();
    assert_eq!(
        revisions,
        [Some(1), Some(2), Some(3), None, Some(4), Some(5)]
    );
    let window = SummaryWindow {
        as_of: time::macros::date!(2031 - 05 - 20),
        due_within_days: 30,
    };
    let from_counters = store.summary(window, true).unwrap();
    let counted_now = store.summary_scan(window, true, None, None).unwrap();
    assert_eq!(from_counters, counted_now);
    assert_eq!(from_counters.initiative_count, 2);
    assert_eq!(from_counters.last_revision, 5);
    assert!(from_counters
        .organizations
        .iter()
        .any(|o| o.name == "U.S. DOE"));
    assert!(!from_counters.organizations.iter().any(|o| o.name == "DOE"));
    drop(store);

    // What was kept: the same, and the revisions go on from the last.
    let store = open(Domain::Energy, dir.path()).unwrap();
    assert_eq!(store.summary(window, true).unwrap(), from_counters);
    assert_eq!(
        store.summary_scan(window, true, None, None).unwrap(),
        from_counters
    );
    let next = store
        .write("d", None, "test", set(counted("us-nsf", "NSF", 1, 1)))
        .await
        .unwrap();
    assert_eq!(revision_of(next), 6);
}

/// A summary assembled from the counters is answered again only until the
/// next commit: after every write, each kind of summary (day, due window,
/// clearance), asked twice, is what counting every record gives.
#[tokio::test]
async fn a_summary_answered_again_follows_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(Domain::Energy, dir.path()).unwrap();
    let windows = [
        SummaryWindow {
            as_of: time::macros::date!(2031 - 05 - 20),
            due_within_days: 30,
        },
        SummaryWindow {
            as_of: time::macros::date!(2031 - 05 - 20),
            due_within_days: 400,
        },
        SummaryWindow {
            as_of: time::macros::date!(2020 - 01 - 01),
            due_within_days: 30,
        },
    ];
    let check = |after: &str| {
        for w in windows {
            for cleared in [false, true] {
                let counted = store.summary_scan(w, cleared, None, None).unwrap();
                assert_eq!(store.summary(w, cleared).unwrap(), counted, "after {after}");
                assert_eq!(store.summary(w, cleared).unwrap(), counted, "after {after}");
            }
        }
    };
    check("nothing");
    let mut restricted = counted("us-nsf", "NSF", 2, 7);
    restricted.sensitivity = cetrack_contract::proto::Sensitivity::Restricted as i32;
    // Each record as written, or none: deleted.
    let writes = [
        ("a", Some(counted("us-doe", "DOE", 1, 10))),
        ("b", Some(counted("us-doe", "DOE", 3, 5))),
        ("c", Some(restricted)),
        ("a", Some(counted("us-doe", "DOE", 2, 12))),
        ("b", None),
    ];
    for (id, record) in writes {
        match record {
            Some(r) => store.write(id, None, "test", set(r)).await.unwrap(),
            None => store
                .write(id, None, "test", |_| Ok(Plan::Delete))
                .await
                .unwrap(),
        };
        check(id);
    }
    assert_eq!(store.summary(windows[0], true).unwrap().initiative_count, 2);
    assert_eq!(
        store.summary(windows[0], false).unwrap().initiative_count,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_log_shows_nothing_above_the_durable_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(Domain::Biotech, dir.path()).unwrap();
    for i in 0..3 {
        store
            .write(&format!("durable-{i}"), None, "test", put(format!("{i}")))
            .await
            .unwrap();
    }
    assert_eq!(store.durable_revision(), 3);
    // Committed but not yet flushed: the transaction without the wait for
    // the group commit.
    for i in 0..2 {
        let plan = put(format!("pending {i}"));
        let revision = revision_of(
            store
                .write_blocking(&format!("pending-{i}"), None, "test", plan)
                .unwrap(),
        );
        assert_eq!(revision, 4 + i);
    }
    assert!(store.get("pending-1").unwrap().is_some(), "committed");
    assert_eq!(store.durable_revision(), 3);
    let revisions = |after| -> Vec<u64> {
        store
            .changes_after(after, 100)
            .unwrap()
            .iter()
            .map(|c| c.revision as u64)
            .collect()
    };
    assert_eq!(revisions(0), vec![1, 2, 3]);
    assert_eq!(revisions(2), vec![3]);
    assert!(revisions(3).is_empty());
    assert!(revisions(4).is_empty());
    assert_eq!(store.changes_after(0, 2).unwrap().len(), 2, "the limit");

    // The next flush covers the pending revisions too.
    store
        .write("flushes", None, "test", put("Flushes".into()))
        .await
        .unwrap();
    assert_eq!(store.durable_revision(), 6);
    assert_eq!(revisions(3), vec![4, 5, 6]);
}

/// A backup of `store` as a restore reads it.
fn backup_of(store: &Store) -> backup::Backup {
    backup::assemble(backup::snapshot_chunks(store).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_that_does_not_verify_leaves_nothing_behind() {
    let source = tempfile::tempdir().unwrap();
    let store = open(Domain::Energy, source.path()).unwrap();
    for i in 0..5 {
        store
            .write(&format!("r{i}"), None, "test", put(format!("Record {i}")))
            .await
            .unwrap();
    }
    let good = backup_of(&store);
    let target = tempfile::tempdir().unwrap();
    let data = target.path().join("energy");
    let staging = target.path().join(".energy.restoring");

    // A backup whose checksum holds but whose counters do not match its
    // records (as a bug in a writer or a hand edit would make it): refused,
    // nothing left where the service would open a store.
    let mut bad = good.clone();
    let counter = bad
        .entries
        .iter_mut()
        .find(|e| e.tree == Tree::Summary.name())
        .expect("a summary counter");
    counter.value = 1_000_i64.to_be_bytes().to_vec();
    let err = backup::restore(Domain::Energy, &data, bad).unwrap_err();
    assert!(err.to_string().contains("does not verify"), "{err}");
    assert!(!data.exists(), "no half-restored store");
    assert!(!staging.exists(), "the staging directory is removed");

    // A header naming another revision than its entries: refused too.
    let mut bad = good.clone();
    bad.header.revision += 1;
    let err = backup::restore(Domain::Energy, &data, bad).unwrap_err();
    assert!(err.to_string().contains("revision"), "{err}");
    assert!(!data.exists() && !staging.exists());

    // The backup as taken restores, whole.
    let revision = backup::restore(Domain::Energy, &data, good).unwrap();
    assert_eq!(revision, 5);
    assert!(!staging.exists());
    let restored = open(Domain::Energy, &data).unwrap();
    assert_eq!(restored.all().unwrap(), store.all().unwrap());
    restored.verify().unwrap();
}

/// Every key of every tree, read from the trees directly.
fn raw(store: &Store) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let mut all = Vec::new();
    for tree in Tree::ALL {
        for kv in store.inner.tree(tree).iter() {
            let (k, v) = kv.unwrap();
            all.push((tree.name().to_string(), k.to_vec(), v.to_vec()));
        }
    }
    all
}

/// A plan that retitles a record, or creates it.
fn retitle(title: String) -> impl Fn(Option<&Initiative>) -> Result<Plan> + Send + 'static {
    move |current| {
        Ok(Plan::Put {
            record: Initiative {
                title: title.clone(),
                ..current.cloned().unwrap_or_default()
            },
            change_type: if current.is_some() {
                ChangeType::Updated
            } else {
                ChangeType::Created
            },
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_streams_the_store_at_its_revision_while_writes_go_on() {
    let source = tempfile::tempdir().unwrap();
    let store = open(Domain::Energy, source.path()).unwrap();
    // About 2.4 MB of records: three chunks.
    for i in 0..40 {
        store
            .write(
                &format!("r{i:02}"),
                None,
                "test",
                retitle(format!("{i} {}", "x".repeat(60_000))),
            )
            .await
            .unwrap();
    }
    let at_snapshot = raw(&store);
    let snapshot = store.snapshot().unwrap();
    assert_eq!(snapshot.revision(), 40);

    // While the first chunk is being sent (the caller not reading yet), 30
    // writes are made and acknowledged: retitles, deletes (of keys both
    // before and after where the read is), new records between and after
    // the old ones. They must not wait for the backup.
    let handle = tokio::runtime::Handle::current();
    let (writer, streamed) = (store.clone(), store.clone());
    let chunks = tokio::task::spawn_blocking(move || {
        let mut chunks = Vec::new();
        backup::stream_chunks(&streamed, &snapshot, |chunk| {
            if chunks.is_empty() {
                let writes = async {
                    for i in 0..10 {
                        writer
                            .write(
                                &format!("r{i:02}"),
                                None,
                                "test",
                                retitle(format!("changed {i}")),
                            )
                            .await?;
                        writer
                            .write(
                                &format!("r{:02}", 39 - i),
                                None,
                                "test",
                                |_: Option<&Initiative>| Ok(Plan::Delete),
                            )
                            .await?;
                        writer
                            .write(
                                &format!("r{i:02}b"),
                                None,
                                "test",
                                retitle(format!("new {i}")),
                            )
                            .await?;
                    }
                    Ok::<_, Error>(())
                };
                handle
                    .block_on(async { tokio::time::timeout(Duration::from_secs(60), writes).await })
                    .expect("the writes did not wait for the backup to be read")
                    .unwrap();
            }
            chunks.push(chunk);
            Ok(())
        })
        .unwrap();
        chunks
    })
    .await
    .unwrap();
    assert!(chunks.len() >= 3, "{} chunks", chunks.len());
    assert_eq!(store.durable_revision(), 70, "the writes were made");
    assert_eq!(chunks[0].header.as_ref().unwrap().revision, 40);

    // The backup is exactly what the trees held at revision 40.
    let backup = backup::assemble(chunks).unwrap();
    let got: Vec<_> = backup
        .entries
        .iter()
        .map(|e| (e.tree.clone(), e.key.clone(), e.value.clone()))
        .collect();
    assert_eq!(got.len(), at_snapshot.len());
    assert!(
        got == at_snapshot,
        "the backup differs from the store at its revision"
    );
    // And it restores to a store that verifies.
    let target = tempfile::tempdir().unwrap();
    let data = target.path().join("energy");
    assert_eq!(backup::restore(Domain::Energy, &data, backup).unwrap(), 40);
    open(Domain::Energy, &data).unwrap().verify().unwrap();
    // Nothing is kept for the finished backup.
    assert!(store.inner.captures.now().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_or_foreign_backup_file_is_refused() {
    let source = tempfile::tempdir().unwrap();
    let store = open(Domain::Ai, source.path()).unwrap();
    for i in 0..20 {
        store
            .write(&format!("r{i}"), None, "test", put(format!("Record {i}")))
            .await
            .unwrap();
    }
    let mut bytes = Vec::new();
    for chunk in backup::snapshot_chunks(&store).unwrap() {
        backup::write_chunk(&mut bytes, &chunk).unwrap();
    }
    let files = tempfile::tempdir().unwrap();
    let read = |name: &str, content: &[u8]| {
        let path = files.path().join(name);
        std::fs::write(&path, content).unwrap();
        backup::read_file(&path)
    };
    assert!(read("whole", &bytes).is_ok());

    // A bit flipped at about 100 places across the file, and cuts at five
    // lengths: refused, never a panic, never a wrong store.
    for at in (0..bytes.len()).step_by(bytes.len() / 97 + 1) {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x10;
        let err = read("flipped", &damaged).expect_err("a flipped bit");
        assert!(matches!(err, Error::InvalidArgument(_)), "byte {at}: {err}");
    }
    for len in [0, 1, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
        let err = read("cut", &bytes[..len]).expect_err("a cut file");
        assert!(
            matches!(err, Error::InvalidArgument(_)),
            "{len} bytes: {err}"
        );
    }
    // Restored from the file as it is read (one chunk at a time), a cut or
    // damaged file is refused only at its end: nothing is left behind.
    let target = tempfile::tempdir().unwrap();
    let data = target.path().join("ai");
    for (name, content) in [
        ("cut", bytes[..bytes.len() - 1].to_vec()),
        ("flipped", {
            let mut d = bytes.clone();
            let at = d.len() - 20;
            d[at] ^= 0x10;
            d
        }),
    ] {
        let path = files.path().join(name);
        std::fs::write(&path, content).unwrap();
        let err = backup::restore_file(Domain::Ai, &data, &path).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{name}: {err}");
        assert!(!data.exists(), "{name}: no half-restored store");
        assert!(!target.path().join(".ai.restoring").exists(), "{name}");
    }
    let path = files.path().join("whole");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(
        backup::restore_file(Domain::Ai, &data, &path).unwrap(),
        (20, backup::verify_file(&path).unwrap().1)
    );
    assert_eq!(
        open(Domain::Ai, &data).unwrap().all().unwrap(),
        store.all().unwrap()
    );

    // Whole but of another domain, or of a newer schema: refused, the target
    // left as it was.
    let target = tempfile::tempdir().unwrap();
    let data = target.path().join("quantum");
    let whole = read("whole", &bytes).unwrap();
    let err = backup::restore(Domain::Quantum, &data, whole).unwrap_err();
    assert!(matches!(err, Error::FailedPrecondition(_)), "{err}");
    assert!(!data.exists());
    let mut newer = read("whole", &bytes).unwrap();
    let schema = newer
        .entries
        .iter_mut()
        .find(|e| e.tree == Tree::Meta.name() && e.key == META_SCHEMA)
        .expect("the schema version entry");
    schema.value = (SCHEMA_VERSION + 1).to_be_bytes().to_vec();
    let data = target.path().join("ai");
    let err = backup::restore(Domain::Ai, &data, newer).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
    assert!(!data.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summary_is_read_while_a_write_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(Domain::Quantum, dir.path()).unwrap();
    store
        .write("first", None, "test", put("First".into()))
        .await
        .unwrap();
    let window = SummaryWindow {
        as_of: time::macros::date!(2025 - 01 - 01),
        due_within_days: 30,
    };
    // A write that stops inside its transaction, holding the write lock,
    // until it is let go.
    let (entered, inside) = std::sync::mpsc::channel::<()>();
    let (release, go) = std::sync::mpsc::channel::<()>();
    let go = Mutex::new(go);
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write("second", None, "test", move |current| {
                    let _ = entered.send(());
                    let _ = go.lock().map(|g| g.recv_timeout(Duration::from_secs(30)));
                    put("Second".into())(current)
                })
                .await
        })
    };
    inside.recv_timeout(Duration::from_secs(30)).unwrap();
    // The summary answers at once, with the last commit's counters.
    let reader = store.clone();
    let summary = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::task::spawn_blocking(move || reader.summary(window, true)),
    )
    .await
    .expect("the summary waited for the write lock")
    .unwrap()
    .unwrap();
    assert_eq!((summary.initiative_count, summary.last_revision), (1, 1));
    assert_eq!(store.stats().unwrap().initiatives, 1);
    release.send(()).unwrap();
    revision_of(writer.await.unwrap().unwrap());
    let summary = store.summary(window, true).unwrap();
    assert_eq!((summary.initiative_count, summary.last_revision), (2, 2));
}

/// A record restricted now is hidden from an uncleared caller also in its
/// past, when it was public: `versions_known` says so for every version.
#[tokio::test]
async fn a_record_restricted_now_is_restricted_in_its_past_too() {
    use cetrack_contract::proto::Sensitivity;
    let dir = tempfile::tempdir().unwrap();
    let store = open(Domain::Ai, dir.path()).unwrap();
    let record = |sensitivity: Sensitivity| {
        move |_: Option<&Initiative>| {
            Ok(Plan::Put {
                record: Initiative {
                    title: "Once public".into(),
                    sensitivity: sensitivity as i32,
                    ..Default::default()
                },
                change_type: ChangeType::Updated,
            })
        }
    };
    store
        .write("rec", None, "t", record(Sensitivity::Public))
        .await
        .unwrap();
    let public_at = store.durable_revision();
    store
        .write("rec", None, "t", record(Sensitivity::Restricted))
        .await
        .unwrap();
    let mut seen = Vec::new();
    store
        .versions_known(public_at, None, |id, version, restricted_now| {
            seen.push((
                id.to_string(),
                version.map(|v| v.sensitivity),
                restricted_now,
            ));
            false
        })
        .unwrap();
    assert_eq!(
        seen,
        vec![("rec".to_string(), Some(Sensitivity::Public as i32), true)]
    );
    // For an uncleared caller it is not there as known today either.
    let filter = Filter {
        hide_restricted: true,
        known_on: Some(cetrack_contract::dates::today()),
        ..Default::default()
    };
    assert!(store.list(&filter, None, 10).unwrap().items.is_empty());
    let cleared = Filter {
        known_on: Some(cetrack_contract::dates::today()),
        ..Default::default()
    };
    assert_eq!(store.list(&cleared, None, 10).unwrap().items.len(), 1);
}

/// A request id keeps the hash of its request and the revision of its first
/// answer: a replay answers that revision's version; once expired it is
/// forgotten and the same id is a new call.
#[tokio::test]
async fn request_ids_replay_their_revision_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(Domain::Ai, dir.path()).unwrap();
    let idem = |fingerprint: &[u8]| {
        Some(Idempotency {
            method: "update",
            request_id: "retry-me".into(),
            fingerprint: fingerprint.to_vec(),
        })
    };
    let titled = |title: &'static str| {
        move |_: Option<&Initiative>| {
            Ok(Plan::Put {
                record: Initiative {
                    title: title.into(),
                    ..Default::default()
                },
                change_type: ChangeType::Updated,
            })
        }
    };
    let first = store
        .write("rec", idem(b"request"), "t", titled("First"))
        .await
        .unwrap();
    assert!(!first.replayed());
    // Changed since by another call; the retry still answers the first
    // version, from the change log.
    store
        .write("rec", None, "t", titled("Second"))
        .await
        .unwrap();
    let replay = store
        .write("rec", idem(b"request"), "t", titled("Third"))
        .await
        .unwrap();
    assert!(replay.replayed());
    let replayed = replay.into_initiative();
    assert_eq!((replayed.title.as_str(), replayed.revision), ("First", 1));
    // The same id with another request is refused.
    let other = store
        .write("rec", idem(b"another"), "t", titled("Third"))
        .await;
    assert!(
        matches!(other, Err(Error::FailedPrecondition(_))),
        "{other:?}"
    );

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert_eq!(
        store.prune_requests(now - 3_600).unwrap(),
        0,
        "not expired yet"
    );
    assert_eq!(store.prune_requests(now + 3_600).unwrap(), 1);
    let again = store
        .write("rec", idem(b"request"), "t", titled("Third"))
        .await
        .unwrap();
    assert!(!again.replayed(), "a forgotten request id is a new call");
    assert_eq!(again.into_initiative().title, "Third");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_walks_its_most_selective_index_and_pages_the_same() {
    use cetrack_contract::proto::{Organization, Participant};
    let dir = tempfile::tempdir().unwrap();
    let store = open(Domain::Energy, dir.path()).unwrap();
    // Twenty records of one organization; three of them on a rare topic.
    let rare = [3, 11, 17];
    for n in 0..20 {
        let mut topics = vec!["common".to_string()];
        if rare.contains(&n) {
            topics.push("rare".into());
        }
        let record = Initiative {
            title: format!("Record {n}"),
            topics,
            participants: vec![Participant {
                organization: Some(Organization {
                    id: "us-doe".into(),
                    country_code: "US".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        store
            .write(&format!("r{n:02}"), None, "test", move |_| {
                Ok(Plan::Put {
                    record: record.clone(),
                    change_type: ChangeType::Created,
                })
            })
            .await
            .unwrap();
    }
    let org = keys::text_prefix(keys::BY_ORGANIZATION, "us-doe");
    let topic = keys::text_prefix(keys::BY_TOPIC, "rare");
    let common = keys::text_prefix(keys::BY_TOPIC, "common");
    let chosen = |candidates: &[&Vec<u8>]| {
        store
            .most_selective(
                candidates
                    .iter()
                    .map(|p| Candidate::Prefix(p.to_vec()))
                    .collect(),
                50,
                pagination::MAX_EXAMINED,
            )
            .unwrap()
    };
    // The rare topic's 3 entries, not the organization's 20; of two of the
    // same size, the first.
    assert_eq!(chosen(&[&org, &topic]), Some(Walk::Prefix(topic.clone())));
    assert_eq!(chosen(&[&topic, &org]), Some(Walk::Prefix(topic)));
    assert_eq!(chosen(&[&org, &common]), Some(Walk::Prefix(org)));
    assert_eq!(chosen(&[]), None);

    // A page at a time, the records of both, in id order, with no gap.
    let filter = Filter {
        organization_id: Some("us-doe".into()),
        topic: Some("rare".into()),
        ..Default::default()
    };
    let mut after: Option<String> = None;
    let mut ids = Vec::new();
    loop {
        let page = store.list(&filter, after.as_deref(), 1).unwrap();
        ids.extend(records(&page).into_iter().map(|i| i.name));
        if !page.more {
            break;
        }
        after = page.resume_after;
    }
    assert_eq!(ids.len(), 3, "{ids:?}");
    let all = store.list(&filter, None, 50).unwrap();
    assert_eq!(
        records(&all)
            .into_iter()
            .map(|i| i.title)
            .collect::<Vec<_>>(),
        vec!["Record 3", "Record 11", "Record 17"]
    );

    // Within a budget of records examined, the page the list answers; a
    // page that would look further, or read the histories, is not answered.
    let same = |a: &Page<Bytes>, b: &Page<Bytes>| {
        assert_eq!(
            (&a.items, a.more, &a.resume_after, a.resumes_after_returned),
            (&b.items, b.more, &b.resume_after, b.resumes_after_returned)
        )
    };
    let every = Filter::default();
    let text = Filter {
        text: Some("Record 19".into()),
        ..Default::default()
    };
    for (f, after, limit, enough) in [
        // Three records, and the fourth to know more follow.
        (&every, None, 3, 4),
        // The last two, and one more to find the end.
        (&every, Some("r17"), 3, 3),
        // The rare topic's index: its three entries.
        (&filter, None, 50, 4),
        // A filter on the text reads every record.
        (&text, None, 50, 21),
    ] {
        let whole = store.list(f, after, limit).unwrap();
        let within = store.list_within(f, after, limit, enough).unwrap();
        same(&within.expect("found within its budget"), &whole);
        assert!(
            store
                .list_within(f, after, limit, enough - 1)
                .unwrap()
                .is_none(),
            "{f:?} after {after:?} needs a budget of {enough}"
        );
    }
    let known_on = Filter {
        known_on: Some(cetrack_contract::dates::today()),
        ..Default::default()
    };
    assert!(store
        .list_within(&known_on, None, 50, 1_000)
        .unwrap()
        .is_none());
}

/// The records of a list page, decoded.
fn records(page: &Page<Bytes>) -> Vec<Initiative> {
    page.items
        .iter()
        .map(|b| Initiative::decode(b.as_ref()).expect("a listed record decodes"))
        .collect()
}

/// A read and a list pass a record that is today what it is kept as on as
/// the store keeps it, byte for byte; a record with a fact dated after today
/// is listed as it stands today (without that fact), one whose first status
/// takes effect later is not listed, a restricted one only to the cleared,
/// and a filter on the record's contents still applies; the same once a
/// store that kept its records without their spans (schema version 6) is
/// migrated.
#[tokio::test]
async fn a_list_passes_kept_records_on_and_projects_the_others() {
    use cetrack_contract::proto::{ApproximateDate, DatePrecision, FundingCommitment, Sensitivity};
    let dir = tempfile::tempdir().unwrap();
    let store = open(Domain::Energy, dir.path()).unwrap();
    let next_year = cetrack_contract::dates::today().year() + 1;
    let year = |y: i32| ApproximateDate {
        precision: DatePrecision::Year as i32,
        year: y,
        ..Default::default()
    };
    let plain = Initiative {
        title: "plain".into(),
        topics: vec!["t".into()],
        ..Default::default()
    };
    let restricted = Initiative {
        title: "restricted".into(),
        sensitivity: Sensitivity::Restricted as i32,
        ..Default::default()
    };
    let later_money = Initiative {
        title: "later money".into(),
        topics: vec!["t".into()],
        funding: vec![
            FundingCommitment::default(),
            FundingCommitment {
                date: Some(year(next_year)),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let not_yet = Initiative {
        title: "not yet".into(),
        status_history: vec![StatusChange {
            status: 1,
            effective: Some(year(next_year)),
            record_time: None,
        }],
        ..Default::default()
    };
    for (id, record) in [
        ("a", plain),
        ("b", restricted),
        ("c", later_money),
        ("d", not_yet),
    ] {
        store
            .write(id, None, "test", move |_| {
                Ok(Plan::Put {
                    record: record.clone(),
                    change_type: ChangeType::Created,
                })
            })
            .await
            .unwrap();
    }
    let kept = |id: &str| store.get(id).unwrap().unwrap();

    // A record read alone comes as stored too, with its marking.
    let (encoded, spans) = store.get_encoded("b").unwrap().unwrap();
    assert_eq!(encoded.as_ref(), kept("b").encode_to_vec().as_slice());
    assert!(spans.restricted);
    assert!(!store.get_encoded("a").unwrap().unwrap().1.restricted);
    assert!(store.get_encoded("z").unwrap().is_none());

    let cleared = store.list(&Filter::default(), None, 10).unwrap();
    let listed = records(&cleared);
    assert_eq!(
        listed.iter().map(|i| i.title.as_str()).collect::<Vec<_>>(),
        vec!["plain", "restricted", "later money"]
    );
    assert_eq!(
        cleared.items[0].as_ref(),
        kept("a").encode_to_vec().as_slice()
    );
    assert_eq!(
        cleared.items[1].as_ref(),
        kept("b").encode_to_vec().as_slice()
    );
    assert_eq!(kept("c").funding.len(), 2);
    assert_eq!(
        listed[2].funding.len(),
        1,
        "the money dated next year is not counted today"
    );
    assert!(
        listed[2].etag.is_empty(),
        "a projection is not the record to update"
    );

    let uncleared = Filter {
        hide_restricted: true,
        ..Default::default()
    };
    let titles = |f: &Filter| {
        records(&store.list(f, None, 10).unwrap())
            .into_iter()
            .map(|i| i.title)
            .collect::<Vec<_>>()
    };
    assert_eq!(titles(&uncleared), vec!["plain", "later money"]);
    let on_topic = Filter {
        topic: Some("t".into()),
        hide_restricted: true,
        ..Default::default()
    };
    assert_eq!(titles(&on_topic), vec!["plain", "later money"]);
    let by_text = Filter {
        text: Some("money".into()),
        ..Default::default()
    };
    assert_eq!(titles(&by_text), vec!["later money"]);
    let next_year_day = Filter {
        as_of: time::Date::from_calendar_date(next_year, time::Month::June, 1).ok(),
        ..Default::default()
    };
    assert_eq!(
        titles(&next_year_day),
        vec!["plain", "restricted", "later money", "not yet"]
    );

    // The store as schema version 6 kept it: each record without its spans.
    // Opened, it is migrated: each record has them again, and every read
    // above answers the same.
    let answers = |store: &Store| {
        let filters = [
            &Filter::default(),
            &uncleared,
            &on_topic,
            &by_text,
            &next_year_day,
        ];
        let pages: Vec<Vec<Bytes>> = filters
            .iter()
            .map(|f| store.list(f, None, 10).unwrap().items)
            .collect();
        let reads: Vec<Option<(Bytes, bool)>> = ["a", "b", "c", "d", "z"]
            .iter()
            .map(|id| {
                let read = store.get_encoded(id).unwrap();
                read.map(|(encoded, spans)| (encoded, spans.restricted))
            })
            .collect();
        (pages, reads)
    };
    let before = answers(&store);
    assert_eq!(before.1[1].as_ref().map(|r| r.1), Some(true));
    drop(store);
    // From version 6; then a migration that stopped after the version said
    // 7, before every record had its spans (resumed at the next open).
    for stopped in [false, true] {
        assert_eq!(as_kept_without_spans(dir.path(), stopped), 4);
        let store = open(Domain::Energy, dir.path()).unwrap();
        assert_eq!(answers(&store), before);
        drop(store);
        let db = open_sled(dir.path());
        for kv in db.open_tree("records").unwrap().iter() {
            let (id, value) = kv.unwrap();
            assert!(kept::has_header(&value), "{id:?} migrated");
        }
        let pending = db.open_tree("meta").unwrap().get(META_SPANS_PENDING);
        assert!(pending.unwrap().is_none());
        drop(db);
        assert_schema_is_current(dir.path());
    }
    let store = open(Domain::Energy, dir.path()).unwrap();
    store.verify().unwrap();
    drop(store);
    // A header that calls the restricted record public is found damaged.
    {
        let db = open_sled(dir.path());
        let records = db.open_tree("records").unwrap();
        let mut value = records.get("b").unwrap().unwrap().to_vec();
        value[1] = 0;
        records.insert("b", value).unwrap();
        db.flush().unwrap();
    }
    let store = open(Domain::Energy, dir.path()).unwrap();
    assert!(matches!(store.verify(), Err(Error::Corrupt(_))));
}

/// Makes the closed store at `path` what schema version 6 kept: each
/// record its encoding alone; or, `stopped`, what a migration to 7 stopped
/// before it gave every record its spans leaves. The number of records.
fn as_kept_without_spans(path: &Path, stopped: bool) -> usize {
    let db = open_sled(path);
    let records = db.open_tree("records").unwrap();
    let all: Vec<(sled::IVec, sled::IVec)> = records.iter().collect::<sled::Result<_>>().unwrap();
    for (id, value) in &all {
        assert!(kept::has_header(value));
        records.insert(id, kept::encoding(value).unwrap()).unwrap();
    }
    let meta = db.open_tree("meta").unwrap();
    if stopped {
        meta.insert(META_SPANS_PENDING, &[] as &[u8]).unwrap();
    } else {
        meta.insert(META_SCHEMA, &6u32.to_be_bytes()).unwrap();
    }
    db.flush().unwrap();
    all.len()
}

#[tokio::test]
async fn a_document_is_found_by_its_index_and_indexed_when_an_older_store_migrates() {
    use cetrack_contract::proto::SourceReference;
    let dir = tempfile::tempdir().unwrap();
    let sheet = "Joint Fact Sheet";
    // A title with a NUL in it: its entries must not be taken for the
    // sheet's (nor the sheet's for its).
    let odd = "Joint Fact Sheet\0r";
    let cited = |n: usize| -> Vec<&str> {
        match n {
            2 => vec![sheet],
            9 => vec![sheet, odd],
            13 => vec![odd],
            _ => vec!["Another sheet"],
        }
    };
    let window = SummaryWindow {
        as_of: cetrack_contract::dates::today(),
        due_within_days: 90,
    };
    let check = |store: &Store| {
        for (title, expected) in [(sheet, vec!["r02", "r09"]), (odd, vec!["r09", "r13"])] {
            let filter = Filter {
                document: Some(title.into()),
                ..Default::default()
            };
            // Found by the document's entries: the list reads its two
            // records and one more look to know it ended, not all twenty.
            let page = store
                .list_within(&filter, None, 50, 3)
                .unwrap()
                .expect("found within a budget of its own records");
            let titles: Vec<String> = records(&page).into_iter().map(|i| i.title).collect();
            let wanted: Vec<String> = expected.iter().map(|id| format!("Record {id}")).collect();
            assert_eq!(titles, wanted, "{title:?}");
            let summary = store.summary_scan(window, true, None, Some(title)).unwrap();
            assert_eq!(summary.initiative_count, 2, "{title:?}");
        }
        let none = Filter {
            document: Some("Joint Fact".into()),
            ..Default::default()
        };
        assert!(records(&store.list(&none, None, 50).unwrap()).is_empty());
    };
    {
        let store = open(Domain::Energy, dir.path()).unwrap();
        for n in 0..20 {
            let id = format!("r{n:02}");
            let record = Initiative {
                title: format!("Record {id}"),
                sources: cited(n)
                    .into_iter()
                    .map(|d| SourceReference {
                        document: d.into(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            store.write(&id, None, "test", set(record)).await.unwrap();
        }
        check(&store);
    }
    // The store as schema version 4 kept it: no document entries.
    assert_eq!(
        as_kept_by(dir.path(), 4, keys::BY_DOCUMENT),
        21,
        "one entry per record and document cited"
    );
    check(&open(Domain::Energy, dir.path()).unwrap());
    assert_schema_is_current(dir.path());
}

#[tokio::test]
async fn a_due_window_is_found_by_its_indexes_and_indexed_when_an_older_store_migrates() {
    use cetrack_contract::proto::{
        ApproximateDate, DatePrecision, LifecycleStatus, Milestone, MilestoneStatus,
    };
    let dir = tempfile::tempdir().unwrap();
    let year = |y: i32| ApproximateDate {
        precision: DatePrecision::Year as i32,
        year: y,
        ..Default::default()
    };
    let day = |y: i32, m: u8, d: u8| {
        time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap()
    };
    // Planned ends 2024-2028 in turn; one record in seven has a scheduled
    // milestone due in 2030, one in eleven a met one due in 2031; one in
    // six is completed (its planned end and open milestones no longer due).
    let record = |n: usize| Initiative {
        title: format!("Record r{n:02}"),
        status: if n % 6 == 5 {
            LifecycleStatus::Completed as i32
        } else {
            LifecycleStatus::InProgress as i32
        },
        planned_end: Some(year(2024 + (n % 5) as i32)),
        milestones: [
            (7, 2030, MilestoneStatus::Scheduled),
            (11, 2031, MilestoneStatus::Met),
        ]
        .into_iter()
        .filter(|(every, _, _)| n.is_multiple_of(*every))
        .map(|(every, y, status)| Milestone {
            id: format!("m{every}"),
            due: Some(year(y)),
            status: status as i32,
            date_met: (status == MilestoneStatus::Met).then(|| year(2024)),
            ..Default::default()
        })
        .collect(),
        ..Default::default()
    };
    let windows = [
        (Some(day(2026, 1, 1)), Some(day(2026, 12, 31)), false),
        (Some(day(2030, 1, 1)), None, false),
        (Some(day(2030, 1, 1)), None, true),
        (None, Some(day(2024, 12, 31)), false),
        (Some(day(2025, 1, 1)), Some(day(2027, 12, 31)), true),
        (Some(day(2032, 1, 1)), None, true),
    ];
    let check = |store: &Store| {
        let all = store.all().unwrap();
        for (due_after, due_before, include_met_milestones) in windows {
            let filter = Filter {
                due_after,
                due_before,
                include_met_milestones,
                ..Default::default()
            };
            let wanted: Vec<String> = all
                .iter()
                .filter(|i| filter.matches(i))
                .map(|i| i.title.clone())
                .collect();
            let window = format!("{due_after:?}-{due_before:?} {include_met_milestones}");
            // Found by the window's entries: the list reads the records in
            // it, within a budget of its entries and one more, not all thirty.
            let in_range = |d: time::Date| {
                due_after.is_none_or(|a| d >= a) && due_before.is_none_or(|b| d <= b)
            };
            // The window's index entries: planned ends and milestones in it.
            let in_window: usize = all
                .iter()
                .map(|i| {
                    i.planned_end
                        .iter()
                        .chain(i.milestones.iter().filter_map(|m| m.due.as_ref()))
                        .filter_map(cetrack_contract::dates::period_end)
                        .filter(|d| in_range(*d))
                        .count()
                })
                .sum();
            assert!(in_window < 20, "{window}: a window of some records");
            let page = store
                .list_within(&filter, None, 50, in_window + 1)
                .unwrap()
                .unwrap_or_else(|| panic!("{window}: found within its own records"));
            let got: Vec<String> = records(&page).into_iter().map(|i| i.title).collect();
            assert_eq!(got, wanted, "{window}");
            // Gathered only within a budget of its entries (the async
            // worker's is smaller than a wide window), and only while
            // entries * entries <= page size * records (here 2 * 30: a
            // window of more than 7 entries is paged by walking the records).
            let window_walk = Candidate::Window {
                from: due_after.map_or(i32::MIN, cetrack_contract::dates::day_key),
                to: due_before.map_or(i32::MAX, cetrack_contract::dates::day_key),
            };
            let chosen = |limit, budget| {
                store
                    .most_selective(vec![window_walk.clone()], limit, budget)
                    .unwrap()
            };
            // Gathered: the ids of every record with a date in the window.
            let dated: BTreeSet<String> = all
                .iter()
                .filter(|i| {
                    i.planned_end
                        .iter()
                        .chain(i.milestones.iter().filter_map(|m| m.due.as_ref()))
                        .filter_map(cetrack_contract::dates::period_end)
                        .any(in_range)
                })
                .map(|i| i.title.trim_start_matches("Record ").to_string())
                .collect();
            assert_eq!(
                chosen(50, in_window),
                Some(Walk::Gathered(dated)),
                "{window}"
            );
            if in_window > 0 {
                assert_eq!(chosen(50, in_window - 1), None, "{window}: budget");
            }
            assert_eq!(
                chosen(2, in_window).is_some(),
                in_window <= 7,
                "{window}: {in_window} entries for a page of 2"
            );
            // Paged two at a time, from the last record returned.
            let mut paged = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = store.list(&filter, after.as_deref(), 2).unwrap();
                paged.extend(records(&page).into_iter().map(|i| i.title));
                if !page.more {
                    break;
                }
                after = page.resume_after.clone();
            }
            assert_eq!(paged, wanted, "{window}: paged");
        }
    };
    {
        let store = open(Domain::Energy, dir.path()).unwrap();
        for n in 0..30 {
            let id = format!("r{n:02}");
            store
                .write(&id, None, "test", set(record(n)))
                .await
                .unwrap();
        }
        check(&store);
    }
    // The store as schema version 5 kept it: no planned end entries.
    assert_eq!(
        as_kept_by(dir.path(), 5, keys::BY_END),
        30,
        "one entry per planned end"
    );
    // ... but for what a migration that stopped before the version moved
    // left, with the version 5 build then writing on without keeping them:
    // an entry of a record since deleted, and one of a planned end since
    // moved.
    let stale = [
        [
            keys::day_prefix(keys::BY_END, dates::day_key(day(2024, 12, 31))),
            b"gone".to_vec(),
        ]
        .concat(),
        [
            keys::day_prefix(keys::BY_END, dates::day_key(day(2029, 12, 31))),
            b"r00".to_vec(),
        ]
        .concat(),
    ];
    {
        let db = open_sled(dir.path());
        let index = db.open_tree(Tree::Index.name()).unwrap();
        for key in &stale {
            index.insert(key.as_slice(), &[] as &[u8]).unwrap();
        }
        db.flush().unwrap();
    }
    let migrated = open(Domain::Energy, dir.path()).unwrap();
    check(&migrated);
    let ends: Vec<Vec<u8>> = raw(&migrated)
        .into_iter()
        .filter(|(tree, key, _)| tree == Tree::Index.name() && key.first() == Some(&keys::BY_END))
        .map(|(_, key, _)| key)
        .collect();
    assert_eq!(ends.len(), 30, "one entry per planned end, no stale one");
    assert!(stale.iter().all(|k| !ends.contains(k)));
    drop(migrated);
    assert_schema_is_current(dir.path());
}

/// Makes the closed store at `path` what schema version `schema` kept: its
/// index entries of `kind` (a kind that version did not have) removed and
/// the version set; the number of entries removed.
fn as_kept_by(path: &Path, schema: u32, kind: u8) -> usize {
    let db = open_sled(path);
    let index = db.open_tree("index").unwrap();
    let entries: Vec<sled::IVec> = index
        .scan_prefix([kind])
        .keys()
        .collect::<sled::Result<_>>()
        .unwrap();
    for k in &entries {
        index.remove(k).unwrap();
    }
    db.open_tree("meta")
        .unwrap()
        .insert(META_SCHEMA, &schema.to_be_bytes())
        .unwrap();
    db.flush().unwrap();
    entries.len()
}

/// The closed store at `path` has this build's schema version.
fn assert_schema_is_current(path: &Path) {
    let db = open_sled(path);
    let schema = db.open_tree("meta").unwrap().get(META_SCHEMA).unwrap();
    assert_eq!(schema.as_deref(), Some(&SCHEMA_VERSION.to_be_bytes()[..]));
}

/// Copies the biotech store of the fixture of schema `version` (made by that
/// release's own binaries, see `tests/fixtures/README.md`) to `to`.
fn copy_of_fixture(version: u32, to: &Path) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    copy(&fixtures.join(format!("v{version}-store/biotech")), to);
}

/// Every key of every tree of the closed store at `path`, read with sled
/// directly (no open of the store, so no migration).
fn raw_closed(path: &Path) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let db = open_sled(path);
    let mut all = Vec::new();
    for tree in Tree::ALL {
        for kv in db.open_tree(tree.name()).unwrap().iter() {
            let (k, v) = kv.unwrap();
            all.push((tree.name().to_string(), k.to_vec(), v.to_vec()));
        }
    }
    all
}

/// The entries of a backup of the closed store at `path` as its release's
/// BackupStore streamed them (every entry of each of its trees, as kept),
/// under a header naming its schema version and last revision. (A backup
/// file's framing and checksum are tested on their own.)
fn backup_as_kept(path: &Path) -> backup::Backup {
    use cetrack_contract::proto::{BackupEntry, BackupHeader};
    let (mut schema, mut revision, mut entries) = (0, 0, Vec::new());
    for (tree, key, value) in raw_closed(path) {
        if tree == Tree::Meta.name() && key == META_SCHEMA {
            schema = u32::from_be_bytes(value.as_slice().try_into().unwrap());
        }
        if tree == Tree::Meta.name() && key == META_REVISION {
            revision = u64_of(&value);
        }
        entries.push(BackupEntry { tree, key, value });
    }
    backup::Backup {
        header: BackupHeader {
            domain: Domain::Biotech.to_proto() as i32,
            schema_version: schema,
            revision: revision as i64,
            ..Default::default()
        },
        entries,
    }
}

/// An operator who upgrades and then restores a backup taken before the
/// upgrade: a backup of each earlier release's store (schema 1 to 6)
/// restores into this build migrated (before anything opens it again),
/// verified, and kept exactly as the same store migrated in place on open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_by_each_earlier_release_restores_as_its_store_migrates_in_place() {
    for version in 1..SCHEMA_VERSION {
        let dir = tempfile::tempdir().unwrap();
        let (taken, in_place) = (dir.path().join("taken"), dir.path().join("in-place"));
        copy_of_fixture(version, &taken);
        copy_of_fixture(version, &in_place);
        let backup = backup_as_kept(&taken);
        assert_eq!(backup.header.schema_version, version);
        let data = dir.path().join("biotech");
        let revision = backup::restore(Domain::Biotech, &data, backup).unwrap();
        assert_eq!(revision as i64, backup_as_kept(&taken).header.revision);
        assert!(revision > 0, "v{version}: the fixture's revisions");

        // The restore itself migrated it: read before any open could.
        let as_restored = raw_closed(&data);
        assert_schema_is_current(&data);
        let pending =
            |t: &(String, Vec<u8>, Vec<u8>)| t.0 == Tree::Meta.name() && t.1 == META_SPANS_PENDING;
        assert!(!as_restored.iter().any(pending), "v{version}: spans given");

        let migrated = open(Domain::Biotech, &in_place).unwrap();
        assert_eq!(as_restored, raw(&migrated), "v{version}: every tree");
        let restored = open(Domain::Biotech, &data).unwrap();
        assert_eq!(restored.durable_revision(), revision);
        let records = restored.all().unwrap();
        assert!(records.len() > 1, "v{version}: the fixture's records");
        assert_eq!(records, migrated.all().unwrap(), "v{version}");
        restored.verify().unwrap();
    }
}
