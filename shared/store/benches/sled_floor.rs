//! The floor sled sets under the store's writes (issue #13): how fast the
//! store creates records, against sled alone writing the very same keys.
//!
//! 1. The store: `RECORDS` creates, 64 in flight (the speed bench's load),
//!    each acknowledged once durable (one writer thread, group commit).
//! 2. The keys it wrote, read back from its files (records, index entries,
//!    history entries, change log), written again by sled alone into a new
//!    database: in a transaction over the same trees per 64 records, one
//!    flush each; then as one tree's batch per 64 records (no transaction);
//!    then the records alone (one key per record); then every key but the
//!    index entries, the index entries alone, each kind of index entry
//!    alone, and every key with a single flush at the end (what the flushes
//!    cost). sled alone writes each
//!    tree's keys in key order, a slice per batch, where the store's batch
//!    touches some ten index ranges at once: if anything, a floor lower than
//!    sled's cost in the store's own order.
//!
//! The store's rate over the first of these is the share of a create's cost
//! that is the store's own work rather than sled's; sled's rate for one key
//! over its rate for all of a record's keys is what fewer keys would gain.
//!
//! Run: `cargo bench -p cetrack-store --bench sled_floor`
//! (CETRACK_FLOOR_RECORDS: records, default 20,000).

use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

use cetrack_contract::proto::{
    ApproximateDate, ChangeType, DatePrecision, FundingCommitment, Initiative, Instrument,
    LifecycleStatus, Milestone, Money, Organization, Participant, ParticipantRole, SourceReference,
};
use cetrack_contract::Domain;
use cetrack_store::{Plan, Store, StoreConfig};
use sled::Transactional;

/// Records written in flight at once.
const IN_FLIGHT: usize = 64;
/// The trees whose keys a create writes per record (the others, summary
/// counters, labels and meta, are written once per batch).
const PER_RECORD: [&str; 4] = ["records", "index", "history", "changes"];
/// The store's cache, its default.
const CACHE: u64 = 32 << 20;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

fn year(year: i32) -> Option<ApproximateDate> {
    Some(ApproximateDate {
        precision: DatePrecision::Year as i32,
        year,
        ..Default::default()
    })
}

fn participant(id: &str, country: &str) -> Participant {
    Participant {
        organization: Some(Organization {
            id: id.into(),
            name: format!("Organization {id}"),
            country_code: country.into(),
            ..Default::default()
        }),
        role: ParticipantRole::CoLead as i32,
        ..Default::default()
    }
}

