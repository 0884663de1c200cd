//! A domain's durable store: the only crate that knows sled. A store is one
//! sled `Db` with the trees of [`Tree`]; a change writes them all in one
//! transaction, which one writer thread shares among the changes queued
//! together (see `write`). A write is acknowledged only after a flush that
//! began after its transaction committed (group commit, see `commit`). [`backup`] takes
//! consistent snapshots of a running store and restores them.

pub mod backup;
mod commit;
mod due;
mod kept;
mod keys;
mod migrate;
mod snapshot;
#[cfg(test)]
pub(crate) mod tests;
mod write;

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use prost::bytes::Bytes;
use prost::Message;
use sled::transaction::TransactionError;
use time::Date;
use tokio::sync::watch;

use cetrack_contract::dates;
use cetrack_contract::domain::Domain;
use cetrack_contract::error::{Error, Result};
use cetrack_contract::pagination;
use cetrack_contract::proto::{Change, ChangeType, DomainSummary, Initiative};
use cetrack_contract::rules::Filter;
use cetrack_contract::summary::{self, LastChange, OrganizationLabel, SummaryWindow, Visibility};
use cetrack_contract::valid_time::{OnDay, Spans};

use commit::{Failure, Faults, GroupCommit};
pub use due::DuePage;
use migrate::add_spans;
pub use migrate::migrate;
use snapshot::{Capture, Captures};
pub use snapshot::{Snapshot, MAX_CAPTURED_BYTES};

/// The store layout this build writes. A store with a higher version was
/// written by a newer cetrack and is refused; an older one is migrated on
/// open (see [`migrate()`]).
///
/// - 1: the first release.
/// - 2: summary counters and organization labels kept per visibility
///   (public records, restricted records), so that a caller without
///   clearance is counted only what they may see.
/// - 3: records carry their dated status history (valid time), and the
///   summary counters gain dated moves, so that a summary "as of" any day
///   is read from counters; a request id keeps the hash of its request and
///   the revision of its first answer (not both whole), with its time, so
///   that it can expire.
/// - 4: the index gains the milestones in due order (`keys::BY_DUE`), so that
///   a timeline page reads what it returns.
/// - 5: the index gains the records of each source document
///   (`keys::BY_DOCUMENT`), so that a list or a summary of one document reads
///   that document's records, not every record.
/// - 6: the index gains the records by the end of their planned end period
///   (`keys::BY_END`), so that a list or search with a due window reads the
///   records in the window (with the milestones of the due index), not
///   every record.
/// - 7: each record is kept with its spans before its encoding (whether it
///   is restricted, the first day it exists and the first day it is as
///   kept; see `kept`), so that a read knows who may see it and passes it
///   on as stored without reading its encoding.
pub const SCHEMA_VERSION: u32 = 7;

/// One key of one tree, as stored: (tree, key, value).
pub type RawEntry = (Tree, Vec<u8>, Vec<u8>);

/// The trees of a store. [`Tree::ALL`] is the one list of them: the store
/// opens, writes, snapshots and restores exactly these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tree {
    /// Schema version, domain, last revision and change time.
    Meta,
    /// Initiative id -> current `Initiative`.
    Records,
    /// Secondary index entries (status, instrument, organization, country,
    /// topic, source document, planned end, milestones by due day), see
    /// `keys`.
    Index,
    /// Id + NUL + revision -> nothing (an index into `changes`).
    History,
    /// Revision -> `Change`, the outbox that history and WatchChanges read.
    Changes,
    /// Summary counters, see [`cetrack_contract::summary`].
    Summary,
    /// Organization id -> its last recorded name and country.
    Labels,
    /// Method + request id -> the first response (AIP-155).
    Requests,
}

impl Tree {
    /// Every tree, in the order a backup lists them.
    pub const ALL: [Tree; 8] = [
        Tree::Meta,
        Tree::Records,
        Tree::Index,
        Tree::History,
        Tree::Changes,
        Tree::Summary,
        Tree::Labels,
        Tree::Requests,
    ];

    /// The sled tree's name, as backups carry it.
    pub fn name(self) -> &'static str {
        match self {
            Tree::Meta => "meta",
            Tree::Records => "records",
            Tree::Index => "index",
            Tree::History => "history",
            Tree::Changes => "changes",
            Tree::Summary => "summary",
            Tree::Labels => "labels",
            Tree::Requests => "requests",
        }
    }

    /// The tree named `name`.
    pub fn from_name(name: &str) -> Option<Tree> {
        Tree::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// Tree `t` of `trees`, a list made from [`Tree::ALL`] in its order (sled
/// trees, or the views of one transaction).
fn at<T>(trees: &[T], t: Tree) -> &T {
    &trees[t as usize]
}

const META_SCHEMA: &[u8] = b"schema_version";
const META_DOMAIN: &[u8] = b"domain";
const META_REVISION: &[u8] = b"last_revision";
const META_TIME: &[u8] = b"last_change_time";
/// Present while records kept without their spans (by schema version 6 or
/// earlier) remain: set with schema version 7 by the migration, removed
/// once [`add_spans`] has given every record its spans.
const META_SPANS_PENDING: &[u8] = b"spans_pending";

/// Most index entries counted per candidate when a list chooses which index
/// to walk (see `Store::most_selective`).
const SELECTIVITY_PROBE: usize = 1_000;

/// Most entries of a due window a list gathers for a page (see
/// `Store::most_selective`): a window with more is paged by another index
/// or the records in id order, as before the window had an index.
const WINDOW_MOST: usize = 10_000;

/// A file written beside sled's files once a store has been initialised.
/// sled reads a log it cannot parse as an empty database; the marker tells an
/// unreadable store from a new one, so that damaged files are refused instead
/// of being silently replaced by an empty store.
const MARKER_FILE: &str = "cetrack-store";

/// Writes the marker of an initialised store and makes it durable.
fn write_marker(dir: &Path, domain: Domain) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join(MARKER_FILE))?;
    writeln!(
        f,
        "a cetrack store of the {domain} domain, schema version {SCHEMA_VERSION}"
    )?;
    f.sync_all()?;
    std::fs::File::open(dir)?.sync_all()
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another process (or a store of this process not yet closed) holds the
    /// store's lock.
    #[error("the store in {path} is in use by another process: {source}")]
    Locked {
        /// The directory.
        path: PathBuf,
        /// The cause, as the operating system reported it.
        source: std::io::Error,
    },
    /// The data directory cannot be used.
    #[error("cannot use data directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The files are damaged.
    #[error(
        "the store in {path} is damaged and cannot be opened: {reason}; restore it from a backup"
    )]
    Damaged {
        /// The directory.
        path: PathBuf,
        /// What sled or the check found.
        reason: String,
    },
    /// The store was written by a newer cetrack.
    #[error("the store in {path} has schema version {found}, newer than this build supports ({supported}); run a newer cetrack")]
    NewerSchema {
        /// The directory.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// The version this build writes.
        supported: u32,
    },
    /// The store belongs to another domain.
    #[error("the store in {path} holds the {found} domain, not {expected}")]
    WrongDomain {
        /// The directory.
        path: PathBuf,
        /// The domain found.
        found: String,
        /// The domain expected.
        expected: Domain,
    },
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The domain the store holds.
    pub domain: Domain,
    /// The directory of the sled files.
    pub path: PathBuf,
    /// sled's page cache, in bytes.
    pub cache_capacity: u64,
}

