//! Today's summary of each domain, kept in memory and fresh from the
//! domain's change stream, so that the overview of today answers without
//! asking seven domains (issue #13).
//!
//! With a service token (`--service-token-file`), the gateway follows each
//! domain's WatchChanges as itself. A summary it fetched (as itself, never
//! with a caller's token) is kept under the domain's *generation*: a number
//! that moves on every change the stream brings, every time the stream is
//! opened again, and every write passed through the gateway to that domain
//! (before its caller sees the answer). A kept summary answers while its
//! generation is the current one and the stream is open; otherwise the
//! overview asks the domain as before. A fetch that a change overtook is
//! not kept.
//!
//! What a caller reads back:
//! - a write made through the gateway (the one address every caller is
//!   given): at once, in the next overview;
//! - a write made at a domain directly: once the gateway's stream brings
//!   it (a write is told to its caller when it is durable, and the stream
//!   sends it at the same moment: milliseconds);
//! - another day than today, a record-time day, one document: from the
//!   domains, as before.
//!
//! The overview of today built from kept summaries alone (a caller who may
//! read every domain) is kept too, encoded, under the generations of the
//! summaries it was built from, and sent again while they are current.
//!
//! Who sees what is unchanged: a kept summary is shown only to a caller whose
//! roles cover the domain, and counts restricted records only for a caller
//! cleared for them (it is kept per clearance). Nothing is kept unless the
//! gateway's own identity is cleared: only then does its stream bring every
//! change (a record made restricted leaves the public counts, and an
//! uncleared stream never hears of it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use cetrack_contract::proto::{DomainSummary, GetDomainSummaryRequest, WatchChangesRequest};
use cetrack_contract::{dates, Domain};
use cetrack_server::auth::Auth;
use time::Date;
use tokio_util::sync::CancellationToken;

use crate::domains::Domains;

/// Most summaries kept per domain (kinds of request: clearance, due window,
/// day); past it, what is kept for other days goes, then everything.
const MAX_KEPT: usize = 32;

/// How long the gateway waits before it opens a domain's stream again after
/// it ended; doubled after each attempt that could not open it, up to
/// [`REOPEN_AT_MOST`].
const REOPEN_AFTER: Duration = Duration::from_secs(1);
/// The longest wait between two attempts to open a domain's stream.
const REOPEN_AT_MOST: Duration = Duration::from_secs(30);

/// What a kept summary answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    /// Counting restricted records too.
    cleared: bool,
    /// The due window, in days.
    due_within_days: i32,
    /// The day it is as of (today when it was fetched).
    day: Date,
}

impl Key {
    fn new(cleared: bool, due_within_days: i32, day: Date) -> Self {
        Self {
            cleared,
            due_within_days,
            day,
        }
    }
}

/// One domain's followed state.
#[derive(Debug, Default)]
pub struct Followed {
    /// Moves on every change the stream brings, every (re)opening of the
    /// stream and every write passed through the gateway.
    generation: AtomicU64,
    /// The stream is open: only then does `generation` follow the domain.
    following: AtomicBool,
    /// The gateway's own identity may see restricted records (so its stream
    /// brings their changes too).
    cleared: AtomicBool,
    /// Summaries fetched, with the generation they were fetched under.
    kept: Mutex<HashMap<Key, (u64, DomainSummary)>>,
    /// Counts the summaries answered from memory (registered on first use,
    /// once the process's metrics recorder is in place).
    from_memory: OnceLock<metrics::Counter>,
}

impl Followed {
    /// Whether what is kept follows every change of the domain: the stream
    /// is open, and the gateway's identity is cleared (only a cleared
    /// identity hears of every change: a record made restricted at the
    /// domain leaves the public counts, and a stream that may not see
    /// restricted records never brings that change).
    fn follows_every_change(&self) -> bool {
        self.following.load(Ordering::SeqCst) && self.cleared.load(Ordering::SeqCst)
    }

