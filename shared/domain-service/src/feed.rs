//! The change feed: each durable change is read from the store once and
//! handed to every change stream, instead of every stream reading it again.
//!
//! A stream first reads its backlog from the store (the changes after its
//! cursor that were durable when it opened), then takes changes from the
//! feed. It subscribes before it reads the backlog, so nothing falls between
//! the two; a change it already sent is skipped, and a gap (a stream that fell
//! more than [`FEED_CAPACITY`] changes behind) is filled from the store
//! again. Revisions are consecutive, so a gap is always seen.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use cetrack_contract::auth::Caller;
use cetrack_contract::error::{Error, Result};
use cetrack_contract::proto::Change;
use cetrack_store::Store;

/// How many changes a stream reads from the store at a time.
pub(crate) const READ_BATCH: usize = 256;

/// How many changes the feed keeps for streams that have not taken them yet;
/// a stream further behind reads the rest from the store.
pub const FEED_CAPACITY: usize = READ_BATCH;

/// How long a change stream waits for its reader to take the next change
/// before it ends the stream (with ABORTED, naming the revision to resume
/// after): a reader that stops reading holds a bounded buffer for a bounded
/// time.
pub const STALLED_READER: std::time::Duration = std::time::Duration::from_secs(60);

/// The sending side of the feed, for streams to subscribe to.
#[derive(Debug, Clone)]
pub struct Feed {
    tx: broadcast::Sender<Arc<Change>>,
    /// Fires when the feed has stopped reading (the service stops, or a read
    /// failed): streams then read the store themselves, and end with its
    /// error if it has failed.
    ended: CancellationToken,
}

impl Feed {
    /// A feed of `store`'s durable changes, read by a task that runs until
    /// `stop` fires (join it before the store is closed).
    pub fn start(store: Store, stop: CancellationToken) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, _) = broadcast::channel(FEED_CAPACITY);
        let ended = CancellationToken::new();
        // Where it starts, taken now: nothing durable from here on is missed,
        // however late the task first runs.
        let durable = store.subscribe();
        let cursor = store.durable_revision();
        let task = tokio::spawn({
            let (tx, ended) = (tx.clone(), ended.clone());
            async move {
                read_once(store, durable, cursor, tx, stop).await;
                ended.cancel();
            }
        });
        (Self { tx, ended }, task)
    }

    /// Changes from now on, and the feed's end.
    pub(crate) fn subscribe(&self) -> (broadcast::Receiver<Arc<Change>>, CancellationToken) {
        (self.tx.subscribe(), self.ended.clone())
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Storage(format!("read task failed: {e}")))?
}

/// Reads every change once as it becomes durable and sends it on the feed.
/// A read that fails ends it (see [`Feed`]'s `ended`).
async fn read_once(
    store: Store,
    mut durable: tokio::sync::watch::Receiver<u64>,
    mut cursor: u64,
    tx: broadcast::Sender<Arc<Change>>,
    stop: CancellationToken,
) {
    loop {
        durable.borrow_and_update();
        loop {
            let s = store.clone();
            let Ok(batch) = blocking(move || s.changes_after(cursor, READ_BATCH)).await else {
                return;
            };
            if batch.is_empty() {
                break;
            }
            for change in batch {
                cursor = change.revision.unsigned_abs();
                // No stream listening is not an error.
                let _ = tx.send(Arc::new(change));
            }
        }
        tokio::select! {
            changed = durable.changed() => if changed.is_err() { return },
            _ = stop.cancelled() => return,
        }
    }
}

/// A stream counted in [`cetrack_server::metrics::CHANGE_STREAMS`] by
/// state (`backlog`: reading its backlog from the store; `live`: following
/// the feed) until dropped.
struct Counted {
    domain: &'static str,
    state: &'static str,
}

impl Counted {
    fn new(domain: cetrack_contract::Domain, state: &'static str) -> Self {
        let c = Self {
            domain: domain.slug(),
            state,
        };
        c.gauge().increment(1.0);
        c
    }

    fn gauge(&self) -> metrics::Gauge {
        metrics::gauge!(
            cetrack_server::metrics::CHANGE_STREAMS,
            "domain" => self.domain,
            "state" => self.state
        )
    }

    fn now(&mut self, state: &'static str) {
        self.gauge().decrement(1.0);
        self.state = state;
        self.gauge().increment(1.0);
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.gauge().decrement(1.0);
    }
}