/// A request id and what it guards (AIP-155).
#[derive(Debug, Clone)]
pub struct Idempotency {
    /// The method, e.g. `create`.
    pub method: &'static str,
    /// The caller's request id.
    pub request_id: String,
    /// The request as sent, request id cleared: a retry must match it.
    pub fingerprint: Vec<u8>,
}

/// What a write does to the initiative, decided from its current version.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Store this version. The store sets `revision`, `etag`, `update_time`
    /// (and `create_time` for a new initiative).
    Put {
        /// The new version.
        record: Initiative,
        /// What kind of change it is.
        change_type: ChangeType,
    },
    /// Remove the initiative; its history stays.
    Delete,
    /// Nothing changes; the current version is the answer.
    Unchanged(Initiative),
}

/// The answer to a write.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A new revision was written and is durable.
    Written(Box<Change>),
    /// Nothing changed.
    Unchanged(Box<Initiative>),
    /// A retry of an earlier request: its first answer.
    Replayed(Box<Initiative>),
}

impl Outcome {
    /// Whether this is the first answer of an earlier request, replayed
    /// (nothing was written now).
    pub fn replayed(&self) -> bool {
        matches!(self, Outcome::Replayed(_))
    }

    /// The initiative the caller gets back.
    pub fn into_initiative(self) -> Initiative {
        match self {
            Outcome::Written(c) => c.initiative.unwrap_or_default(),
            Outcome::Unchanged(i) | Outcome::Replayed(i) => *i,
        }
    }
}

/// One page of a scan.
#[derive(Debug, Clone, Default)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Whether more items may follow the last one.
    pub more: bool,
    /// Where the next page of a list starts (after this id), when there is
    /// more: the last record returned, or, when the page ended on its budget
    /// of records examined, the last one examined (which the filter, or the
    /// caller's clearance, may have left out).
    pub resume_after: Option<String>,
    /// Whether `resume_after` names an item this page returned (one the
    /// caller saw).
    pub resumes_after_returned: bool,
}

/// An index a list could walk to find its records (see
/// `Store::most_selective`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Candidate {
    /// The entries under a prefix.
    Prefix(Vec<u8>),
    /// The records whose planned end or a milestone's due period ends
    /// within these days (day keys, both included).
    Window { from: i32, to: i32 },
}

/// The index a list walks, in id order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Walk {
    /// The entries under a prefix.
    Prefix(Vec<u8>),
    /// The ids of a due window's records, gathered when it was counted.
    Gathered(BTreeSet<String>),
}

/// A record a list walk came to.
enum Found {
    /// Gone since its index entry was read.
    Gone,
    /// The record as the store keeps it (its spans, then its encoding: see
    /// `kept`).
    Kept(sled::IVec),
    /// A version from the history (as known on a past day).
    Version(Box<Initiative>),
}

/// A page of a list being filled: [`Store::list`]'s bounds in one place.
struct Filling<'a> {
    filter: &'a Filter,
    /// The day the filter speaks for.
    day: Date,
    limit: usize,
    /// Most records examined (see [`Store::list_within`]).
    max_examined: usize,
    examined: usize,
    /// Whether the page ended on `max_examined` rather than full or at the
    /// end of the walk.
    budget_spent: bool,
    bytes: usize,
    last_id: Option<String>,
    /// The id of the last record put in the page.
    last_returned: Option<String>,
    page: Page<Bytes>,
}

impl<'a> Filling<'a> {
    fn new(filter: &'a Filter, limit: usize, max_examined: usize) -> Self {
        Self {
            filter,
            day: filter.day(),
            limit,
            max_examined,
            examined: 0,
            budget_spent: false,
            bytes: 0,
            last_id: None,
            last_returned: None,
            page: Page::default(),
        }
    }

    /// The encoding to return of a record found, if it passes the filter:
    /// a kept record that is on the filter's day what it is kept as is
    /// passed on as stored (its spans, kept beside it, say so, and
    /// the whole record is read only when the filter looks at more than
    /// the day and the caller's clearance); any other is projected to the
    /// day and encoded.
    fn pick(&self, found: Found) -> Result<Option<Bytes>> {
        let f = self.filter;
        let projected = |init: Initiative| f.select(init).map(|i| Bytes::from(i.encode_to_vec()));
        match found {
            Found::Gone => Ok(None),
            Found::Version(init) => Ok(projected(*init)),
            Found::Kept(value) => {
                let (spans, encoding) = kept::split(&value)?;
                if f.hide_restricted && spans.restricted {
                    return Ok(None);
                }
                match spans.on_day(self.day) {
                    OnDay::Absent => Ok(None),
                    OnDay::AsKept => {
                        if f.reads_records() && !f.matches(&decode(encoding)?) {
                            return Ok(None);
                        }
                        Ok(Some(kept::encoding_bytes(value)?))
                    }
                    OnDay::Projected => Ok(projected(decode(encoding)?)),
                }
            }
        }
    }

    /// Offers the record `id`; true when the page is complete: `limit`
    /// records, the next would take it past [`pagination::MAX_PAGE_BYTES`],
    /// or `max_examined` records were looked at.
    fn offer(&mut self, id: &str, found: Found) -> Result<bool> {
        self.examined += 1;
        if let Some(encoded) = self.pick(found)? {
            let size = encoded.len();
            let full = self.page.items.len() == self.limit
                || (!self.page.items.is_empty() && self.bytes + size > pagination::MAX_PAGE_BYTES);
            if full {
                // The next page starts after the last record returned (it
                // looks again at what was examined since, which the caller
                // may not see: a position there would name it).
                self.page.more = true;
                self.page.resume_after = self.last_returned.take();
                self.page.resumes_after_returned = true;
                return Ok(true);
            }
            self.bytes += size;
            self.page.items.push(encoded);
            self.last_returned = Some(id.to_string());
        }
        self.last_id = Some(id.to_string());
        if self.examined >= self.max_examined {
            self.budget_spent = true;
            self.page.more = true;
            self.page.resumes_after_returned = self.last_returned == self.last_id;
            self.page.resume_after = self.last_id.take();
            return Ok(true);
        }
        Ok(false)
    }
}

/// What the metrics report about a store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Initiatives in the store (from the summary counter, not a scan).
    pub initiatives: u64,
    /// The highest durable revision.
    pub last_revision: u64,
    /// The size of the store's files, in bytes.
    pub size_on_disk: u64,
    /// Flushes that made writes durable since the store opened (writers
    /// waiting together share one).
    pub flushes: u64,
    /// Changes read from the change log for change streams since the store
    /// opened.
    pub changes_read: u64,
}

