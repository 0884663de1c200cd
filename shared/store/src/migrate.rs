//! The migration: brings a store of an earlier schema version to
//! [`SCHEMA_VERSION`] on open (see [`migrate`]), and gives records kept
//! without their spans their spans (see [`add_spans`]).
//!
//! The rewrites write values derived only from what they do not change, in
//! batches, before one transaction sets the new schema version; so a crash
//! leaves either the old schema version (and the migration runs again at
//! the next open, writing the same) or the new one with what is left marked
//! (and the next open finishes it).

use std::collections::{BTreeMap, HashMap};

use prost::Message;
use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

use cetrack_contract::dates::now;
use cetrack_contract::error::{Error, Result};
use cetrack_contract::proto::{Change, ChangeType, Initiative, StatusChange};
use cetrack_contract::{rules, summary};

use crate::{
    at, decode, kept, keys, label_entries, request_hash, storage, tx_error, StoredRequest, Tree,
    META_SCHEMA, META_SPANS_PENDING, SCHEMA_VERSION,
};

/// Writes to one tree in batches of [`Batched::SIZE`]: a bound on what a
/// migration holds in memory, whatever the store's size. What is left is
/// written only by [`Batched::finish`].
struct Batched<'a> {
    tree: &'a sled::Tree,
    batch: sled::Batch,
    pending: usize,
}

impl<'a> Batched<'a> {
    /// The writes one batch applies.
    const SIZE: usize = 1_000;

    fn new(tree: &'a sled::Tree) -> Self {
        Self {
            tree,
            batch: sled::Batch::default(),
            pending: 0,
        }
    }

    /// Inserts `value` at `key`, applying the batch once it is full.
    fn insert(&mut self, key: impl Into<sled::IVec>, value: impl Into<sled::IVec>) -> Result<()> {
        self.batch.insert(key, value);
        self.counted()
    }

    /// Removes `key`, applying the batch once it is full.
    fn remove(&mut self, key: impl Into<sled::IVec>) -> Result<()> {
        self.batch.remove(key);
        self.counted()
    }

    fn counted(&mut self) -> Result<()> {
        self.pending += 1;
        if self.pending == Self::SIZE {
            self.apply()?;
        }
        Ok(())
    }

    fn apply(&mut self) -> Result<()> {
        self.pending = 0;
        self.tree
            .apply_batch(std::mem::take(&mut self.batch))
            .map_err(storage)
    }

    /// Applies what is left.
    fn finish(mut self) -> Result<()> {
        self.apply()
    }
}

/// A request id as schema 1 and 2 kept it: the whole request and the whole
/// first answer (read only by the migration).
#[derive(Clone, PartialEq, Message)]
struct StoredResponse {
    #[prost(bytes = "vec", tag = "1")]
    fingerprint: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    response: Vec<u8>,
}

/// Rewrites the request ids of schema 1 and 2 in the compact form (see
/// [`StoredRequest`]), in batches; an entry already rewritten is left alone,
/// so that after a crash the migration runs again and finishes the rest.
fn compact_requests(trees: &[sled::Tree]) -> Result<u64> {
    let requests = at(trees, Tree::Requests);
    let mut batch = Batched::new(requests);
    let mut n = 0u64;
    for kv in requests.iter() {
        let (k, v) = kv.map_err(storage)?;
        let old: StoredResponse = decode(&v)?;
        if old.response.is_empty() {
            continue;
        }
        let first: Initiative = decode(&old.response)?;
        let compact = StoredRequest {
            hash: request_hash(&old.fingerprint),
            revision: first.revision.unsigned_abs(),
            // Its answer's time; unknown: the migration's (kept a full
            // retention from now rather than forgotten at once).
            seconds: first
                .update_time
                .map(|t| t.seconds)
                .unwrap_or_else(|| now().seconds),
        };
        batch.insert(k, compact.encode_to_vec())?;
        n += 1;
    }
    batch.finish()?;
    Ok(n)
}

