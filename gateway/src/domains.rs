//! The gateway's connections to the domain services: one lazily connected
//! channel per domain (tonic reconnects by itself when a domain returns),
//! calls in parallel under a deadline, and the last summary each domain sent.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cetrack_contract::auth::Caller;
use cetrack_contract::proto::domain_service_client::DomainServiceClient;
use cetrack_contract::proto::{DomainSummary, DomainUnavailable, GetDomainSummaryRequest};
use cetrack_contract::Domain;
use futures::future::join_all;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::{Channel, Endpoint};

/// A client of one domain service.
pub type Client = DomainServiceClient<Channel>;

/// Why a call to a domain failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DomainError {
    /// The domain did not answer within the deadline.
    #[error("{domain} did not answer within {millis} ms")]
    Timeout {
        /// The domain.
        domain: Domain,
        /// The deadline.
        millis: u128,
    },
    /// The domain answered with an error.
    #[error("{domain}: {code:?}: {message}")]
    Status {
        /// The domain.
        domain: Domain,
        /// The gRPC code.
        code: tonic::Code,
        /// Its message.
        message: String,
        /// Its google.rpc details, as sent (e.g. field violations).
        details: tonic::codegen::Bytes,
    },
}

impl DomainError {
    /// The error of `domain` that answered with `status`.
    pub fn from_status(domain: Domain, status: tonic::Status) -> Self {
        DomainError::Status {
            domain,
            code: status.code(),
            message: status.message().to_string(),
            details: status.details().to_vec().into(),
        }
    }

    /// A domain the gateway has no address for.
    fn not_configured(domain: Domain) -> Self {
        DomainError::Status {
            domain,
            code: tonic::Code::Unavailable,
            message: "no address configured for this domain".into(),
            details: Default::default(),
        }
    }

    /// The domain as unavailable, for responses.
    pub fn unavailable(&self, domain: Domain) -> DomainUnavailable {
        DomainUnavailable {
            domain: domain.to_proto() as i32,
            error: self.to_string(),
        }
    }

    /// Whether the domain itself failed (as opposed to rejecting the request).
    pub fn is_outage(&self) -> bool {
        match self {
            DomainError::Timeout { .. } => true,
            DomainError::Status { code, .. } => matches!(
                code,
                tonic::Code::Unavailable
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::Cancelled
                    | tonic::Code::Unknown
                    | tonic::Code::Internal
                    | tonic::Code::ResourceExhausted
            ),
        }
    }
}

struct Entry {
    /// Unary calls (the channel, and a client on it).
    channel: Channel,
    client: Client,
    /// The connection the unary calls passed through go on.
    onward: Arc<crate::onward::Onward>,
    /// Where streams (change streams, backups) connect: each on a
    /// connection of its own (see [`Domains::streams`]).
    streams: Endpoint,
    /// The last summary the gateway's own identity received, per clearance
    /// (index 0: public records only, 1: with restricted ones).
    last_summary: [Mutex<Option<(DomainSummary, Instant)>>; 2],
    /// When the gateway last asked for them.
    refreshed: Mutex<Option<Instant>>,
}

/// The HTTP/2 window of a stream's own connection to a domain: what a
/// stream whose reader stopped can hold in the gateway.
pub const STREAM_WINDOW: u32 = 256 * 1024;

/// How often at most the gateway asks a domain for its summaries with its
/// own identity.
pub const SUMMARY_REFRESH: Duration = Duration::from_secs(1);

/// Most change streams (routed WatchChanges and WatchAllChanges) the gateway
/// keeps open at once; one more is RESOURCE_EXHAUSTED.
pub const MAX_STREAMS: usize = 1_000;

/// Most change streams one caller (the subject of their token) may keep open
/// on the gateway; one more is RESOURCE_EXHAUSTED.
pub const MAX_STREAMS_PER_CALLER: usize = 100;

/// The domain services the gateway answers from.
pub struct Domains {
    entries: BTreeMap<Domain, Entry>,
    /// The caps on the change streams callers hold open.
    streams_open: cetrack_server::streams::StreamLimits,
    /// The file holding the gateway's own bearer token (its service
    /// identity), re-read at each use so that it can be renewed in place.
    service_token: Option<std::path::PathBuf>,
    /// Today's summaries, fresh from the domains' change streams.
    live: crate::live::Live,
}

impl std::fmt::Debug for Domains {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries.keys()).finish()
    }
}

