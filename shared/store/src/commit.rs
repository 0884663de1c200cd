//! Group commit: writers whose transactions committed share one `Db::flush`.
//!
//! sled 0.34.7 can deadlock when `flush_async` runs concurrently (sled #1308),
//! so one committer thread owns every flush. A writer first commits its
//! transaction, then queues a waiter; the committer takes every queued waiter,
//! notes the highest committed revision, flushes once, and wakes them all. A
//! flush that began after a transaction committed makes it durable.
//!
//! While other writers are still inside their transactions, the committer
//! waits a little (at most [`LINGER`]) for them to join the flush, like
//! PostgreSQL's `commit_delay` with `commit_siblings`: concurrent writers
//! then share one flush instead of queueing for one each, and a lone writer
//! (no one else writing) never waits.
//!
//! A flush that fails puts the store in its failed state (see
//! [`Failure`]): the committer answers every later waiter with the first
//! error and never flushes again, so that a write whose caller was told it
//! failed is not published by a later flush.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

type Waiter = oneshot::Sender<Result<(), String>>;

/// The longest the committer holds a flush back for writers still inside
/// their transactions.
pub(crate) const LINGER: Duration = Duration::from_millis(2);
/// How often the committer looks again while it lingers.
const LINGER_POLL: Duration = Duration::from_micros(100);

/// Writers between the start of their write and queueing their waiter
/// (taking the lock, in their transaction). Held by [`Writing::enter`].
#[derive(Debug, Default)]
pub(crate) struct Writers(AtomicUsize);

/// One writer counted in [`Writers`] until dropped.
pub(crate) struct Writing<'a>(&'a Writers);

impl Writers {
    /// Counts a writer until the guard is dropped.
    pub(crate) fn enter(&self) -> Writing<'_> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Writing(self)
    }

    fn active(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 0
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The store's failed state: `None` while it is sound, else why it failed.
/// Set once, by the first failure; a restart clears it.
#[derive(Debug, Clone)]
pub(crate) struct Failure(pub(crate) watch::Sender<Option<String>>);

impl Failure {
    /// Records that the store failed (the first reason is kept).
    pub(crate) fn set(&self, why: &str) {
        let set = self.0.send_if_modified(|f| {
            if f.is_none() {
                *f = Some(why.to_string());
                true
            } else {
                false
            }
        });
        if set {
            tracing::error!(
                reason = why,
                "the store failed: it serves nothing more until the service is restarted"
            );
        }
    }

    /// Why the store failed, if it did.
    pub(crate) fn reason(&self) -> Option<String> {
        self.0.borrow().clone()
    }
}

/// Faults a test can make the committer meet.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// The next flush fails.
    pub(crate) fail_flush: AtomicBool,
    /// The committer thread stops at its next batch.
    pub(crate) stop: AtomicBool,
}

/// The handle writers use to wait for durability. Dropping it stops the
/// committer thread and waits for it, so that the thread's handle on the
/// database is gone (and its file lock released) once the store is dropped.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    queue: Option<mpsc::Sender<Waiter>>,
    /// Flushes the committer has completed.
    flushes: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts the committer thread for `db`. `committed` is the highest
    /// committed revision; `durable` receives the highest flushed one.
    pub(crate) fn start(
        db: sled::Db,
        committed: Arc<AtomicU64>,
        durable: watch::Sender<u64>,
        failure: Failure,
        faults: Arc<Faults>,
        writers: Arc<Writers>,
    ) -> std::io::Result<Self> {
        let (queue, rx) = mpsc::channel::<Waiter>();
        let flushes = Arc::new(AtomicU64::new(0));
        let flushed = flushes.clone();
        let thread = std::thread::Builder::new()
            .name("cetrack-group-commit".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    if faults.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    let until = Instant::now() + LINGER;
                    while writers.active() {
                        let left = until.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        match rx.recv_timeout(left.min(LINGER_POLL)) {
                            Ok(w) => {
                                batch.push(w);
                                batch.extend(rx.try_iter());
                            }
                            Err(mpsc::RecvTimeoutError::Timeout) => {}
                            Err(mpsc::RecvTimeoutError::Disconnected) => break,
                        }
                    }
                    let watermark = committed.load(Ordering::SeqCst);
                    let result = match failure.reason() {
                        Some(why) => Err(why),
                        None if faults.fail_flush.swap(false, Ordering::SeqCst) => {
                            Err("injected flush failure".to_string())
                        }
                        None => db.flush().map(|_| ()).map_err(|e| e.to_string()),
                    };
                    match &result {
                        Ok(()) => {
                            flushed.fetch_add(1, Ordering::SeqCst);
                            durable.send_if_modified(|d| {
                                let moved = watermark > *d;
                                *d = (*d).max(watermark);
                                moved
                            });
                        }
                        Err(e) => failure.set(&format!("a flush failed: {e}")),
                    }
                    for w in batch {
                        let _ = w.send(result.clone());
                    }
                }
            })?;
        Ok(Self {
            queue: Some(queue),
            flushes,
            thread: Some(thread),
        })
    }

    /// How many flushes the committer has completed since the store opened:
    /// one per batch of waiting writers, however many the batch holds.
    pub(crate) fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::SeqCst)
    }

    /// Asks for a flush of everything committed before this call, without
    /// waiting for it.
    pub(crate) fn request_flush(&self) {
        let (tx, _) = oneshot::channel();
        if let Some(queue) = &self.queue {
            let _ = queue.send(tx);
        }
    }

    /// Waits until everything committed before this call is on disk.
    pub(crate) async fn wait(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.queue
            .as_ref()
            .ok_or_else(|| "the committer has stopped".to_string())?
            .send(tx)
            .map_err(|_| "the committer has stopped".to_string())?;
        rx.await
            .map_err(|_| "the committer has stopped".to_string())?
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        // Closing the queue ends the committer's loop once it has answered
        // every queued waiter; then its clone of the database is dropped.
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
