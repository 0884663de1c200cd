//! Writes: one writer thread applies them, many to a transaction.
//!
//! A caller's write is queued to the store's writer thread, which takes
//! every write waiting (up to [`MAX_BATCH`]) and applies them in order in
//! one sled transaction: each sees the ones before it (the transaction's
//! own reads see its writes), each gets its own answer (a write refused by
//! its plan, or by a rule, changes nothing and does not stop the others),
//! and the revisions they take follow the queue's order. The callers then
//! wait for a flush that began after the transaction committed (see
//! `commit`), so that concurrent writers share both the transaction and the
//! flush.
//!
//! What many writes of a batch share is written once, at the end of its
//! transaction (see [`Tail`]): the summary counters they move (summed), the
//! organization labels they record (the last one of each) and the domain's
//! last revision and change time. A batch of creates touches the same few
//! counters again and again; each key written once is a lookup and an
//! insert the transaction does not repeat.
//!
//! Why one thread: sled 0.34.7 runs every transaction under one global
//! lock that also stops every read of the process for as long as the
//! transaction's closure runs, so writers gain nothing by running at once;
//! what they cost is a blocking thread each, queued on the write lock, and a
//! wake-up per hand-over. One thread, one transaction per batch, costs the
//! lock and the log's batch seal once for many writes.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Weak};

use prost::Message;
use sled::transaction::{ConflictableTransactionResult, TransactionalTree};
use sled::Transactional;
use tokio::sync::oneshot;

use cetrack_contract::dates::now;
use cetrack_contract::error::{Error, Result};
use cetrack_contract::proto::{Change, ChangeType, Initiative};
use cetrack_contract::rules;
use cetrack_contract::summary::{self, LastChange};
use pbjson_types::Timestamp;

use crate::snapshot::Capture;
use crate::{
    at, counter, decode, etag, keep_pre_image, kept, keys, label_entries, request_hash,
    timestamp_bytes, tx_error, u64_of, Applied, Idempotency, Inner, Outcome, Plan, Store,
    StoredRequest, Tree, META_REVISION, META_TIME,
};

/// The most writes one transaction applies: a bound on what the writer
/// thread holds in memory and on how long one transaction holds sled's
/// lock (and so every read) at once.
pub(crate) const MAX_BATCH: usize = 64;

/// What decides a write from the initiative's current version.
pub(crate) type PlanFn = dyn Fn(Option<&Initiative>) -> Result<Plan> + Send;

/// One write, as the writer thread applies it.
pub(crate) struct Request {
    pub(crate) id: String,
    pub(crate) idempotency: Option<Idempotency>,
    pub(crate) reporter: String,
    pub(crate) plan: Box<PlanFn>,
}

impl Request {
    /// Write `plan` to initiative `id` for `reporter`.
    pub(crate) fn new(
        id: &str,
        idempotency: Option<Idempotency>,
        reporter: &str,
        plan: impl Fn(Option<&Initiative>) -> Result<Plan> + Send + 'static,
    ) -> Self {
        Self {
            id: id.to_string(),
            idempotency,
            reporter: reporter.to_string(),
            plan: Box::new(plan),
        }
    }
}

/// A write queued for the writer thread, with where its answer goes.
pub(crate) struct Queued {
    request: Request,
    reply: oneshot::Sender<Result<Outcome>>,
}

/// The queue to the writer thread. Dropping it (with the store) ends the
/// thread once it has answered what was queued.
pub(crate) type Queue = mpsc::Sender<Queued>;

/// Starts the writer thread of `inner`; it holds the store only while it
/// applies a batch, so that dropping the last `Store` closes it.
pub(crate) fn start(inner: Weak<Inner>, queue: mpsc::Receiver<Queued>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("cetrack-writer".into())
        .spawn(move || {
            while let Ok(first) = queue.recv() {
                let mut batch = vec![first];
                batch.extend(queue.try_iter().take(MAX_BATCH - 1));
                let Some(s) = inner.upgrade() else {
                    return;
                };
                let (requests, replies): (Vec<_>, Vec<_>) =
                    batch.into_iter().map(|q| (q.request, q.reply)).unzip();
                let answers =
                    match std::panic::catch_unwind(AssertUnwindSafe(|| s.apply_batch(&requests))) {
                        Ok(answers) => answers,
                        Err(_) => {
                            s.failure
                                .set("a write panicked while it held the write lock");
                            let e = s
                                .sound()
                                .err()
                                .unwrap_or_else(|| Error::Unavailable("the store failed".into()));
                            vec![Err(e); requests.len()]
                        }
                    };
                // A write whose caller went away (cancelled) has no one to
                // ask for its flush: the thread asks, so that it becomes
                // durable (and reaches the change log) without waiting for
                // the next write.
                let mut orphaned = false;
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let written = matches!(answer, Ok(Outcome::Written(_)));
                    orphaned |= reply.send(answer).is_err() && written;
                }
                if orphaned {
                    s.group_commit.request_flush();
                }
                drop(s);
            }
        })
        .map(|_| ())
}