/// A record like the speed bench's: two participants of two countries, a
/// topic of a hundred, a source, a milestone and a planned end.
fn record(n: usize) -> Initiative {
    let due = 2025 + (n % 3) as i32;
    Initiative {
        title: format!("Record {n}"),
        summary: "An energy commitment used in benches.".into(),
        instrument: Instrument::JointResearchProgramme as i32,
        status: LifecycleStatus::Announced as i32,
        participants: vec![participant("us-nsf", "US"), participant("kr-msit", "KR")],
        planned_start: year(2024),
        planned_end: year(due),
        milestones: vec![Milestone {
            id: "launch".into(),
            title: "Launch".into(),
            due: year(due),
            ..Default::default()
        }],
        funding: vec![FundingCommitment {
            amount: Some(Money {
                currency_code: "USD".into(),
                units: 10_000_000,
                nanos: 0,
            }),
            committing_organization_id: "us-nsf".into(),
            ..Default::default()
        }],
        topics: vec![format!("topic-{}", n % 100)],
        sources: vec![SourceReference {
            document: "Joint Fact Sheet".into(),
            date: year(2023),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Creates `records` records through the store, [`IN_FLIGHT`] at a time;
/// records per second.
fn through_the_store(dir: &std::path::Path, records: usize) -> Result<f64> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let store = Arc::new(Store::open(&StoreConfig {
        domain: Domain::Energy,
        path: dir.to_path_buf(),
        cache_capacity: CACHE,
    })?);
    let started = Instant::now();
    runtime.block_on(async {
        let mut writers = Vec::new();
        for w in 0..IN_FLIGHT {
            let store = store.clone();
            writers.push(tokio::spawn(async move {
                for n in (w..records).step_by(IN_FLIGHT) {
                    let created = record(n);
                    store
                        .write(&format!("r{n:06}"), None, "bench", move |_| {
                            Ok(Plan::Put {
                                record: created.clone(),
                                change_type: ChangeType::Created,
                            })
                        })
                        .await?;
                }
                Ok::<(), cetrack_contract::error::Error>(())
            }));
        }
        for w in writers {
            w.await??;
        }
        Ok::<(), Box<dyn Error + Send + Sync>>(())
    })?;
    let rate = records as f64 / started.elapsed().as_secs_f64();
    drop(store);
    Ok(rate)
}

/// Every key and value of the per-record trees of the store at `dir`, by
/// tree, in key order.
type Kept = Vec<(&'static str, Vec<(sled::IVec, sled::IVec)>)>;

fn keys_of(dir: &std::path::Path) -> Result<Kept> {
    // sled's threads may hold the file lock a moment after the store closed.
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    let db = loop {
        match sled::Config::new().path(dir).open() {
            Ok(db) => break db,
            Err(_) if Instant::now() < deadline => std::thread::yield_now(),
            Err(e) => return Err(e.into()),
        }
    };
    PER_RECORD
        .iter()
        .map(|name| {
            let entries = db
                .open_tree(name)?
                .iter()
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok((*name, entries))
        })
        .collect()
}

/// The `b`-th of `batches` slices of `entries`.
fn slice<T>(entries: &[T], b: usize, batches: usize) -> &[T] {
    let per = entries.len().div_ceil(batches);
    let from = (b * per).min(entries.len());
    &entries[from..(from + per).min(entries.len())]
}

/// When a run of transactions flushes.
#[derive(Clone, Copy, PartialEq)]
enum Flush {
    /// After each transaction (as the store's group commit does).
    EachTransaction,
    /// Once, at the end (sled's own flush every 500 ms off).
    OnceAtTheEnd,
}

/// Writes `kept` into a new database at `dir` in `batches` transactions,
/// each over every tree of `kept` (a slice of each tree's keys, in key
/// order), flushed as `flush` says; seconds.
fn sled_transactions(
    dir: &std::path::Path,
    kept: &Kept,
    batches: usize,
    flush: Flush,
) -> Result<f64> {
    let mut config = sled::Config::new().path(dir).cache_capacity(CACHE);
    if flush == Flush::OnceAtTheEnd {
        config = config.flush_every_ms(None);
    }
    let db = config.open()?;
    let trees = kept
        .iter()
        .map(|(name, _)| db.open_tree(name))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let started = Instant::now();
    for b in 0..batches {
        trees
            .as_slice()
            .transaction(|tx| {
                for (t, (_, entries)) in kept.iter().enumerate() {
                    for (k, v) in slice(entries, b, batches) {
                        tx[t].insert(k, v)?;
                    }
                }
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| format!("a transaction failed: {e:?}"))?;
        if flush == Flush::EachTransaction {
            db.flush()?;
        }
    }
    if flush == Flush::OnceAtTheEnd {
        db.flush()?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// The trees of `kept` that `keep` takes, with the entries of each that
/// `entry` takes.
fn part(kept: &Kept, keep: impl Fn(&str) -> bool, entry: impl Fn(&[u8]) -> bool) -> Kept {
    kept.iter()
        .filter(|(name, _)| keep(name))
        .map(|(name, entries)| {
            let taken = entries.iter().filter(|(k, _)| entry(k)).cloned().collect();
            (*name, taken)
        })
        .collect()
}

/// How many keys `kept` holds.
fn keys_in(kept: &Kept) -> usize {
    kept.iter().map(|(_, e)| e.len()).sum()
}

/// Writes `kept` into one tree of a new database at `dir` (each key behind
/// its tree's number) in `batches` batches, one flush each; seconds.
fn sled_batches(dir: &std::path::Path, kept: &Kept, batches: usize) -> Result<f64> {
    let db = sled::Config::new().path(dir).cache_capacity(CACHE).open()?;
    let tree = db.open_tree("one")?;
    let started = Instant::now();
    for b in 0..batches {
        let mut batch = sled::Batch::default();
        for (t, (_, entries)) in kept.iter().enumerate() {
            for (k, v) in slice(entries, b, batches) {
                let mut key = vec![t as u8];
                key.extend_from_slice(k);
                batch.insert(key, v.clone());
            }
        }
        tree.apply_batch(batch)?;
        db.flush()?;
    }
    Ok(started.elapsed().as_secs_f64())
}

fn main() -> Result<()> {
    let records: usize = std::env::var("CETRACK_FLOOR_RECORDS")
        .ok()
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(20_000);
    let batches = records.div_ceil(IN_FLIGHT);
    let dir = tempfile::tempdir()?;
    let store_rate = through_the_store(&dir.path().join("store"), records)?;
    let kept = keys_of(&dir.path().join("store"))?;
    let count = |name: &str| {
        kept.iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, e)| e.len())
    };
    if count("records") != records || count("changes") != records {
        return Err(format!(
            "the store kept {} records and {} changes of {records}",
            count("records"),
            count("changes")
        )
        .into());
    }
    let keys = keys_in(&kept);
    let per_record = keys as f64 / records as f64;
    let in_tx = sled_transactions(
        &dir.path().join("tx"),
        &kept,
        batches,
        Flush::EachTransaction,
    )?;
    let in_batches = sled_batches(&dir.path().join("batch"), &kept, batches)?;
    let alone: Kept = kept
        .iter()
        .filter(|(n, _)| *n == "records")
        .cloned()
        .collect();
    let one_key = sled_transactions(
        &dir.path().join("one-key"),
        &alone,
        batches,
        Flush::EachTransaction,
    )?;
    let rate = |seconds: f64| records as f64 / seconds;
    let unindexed = part(&kept, |n| n != "index", |_| true);
    let no_index = sled_transactions(
        &dir.path().join("unindexed"),
        &unindexed,
        batches,
        Flush::EachTransaction,
    )?;
    let index_only = part(&kept, |n| n == "index", |_| true);
    let index_alone = sled_transactions(
        &dir.path().join("index"),
        &index_only,
        batches,
        Flush::EachTransaction,
    )?;
    // Each kind of index entry alone (its first byte, see the store's keys).
    let mut kinds = Vec::new();
    for kind in *b"sioctdme" {
        let only = part(&kept, |n| n == "index", |k| k.first() == Some(&kind));
        let per = keys_in(&only) as f64 / records as f64;
        let seconds = sled_transactions(
            &dir.path().join(format!("kind-{kind}")),
            &only,
            batches,
            Flush::EachTransaction,
        )?;
        kinds.push(format!(
            "{} {:.0}/s ({per:.2})",
            kind as char,
            rate(seconds)
        ));
    }
    let one_flush = sled_transactions(
        &dir.path().join("one-flush"),
        &kept,
        batches,
        Flush::OnceAtTheEnd,
    )?;
    let by_tree: Vec<String> = kept
        .iter()
        .map(|(n, e)| format!("{n} {:.2}", e.len() as f64 / records as f64))
        .collect();
    println!(
        "{records} creates; keys per record {per_record:.2} ({})",
        by_tree.join(", ")
    );
    println!("  the store, {IN_FLIGHT} in flight, each durable   {store_rate:>8.0}/s");
    println!(
        "  sled alone, the same keys, a transaction of {IN_FLIGHT} + flush {:>8.0}/s  (store / this {:.2}x)",
        rate(in_tx),
        store_rate / rate(in_tx)
    );
    println!(
        "  sled alone, the same keys, one tree's batch of {IN_FLIGHT} + flush {:>8.0}/s",
        rate(in_batches)
    );
    println!(
        "  sled alone, the record alone (1 key), a transaction of {IN_FLIGHT} + flush {:>8.0}/s  ({:.2}x the record's keys)",
        rate(one_key),
        rate(one_key) / rate(in_tx)
    );
    println!(
        "  sled alone, every key but the index entries ({:.2}), a transaction of {IN_FLIGHT} + flush {:>8.0}/s",
        keys_in(&unindexed) as f64 / records as f64,
        rate(no_index)
    );
    println!(
        "  sled alone, the index entries alone, a transaction of {IN_FLIGHT} + flush {:>8.0}/s",
        rate(index_alone)
    );
    println!(
        "  sled alone, each kind of index entry alone (keys per record): {}",
        kinds.join(", ")
    );
    println!(
        "  sled alone, the same keys, a transaction of {IN_FLIGHT}, one flush at the end {:>8.0}/s",
        rate(one_flush)
    );
    Ok(())
}