/// Gives every version of every initiative in the changes (the history) the
/// status history its changes tell, as version 3 records keep it: the
/// first status effective from the record's earliest dated source (else the
/// day it was created), each later status from the day it was recorded; a
/// record created again after a deletion starts afresh. Returns the status
/// history of each initiative's last version, by id.
///
/// Written in batches outside the migration's final transaction: what it
/// writes is derived only from what it does not change (statuses, times,
/// sources), so after a crash the migration runs again and writes the same.
fn add_status_histories(trees: &[sled::Tree]) -> Result<HashMap<String, Vec<StatusChange>>> {
    let changes = at(trees, Tree::Changes);
    let mut running: HashMap<String, Vec<StatusChange>> = Default::default();
    let mut batch = Batched::new(changes);
    for kv in changes.iter() {
        let (k, v) = kv.map_err(storage)?;
        let mut change: Change = decode(&v)?;
        let id = change
            .name
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let Some(version) = change.initiative.as_mut() else {
            continue;
        };
        if change.r#type == ChangeType::Created as i32 {
            running.remove(&id);
        }
        let history = running.entry(id).or_default();
        if change.r#type != ChangeType::Deleted as i32
            && history.last().map(|s| s.status) != Some(version.status)
        {
            let recorded_on = change
                .change_time
                .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
                .map(|t| cetrack_contract::dates::as_day(t.date()));
            // The first status from its dated source, unless that is later
            // than the day it was recorded.
            let effective = if history.is_empty() {
                match (rules::committed_on(version), recorded_on) {
                    (Some(c), Some(r)) => Some(
                        if cetrack_contract::valid_time::first_day(&c)
                            <= cetrack_contract::valid_time::first_day(&r)
                        {
                            c
                        } else {
                            r
                        },
                    ),
                    (c, r) => c.or(r),
                }
            } else {
                recorded_on
            };
            history.push(StatusChange {
                status: version.status,
                effective,
                record_time: change.change_time,
            });
        }
        version.status_history = history.clone();
        version.status_date = history.last().and_then(|s| s.effective);
        batch.insert(k, change.encode_to_vec())?;
    }
    batch.finish()?;
    Ok(running)
}

/// Brings a store of schema version `from` to [`SCHEMA_VERSION`]. The
/// versions in the history, the request ids and the records are rewritten
/// first, in batches, with values derived only from what they keep, and
/// flushed; then the counters, labels and the schema version in one
/// transaction made durable before it returns. A
/// crash leaves the old schema version, and the migration runs again at the
/// next open, writing the same. From 1 to 3: every record's milestones get
/// their entries in the due index. From 1 to 4: every record's source
/// documents get their entries in the document index. From 1 to 5: every
/// record's planned end gets its entry in the planned end index (entries of
/// a kind being added that are there already, left by a run that stopped
/// and a build that then wrote on without them, are dropped first). From 1 to 6:
/// every record's spans are kept beside it, once the version says 7 (see
/// [`add_spans`]). From 1 or 2: records and their versions in the history get
/// their status history (see [`add_status_histories`]); the summary counters and organization labels are
/// computed again from the records, per visibility and with dated moves.
pub fn migrate(db: &sled::Db, trees: &[sled::Tree], from: u32) -> Result<()> {
    let records = at(trees, Tree::Records);
    let (summary_tree, labels_tree) = (at(trees, Tree::Summary), at(trees, Tree::Labels));
    let mut counters: BTreeMap<Vec<u8>, i128> = Default::default();
    let mut labels: BTreeMap<Vec<u8>, Vec<u8>> = Default::default();
    // Records with their status history, written in batches as they are
    // read (derived values: a rerun writes the same).
    let mut rewritten = Batched::new(records);
    let histories = if from < 3 {
        let histories = add_status_histories(trees)?;
        let compacted = compact_requests(trees)?;
        tracing::info!(compacted, "request ids kept as a hash and a revision");
        // Durable before the schema version can say they are done.
        db.flush().map_err(storage)?;
        histories
    } else {
        Default::default()
    };
    // From 1 to 3: the due index entries of every record; from 1 to 4, its
    // document index entries; from 1 to 5, its planned end entries (derived
    // from the records alone: a rerun drops and writes the same).
    // The kinds of entry the store's version did not have.
    let added: Vec<u8> = [
        (keys::BY_DUE, from < 4),
        (keys::BY_DOCUMENT, from < 5),
        (keys::BY_END, from < 6),
    ]
    .into_iter()
    .filter_map(|(kind, added)| added.then_some(kind))
    .collect();
    let index = at(trees, Tree::Index);
    // Entries of those kinds are there only if an earlier run of this
    // migration stopped before the version moved and the earlier build then
    // wrote on without keeping them: stale, dropped before the records give
    // them again (so the index holds exactly what the records give).
    let mut dropped = Batched::new(index);
    for kind in &added {
        for key in index.scan_prefix([*kind]).keys() {
            dropped.remove(key.map_err(storage)?)?;
        }
    }
    dropped.finish()?;
    let mut indexed = Batched::new(index);
    let mut n = 0u64;
    for kv in records.iter() {
        let (k, v) = kv.map_err(storage)?;
        let mut init = kept::record(&v)?;
        let id = String::from_utf8_lossy(&k);
        if !added.is_empty() {
            let entries = keys::index_entries(&id, &init).into_iter();
            for entry in entries.filter(|e| e.first().is_some_and(|k| added.contains(k))) {
                indexed.insert(entry, &[] as &[u8])?;
            }
        }
        if let Some(history) = histories.get(id.as_ref()) {
            init.status_history = history.clone();
            init.status_date = history.last().and_then(|s| s.effective);
            // Kept without its spans, as the version migrated from keeps
            // it: [`add_spans`] gives them, once the version says 7.
            rewritten.insert(k.clone(), init.encode_to_vec())?;
        }
        for (k, d) in summary::visible_delta(None, Some(&init)) {
            *counters.entry(k).or_default() += d;
        }
        labels.extend(label_entries(&init));
        n += 1;
    }
    rewritten.finish()?;
    indexed.finish()?;
    // Durable before the schema version can say they are done.
    db.flush().map_err(storage)?;
    counters.retain(|_, v| *v != 0);
    let old_summary: Vec<sled::IVec> = summary_tree
        .iter()
        .keys()
        .collect::<sled::Result<_>>()
        .map_err(storage)?;
    let old_labels: Vec<sled::IVec> = labels_tree
        .iter()
        .keys()
        .collect::<sled::Result<_>>()
        .map_err(storage)?;
    let migrating = [
        summary_tree.clone(),
        labels_tree.clone(),
        at(trees, Tree::Meta).clone(),
    ];
    migrating
        .as_slice()
        .transaction(|tx| {
            let (summary, labels_tx, meta) = (&tx[0], &tx[1], &tx[2]);
            for k in &old_summary {
                summary.remove(k)?;
            }
            for k in &old_labels {
                labels_tx.remove(k)?;
            }
            for (k, v) in &counters {
                summary.insert(k.as_slice(), &v.to_be_bytes())?;
            }
            for (k, v) in &labels {
                labels_tx.insert(k.as_slice(), v.as_slice())?;
            }
            meta.insert(META_SCHEMA, &SCHEMA_VERSION.to_be_bytes())?;
            meta.insert(META_SPANS_PENDING, &[] as &[u8])?;
            Ok::<_, ConflictableTransactionError<Error>>(())
        })
        .map_err(tx_error)?;
    db.flush().map_err(storage)?;
    add_spans(db, trees)?;
    tracing::info!(from, to = SCHEMA_VERSION, records = n, "store migrated");
    Ok(())
}