impl Store {
    /// Makes one change to initiative `id`: `plan` decides it from the current
    /// version; the record, its index entries, history, change log, summary
    /// counters and request id are written in one transaction (shared with
    /// the writes queued beside it), then the call waits until a flush has
    /// made it durable.
    pub async fn write<F>(
        &self,
        id: &str,
        idempotency: Option<Idempotency>,
        reporter: &str,
        plan: F,
    ) -> Result<Outcome>
    where
        F: Fn(Option<&Initiative>) -> Result<Plan> + Send + 'static,
    {
        self.inner.sound()?;
        let stopped = || Error::Unavailable("the store's writer has stopped".into());
        // Counted as writing until its answer is back, so that the committer
        // may hold a flush back a moment for it.
        let writing = self.inner.writers.enter();
        let (reply, answer) = oneshot::channel();
        let request = Request::new(id, idempotency, reporter, plan);
        self.inner
            .queue
            .send(Queued { request, reply })
            .map_err(|_| stopped())?;
        let outcome = answer.await.map_err(|_| stopped())??;
        drop(writing);
        // A replayed or unchanged answer may reflect a write still waiting
        // for its flush: it too is acknowledged only once durable.
        if let Err(e) = self.inner.group_commit.wait().await {
            // The committer answers with the store's failure; a committer
            // that is gone fails the store here.
            self.inner.failure.set(&e);
            return Err(self.inner.sound().err().unwrap_or(Error::Unavailable(e)));
        }
        Ok(outcome)
    }

    /// Applies one write in the calling thread, without waiting for its
    /// flush (tests of what is committed but not yet durable).
    #[cfg(test)]
    pub(crate) fn write_blocking(
        &self,
        id: &str,
        idempotency: Option<Idempotency>,
        reporter: &str,
        plan: impl Fn(Option<&Initiative>) -> Result<Plan> + Send + 'static,
    ) -> Result<Outcome> {
        let request = Request::new(id, idempotency, reporter, plan);
        self.inner
            .apply_batch(&[request])
            .pop()
            .unwrap_or_else(|| Err(Error::Storage("no answer".into())))
    }
}

/// Everything one write did: its answer, and what the summary gains.
type Done = (Outcome, Option<Applied>);

impl Inner {
    /// Applies `requests` in order in one transaction under the write lock
    /// and publishes what they did; one answer per request, in order.
    pub(crate) fn apply_batch(&self, requests: &[Request]) -> Vec<Result<Outcome>> {
        let all = |e: Error| vec![Err(e); requests.len()];
        let _guard = match self.lock() {
            Ok(g) => g,
            Err(e) => return all(e),
        };
        // Taken under the write lock: a snapshot registered before these
        // writes gets their pre-images, one registered after sees them done.
        let caps = self.captures.now();
        // What the committed attempt did (a conflicting attempt is run
        // again and overwrites it).
        let done: RefCell<Vec<Result<Done>>> = RefCell::new(Vec::new());
        let committed = self.trees.as_slice().transaction(|tx| {
            let mut answers = Vec::with_capacity(requests.len());
            let mut tail = Tail::default();
            for r in requests {
                answers.push(apply(tx, &caps, &mut tail, r)?);
            }
            tail.write(tx, &caps)?;
            *done.borrow_mut() = answers;
            Ok(())
        });
        if let Err(e) = committed.map_err(tx_error) {
            return all(e);
        }
        let done = done.into_inner();
        let mut published = None;
        let mut answers = Vec::with_capacity(done.len());
        for d in done {
            answers.push(d.map(|(outcome, applied)| {
                if let (Outcome::Written(c), Some(applied)) = (&outcome, applied) {
                    let last = LastChange {
                        revision: c.revision as u64,
                        time: c.change_time,
                    };
                    let base = published
                        .take()
                        .unwrap_or_else(|| (*self.published()).clone());
                    published = Some(base.after(applied, last));
                }
                outcome
            }));
        }
        if let Some(p) = published {
            let revision = p.last.revision;
            self.publish(p);
            self.committed.store(revision, Ordering::SeqCst);
        }
        answers
    }
}