    /// Something changed (or may have): what is kept is out of date.
    pub fn touch(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a summary of `domain` answered from memory.
    fn count_from_memory(&self, domain: Domain) {
        self.from_memory
            .get_or_init(|| {
                metrics::counter!(cetrack_server::metrics::GATEWAY_FROM_MEMORY, "domain" => domain.slug())
            })
            .increment(1);
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (u64, DomainSummary)>> {
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Today's summaries of every domain.
#[derive(Debug, Default)]
pub struct Live {
    domains: HashMap<Domain, Arc<Followed>>,
    /// Overviews of today built from kept summaries alone, as encoded
    /// (without their generation time), with the generations of the
    /// summaries they were built from, in the order of `Domain::ALL`.
    overviews: Mutex<HashMap<Key, (Vec<u64>, Bytes)>>,
}

impl Live {
    /// Nothing kept yet for `domains`.
    pub fn new(domains: impl IntoIterator<Item = Domain>) -> Self {
        Self {
            domains: domains
                .into_iter()
                .map(|d| (d, Arc::new(Followed::default())))
                .collect(),
            overviews: Mutex::default(),
        }
    }

    /// The generations under which today's summaries of every domain of
    /// `domains` are kept for this kind of request, if each is kept and
    /// still current; it asks no one.
    pub fn generations(
        &self,
        domains: &[Domain],
        day: Date,
        cleared: bool,
        due_within_days: i32,
    ) -> Option<Vec<u64>> {
        let key = Key::new(cleared, due_within_days, day);
        domains
            .iter()
            .map(|d| {
                let f = self.domains.get(d)?;
                if !f.follows_every_change() {
                    return None;
                }
                let generation = f.generation.load(Ordering::SeqCst);
                let kept = f.kept();
                let (g, _) = kept.get(&key)?;
                (*g == generation).then_some(generation)
            })
            .collect()
    }

    /// The overview of today kept for this kind of request, if it was built
    /// from the summaries kept under `generations` (see [`Live::generations`]);
    /// counted as the summaries of `domains` answered from memory.
    pub fn kept_overview(
        &self,
        domains: &[Domain],
        day: Date,
        cleared: bool,
        due_within_days: i32,
        generations: &[u64],
    ) -> Option<Bytes> {
        let key = Key::new(cleared, due_within_days, day);
        let overviews = self
            .overviews
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (g, encoded) = overviews.get(&key)?;
        if g.as_slice() != generations {
            return None;
        }
        let encoded = encoded.clone();
        drop(overviews);
        for d in domains {
            if let Some(f) = self.domains.get(d) {
                f.count_from_memory(*d);
            }
        }
        Some(encoded)
    }

    /// Keeps `encoded`, the overview of today for this kind of request built
    /// from the summaries kept under `generations` alone.
    pub fn keep_overview(
        &self,
        day: Date,
        cleared: bool,
        due_within_days: i32,
        generations: Vec<u64>,
        encoded: Bytes,
    ) {
        let key = Key::new(cleared, due_within_days, day);
        let mut overviews = self
            .overviews
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if overviews.len() >= MAX_KEPT && !overviews.contains_key(&key) {
            overviews.clear();
        }
        overviews.insert(key, (generations, encoded));
    }

    /// What the gateway follows of `domain` (a write passed through the
    /// gateway touches it).
    pub fn followed(&self, domain: Domain) -> Option<Arc<Followed>> {
        self.domains.get(&domain).cloned()
    }

    /// The summary of `domain` for `day`, which is today (counting
    /// restricted records when `cleared`, milestones due within
    /// `due_within_days`), if one is kept and still current; it asks no one.
    /// The caller must have checked that the caller it answers may read
    /// `domain`.
    pub fn kept_today(
        &self,
        domain: Domain,
        day: Date,
        cleared: bool,
        due_within_days: i32,
    ) -> Option<DomainSummary> {
        let key = Key::new(cleared, due_within_days, day);
        self.kept_under(domain, key)
    }

    /// The summary kept for `key` of `domain`, if still current.
    fn kept_under(&self, domain: Domain, key: Key) -> Option<DomainSummary> {
        let f = self.domains.get(&domain)?;
        if !f.follows_every_change() {
            return None;
        }
        let generation = f.generation.load(Ordering::SeqCst);
        let kept = f.kept();
        let (g, s) = kept.get(&key)?;
        if *g != generation {
            return None;
        }
        f.count_from_memory(domain);
        Some(s.clone())
    }

    /// The summary of `domain` for `day`, which is today (counting restricted records when
    /// `cleared`, milestones due within `due_within_days`), kept or fetched
    /// now as the gateway; `None` when the gateway does not follow the
    /// domain now, or could not fetch it (the caller then asks the domain
    /// itself). The caller must have checked that the caller it answers may
    /// read `domain`.
    pub async fn today(
        &self,
        domains: &Domains,
        domain: Domain,
        day: Date,
        cleared: bool,
        due_within_days: i32,
        deadline: Duration,
    ) -> Option<DomainSummary> {
        // The generation is read before the kept summary: a fetch below is
        // kept under it only if nothing moved it meanwhile.
        let f = self.domains.get(&domain)?;
        let generation = f.generation.load(Ordering::SeqCst);
        let key = Key::new(cleared, due_within_days, day);
        if let Some(s) = self.kept_under(domain, key) {
            return Some(s);
        }
        if !f.follows_every_change() {
            return None;
        }
        let ask = |cleared: bool| {
            domains.as_gateway(
                domain,
                GetDomainSummaryRequest {
                    parent: domain.parent(),
                    due_within_days,
                    as_of: Some(dates::to_calendar(day)),
                    public_only: !cleared,
                    as_known_on: None,
                    document: String::new(),
                },
                deadline,
            )
        };
        // The default window is also what the overview shows while the
        // domain is down (its last-known summaries): when those are due (at
        // most once a second), both clearances are fetched and kept
        // together, as `Domains::refresh_summaries` does.
        let both = due_within_days == cetrack_contract::requests::DEFAULT_DUE_WITHIN_DAYS
            && domains.refresh_due(domain);
        let fetched: Vec<(bool, DomainSummary)> = if both {
            let (public, full) = tokio::join!(ask(false), ask(true));
            let fetched: Vec<_> = [(false, public), (true, full)]
                .into_iter()
                .filter_map(|(c, s)| s.ok().map(|s| (c, s)))
                .collect();
            for (c, s) in &fetched {
                domains.keep_last_summary(domain, *c, s.clone());
            }
            fetched
        } else {
            vec![(cleared, ask(cleared).await.ok()?)]
        };
        // Kept only if nothing changed while it was fetched, and the stream
        // still follows the domain.
        if f.generation.load(Ordering::SeqCst) == generation && f.following.load(Ordering::SeqCst) {
            let mut kept = f.kept();
            if kept.len() + fetched.len() > MAX_KEPT {
                kept.retain(|k, _| k.day == day);
                if kept.len() + fetched.len() > MAX_KEPT {
                    kept.clear();
                }
            }
            for (c, s) in &fetched {
                let key = Key { cleared: *c, ..key };
                kept.insert(key, (generation, s.clone()));
            }
        }
        fetched
            .into_iter()
            .find_map(|(c, s)| (c == cleared).then_some(s))
    }

    /// Follows every domain's change stream as the gateway (with its service
    /// token; without one, nothing is kept) until `shutdown`.
    pub fn follow(domains: &Arc<Domains>, auth: &Auth, shutdown: &CancellationToken) {
        if !domains.has_service_token() {
            return;
        }
        for (domain, f) in &domains.live().domains {
            tokio::spawn(follow(
                domains.clone(),
                *domain,
                f.clone(),
                auth.clone(),
                shutdown.clone(),
            ));
        }
    }
}

/// Follows `domain`'s change stream into `f`, opening it again whenever it
/// ends, until `shutdown`.
async fn follow(
    domains: Arc<Domains>,
    domain: Domain,
    f: Arc<Followed>,
    auth: Auth,
    shutdown: CancellationToken,
) {
    let mut wait = REOPEN_AFTER;
    loop {
        if let Some(mut stream) = open(&domains, domain, &f, &auth).await {
            wait = REOPEN_AFTER;
            // Anything kept before the stream was open is out of date.
            f.touch();
            f.following.store(true, Ordering::SeqCst);
            following(domain, true);
            tracing::debug!(%domain, "following the change stream for the overview");
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    next = stream.message() => match next {
                        Ok(Some(_)) => f.touch(),
                        Ok(None) | Err(_) => break,
                    },
                }
            }
            f.following.store(false, Ordering::SeqCst);
            following(domain, false);
            f.touch();
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(REOPEN_AT_MOST);
    }
}

/// Says in the metrics whether the gateway follows `domain`.
fn following(domain: Domain, yes: bool) {
    metrics::gauge!(cetrack_server::metrics::GATEWAY_FOLLOWING, "domain" => domain.slug())
        .set(if yes { 1.0 } else { 0.0 });
}

/// Opens `domain`'s change stream as the gateway, from the domain's last
/// revision; `None` (logged) when it cannot.
async fn open(
    domains: &Domains,
    domain: Domain,
    f: &Followed,
    auth: &Auth,
) -> Option<tonic::Streaming<cetrack_contract::proto::Change>> {
    let bearer = domains.service_bearer()?;
    let cleared = match auth {
        Auth::Off => true,
        Auth::Jwt(a) => bearer
            .to_str()
            .ok()
            .and_then(|b| b.strip_prefix("Bearer "))
            .and_then(|t| a.verify(t).ok())
            .is_some_and(|c| c.cleared()),
    };
    f.cleared.store(cleared, Ordering::SeqCst);
    let from = domains
        .as_gateway(
            domain,
            GetDomainSummaryRequest {
                parent: domain.parent(),
                ..Default::default()
            },
            crate::DEFAULT_DOMAIN_DEADLINE,
        )
        .await
        .map_err(|e| tracing::debug!(%domain, error = %e, "cannot read the domain's revision"))
        .ok()?
        .last_revision;
    let mut client = domains.stream_client(domain)?;
    let mut r = tonic::Request::new(WatchChangesRequest {
        parent: domain.parent(),
        after_revision: from,
    });
    r.metadata_mut().insert("authorization", bearer);
    match client.watch_changes(r).await {
        Ok(s) => Some(s.into_inner()),
        Err(e) => {
            tracing::warn!(%domain, code = ?e.code(), message = e.message(), "cannot follow the domain's changes: the overview asks it on every call");
            None
        }
    }
}