/// From 1 to 6: gives every record kept without its spans its spans (its
/// encoding kept as it is), in batches, then removes
/// [`META_SPANS_PENDING`], durably. Runs once the schema version says 7
/// (so that an earlier build, which could not read a record with its
/// spans, refuses the store rather than misread it); a crash leaves the
/// mark, and the next open runs it again. Reads take a record with or
/// without its spans meanwhile.
pub(crate) fn add_spans(db: &sled::Db, trees: &[sled::Tree]) -> Result<()> {
    let records = at(trees, Tree::Records);
    let mut batch = Batched::new(records);
    let mut n = 0u64;
    for kv in records.iter() {
        let (k, v) = kv.map_err(storage)?;
        if !kept::has_header(&v) {
            batch.insert(k, kept::with_header(&v)?)?;
            n += 1;
        }
    }
    batch.finish()?;
    db.flush().map_err(storage)?;
    at(trees, Tree::Meta)
        .remove(META_SPANS_PENDING)
        .map_err(storage)?;
    db.flush().map_err(storage)?;
    tracing::info!(records = n, "records kept with their spans");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batched_write_applies_each_full_batch_and_the_rest_at_its_finish() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::Storage(e.to_string()))?;
        let db = sled::open(dir.path()).map_err(storage)?;
        let tree = db.open_tree("t").map_err(storage)?;
        let n = 2 * Batched::SIZE + 345;
        let mut batch = Batched::new(&tree);
        for i in 0..n {
            batch.insert(format!("k{i:05}").as_bytes(), i.to_be_bytes().as_slice())?;
            // Each full batch is applied as it fills, nothing before (sled
            // counts a tree by reading it: looked at around each boundary).
            let written = i + 1;
            if matches!(written % Batched::SIZE, 0 | 1)
                || written % Batched::SIZE == Batched::SIZE - 1
            {
                assert_eq!(tree.len(), written / Batched::SIZE * Batched::SIZE);
            }
        }
        batch.finish()?;
        assert_eq!(tree.len(), n);
        for i in 0..n {
            let value = tree.get(format!("k{i:05}")).map_err(storage)?;
            assert_eq!(value.as_deref(), Some(i.to_be_bytes().as_slice()));
        }
        Ok(())
    }
}