/// A request id as kept from schema 3: the SHA-256 of the request and the
/// revision its first answer wrote (the answer is that change's initiative
/// in the change log), with when it was written, for the retention. Its tags
/// differ from those of schema 1 and 2's `StoredResponse` (see the
/// migration) so that the two are told apart.
#[derive(Clone, PartialEq, Message)]
struct StoredRequest {
    #[prost(bytes = "vec", tag = "4")]
    hash: Vec<u8>,
    #[prost(uint64, tag = "5")]
    revision: u64,
    #[prost(int64, tag = "6")]
    seconds: i64,
}

/// The hash a request id is kept with.
fn request_hash(fingerprint: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(fingerprint).to_vec()
}

/// A domain's durable store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    domain: Domain,
    path: PathBuf,
    db: sled::Db,
    /// Every tree of [`Tree::ALL`], in its order.
    trees: Vec<sled::Tree>,
    write_lock: Mutex<()>,
    /// The writer thread's queue (see [`write`]).
    queue: write::Queue,
    committed: Arc<AtomicU64>,
    durable: watch::Sender<u64>,
    group_commit: GroupCommit,
    /// Writers not yet waiting for their flush (see [`commit::Writers`]).
    writers: Arc<commit::Writers>,
    failure: Failure,
    faults: Arc<Faults>,
    /// The summary counters as of the last commit (see [`Published`]).
    published: RwLock<Arc<Published>>,
    /// Summaries assembled from the published counters (see
    /// [`Store::summary`]).
    summaries: Mutex<Assembled>,
    /// Changes read from the change log since the store opened.
    changes_read: AtomicU64,
    /// The snapshots being read, which writers keep pre-images for.
    captures: Captures,
}

/// Most summaries kept assembled (kinds of request: day, due window,
/// clearance); past it, none is kept until the next commit.
const MAX_ASSEMBLED: usize = 64;

/// Summaries assembled from one [`Published`] (the one held here, so that
/// a newer one is told from it), by day, due window and clearance.
#[derive(Default)]
struct Assembled {
    from: Option<Arc<Published>>,
    summaries: HashMap<(Date, i32, bool), DomainSummary>,
}

impl Assembled {
    /// Whether what is kept was assembled from `p` (the counters published
    /// now), not from an earlier commit's.
    fn assembled_from(&self, p: &Arc<Published>) -> bool {
        self.from.as_ref().is_some_and(|from| Arc::ptr_eq(from, p))
    }
}

/// The summary counters, organization labels and last change as of the last
/// commit: what a summary reads, without the write lock and without walking
/// a tree. Each write publishes a new one under the write lock; the maps
/// share their structure with the previous one, so that costs O(log n) per
/// changed counter, and a reader takes an `Arc` and never waits for a write.
#[derive(Debug, Clone, Default)]
struct Published {
    /// Stored counter key (visibility first) to value.
    counters: imbl::OrdMap<Vec<u8>, i128>,
    /// Stored label key (visibility first) to `country\0name`.
    labels: imbl::HashMap<Vec<u8>, Vec<u8>>,
    /// The last change committed.
    last: LastChange,
}

impl Published {
    /// Reads what the trees hold (at open and after a restore).
    fn load(trees: &[sled::Tree]) -> Result<Self> {
        let mut p = Published::default();
        for kv in at(trees, Tree::Summary).iter() {
            let (k, v) = kv.map_err(storage)?;
            p.counters.insert(k.to_vec(), counter(&v));
        }
        for kv in at(trees, Tree::Labels).iter() {
            let (k, v) = kv.map_err(storage)?;
            p.labels.insert(k.to_vec(), v.to_vec());
        }
        let meta = at(trees, Tree::Meta);
        p.last = LastChange {
            revision: meta
                .get(META_REVISION)
                .map_err(storage)?
                .map(|v| u64_of(&v))
                .unwrap_or(0),
            time: meta
                .get(META_TIME)
                .map_err(storage)?
                .and_then(|v| timestamp_of(&v)),
        };
        Ok(p)
    }

    /// The next one: `delta` applied to the counters, `labels` set, `last`.
    fn after(&self, applied: Applied, last: LastChange) -> Self {
        let mut next = self.clone();
        for (k, d) in applied.delta {
            let v = next.counters.get(&k).copied().unwrap_or(0) + d;
            if v == 0 {
                next.counters.remove(&k);
            } else {
                next.counters.insert(k, v);
            }
        }
        for (k, label) in applied.labels {
            next.labels.insert(k, label);
        }
        next.last = last;
        next
    }
}

/// What one write did to the summary counters and labels.
#[derive(Debug, Default)]
struct Applied {
    delta: std::collections::BTreeMap<Vec<u8>, i128>,
    labels: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Inner {
    /// The summary counters as of the last commit.
    /// The initiatives in the store, from the counters published by the
    /// last commit (every visibility).
    fn record_count(&self) -> u64 {
        let published = self.published();
        Visibility::ALL
            .iter()
            .filter_map(|v| {
                published
                    .counters
                    .get(&v.key(summary::INITIATIVE_COUNT_KEY))
            })
            .map(|n| u64::try_from(*n).unwrap_or(0))
            .sum()
    }

    fn published(&self) -> Arc<Published> {
        self.published
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn publish(&self, next: Published) {
        *self
            .published
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
    }

    fn tree(&self, t: Tree) -> &sled::Tree {
        at(&self.trees, t)
    }

    /// `Ok` while the store is sound; UNAVAILABLE once it failed.
    fn sound(&self) -> Result<()> {
        match self.failure.reason() {
            None => Ok(()),
            Some(why) => Err(Error::Unavailable(format!(
                "the {} store failed ({why}); it serves nothing until the service is restarted",
                self.domain
            ))),
        }
    }

    /// The write lock; a poisoned one fails the store.
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, ()>> {
        self.sound()?;
        match self.write_lock.lock() {
            Ok(guard) => Ok(guard),
            Err(_) => {
                self.failure
                    .set("the write lock is poisoned: a writer panicked while holding it");
                Err(self
                    .sound()
                    .err()
                    .unwrap_or_else(|| Error::Unavailable("the store failed".into())))
            }
        }
    }
}

/// A fault a test can inject into a store, to see what callers and the
/// health check are told.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The next flush fails.
    FlushFails,
    /// The committer thread stops.
    CommitterStops,
    /// A writer panics while holding the write lock.
    LockPoisoned,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("domain", &self.inner.domain)
            .field("path", &self.inner.path)
            .finish()
    }
}

fn storage(e: sled::Error) -> Error {
    match e {
        sled::Error::Corruption { .. } => Error::Corrupt(e.to_string()),
        other => Error::Storage(other.to_string()),
    }
}

fn tx_error(e: TransactionError<Error>) -> Error {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => storage(e),
    }
}

fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M> {
    M::decode(bytes).map_err(|e| Error::Corrupt(e.to_string()))
}

fn counter(bytes: &[u8]) -> i128 {
    bytes.try_into().map(i128::from_be_bytes).unwrap_or(0)
}