/// What the writes of one transaction leave to its end, each key written
/// once for all of them: counters moved by more than one write are moved
/// once by the sum, a label recorded twice is recorded as the later one, and
/// the domain's last revision and change time are the last write's.
#[derive(Default)]
struct Tail {
    /// Summary counter key -> the sum of the writes' moves.
    counters: BTreeMap<Vec<u8>, i128>,
    /// Organization label key -> the last label recorded.
    labels: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The last revision written and its time.
    last: Option<(u64, Timestamp)>,
}

impl Tail {
    /// The revision the next write takes.
    fn next_revision(
        &self,
        meta: &TransactionalTree,
    ) -> std::result::Result<u64, sled::transaction::UnabortableTransactionError> {
        Ok(match self.last {
            Some((rev, _)) => rev,
            None => u64_of(&meta.get(META_REVISION)?.unwrap_or_default()),
        } + 1)
    }

    /// Records what a write applied.
    fn add(&mut self, applied: &Applied, revision: u64, now: Timestamp) {
        for (k, d) in &applied.delta {
            *self.counters.entry(k.clone()).or_default() += d;
        }
        self.labels.extend(applied.labels.iter().cloned());
        self.last = Some((revision, now));
    }

    /// Writes it, at the end of the transaction.
    fn write(
        &self,
        tx: &[TransactionalTree],
        caps: &[Arc<Capture>],
    ) -> ConflictableTransactionResult<(), Error> {
        let keep =
            |tx: &TransactionalTree, tree: Tree, key: &[u8]| keep_pre_image(caps, tx, tree, key);
        let (summary, labels, meta) = (
            at(tx, Tree::Summary),
            at(tx, Tree::Labels),
            at(tx, Tree::Meta),
        );
        for (k, d) in self.counters.iter().filter(|(_, d)| **d != 0) {
            let v = summary.get(k)?.map(|b| counter(&b)).unwrap_or(0) + d;
            keep(summary, Tree::Summary, k)?;
            if v == 0 {
                summary.remove(k.as_slice())?;
            } else {
                summary.insert(k.as_slice(), &v.to_be_bytes())?;
            }
        }
        for (key, label) in &self.labels {
            keep(labels, Tree::Labels, key)?;
            labels.insert(key.as_slice(), label.as_slice())?;
        }
        if let Some((revision, now)) = &self.last {
            keep(meta, Tree::Meta, META_REVISION)?;
            meta.insert(META_REVISION, &revision.to_be_bytes())?;
            keep(meta, Tree::Meta, META_TIME)?;
            meta.insert(META_TIME, timestamp_bytes(now))?;
        }
        Ok(())
    }
}

/// The caller's error of one write (the write changes nothing; the batch
/// goes on), or what the transaction met (the batch is tried again or
/// fails whole).
type Applying = ConflictableTransactionResult<Result<Done>, Error>;