/// Resolves once the store has failed (see `Store::failed`).
async fn failure(failed: &mut tokio::sync::watch::Receiver<Option<String>>) {
    let seen = failed.wait_for(Option::is_some).await.is_ok();
    if !seen {
        // The store is gone (the service is stopping): nothing to report.
        std::future::pending::<()>().await;
    }
}

/// One change stream's sending side: what its caller may see, sent to its
/// reader, until the reader goes, stalls, or the service shuts down.
pub(crate) struct Stream {
    pub(crate) store: Store,
    pub(crate) caller: Caller,
    pub(crate) cursor: u64,
    pub(crate) tx: mpsc::Sender<Result<Change>>,
    /// The stream's last word when it is ended early.
    pub(crate) last: Option<oneshot::Sender<Error>>,
    pub(crate) shutdown: CancellationToken,
}

impl Stream {
    /// Sends the backlog from the store, then the feed's changes, until the
    /// stream ends.
    pub(crate) async fn run(
        mut self,
        (mut feed, ended): (broadcast::Receiver<Arc<Change>>, CancellationToken),
    ) {
        let mut counted = Counted::new(self.store.domain(), "backlog");
        if !self.catch_up().await {
            return;
        }
        counted.now("live");
        let mut failed = self.store.failed();
        loop {
            let next = tokio::select! {
                n = feed.recv() => n,
                _ = failure(&mut failed) => {
                    // The store failed: the read ends the stream with its
                    // error (UNAVAILABLE until the service restarts).
                    self.catch_up().await;
                    return;
                }
                _ = ended.cancelled() => {
                    // The feed stopped reading: read the store as it was
                    // done before the feed, one stream at a time.
                    self.follow_store().await;
                    return;
                }
                _ = self.shutdown.cancelled() => return,
                _ = self.tx.closed() => return,
            };
            let going = match next {
                Ok(change) => {
                    let revision = change.revision.unsigned_abs();
                    if revision <= self.cursor {
                        true
                    } else if revision == self.cursor + 1 {
                        self.send(Change::clone(&change)).await
                    } else {
                        // A gap: read it (and whatever else is durable).
                        self.catch_up().await
                    }
                }
                // Fell behind the feed: read from the store.
                Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up().await,
                // The service is going away.
                Err(broadcast::error::RecvError::Closed) => false,
            };
            if !going {
                return;
            }
        }
    }

    /// Reads the store itself for every durable change until the stream
    /// ends (or the store fails: the stream ends with its error).
    async fn follow_store(&mut self) {
        let mut durable = self.store.subscribe();
        let mut failed = self.store.failed();
        loop {
            durable.borrow_and_update();
            if !self.catch_up().await {
                return;
            }
            tokio::select! {
                changed = durable.changed() => if changed.is_err() { return },
                _ = failure(&mut failed) => {
                    self.catch_up().await;
                    return;
                }
                _ = self.shutdown.cancelled() => return,
                _ = self.tx.closed() => return,
            }
        }
    }

    /// Sends every durable change after the cursor, read from the store;
    /// false when the stream ended.
    async fn catch_up(&mut self) -> bool {
        loop {
            let (store, after) = (self.store.clone(), self.cursor);
            let batch = match blocking(move || store.changes_after(after, READ_BATCH)).await {
                Ok(b) => b,
                Err(e) => return self.end(e),
            };
            if batch.is_empty() {
                return true;
            }
            for change in batch {
                if !self.send(change).await {
                    return false;
                }
            }
        }
    }

    /// Sends `change` if the caller may see it and moves the cursor past it;
    /// false when the stream ended.
    async fn send(&mut self, change: Change) -> bool {
        let revision = change.revision.unsigned_abs();
        if change
            .initiative
            .as_ref()
            .is_some_and(|i| self.caller.may_see(i))
        {
            tokio::select! {
                sent = self.tx.send_timeout(Ok(change), STALLED_READER) => match sent {
                    Ok(()) => {}
                    Err(mpsc::error::SendTimeoutError::Closed(_)) => return false,
                    Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                        let cursor = self.cursor;
                        return self.end(Error::Aborted(format!(
                            "the stream was ended: its reader took no change for {}s; watch again after revision {cursor}",
                            STALLED_READER.as_secs()
                        )));
                    }
                },
                _ = self.shutdown.cancelled() => return false,
            }
        }
        self.cursor = revision;
        true
    }

    /// Ends the stream with `error` as its last word; false.
    fn end(&mut self, error: Error) -> bool {
        if let Some(last) = self.last.take() {
            let _ = last.send(error);
        }
        false
    }
}