fn u64_of(bytes: &[u8]) -> u64 {
    bytes.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

fn timestamp_bytes(t: &pbjson_types::Timestamp) -> Vec<u8> {
    let mut v = t.seconds.to_be_bytes().to_vec();
    v.extend_from_slice(&t.nanos.to_be_bytes());
    v
}

fn timestamp_of(bytes: &[u8]) -> Option<pbjson_types::Timestamp> {
    let seconds = i64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
    let nanos = i32::from_be_bytes(bytes.get(8..12)?.try_into().ok()?);
    Some(pbjson_types::Timestamp { seconds, nanos })
}

/// The etag of a revision.
pub fn etag(revision: u64) -> String {
    format!("\"r{revision}\"")
}

/// The labels tree's entries for the organizations of `init`: key
/// visibility + organization id, value country code + NUL + name.
fn label_entries(init: &Initiative) -> Vec<(Vec<u8>, Vec<u8>)> {
    let v = Visibility::of(init);
    summary::organization_labels(init)
        .into_iter()
        .map(|(org, label)| {
            let mut bytes = label.country_code.into_bytes();
            bytes.push(0);
            bytes.extend_from_slice(label.name.as_bytes());
            (v.key(org.as_bytes()), bytes)
        })
        .collect()
}

/// Keeps the value `key` of `tree` has in transaction `tx` as its pre-image
/// for every snapshot in `caps`, before the write changes it (see
/// `snapshot`).
fn keep_pre_image(
    caps: &[Arc<Capture>],
    tx: &sled::transaction::TransactionalTree,
    tree: Tree,
    key: &[u8],
) -> std::result::Result<(), sled::transaction::UnabortableTransactionError> {
    if !caps.is_empty() {
        let pre = tx.get(key)?;
        for c in caps {
            c.keep(tree, key, pre.as_deref());
        }
    }
    Ok(())
}

impl Store {
    /// Opens (or creates) the store of a domain. Must be called from inside a
    /// Tokio runtime only in the sense that its futures are awaited there; the
    /// committer runs on its own thread.
    pub fn open(config: &StoreConfig) -> std::result::Result<Store, OpenError> {
        let path = config.path.clone();
        std::fs::create_dir_all(&path).map_err(|source| OpenError::Io {
            path: path.clone(),
            source,
        })?;
        let damaged = |reason: String| OpenError::Damaged {
            path: path.clone(),
            reason,
        };
        let io = |source: std::io::Error| OpenError::Io {
            path: path.clone(),
            source,
        };
        let initialised = path.join(MARKER_FILE).try_exists().map_err(io)?;
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(config.cache_capacity)
            .open()
            .map_err(|e| match e {
                // sled 0.34.7 reports its file lock held elsewhere only by
                // this text (an `ErrorKind::Other` I/O error): this is the one
                // place that reads it.
                sled::Error::Io(source)
                    if source.to_string().contains("could not acquire lock") =>
                {
                    OpenError::Locked {
                        path: path.clone(),
                        source,
                    }
                }
                sled::Error::Io(source) => OpenError::Io {
                    path: path.clone(),
                    source,
                },
                other => damaged(other.to_string()),
            })?;
        let trees = Tree::ALL
            .into_iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<sled::Result<Vec<_>>>()
            .map_err(|e| damaged(e.to_string()))?;
        let meta = at(&trees, Tree::Meta);
        let get = |k: &[u8]| meta.get(k).map_err(|e| damaged(e.to_string()));
        match get(META_SCHEMA)? {
            Some(v) => {
                let found = v
                    .as_ref()
                    .try_into()
                    .map(u32::from_be_bytes)
                    .map_err(|_| damaged("unreadable schema version".into()))?;
                if found > SCHEMA_VERSION {
                    return Err(OpenError::NewerSchema {
                        path,
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                let domain = get(META_DOMAIN)?.unwrap_or_default();
                if domain.as_ref() != config.domain.slug().as_bytes() {
                    return Err(OpenError::WrongDomain {
                        path,
                        found: String::from_utf8_lossy(&domain).into_owned(),
                        expected: config.domain,
                    });
                }
                if found < SCHEMA_VERSION {
                    migrate(&db, &trees, found).map_err(|e| damaged(e.to_string()))?;
                    write_marker(&path, config.domain).map_err(io)?;
                } else if get(META_SPANS_PENDING)?.is_some() {
                    // A migration to version 7 that stopped before it ended.
                    add_spans(&db, &trees).map_err(|e| damaged(e.to_string()))?;
                }
                if !initialised {
                    // A store written before the marker existed.
                    write_marker(&path, config.domain).map_err(io)?;
                }
            }
            None if initialised => {
                return Err(damaged(format!(
                    "its files exist ({MARKER_FILE} is there) but sled reads no cetrack store \
                     from them: the log is unreadable"
                )));
            }
            None => {
                let fresh = trees.iter().all(|t| t.is_empty());
                if !fresh {
                    return Err(damaged(
                        "records exist but the schema version is missing".into(),
                    ));
                }
                meta.insert(META_SCHEMA, &SCHEMA_VERSION.to_be_bytes())
                    .and_then(|_| meta.insert(META_DOMAIN, config.domain.slug().as_bytes()))
                    .map_err(|e| damaged(e.to_string()))?;
                db.flush().map_err(|e| damaged(e.to_string()))?;
                write_marker(&path, config.domain).map_err(io)?;
            }
        }
        let last = get(META_REVISION)?.map(|v| u64_of(&v)).unwrap_or(0);
        let committed = Arc::new(AtomicU64::new(last));
        let (durable, _) = watch::channel(last);
        let failure = Failure(watch::channel(None).0);
        let faults = Arc::new(Faults::default());
        let writers = Arc::new(commit::Writers::default());
        let group_commit = GroupCommit::start(
            db.clone(),
            committed.clone(),
            durable.clone(),
            failure.clone(),
            faults.clone(),
            writers.clone(),
        )
        .map_err(|source| OpenError::Io {
            path: path.clone(),
            source,
        })?;
        let published = RwLock::new(Arc::new(
            Published::load(&trees).map_err(|e| damaged(e.to_string()))?,
        ));
        let (queue, queued) = std::sync::mpsc::channel();
        let inner = Arc::new(Inner {
            domain: config.domain,
            trees,
            path,
            db,
            write_lock: Mutex::new(()),
            queue,
            committed,
            durable,
            group_commit,
            writers,
            failure,
            faults,
            published,
            summaries: Mutex::default(),
            changes_read: AtomicU64::new(0),
            captures: Captures::default(),
        });
        write::start(Arc::downgrade(&inner), queued).map_err(|source| OpenError::Io {
            path: inner.path.clone(),
            source,
        })?;
        Ok(Store { inner })
    }

    /// Follows the store's failed state: `None` while it is sound, then
    /// why it failed (a flush that failed, a committer that stopped, a
    /// poisoned lock). A failed store answers every call UNAVAILABLE, and
    /// never flushes again, until the service is restarted.
    pub fn failed(&self) -> watch::Receiver<Option<String>> {
        self.inner.failure.0.subscribe()
    }

    /// Injects `fault` (tests only).
    #[doc(hidden)]
    pub fn inject(&self, fault: Fault) {
        let s = &*self.inner;
        match fault {
            Fault::FlushFails => s.faults.fail_flush.store(true, Ordering::SeqCst),
            Fault::CommitterStops => s.faults.stop.store(true, Ordering::SeqCst),
            Fault::LockPoisoned => {
                let store = self.clone();
                let _ = std::thread::spawn(move || {
                    let _guard = store.inner.write_lock.lock();
                    panic!("injected: a writer panics holding the write lock");
                })
                .join();
            }
        }
    }

    /// The domain the store holds.
    pub fn domain(&self) -> Domain {
        self.inner.domain
    }

    /// The directory of the store.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The current version of initiative `id`.
    pub fn get(&self, id: &str) -> Result<Option<Initiative>> {
        self.inner.sound()?;
        match self
            .inner
            .tree(Tree::Records)
            .get(id.as_bytes())
            .map_err(storage)?
        {
            Some(b) => Ok(Some(kept::record(&b)?)),
            None => Ok(None),
        }
    }

    /// The current version of initiative `id` as the store encoded it, with
    /// its spans (its marking, and what it is on a day), kept beside it.
    pub fn get_encoded(&self, id: &str) -> Result<Option<(Bytes, Spans)>> {
        self.inner.sound()?;
        match self
            .inner
            .tree(Tree::Records)
            .get(id.as_bytes())
            .map_err(storage)?
        {
            Some(b) => {
                let (spans, _) = kept::split(&b)?;
                Ok(Some((kept::encoding_bytes(b)?, spans)))
            }
            None => Ok(None),
        }
    }

    /// Up to `limit` initiatives matching `filter`, in id order, after
    /// `after_id`, each encoded (a record that is today what it is kept as
    /// is passed on as stored). Uses the most selective index the filter
    /// allows.
    pub fn list(
        &self,
        filter: &Filter,
        after_id: Option<&str>,
        limit: usize,
    ) -> Result<Page<Bytes>> {
        self.fill(filter, after_id, limit, pagination::MAX_EXAMINED)
            .map(|filled| filled.page)
    }

    /// The page [`Store::list`] answers, if it is found before `examined`
    /// records have been examined (and reads no history): `None` when the
    /// walk came to that many without ending. A caller on an async worker reads a page that costs
    /// what it returns on the worker itself (from sled's cache, in
    /// microseconds) and hands only a longer walk to a blocking thread.
    pub fn list_within(
        &self,
        filter: &Filter,
        after_id: Option<&str>,
        limit: usize,
        examined: usize,
    ) -> Result<Option<Page<Bytes>>> {
        if filter.known_on.is_some() {
            return Ok(None);
        }
        let filled = self.fill(filter, after_id, limit, examined)?;
        Ok((!filled.budget_spent).then_some(filled.page))
    }

    /// Fills a page of `list`, examining at most `max_examined` records.
    fn fill<'f>(
        &self,
        filter: &'f Filter,
        after_id: Option<&str>,
        limit: usize,
        max_examined: usize,
    ) -> Result<Filling<'f>> {
        let s = &*self.inner;
        s.sound()?;
        let mut page = Filling::new(filter, limit, max_examined);
        if let Some(day) = filter.known_on {
            let known = self.revision_known_on(day)?;
            let hide = filter.hide_restricted;
            let mut failed = None;
            self.versions_known(known, after_id, |id, version, restricted_now| {
                let found = match version.filter(|_| !(hide && restricted_now)) {
                    Some(v) => Found::Version(Box::new(v)),
                    None => Found::Gone,
                };
                page.offer(id, found).unwrap_or_else(|e| {
                    failed = Some(e);
                    true
                })
            })?;
            return match failed {
                Some(e) => Err(e),
                None => Ok(page),
            };
        }
        // Every index the filter could walk; the one with the fewest entries
        // (counted up to SELECTIVITY_PROBE keys each) is walked, so that an
        // organization in most records and a rare topic cost what the topic
        // finds. Any of them gives the same records in the same (id) order.
        let mut candidates = Vec::new();
        let mut prefix = |p| candidates.push(Candidate::Prefix(p));
        if let Some(org) = &filter.organization_id {
            prefix(keys::text_prefix(keys::BY_ORGANIZATION, org));
        }
        if let Some(topic) = &filter.topic {
            prefix(keys::text_prefix(keys::BY_TOPIC, topic));
        }
        if let Some(cc) = &filter.country_code {
            prefix(keys::text_prefix(keys::BY_COUNTRY, cc));
        }
        if let ([status], true) = (filter.statuses.as_slice(), filter.current_status_applies()) {
            prefix(keys::int_prefix(keys::BY_STATUS, *status));
        }
        if let [instrument] = filter.instruments.as_slice() {
            prefix(keys::int_prefix(keys::BY_INSTRUMENT, *instrument));
        }
        if let Some(document) = &filter.document {
            prefix(keys::document_prefix(document));
        }
        if filter.due_after.is_some() || filter.due_before.is_some() {
            // A record in the window has its planned end or a milestone's
            // due period ending in it (met or not: the filter decides).
            candidates.push(Candidate::Window {
                from: filter.due_after.map_or(i32::MIN, dates::day_key),
                to: filter.due_before.map_or(i32::MAX, dates::day_key),
            });
        }
        let walk = self.most_selective(candidates, limit, max_examined)?;
        match walk {
            None => {
                let start = match after_id {
                    Some(a) => Bound::Excluded(a.as_bytes().to_vec()),
                    None => Bound::Unbounded,
                };
                for kv in s
                    .tree(Tree::Records)
                    .range::<Vec<u8>, _>((start, Bound::Unbounded))
                {
                    let (k, v) = kv.map_err(storage)?;
                    if page.offer(&String::from_utf8_lossy(&k), Found::Kept(v))? {
                        break;
                    }
                }
            }
            Some(Walk::Gathered(ids)) => {
                let start = after_id.map_or(Bound::Unbounded, Bound::Excluded);
                for id in ids.range::<str, _>((start, Bound::Unbounded)) {
                    // The record may have changed since the index entry was read.
                    let found = match s.tree(Tree::Records).get(id).map_err(storage)? {
                        Some(v) => Found::Kept(v),
                        None => Found::Gone,
                    };
                    if page.offer(id, found)? {
                        break;
                    }
                }
            }
            Some(Walk::Prefix(prefix)) => {
                let start = match after_id {
                    Some(a) => {
                        let mut k = prefix.clone();
                        k.extend_from_slice(a.as_bytes());
                        Bound::Excluded(k)
                    }
                    None => Bound::Included(prefix.clone()),
                };
                for kv in s
                    .tree(Tree::Index)
                    .range::<Vec<u8>, _>((start, Bound::Unbounded))
                {
                    let (k, _) = kv.map_err(storage)?;
                    let Some(id) = k.strip_prefix(prefix.as_slice()) else {
                        break;
                    };
                    // The record may have changed since the index entry was read.
                    let found = match s.tree(Tree::Records).get(id).map_err(storage)? {
                        Some(v) => Found::Kept(v),
                        None => Found::Gone,
                    };
                    if page.offer(&String::from_utf8_lossy(id), found)? {
                        break;
                    }
                }
            }
        }
        Ok(page)
    }

    /// Of the indexes `candidates` for a page of `limit` within a budget of
    /// `max_examined` records, the one with the fewest index entries (each
    /// counted up to [`SELECTIVITY_PROBE`] keys, and no further than the
    /// fewest so far); `None` when there is none.
    ///
    /// A due window is gathered whole for every page (its entries are in
    /// day order, a page in id order; counting it gathers it, as
    /// [`Walk::Gathered`]), so it is walked only when that costs less than
    /// walking the records in id order to fill the page: its entries E at
    /// most the budget and [`WINDOW_MOST`], and E * E at most `limit` * the
    /// records N (a walk of the records reads some `limit` * N / E records
    /// to find a page when E of them are in the window).
    fn most_selective(
        &self,
        candidates: Vec<Candidate>,
        limit: usize,
        max_examined: usize,
    ) -> Result<Option<Walk>> {
        if let [Candidate::Prefix(prefix)] = candidates.as_slice() {
            return Ok(Some(Walk::Prefix(prefix.clone())));
        }
        let index = self.inner.tree(Tree::Index);
        let mut best: Option<(usize, Walk)> = None;
        for candidate in candidates {
            let (n, walk) = match candidate {
                Candidate::Prefix(prefix) => {
                    let most = best
                        .as_ref()
                        .map_or(SELECTIVITY_PROBE, |(n, _)| SELECTIVITY_PROBE.min(*n));
                    let n = index.scan_prefix(&prefix).keys().take(most + 1).count();
                    (n, Walk::Prefix(prefix))
                }
                Candidate::Window { from, to } => {
                    let sparse = (limit as u64)
                        .saturating_mul(self.inner.record_count())
                        .isqrt();
                    let cap = WINDOW_MOST
                        .min(max_examined)
                        .min(usize::try_from(sparse).unwrap_or(usize::MAX));
                    let most = best.as_ref().map_or(cap, |(n, _)| cap.min(*n));
                    let (mut n, mut ids) = (0, BTreeSet::new());
                    for kind in [keys::BY_END, keys::BY_DUE] {
                        for k in self.window_entries(kind, from, to).take(most + 1 - n) {
                            n += 1;
                            if let Some((_, id)) = keys::parse_day_entry(&k?) {
                                ids.insert(id.to_string());
                            }
                        }
                        if n > most {
                            break;
                        }
                    }
                    if n > cap {
                        continue;
                    }
                    (n, Walk::Gathered(ids))
                }
            };
            if best.as_ref().is_none_or(|(fewest, _)| n < *fewest) {
                best = Some((n, walk));
            }
        }
        Ok(best.map(|(_, walk)| walk))
    }

    /// The keys of the entries of day index `kind` whose day is within
    /// `from..=to` (day keys), in day order.
    fn window_entries(
        &self,
        kind: u8,
        from: i32,
        to: i32,
    ) -> impl Iterator<Item = Result<sled::IVec>> + use<> {
        self.inner
            .tree(Tree::Index)
            .range(keys::day_prefix(kind, from)..)
            .keys()
            .map(|k| k.map_err(storage))
            .take_while(move |k| match k {
                Ok(k) => keys::parse_day_entry(k)
                    .is_some_and(|(day, _)| k.first() == Some(&kind) && day <= to),
                Err(_) => true,
            })
    }

    /// The last revision recorded by the end of `day` (UTC): the state the
    /// store was in then. Revisions are dense and their times increase, so
    /// it is found by bisection over the changes.
    pub fn revision_known_on(&self, day: Date) -> Result<u64> {
        let end = day
            .next_day()
            .map(|d| d.midnight().assume_utc().unix_timestamp())
            .unwrap_or(i64::MAX);
        let changes = self.inner.tree(Tree::Changes);
        let before_end = |rev: u64| -> Result<bool> {
            let bytes = changes
                .get(keys::revision(rev))
                .map_err(storage)?
                .ok_or_else(|| Error::Corrupt(format!("revision {rev} is missing")))?;
            let change: Change = decode(&bytes)?;
            Ok(change.change_time.is_some_and(|t| t.seconds < end))
        };
        // The answer is in [lo, hi]: lo is known to be before the end.
        let (mut lo, mut hi) = (0u64, self.durable_revision());
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if before_end(mid)? {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Ok(lo)
    }

    /// Walks every initiative, in id order after `after_id`, as it was at
    /// revision `known`: `visit` gets its id, the version (`None` when
    /// deleted by then) and whether its latest version (now, or when it was
    /// deleted) is marked RESTRICTED (such a record does not exist for a
    /// caller without clearance, nor does its past), and returns true to
    /// stop. Initiatives created later are not visited. Reads the history
    /// index and at most two changes per initiative.
    pub fn versions_known(
        &self,
        known: u64,
        after_id: Option<&str>,
        mut visit: impl FnMut(&str, Option<Initiative>, bool) -> bool,
    ) -> Result<()> {
        let s = &*self.inner;
        s.sound()?;
        let start = match after_id {
            Some(a) => Bound::Excluded(keys::history(a, u64::MAX)),
            None => Bound::Unbounded,
        };
        // The id being read, its last revision up to `known` (0: none yet)
        // and its last revision of all.
        let mut pending: Option<(Vec<u8>, u64, u64)> = None;
        let change_at = |rev: u64| -> Result<Change> {
            let bytes = s
                .tree(Tree::Changes)
                .get(keys::revision(rev))
                .map_err(storage)?
                .ok_or_else(|| Error::Corrupt(format!("revision {rev} is missing")))?;
            decode(&bytes)
        };
        let mut resolve = |id: &[u8], rev: u64, latest: u64| -> Result<bool> {
            let change = change_at(rev)?;
            let restricted_now = if latest == rev {
                change
                    .initiative
                    .as_ref()
                    .is_some_and(cetrack_contract::auth::is_restricted)
            } else {
                change_at(latest)?
                    .initiative
                    .as_ref()
                    .is_some_and(cetrack_contract::auth::is_restricted)
            };
            let version = if change.r#type == ChangeType::Deleted as i32 {
                None
            } else {
                change.initiative
            };
            Ok(visit(&String::from_utf8_lossy(id), version, restricted_now))
        };
        for kv in s
            .tree(Tree::History)
            .range::<Vec<u8>, _>((start, Bound::Unbounded))
        {
            let (k, _) = kv.map_err(storage)?;
            let Some(split) = k.len().checked_sub(9) else {
                continue;
            };
            let (id, rev) = (&k[..split], &k[split + 1..]);
            let rev = u64::from_be_bytes(rev.try_into().unwrap_or([0xff; 8]));
            let same = pending
                .as_ref()
                .is_some_and(|(pid, ..)| pid.as_slice() == id);
            if !same {
                if let Some((pid, at, latest)) = pending.take() {
                    if at > 0 && resolve(&pid, at, latest)? {
                        return Ok(());
                    }
                }
                pending = Some((id.to_vec(), 0, rev));
            }
            if let Some(p) = pending.as_mut() {
                p.2 = rev;
                if rev <= known {
                    p.1 = rev;
                }
            }
        }
        if let Some((pid, at, latest)) = pending {
            if at > 0 {
                resolve(&pid, at, latest)?;
            }
        }
        Ok(())
    }

    /// The summary a caller sees (`cleared`: restricted records counted
    /// too) counted record by record: of the records of one `document` only
    /// (a source names it), and as the store stood at the end of
    /// `known_on` (record time), each initiative as it stood on the window's
    /// day (valid time). Holds counters, never the records. Of today's
    /// records, one document's are found by its index entries.
    pub fn summary_scan(
        &self,
        window: SummaryWindow,
        cleared: bool,
        known_on: Option<Date>,
        document: Option<&str>,
    ) -> Result<DomainSummary> {
        let s = &*self.inner;
        s.sound()?;
        let in_document =
            |i: &Initiative| document.is_none_or(|d| i.sources.iter().any(|s| s.document == d));
        let mut count = summary::Recount::new(window);
        let last = match known_on {
            Some(day) => {
                let known = self.revision_known_on(day)?;
                self.versions_known(known, None, |_, version, restricted_now| {
                    if let Some(i) = version {
                        let hidden = !cleared
                            && (restricted_now || cetrack_contract::auth::is_restricted(&i));
                        if !hidden && in_document(&i) {
                            count.add(&i);
                        }
                    }
                    false
                })?;
                let time = match s
                    .tree(Tree::Changes)
                    .get(keys::revision(known))
                    .map_err(storage)?
                {
                    Some(b) if known > 0 => decode::<Change>(&b)?.change_time,
                    _ => None,
                };
                LastChange {
                    revision: known,
                    time,
                }
            }
            None => {
                let last = s.published().last.clone();
                let mut add = |v: &[u8]| -> Result<()> {
                    let i = kept::record(v)?;
                    if (cleared || !cetrack_contract::auth::is_restricted(&i)) && in_document(&i) {
                        count.add(&i);
                    }
                    Ok(())
                };
                match document {
                    // One document: the records its index entries name.
                    Some(d) => {
                        let prefix = keys::document_prefix(d);
                        for kv in s.tree(Tree::Index).scan_prefix(&prefix) {
                            let (k, _) = kv.map_err(storage)?;
                            let id = k.get(prefix.len()..).unwrap_or_default();
                            if let Some(v) = s.tree(Tree::Records).get(id).map_err(storage)? {
                                add(&v)?;
                            }
                        }
                    }
                    None => {
                        for kv in s.tree(Tree::Records).iter() {
                            let (_, v) = kv.map_err(storage)?;
                            add(&v)?;
                        }
                    }
                }
                last
            }
        };
        let mut summary = count.finish(s.domain, last);
        summary.as_known_on = known_on.map(cetrack_contract::dates::to_calendar);
        Ok(summary)
    }

    /// The latest version of initiative `id` in its history: the record now,
    /// or as it was when deleted; `None` when it never existed.
    pub fn latest_version(&self, id: &str) -> Result<Option<Initiative>> {
        let s = &*self.inner;
        s.sound()?;
        let prefix = keys::history_prefix(id);
        let Some(last) = s.tree(Tree::History).scan_prefix(&prefix).next_back() else {
            return Ok(None);
        };
        let (k, _) = last.map_err(storage)?;
        let rev = k.get(prefix.len()..).unwrap_or_default();
        match s.tree(Tree::Changes).get(rev).map_err(storage)? {
            Some(b) => Ok(decode::<Change>(&b)?.initiative),
            None => Err(Error::Corrupt(format!(
                "history of `{id}` names a missing revision"
            ))),
        }
    }

    /// Up to `limit` revisions of initiative `id` after revision `after`
    /// that pass `visible`, oldest first.
    pub fn history(
        &self,
        id: &str,
        after: u64,
        limit: usize,
        visible: impl Fn(&Change) -> bool,
    ) -> Result<Page<Change>> {
        let s = &*self.inner;
        s.sound()?;
        let prefix = keys::history_prefix(id);
        let start = Bound::Excluded(keys::history(id, after));
        let mut page = Page::default();
        let mut bytes = 0;
        for kv in s
            .tree(Tree::History)
            .range::<Vec<u8>, _>((start, Bound::Unbounded))
        {
            let (k, _) = kv.map_err(storage)?;
            let Some(rev) = k.strip_prefix(prefix.as_slice()) else {
                break;
            };
            if page.items.len() == limit {
                page.more = true;
                break;
            }
            let change = s
                .tree(Tree::Changes)
                .get(rev)
                .map_err(storage)?
                .ok_or_else(|| {
                    Error::Corrupt(format!("history of `{id}` names a missing revision"))
                })?;
            let change: Change = decode(&change)?;
            if visible(&change) {
                // A page ends before the change that would take it past
                // MAX_PAGE_BYTES (a change holds a whole record).
                let size = change.encoded_len();
                if !page.items.is_empty() && bytes + size > pagination::MAX_PAGE_BYTES {
                    page.more = true;
                    break;
                }
                bytes += size;
                page.items.push(change);
            }
        }
        Ok(page)
    }

    /// Up to `limit` durable changes after revision `after`, oldest first.
    pub fn changes_after(&self, after: u64, limit: usize) -> Result<Vec<Change>> {
        self.inner.sound()?;
        let durable = *self.inner.durable.borrow();
        let mut out = Vec::new();
        if after >= durable {
            return Ok(out);
        }
        let range = (
            Bound::Excluded(keys::revision(after)),
            Bound::Included(keys::revision(durable)),
        );
        for kv in self.inner.tree(Tree::Changes).range(range).take(limit) {
            let (_, v) = kv.map_err(storage)?;
            out.push(decode(&v)?);
        }
        self.inner
            .changes_read
            .fetch_add(out.len() as u64, Ordering::Relaxed);
        Ok(out)
    }

    /// Follows the highest durable revision.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.durable.subscribe()
    }

    /// Waits until `revision` is durable; UNAVAILABLE when the store fails
    /// first (it is then never durable).
    pub async fn wait_durable(&self, revision: u64) -> Result<()> {
        let mut durable = self.subscribe();
        let mut failed = self.failed();
        loop {
            self.inner.sound()?;
            if *durable.borrow_and_update() >= revision {
                return Ok(());
            }
            tokio::select! {
                changed = durable.changed() => changed.map_err(|_| Error::Unavailable("the store closed".into()))?,
                changed = failed.changed() => changed.map_err(|_| Error::Unavailable("the store closed".into()))?,
            }
        }
    }

    /// The highest durable revision.
    pub fn durable_revision(&self) -> u64 {
        *self.inner.durable.borrow()
    }

    /// The number of initiatives, the last durable revision and the size on
    /// disk, for metrics. Cheap: one counter read and a look at the files.
    pub fn stats(&self) -> Result<StoreStats> {
        Ok(StoreStats {
            initiatives: self.inner.record_count(),
            last_revision: self.durable_revision(),
            size_on_disk: self.size_on_disk()?,
            flushes: self.inner.group_commit.flushes(),
            changes_read: self.inner.changes_read.load(Ordering::Relaxed),
        })
    }

    /// The summary a caller sees (`cleared`: restricted records counted
    /// too), from the counters published by the last commit: whole
    /// transactions only, without taking the write lock (a flood of summary
    /// reads never holds a write back) and without reading a tree.
    pub fn summary(&self, window: SummaryWindow, cleared: bool) -> Result<DomainSummary> {
        let s = &*self.inner;
        s.sound()?;
        let p = s.published();
        // The counters change only with a commit: a summary assembled from
        // the counters published now is answered again until the next.
        let key = (window.as_of, window.due_within_days, cleared);
        let assembled = || s.summaries.lock().unwrap_or_else(PoisonError::into_inner);
        {
            let kept = assembled();
            if kept.assembled_from(&p) {
                if let Some(summary) = kept.summaries.get(&key) {
                    return Ok(summary.clone());
                }
            }
        }
        let summary = self.assemble(&p, window, cleared);
        let mut kept = assembled();
        if !kept.assembled_from(&p) {
            kept.from = Some(p.clone());
            kept.summaries.clear();
        }
        if kept.summaries.len() < MAX_ASSEMBLED {
            kept.summaries.insert(key, summary.clone());
        }
        Ok(summary)
    }

    /// The summary for `window` from the counters `p`.
    fn assemble(&self, p: &Published, window: SummaryWindow, cleared: bool) -> DomainSummary {
        let s = &*self.inner;
        let mut plain = Vec::new();
        let mut later = Vec::new();
        for vis in Visibility::seen(cleared) {
            let [(a, b), (c, d)] = summary::ranges_for(*vis, window.as_of);
            plain.extend(p.counters.range(a..b).map(|(k, v)| (k.clone(), *v)));
            later.extend(p.counters.range(c..d).map(|(k, v)| (k.clone(), *v)));
        }
        let counters = summary::counters_on(plain, later);
        let label = |id: &str| -> OrganizationLabel {
            let bytes = Visibility::seen(cleared)
                .iter()
                .find_map(|v| p.labels.get(&v.key(id.as_bytes())))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let mut parts = bytes.splitn(2, |b| *b == 0);
            let country_code =
                String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            let name = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
            OrganizationLabel { name, country_code }
        };
        summary::assemble(s.domain, counters, label, window, p.last.clone())
    }

    /// Forgets the request ids written before `before` (Unix seconds):
    /// a retry with one of them is then a new call. Returns how many were
    /// forgotten. An entry is removed only as it was read.
    pub fn prune_requests(&self, before: i64) -> Result<u64> {
        let s = &*self.inner;
        s.sound()?;
        let requests = s.tree(Tree::Requests);
        let mut n = 0;
        for kv in requests.iter() {
            let (k, v) = kv.map_err(storage)?;
            // An entry that does not read is left for the operator's
            // `verify`; the sweep goes on.
            let Ok(stored) = decode::<StoredRequest>(&v) else {
                continue;
            };
            if stored.seconds < before {
                // A snapshot being read keeps the entry as it was; none is
                // registered between that and the removal.
                let removed = s.captures.keeping(|caps| {
                    for c in caps {
                        c.keep(Tree::Requests, &k, Some(&v));
                    }
                    requests
                        .compare_and_swap(&k, Some(&v), None as Option<&[u8]>)
                        .map_err(storage)
                })?;
                if removed.is_ok() {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Every record, for checks and exports.
    pub fn all(&self) -> Result<Vec<Initiative>> {
        self.inner.sound()?;
        self.inner
            .tree(Tree::Records)
            .iter()
            .map(|kv| kv.map_err(storage).and_then(|(_, v)| kept::record(&v)))
            .collect()
    }

    /// Loads a snapshot into this store, which must be empty (no change ever
    /// made), entry by entry as `entries` yields them, and flushes it; an
    /// error of `entries` ends the load with that error (the caller
    /// discards the store). The snapshot's domain must be this store's.
    pub fn restore(&self, entries: impl IntoIterator<Item = Result<RawEntry>>) -> Result<u64> {
        let s = &*self.inner;
        let _guard = s.lock()?;
        if s.committed.load(Ordering::SeqCst) != 0 || !s.tree(Tree::Records).is_empty() {
            return Err(Error::FailedPrecondition(format!(
                "the store in {} is not empty; restore only into an empty data directory",
                s.path.display()
            )));
        }
        let mut revision = 0;
        let mut schema = SCHEMA_VERSION;
        for entry in entries {
            let (tree, key, value) = entry?;
            if tree == Tree::Meta
                && key.as_slice() == META_DOMAIN
                && value.as_slice() != s.domain.slug().as_bytes()
            {
                return Err(Error::FailedPrecondition(format!(
                    "the backup holds the {} domain, not {}",
                    String::from_utf8_lossy(&value),
                    s.domain
                )));
            }
            if tree == Tree::Meta && key.as_slice() == META_SCHEMA {
                let found = value
                    .as_slice()
                    .try_into()
                    .map(u32::from_be_bytes)
                    .unwrap_or(u32::MAX);
                if found > SCHEMA_VERSION {
                    return Err(Error::FailedPrecondition(format!(
                        "the backup has schema version {found}, newer than this build supports ({SCHEMA_VERSION})"
                    )));
                }
                schema = found;
            }
            if tree == Tree::Meta && key.as_slice() == META_REVISION {
                revision = u64_of(&value);
            }
            s.tree(tree).insert(key, value).map_err(storage)?;
        }
        s.db.flush().map_err(storage)?;
        if schema < SCHEMA_VERSION {
            migrate(&s.db, &s.trees, schema)?;
        }
        s.publish(Published::load(&s.trees)?);
        s.committed.store(revision, Ordering::SeqCst);
        s.durable.send_replace(revision);
        Ok(revision)
    }

    /// Checks that the store is whole: every record reads back, the spans
    /// kept with it agree with it, and the summary counters (for each
    /// clearance) equal a recount of the records.
    pub fn verify(&self) -> Result<()> {
        self.inner.sound()?;
        let all = self
            .inner
            .tree(Tree::Records)
            .iter()
            .map(|kv| kv.map_err(storage).and_then(|(_, v)| kept::checked(&v)))
            .collect::<Result<Vec<_>>>()?;
        let window = SummaryWindow {
            as_of: cetrack_contract::dates::today(),
            due_within_days: cetrack_contract::requests::DEFAULT_DUE_WITHIN_DAYS,
        };
        for cleared in [false, true] {
            let kept = self.summary(window, cleared)?;
            let last = LastChange {
                revision: kept.last_revision.unsigned_abs(),
                time: kept.last_change_time,
            };
            let seen = all
                .iter()
                .filter(|i| cleared || !cetrack_contract::auth::is_restricted(i));
            let counted = summary::recount(self.inner.domain, seen, window, last);
            if counted != kept {
                return Err(Error::Corrupt(format!(
                    "the summary counters ({} initiatives) differ from a recount of the records ({})",
                    kept.initiative_count, counted.initiative_count
                )));
            }
        }
        Ok(())
    }

    /// The size of the store's files, in bytes.
    pub fn size_on_disk(&self) -> Result<u64> {
        self.inner.db.size_on_disk().map_err(storage)
    }

    /// Flushes everything to disk (used at shutdown); a failed store is
    /// not flushed.
    pub fn flush(&self) -> Result<()> {
        self.inner.sound()?;
        self.inner.db.flush().map(|_| ()).map_err(storage)
    }
}
