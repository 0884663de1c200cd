//! Consistent snapshots of a running store, read while writes go on.
//!
//! sled has no snapshot reads, and copying the whole store under the write
//! lock makes every write wait for the whole copy and holds the copy in
//! memory. Instead a [`Snapshot`] is a revision `R` and a [`Capture`]: from
//! the moment the snapshot is taken (under the write lock, so that `R` is
//! exact), every writer first keeps the value each key had before it
//! changes it (its pre-image: the value at `R`, or its absence), once per
//! key, and only then writes. The snapshot then walks the live trees in key
//! order and reads each key's pre-image where there is one, its live value
//! where there is none. Writes wait only for the short registration; the
//! snapshot holds what changed while it is read, not the store.
//!
//! Why the walk is consistent: a key's pre-image is kept before the key
//! changes, so a live value read before its pre-image is looked for is the
//! value at `R` whenever no pre-image is found, and the pre-image is the
//! value at `R` whenever one is. Keys that were at `R` and are gone from the
//! live tree (deleted since) are found among the pre-images between the
//! previous live key and the next, which are looked for after the next live
//! key is read.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use cetrack_contract::error::{Error, Result};

use crate::{storage, Store, Tree};

/// Most bytes of pre-images one snapshot keeps; past it, the snapshot is
/// abandoned (ABORTED: taken again, it starts afresh) instead of holding
/// more memory. Writers never wait for it.
pub const MAX_CAPTURED_BYTES: usize = 256 * 1024 * 1024;

/// What the writers keep for one snapshot: each changed key's value at the
/// snapshot's revision (`None`: the key did not exist then).
#[derive(Debug)]
pub(crate) struct Capture {
    state: Mutex<CaptureState>,
    /// Most bytes kept ([`MAX_CAPTURED_BYTES`]).
    limit: usize,
}

impl Default for Capture {
    fn default() -> Self {
        Self::with_limit(MAX_CAPTURED_BYTES)
    }
}

#[derive(Debug, Default)]
struct CaptureState {
    pre: BTreeMap<(usize, Vec<u8>), Option<Vec<u8>>>,
    bytes: usize,
    overflowed: bool,
}

/// One pre-image: a key and its value at the snapshot (`None`: absent).
type PreImage = (Vec<u8>, Option<Vec<u8>>);

impl Capture {
    fn with_limit(limit: usize) -> Self {
        Self {
            state: Mutex::default(),
            limit,
        }
    }

    fn state(&self) -> MutexGuard<'_, CaptureState> {
        // The map is only inserted into and read: a panic elsewhere while the
        // lock was held leaves it whole.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `pre` as the value of `key` in `tree` at the snapshot, unless a
    /// value was kept for it already (the first change after the snapshot
    /// is the one that saw the snapshot's value).
    pub(crate) fn keep(&self, tree: Tree, key: &[u8], pre: Option<&[u8]>) {
        let mut s = self.state();
        if s.overflowed {
            return;
        }
        let id = (tree as usize, key.to_vec());
        if s.pre.contains_key(&id) {
            return;
        }
        s.bytes += key.len() + pre.map_or(0, <[u8]>::len);
        if s.bytes > self.limit {
            // The snapshot is abandoned: nothing it keeps is read again.
            s.overflowed = true;
            s.pre.clear();
            return;
        }
        s.pre.insert(id, pre.map(<[u8]>::to_vec));
    }

    /// The pre-images of `tree` with keys after `after` (all, when `None`) up
    /// to and including `upto` (no end, when `None`), in key order.
    fn between(
        &self,
        tree: Tree,
        after: Option<&[u8]>,
        upto: Option<&[u8]>,
    ) -> Result<Vec<PreImage>> {
        let s = self.state();
        if s.overflowed {
            return Err(Error::Aborted(format!(
                "the store changed by more than {} MiB while the backup was read; take it again",
                self.limit >> 20
            )));
        }
        let t = tree as usize;
        let start = match after {
            Some(k) => Bound::Excluded((t, k.to_vec())),
            None => Bound::Included((t, Vec::new())),
        };
        let end = match upto {
            Some(k) => Bound::Included((t, k.to_vec())),
            None => match t.checked_add(1) {
                Some(next) => Bound::Excluded((next, Vec::new())),
                None => Bound::Unbounded,
            },
        };
        Ok(s.pre
            .range((start, end))
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
}

/// The captures of the snapshots being read, which every write keeps
/// pre-images for.
#[derive(Debug, Default)]
pub(crate) struct Captures {
    live: Mutex<Vec<Arc<Capture>>>,
}

impl Captures {
    fn live(&self) -> MutexGuard<'_, Vec<Arc<Capture>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The captures a write must keep pre-images for (usually none).
    pub(crate) fn now(&self) -> Vec<Arc<Capture>> {
        self.live().clone()
    }

    /// Runs `f` with the captures, no snapshot being registered meanwhile:
    /// for a change made outside the write lock, which keeps its pre-image
    /// and makes the change inside `f`.
    pub(crate) fn keeping<T>(&self, f: impl FnOnce(&[Arc<Capture>]) -> T) -> T {
        let live = self.live();
        f(&live)
    }

    fn add(&self, c: Arc<Capture>) {
        self.live().push(c);
    }

    fn remove(&self, c: &Arc<Capture>) {
        self.live().retain(|x| !Arc::ptr_eq(x, c));
    }
}

/// A consistent view of a store at one revision, read while writes go on
/// (see the module's documentation). Dropping it ends the capture.
pub struct Snapshot {
    store: Store,
    capture: Arc<Capture>,
    revision: u64,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("revision", &self.revision)
            .finish()
    }
}

impl Store {
    /// Takes a snapshot of the store at its last committed revision. Writes
    /// wait only while it is registered, not while it is read.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let s = &*self.inner;
        let _guard = s.lock()?;
        let capture = Arc::new(Capture::default());
        s.captures.add(capture.clone());
        Ok(Snapshot {
            store: self.clone(),
            capture,
            revision: s.committed.load(std::sync::atomic::Ordering::SeqCst),
        })
    }
}

