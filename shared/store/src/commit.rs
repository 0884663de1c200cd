//! Group commit: writers whose transactions committed share one `Db::flush`.
//!
//! sled 0.34.7 can deadlock when `flush_async` runs concurrently (sled #1308),
//! so one committer thread owns every flush. A writer first commits its
//! transaction, then queues a waiter; the committer takes every queued waiter,
//! notes the highest committed revision, flushes once, and wakes them all. A
//! flush that began after a transaction committed makes it durable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use tokio::sync::{oneshot, watch};

type Waiter = oneshot::Sender<Result<(), String>>;

/// The handle writers use to wait for durability. Dropping it stops the
/// committer thread and waits for it, so that the thread's handle on the
/// database is gone (and its file lock released) once the store is dropped.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    queue: Option<mpsc::Sender<Waiter>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GroupCommit {
    /// Starts the committer thread for `db`. `committed` is the highest
    /// committed revision; `durable` receives the highest flushed one.
    pub(crate) fn start(
        db: sled::Db,
        committed: Arc<AtomicU64>,
        durable: watch::Sender<u64>,
    ) -> std::io::Result<Self> {
        let (queue, rx) = mpsc::channel::<Waiter>();
        let thread = std::thread::Builder::new()
            .name("cetrack-group-commit".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    let watermark = committed.load(Ordering::SeqCst);
                    let result = db.flush().map(|_| ()).map_err(|e| e.to_string());
                    if result.is_ok() {
                        durable.send_if_modified(|d| {
                            let moved = watermark > *d;
                            *d = (*d).max(watermark);
                            moved
                        });
                    } else {
                        tracing::error!(error = ?result, "flush failed");
                    }
                    for w in batch {
                        let _ = w.send(result.clone());
                    }
                }
            })?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
        })
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