impl Domains {
    /// Lazily connected channels to every domain, by URL
    /// (e.g. `http://127.0.0.1:50051`).
    /// `service_token` is the file of the gateway's own token, which it
    /// keeps last-known summaries with (none: it keeps none).
    pub fn new(
        urls: &BTreeMap<Domain, String>,
        tls: Option<&cetrack_server::tls::ClientTls>,
        service_token: Option<std::path::PathBuf>,
    ) -> anyhow::Result<Self> {
        let mut entries = BTreeMap::new();
        for (domain, url) in urls {
            let endpoint = cetrack_server::tls::endpoint(url, tls.map(|t| t.tonic()))?
                .connect_timeout(Duration::from_secs(2))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_while_idle(true);
            let channel = endpoint.connect_lazy();
            let client = DomainServiceClient::new(channel.clone())
                .max_decoding_message_size(cetrack_server::MAX_RESPONSE_BYTES);
            let streams = endpoint
                .clone()
                .initial_stream_window_size(STREAM_WINDOW)
                .initial_connection_window_size(STREAM_WINDOW);
            let onward = Arc::new(crate::onward::Onward::new(
                &url.parse::<http::Uri>()?,
                tls.cloned(),
            )?);
            entries.insert(
                *domain,
                Entry {
                    onward,
                    channel,
                    client,
                    streams,
                    last_summary: [Mutex::new(None), Mutex::new(None)],
                    refreshed: Mutex::new(None),
                },
            );
        }
        match &service_token {
            Some(path) if !path.exists() => tracing::warn!(
                path = %path.display(),
                "the gateway's service token file does not exist (yet): until it does, the gateway keeps no last-known summaries"
            ),
            Some(_) => {}
            None => tracing::warn!(
                "no service token (--service-token-file): the gateway keeps no last-known summaries of the domains"
            ),
        }
        Ok(Self {
            entries,
            streams_open: cetrack_server::streams::StreamLimits::new(
                "the gateway",
                MAX_STREAMS,
                MAX_STREAMS_PER_CALLER,
            ),
            live: crate::live::Live::new(urls.keys().copied()),
            service_token,
        })
    }

    /// Today's summaries the gateway keeps (see [`crate::live`]).
    pub fn live(&self) -> &crate::live::Live {
        &self.live
    }

    /// Whether the gateway was given a service token file.
    pub fn has_service_token(&self) -> bool {
        self.service_token.is_some()
    }