impl Snapshot {
    /// The revision the snapshot holds the store at.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Every key of every tree as it was at the snapshot's revision, tree by
    /// tree in [`Tree::ALL`]'s order and in key order within a tree, each
    /// handed to `each`; an error of `each` ends the walk. Fails ABORTED when
    /// the store changed by more than [`MAX_CAPTURED_BYTES`] meanwhile, and
    /// UNAVAILABLE when the store failed meanwhile (what it read may not
    /// have been durable).
    pub fn entries(&self, mut each: impl FnMut(Tree, &[u8], &[u8]) -> Result<()>) -> Result<()> {
        let inner = &*self.store.inner;
        for tree in Tree::ALL {
            let mut last: Option<Vec<u8>> = None;
            for kv in inner.tree(tree).iter() {
                let (key, live) = kv.map_err(storage)?;
                let mut own = None;
                for (k, pre) in self.capture.between(tree, last.as_deref(), Some(&key))? {
                    if k.as_slice() == key.as_ref() {
                        own = Some(pre);
                    } else if let Some(v) = pre {
                        each(tree, &k, &v)?;
                    }
                }
                match own {
                    None => each(tree, &key, &live)?,
                    Some(Some(v)) => each(tree, &key, &v)?,
                    Some(None) => {}
                }
                last = Some(key.to_vec());
            }
            for (k, pre) in self.capture.between(tree, last.as_deref(), None)? {
                if let Some(v) = pre {
                    each(tree, &k, &v)?;
                }
            }
        }
        inner.sound()
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        self.store.inner.captures.remove(&self.capture);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_pre_image_of_a_key_is_kept_and_ranges_follow_key_order() {
        let c = Capture::default();
        c.keep(Tree::Records, b"b", Some(b"at R"));
        c.keep(Tree::Records, b"b", Some(b"changed since"));
        c.keep(Tree::Records, b"a", None);
        c.keep(Tree::Records, b"c", Some(b"c at R"));
        c.keep(Tree::Index, b"a", Some(b""));
        let all = c.between(Tree::Records, None, None).unwrap();
        assert_eq!(
            all,
            vec![
                (b"a".to_vec(), None),
                (b"b".to_vec(), Some(b"at R".to_vec())),
                (b"c".to_vec(), Some(b"c at R".to_vec())),
            ]
        );
        let after_a_upto_b = c.between(Tree::Records, Some(b"a"), Some(b"b")).unwrap();
        assert_eq!(
            after_a_upto_b,
            vec![(b"b".to_vec(), Some(b"at R".to_vec()))]
        );
        assert_eq!(c.between(Tree::Records, Some(b"c"), None).unwrap(), vec![]);
        assert_eq!(
            c.between(Tree::Index, None, None).unwrap(),
            vec![(b"a".to_vec(), Some(Vec::new()))]
        );
    }

    #[test]
    fn a_capture_past_its_limit_abandons_the_snapshot() {
        let c = Capture::with_limit(2 << 20);
        let big = vec![7u8; 1 << 20];
        c.keep(Tree::Records, b"one", Some(&big));
        assert!(c.between(Tree::Records, None, None).is_ok());
        c.keep(Tree::Records, b"two", Some(&big));
        c.keep(Tree::Records, b"three", Some(&big));
        let err = c.between(Tree::Records, None, None).unwrap_err();
        assert!(matches!(err, Error::Aborted(_)), "{err}");
        assert!(err.to_string().contains("2 MiB"), "{err}");
        assert!(c.state().pre.is_empty(), "nothing more is held");
    }
}