/// Applies one write in transaction `tx`, leaving what the batch shares to
/// `tail`.
fn apply(
    tx: &[TransactionalTree],
    caps: &[Arc<Capture>],
    tail: &mut Tail,
    r: &Request,
) -> Applying {
    /// The caller's error: this write stops here, having written nothing.
    macro_rules! refuse {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            }
        };
    }
    let Request {
        id,
        idempotency,
        reporter,
        plan,
    } = r;
    let id = id.as_str();
    let now = now();
    let keep = |tx: &TransactionalTree, tree: Tree, key: &[u8]| keep_pre_image(caps, tx, tree, key);
    let t = |tree| at(tx, tree);
    let (records, index, history, changes) = (
        t(Tree::Records),
        t(Tree::Index),
        t(Tree::History),
        t(Tree::Changes),
    );
    let (requests, meta) = (t(Tree::Requests), t(Tree::Meta));
    let request_key = idempotency
        .as_ref()
        .map(|i| keys::request(i.method, &i.request_id));
    if let (Some(key), Some(i)) = (&request_key, idempotency) {
        if let Some(stored) = requests.get(key)? {
            let stored: StoredRequest = refuse!(decode(&stored));
            if stored.hash != request_hash(&i.fingerprint) {
                return Ok(Err(Error::FailedPrecondition(format!(
                    "request_id `{}` was already used for a different request",
                    i.request_id
                ))));
            }
            // The first answer is the initiative of the change it wrote.
            let change = refuse!(changes
                .get(keys::revision(stored.revision))?
                .map(|b| decode::<Change>(&b))
                .transpose())
            .and_then(|c| c.initiative);
            let Some(first) = change else {
                return Ok(Err(Error::Corrupt(format!(
                    "request_id `{}` names revision {}, which is missing",
                    i.request_id, stored.revision
                ))));
            };
            return Ok(Ok((Outcome::Replayed(Box::new(first)), None)));
        }
    }
    let current: Option<Initiative> = match records.get(id.as_bytes())? {
        Some(bytes) => Some(refuse!(kept::record(&bytes))),
        None => None,
    };
    let revision = tail.next_revision(meta)?;
    let (new, change_type) = match refuse!(plan(current.as_ref())) {
        Plan::Unchanged(i) => return Ok(Ok((Outcome::Unchanged(Box::new(i)), None))),
        Plan::Put {
            mut record,
            change_type,
        } => {
            record.revision = revision as i64;
            record.etag = etag(revision);
            record.update_time = Some(now);
            if current.is_none() {
                record.create_time = Some(now);
            }
            refuse!(rules::check_size(&record));
            (Some(record), change_type)
        }
        Plan::Delete => (None, ChangeType::Deleted),
    };
    let Some(old_or_new) = new.as_ref().or(current.as_ref()) else {
        return Ok(Err(Error::NotFound(format!("initiative `{id}` not found"))));
    };
    // Nothing is written above this line: a refused write leaves the
    // transaction as it found it.

    // The record and its index entries.
    let old_keys = current
        .as_ref()
        .map(|c| keys::index_entries(id, c))
        .unwrap_or_default();
    let new_keys = new
        .as_ref()
        .map(|n| keys::index_entries(id, n))
        .unwrap_or_default();
    for k in old_keys.difference(&new_keys) {
        keep(index, Tree::Index, k)?;
        index.remove(k.as_slice())?;
    }
    for k in new_keys.difference(&old_keys) {
        keep(index, Tree::Index, k)?;
        index.insert(k.as_slice(), &[] as &[u8])?;
    }
    keep(records, Tree::Records, id.as_bytes())?;
    match &new {
        Some(n) => records.insert(id.as_bytes(), kept::encode(n))?,
        None => records.remove(id.as_bytes())?,
    };

    // History and the change log.
    let change = Change {
        revision: revision as i64,
        change_time: Some(now),
        r#type: change_type as i32,
        name: old_or_new.name.clone(),
        changed_fields: match (&current, &new) {
            (_, None) => vec![],
            (old, Some(n)) => rules::changed_fields(old.as_ref(), n),
        },
        reporter: reporter.to_string(),
        initiative: Some(old_or_new.clone()),
    };
    let history_key = keys::history(id, revision);
    keep(history, Tree::History, &history_key)?;
    history.insert(history_key, &[] as &[u8])?;
    keep(changes, Tree::Changes, &keys::revision(revision))?;
    changes.insert(&keys::revision(revision), change.encode_to_vec())?;

    // Summary counters and organization labels (written with the batch's).
    let applied = Applied {
        delta: summary::visible_delta(current.as_ref(), new.as_ref()),
        labels: new.as_ref().map(label_entries).unwrap_or_default(),
    };
    tail.add(&applied, revision, now);

    // The request id.
    if let (Some(key), Some(i)) = (&request_key, idempotency) {
        let stored = StoredRequest {
            hash: request_hash(&i.fingerprint),
            revision,
            seconds: now.seconds,
        };
        keep(requests, Tree::Requests, key)?;
        requests.insert(key.as_slice(), stored.encode_to_vec())?;
    }
    Ok(Ok((Outcome::Written(Box::new(change)), Some(applied))))
}
