//! The live feed of anonymous visitors. They all read with the one public
//! identity the operator gave, so a change stream per visitor would count
//! every visitor against that one caller's stream caps (at the gateway and
//! at each domain): a hundred open tabs, or one hostile visitor opening
//! them, would shut every other visitor out. Instead one merged change
//! stream, opened with the public identity when the first visitor comes and
//! closed when the last one goes, is fanned out to every anonymous visitor;
//! and visitors are capped per address ([`MAX_PER_PEER`]) and in total
//! ([`MAX_VISITORS`]). Signed-in viewers keep streams of their own, capped
//! as their identity is.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use cetrack_contract::proto::{GetOverviewRequest, WatchAllChangesRequest};
use cetrack_contract::{Domain, Error};
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::domains::{CallCtx, Domains};
use crate::views;

/// Most live feeds one address holds open at once (anonymous visitors).
pub const MAX_PER_PEER: usize = 8;
/// Most anonymous visitors following the live feed at once.
pub const MAX_VISITORS: usize = 1_000;
/// Events kept for a visitor who is slow to take them; one who falls
/// further behind is told to reload.
const BACKLOG: usize = 256;

/// What a visitor is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    /// A change to the initiative of this resource name.
    Change(String),
    /// The feed stopped (why); the page says so.
    Interrupted(String),
}

/// The shared feed of anonymous visitors.
#[derive(Debug, Default)]
pub struct PublicFeed {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The feed being fanned out, while one is.
    live: Option<broadcast::Sender<FeedEvent>>,
    /// Visitors by address.
    peers: HashMap<IpAddr, usize>,
    visitors: usize,
}

/// A visitor's place in the feed: freed when dropped.
#[derive(Debug)]
pub struct Visit {
    feed: Arc<PublicFeed>,
    peer: IpAddr,
}

impl Drop for Visit {
    fn drop(&mut self) {
        let mut s = self.feed.state();
        s.visitors = s.visitors.saturating_sub(1);
        if let Some(n) = s.peers.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                s.peers.remove(&self.peer);
            }
        }
    }
}

impl PublicFeed {
    fn state(&self) -> MutexGuard<'_, State> {
        // Counters and a sender: whole whatever panicked while holding it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Joins visitor `peer` to the feed, read with the public identity
    /// `ctx` carries (started if no one follows it); RESOURCE_EXHAUSTED past
    /// the caps.
    pub async fn join(
        self: &Arc<Self>,
        peer: IpAddr,
        domains: &Arc<Domains>,
        ctx: &CallCtx,
        shutdown: &CancellationToken,
    ) -> Result<(broadcast::Receiver<FeedEvent>, Visit), Error> {
        {
            let mut s = self.state();
            let mine = s.peers.get(&peer).copied().unwrap_or(0);
            if mine >= MAX_PER_PEER {
                return Err(Error::ResourceExhausted(format!(
                    "this address follows the live feed {MAX_PER_PEER} times already; close a page"
                )));
            }
            if s.visitors >= MAX_VISITORS {
                return Err(Error::ResourceExhausted(format!(
                    "the live feed has {MAX_VISITORS} visitors, the most it serves; try again later"
                )));
            }
            s.visitors += 1;
            *s.peers.entry(peer).or_default() += 1;
        }
        let visit = Visit {
            feed: self.clone(),
            peer,
        };
        if let Some(tx) = self.state().live.as_ref() {
            return Ok((tx.subscribe(), visit));
        }
        // No feed yet: open one from now (each domain's last revision).
        let overview =
            views::overview::overview(domains, GetOverviewRequest::default(), ctx).await?;
        let cursor: BTreeMap<Domain, u64> = overview
            .domains
            .iter()
            .filter_map(|d| {
                let domain = Domain::from_proto(d.domain)?;
                let last = d.summary.as_ref().map(|s| s.last_revision).unwrap_or(0);
                Some((domain, last.max(0) as u64))
            })
            .collect();
        let mut s = self.state();
        if let Some(tx) = s.live.as_ref() {
            // Another visitor opened it meanwhile.
            return Ok((tx.subscribe(), visit));
        }
        let stream = views::watch::watch_all(
            domains.clone(),
            WatchAllChangesRequest {
                cursor: views::watch::encode_cursor(&cursor),
                domains: vec![],
            },
            ctx,
            shutdown.clone(),
        )?;
        let (tx, rx) = broadcast::channel(BACKLOG);
        s.live = Some(tx.clone());
        drop(s);
        let feed = self.clone();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(next) = stream.next().await {
                let event = match next {
                    Ok(c) => FeedEvent::Change(c.change.map(|c| c.name).unwrap_or_default()),
                    Err(status) => FeedEvent::Interrupted(status.message().to_string()),
                };
                let interrupted = matches!(event, FeedEvent::Interrupted(_));
                // No visitor left, or the stream ended: the feed closes (the
                // next visitor opens a new one).
                if tx.send(event).is_err() || interrupted {
                    break;
                }
            }
            let mut s = feed.state();
            if s.live.as_ref().is_some_and(|live| live.same_channel(&tx)) {
                s.live = None;
            }
        });
        Ok((rx, visit))
    }

    /// How many anonymous visitors follow the feed.
    pub fn visitors(&self) -> usize {
        self.state().visitors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_visit_frees_its_place_when_dropped() {
        let feed = Arc::new(PublicFeed::default());
        let peer: IpAddr = [127, 0, 0, 1].into();
        {
            let mut s = feed.state();
            s.visitors = 2;
            s.peers.insert(peer, 2);
        }
        drop(Visit {
            feed: feed.clone(),
            peer,
        });
        assert_eq!(feed.visitors(), 1);
        assert_eq!(feed.state().peers.get(&peer), Some(&1));
        drop(Visit {
            feed: feed.clone(),
            peer,
        });
        assert_eq!(feed.visitors(), 0);
        assert!(feed.state().peers.is_empty());
    }
}