    /// `Bearer <the gateway's own token>`, read from its file now; `None`
    /// (logged) without a readable one.
    pub fn service_bearer(&self) -> Option<AsciiMetadataValue> {
        let path = self.service_token.as_ref()?;
        // A few hundred bytes: read in place.
        let token = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(err) => {
                tracing::warn!(path = %path.display(), %err, "cannot read the gateway's service token");
                return None;
            }
        };
        match format!("Bearer {}", token.trim()).parse::<AsciiMetadataValue>() {
            Ok(b) => Some(b),
            Err(_) => {
                tracing::warn!(path = %path.display(), "the gateway's service token is not a token");
                None
            }
        }
    }

    /// Asks `domain` for a summary as the gateway itself (its service
    /// token), under `deadline`.
    pub async fn as_gateway(
        &self,
        domain: Domain,
        req: GetDomainSummaryRequest,
        deadline: Duration,
    ) -> Result<DomainSummary, DomainError> {
        let not_configured = || DomainError::not_configured(domain);
        let mut client = self.client(domain).ok_or_else(not_configured)?;
        let bearer = self.service_bearer().ok_or_else(|| DomainError::Status {
            domain,
            code: tonic::Code::Unauthenticated,
            message: "the gateway has no service token".into(),
            details: Default::default(),
        })?;
        let mut r = tonic::Request::new(req);
        r.set_timeout(deadline);
        r.metadata_mut().insert("authorization", bearer);
        match tokio::time::timeout(deadline, client.get_domain_summary(r)).await {
            Err(_) => Err(DomainError::Timeout {
                domain,
                millis: deadline.as_millis(),
            }),
            Ok(Err(s)) => Err(DomainError::from_status(domain, s)),
            Ok(Ok(r)) => Ok(r.into_inner()),
        }
    }

    /// The domains configured, in the order of [`Domain::ALL`].
    pub fn all(&self) -> Vec<Domain> {
        Domain::ALL
            .into_iter()
            .filter(|d| self.entries.contains_key(d))
            .collect()
    }

    /// A client of `domain`, if configured.
    pub fn client(&self, domain: Domain) -> Option<Client> {
        self.entries.get(&domain).map(|e| e.client.clone())
    }

    /// The connection of `domain` for the unary calls passed through, if
    /// configured.
    pub fn onward(&self, domain: Domain) -> Option<Arc<crate::onward::Onward>> {
        self.entries.get(&domain).map(|e| e.onward.clone())
    }

    /// The channel of `domain`, if configured.
    pub fn channel(&self, domain: Domain) -> Option<Channel> {
        self.entries.get(&domain).map(|e| e.channel.clone())
    }

    /// A channel for one stream of `domain` (a change stream, a backup), if
    /// configured: a connection of its own, closed when the channel is
    /// dropped. A stream whose reader stops holds what it was sent in the
    /// gateway, up to HTTP/2's windows; on a shared connection a few such
    /// streams would use up the connection's window and hold up every other
    /// call to the domain. Alone, it holds at most [`STREAM_WINDOW`] and
    /// nothing else waits.
    pub fn streams(&self, domain: Domain) -> Option<Channel> {
        self.entries.get(&domain).map(|e| e.streams.connect_lazy())
    }

    /// Counts a change stream of `caller` (the subject of their token) until
    /// the permit is dropped, or RESOURCE_EXHAUSTED past [`MAX_STREAMS`] or
    /// [`MAX_STREAMS_PER_CALLER`].
    pub fn open_stream(
        &self,
        caller: &str,
    ) -> Result<cetrack_server::streams::StreamPermit, cetrack_contract::Error> {
        self.streams_open.open(caller)
    }

    /// A client of `domain` for its streams (see [`Domains::streams`]).
    pub fn stream_client(&self, domain: Domain) -> Option<Client> {
        self.streams(domain).map(|c| {
            DomainServiceClient::new(c)
                .max_decoding_message_size(cetrack_server::MAX_RESPONSE_BYTES)
        })
    }

    /// Calls `domain` with `f` under the deadline of `ctx`: the request
    /// carries the deadline and the caller's credentials, and the call is
    /// abandoned when the deadline passes.
    pub async fn call<T, F, Fut>(
        &self,
        domain: Domain,
        ctx: &CallCtx,
        f: F,
    ) -> Result<T, DomainError>
    where
        F: FnOnce(Client, CallCtx) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let Some(client) = self.client(domain) else {
            return Err(DomainError::not_configured(domain));
        };
        let deadline = ctx.deadline;
        match tokio::time::timeout(deadline, f(client, ctx.clone())).await {
            Err(_) => Err(DomainError::Timeout {
                domain,
                millis: deadline.as_millis(),
            }),
            Ok(Err(s)) => Err(DomainError::from_status(domain, s)),
            Ok(Ok(r)) => Ok(r.into_inner()),
        }
    }

    /// Runs `f` against each of `domains` in parallel, each under
    /// `deadline`: the answers of the domains that answered, in the order of
    /// `domains`, and the others as unavailable, with why.
    pub async fn fan_out<T, F, Fut>(&self, domains: &[Domain], ctx: &CallCtx, f: F) -> FanOut<T>
    where
        F: Fn(Domain, Client, CallCtx) -> Fut,
        Fut: Future<Output = Result<T, DomainError>>,
    {
        let calls = domains.iter().map(|d| {
            let d = *d;
            let f = &f;
            async move {
                let Some(client) = self.client(d) else {
                    return (d, Err(DomainError::not_configured(d)));
                };
                let deadline = ctx.deadline;
                let r = match tokio::time::timeout(deadline, f(d, client, ctx.clone())).await {
                    Err(_) => Err(DomainError::Timeout {
                        domain: d,
                        millis: deadline.as_millis(),
                    }),
                    Ok(r) => r,
                };
                (d, r)
            }
        });
        let mut out = FanOut {
            answers: Vec::new(),
            unavailable: Vec::new(),
        };
        for (d, r) in join_all(calls).await {
            match r {
                Ok(answer) => out.answers.push((d, answer)),
                Err(e) => {
                    tracing::warn!(domain = %d, error = %e, "domain unavailable");
                    out.unavailable.push(e.unavailable(d));
                }
            }
        }
        out
    }

    /// Asks `domain` for its summaries with the gateway's own identity,
    /// one counting public records only and one counting restricted records
    /// too (if that identity is cleared; else both count public ones), and
    /// keeps them as the last known; at most once per [`SUMMARY_REFRESH`],
    /// each call under `deadline`. Does nothing without a service token.
    /// Never with a caller's credentials: what is kept across callers is
    /// fetched by the gateway as itself.
    pub async fn refresh_summaries(&self, domain: Domain, deadline: Duration) {
        let (Some(_), Some(e)) = (&self.service_token, self.entries.get(&domain)) else {
            return;
        };
        if !self.refresh_due(domain) {
            return;
        }
        let Some(bearer) = self.service_bearer() else {
            return;
        };
        let ask = |public_only: bool| {
            let mut client = e.client.clone();
            let mut r = tonic::Request::new(GetDomainSummaryRequest {
                parent: domain.parent(),
                public_only,
                ..Default::default()
            });
            r.set_timeout(deadline);
            r.metadata_mut().insert("authorization", bearer.clone());
            async move {
                tokio::time::timeout(deadline, client.get_domain_summary(r))
                    .await
                    .map_err(|_| tonic::Status::deadline_exceeded("no answer in time"))
                    .and_then(|r| r)
            }
        };
        let (public, full) = tokio::join!(ask(true), ask(false));
        for (cleared, answer) in [(false, public), (true, full)] {
            match answer {
                Ok(s) => {
                    if let Ok(mut last) = e.last_summary[usize::from(cleared)].lock() {
                        *last = Some((s.into_inner(), Instant::now()));
                    }
                }
                Err(s) => {
                    tracing::warn!(%domain, code = ?s.code(), message = s.message(), "the gateway's own summary call failed")
                }
            }
        }
    }

    /// Whether `domain`'s last-known summaries are due to be fetched again
    /// (at most once per [`SUMMARY_REFRESH`]); if so, the caller fetches
    /// them and the next one is due a period later.
    pub fn refresh_due(&self, domain: Domain) -> bool {
        let Some(e) = self.entries.get(&domain) else {
            return false;
        };
        match e.refreshed.lock() {
            Ok(mut at) if at.is_none_or(|t| t.elapsed() >= SUMMARY_REFRESH) => {
                *at = Some(Instant::now());
                true
            }
            _ => false,
        }
    }

    /// Keeps `summary`, received by the gateway's own identity for
    /// clearance `cleared`, as `domain`'s last-known one.
    pub fn keep_last_summary(&self, domain: Domain, cleared: bool, summary: DomainSummary) {
        if let Some(e) = self.entries.get(&domain) {
            if let Ok(mut last) = e.last_summary[usize::from(cleared)].lock() {
                *last = Some((summary, Instant::now()));
            }
        }
    }

    /// The last summary of `domain` the gateway's own identity received for
    /// clearance `cleared`, and its age.
    pub fn last_summary(&self, domain: Domain, cleared: bool) -> Option<(DomainSummary, Duration)> {
        let e = self.entries.get(&domain)?;
        let last = e.last_summary[usize::from(cleared)].lock().ok()?;
        last.as_ref().map(|(s, at)| (s.clone(), at.elapsed()))
    }
}

