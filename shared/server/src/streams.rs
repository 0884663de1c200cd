//! Caps on long-lived streams (change streams): in total and per caller, so
//! that neither the callers together nor one caller can hold a server's
//! streams (each holds a task, a buffer and, at the gateway, connections to
//! the domains). A stream over a cap is RESOURCE_EXHAUSTED at once, never
//! queued.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use cetrack_contract::error::Error;

/// Open streams, in total and per caller.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_caller: HashMap<String, usize>,
}

/// The caps of one server's streams.
#[derive(Debug, Clone)]
pub struct StreamLimits {
    /// What the caps are for, for the messages (e.g. `the quantum service`).
    what: String,
    total: usize,
    per_caller: usize,
    open: Arc<Mutex<Open>>,
}

/// One open stream, counted until dropped.
#[derive(Debug)]
pub struct StreamPermit {
    caller: String,
    open: Arc<Mutex<Open>>,
}

impl StreamLimits {
    /// At most `total` streams at once, at most `per_caller` of them for one
    /// caller (the verified subject of their token).
    pub fn new(what: impl Into<String>, total: usize, per_caller: usize) -> Self {
        Self {
            what: what.into(),
            total,
            per_caller,
            open: Arc::default(),
        }
    }

    /// Counts one more stream for `caller`, or RESOURCE_EXHAUSTED when a cap
    /// is reached.
    pub fn open(&self, caller: &str) -> Result<StreamPermit, Error> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.total {
            return Err(Error::ResourceExhausted(format!(
                "{} has {} change streams open, the most it keeps; retry later",
                self.what, self.total
            )));
        }
        let mine = open.by_caller.get(caller).copied().unwrap_or(0);
        if mine >= self.per_caller {
            return Err(Error::ResourceExhausted(format!(
                "this caller has {} change streams open on {}, the most one caller may; close one first",
                self.per_caller, self.what
            )));
        }
        open.total += 1;
        open.by_caller.insert(caller.to_string(), mine + 1);
        Ok(StreamPermit {
            caller: caller.to_string(),
            open: self.open.clone(),
        })
    }

    /// Streams open now.
    pub fn open_now(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_caller.get_mut(&self.caller) {
            *n -= 1;
            if *n == 0 {
                open.by_caller.remove(&self.caller);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_in_total_and_per_caller_and_free_on_drop() {
        let limits = StreamLimits::new("the test service", 3, 2);
        let a1 = limits.open("a").expect("first");
        let a2 = limits.open("a").expect("second of a");
        let refused = limits.open("a").expect_err("third of a");
        assert!(matches!(refused, Error::ResourceExhausted(ref m) if m.contains("one caller")));
        let b1 = limits.open("b").expect("first of b");
        let refused = limits.open("c").expect_err("a fourth in all");
        assert!(
            matches!(refused, Error::ResourceExhausted(ref m) if m.contains("the most it keeps"))
        );
        assert_eq!(limits.open_now(), 3);
        drop(a1);
        let a3 = limits.open("a").expect("a stream of a was closed");
        drop((a2, a3, b1));
        assert_eq!(limits.open_now(), 0);
        assert!(limits.open.lock().expect("lock").by_caller.is_empty());
    }
}