/// What a fan-out to several domains brought back.
#[derive(Debug)]
pub struct FanOut<T> {
    /// The answers of the domains that answered.
    pub answers: Vec<(Domain, T)>,
    /// The domains that did not, with why.
    pub unavailable: Vec<DomainUnavailable>,
}

/// What every call to a domain made for one request of the gateway's
/// caller carries: the deadline, and the caller's own credentials (the
/// domains enforce what the caller may see and do; the gateway is not
/// trusted to filter).
#[derive(Debug, Clone)]
pub struct CallCtx {
    /// The deadline of each call to a domain.
    pub deadline: Duration,
    /// The caller's `authorization` header, passed on as sent.
    pub authorization: Option<tonic::metadata::AsciiMetadataValue>,
    /// Whether the caller may see restricted records (what the gateway
    /// keeps across callers is kept per clearance).
    pub cleared: bool,
    /// The verified caller: what the gateway keeps across callers is shown
    /// only to a caller who may read it.
    pub caller: Arc<Caller>,
}

impl CallCtx {
    /// The context of a call with `deadline`, on behalf of `caller` (the
    /// verified caller of `metadata`, whose `authorization` header is
    /// passed on).
    pub fn new(
        deadline: Duration,
        metadata: &tonic::metadata::MetadataMap,
        caller: Arc<Caller>,
    ) -> Self {
        Self {
            deadline,
            authorization: metadata.get("authorization").cloned(),
            cleared: caller.cleared(),
            caller,
        }
    }
}

/// A request carrying the deadline and credentials of `ctx`.
pub fn request<T>(message: T, ctx: &CallCtx) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.set_timeout(ctx.deadline);
    if let Some(a) = &ctx.authorization {
        r.metadata_mut().insert("authorization", a.clone());
    }
    r
}
