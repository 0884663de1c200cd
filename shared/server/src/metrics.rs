//! Prometheus metrics: a process-wide recorder, installed once, served as
//! Prometheus text over HTTP at `/metrics`, and [`MetricsLayer`], the tower
//! layer that measures every cet.v1 call a server handles.
//!
//! Without [`start_metrics`] nothing is installed and every measurement is a
//! no-op, so servers started by tests pay nothing and need no configuration.
//! `cetrack up` starts one endpoint for its eight servers: every series
//! carries the `service` (a domain's slug or `gateway`) or `domain` label.
//!
//! Series:
//! - `cetrack_grpc_requests_total{service,method,code}`: finished calls by
//!   gRPC status code (`OK`, `NOT_FOUND`, ...); `method` is a method of the
//!   contract, or [`UNKNOWN_METHOD`] for any other cet.v1 path;
//! - `cetrack_grpc_request_duration_seconds{service,method}`: histogram of
//!   call latency (for a server stream, until the stream is opened);
//!   health checks and reflection are not measured;
//! - `cetrack_grpc_in_flight{service,method}`: calls being handled;
//! - `cetrack_initiatives{domain}`, `cetrack_store_size_bytes{domain}`,
//!   `cetrack_last_revision{domain}`: the state of a domain's store;
//! - `cetrack_store_flushes_total{domain}`: flushes that made writes durable
//!   (writers waiting together share one: compare with the revisions);
//! - `cetrack_change_streams{domain,state}`: change streams open, reading
//!   their backlog from the store (`backlog`) or following the changes as
//!   they become durable (`live`);
//! - `cetrack_store_changes_read_total{domain}`: changes read from the change
//!   log (each durable change once for every change stream that is caught
//!   up; a stream's backlog on top).

use std::collections::{HashMap, HashSet};
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::Code;

/// Finished calls, by service, method and gRPC status code.
pub const REQUESTS_TOTAL: &str = "cetrack_grpc_requests_total";
/// Latency of calls, by service and method.
pub const REQUEST_DURATION: &str = "cetrack_grpc_request_duration_seconds";
/// Calls being handled, by service and method.
pub const IN_FLIGHT: &str = "cetrack_grpc_in_flight";
/// Initiatives in a domain's store.
pub const INITIATIVES: &str = "cetrack_initiatives";
/// Size of a domain's store on disk.
pub const STORE_SIZE: &str = "cetrack_store_size_bytes";
/// Last revision written to a domain's store.
pub const LAST_REVISION: &str = "cetrack_last_revision";
/// Flushes of a domain's store that made writes durable.
pub const STORE_FLUSHES: &str = "cetrack_store_flushes_total";
/// Whether the gateway follows a domain's change stream (1) or not (0),
/// by domain: while it does, the overview of today answers from memory.
pub const GATEWAY_FOLLOWING: &str = "cetrack_gateway_following";
/// Summaries of today the gateway answered from memory, by domain.
pub const GATEWAY_FROM_MEMORY: &str = "cetrack_gateway_summaries_from_memory_total";
/// Change streams open, by domain and state (`backlog`, `live`).
pub const CHANGE_STREAMS: &str = "cetrack_change_streams";
/// Changes read from a domain's change log.
pub const CHANGES_READ: &str = "cetrack_store_changes_read_total";

/// Upper bounds of the latency histogram's buckets, in seconds: from half a
/// millisecond (a read served from cache) to the server's two-minute timeout.
pub const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    120.0,
];

/// How often histogram samples are folded into their buckets between scrapes.
const UPKEEP_PERIOD: Duration = Duration::from_secs(5);

/// Why the metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The address cannot be listened on.
    #[error("cannot listen on {addr} for metrics: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The Prometheus recorder cannot be built or installed (another metrics
    /// recorder was installed in this process first).
    #[error("cannot install the metrics recorder: {0}")]
    Recorder(#[from] BuildError),
}

/// The recorder of this process, once installed.
static RECORDER: Mutex<Option<PrometheusHandle>> = Mutex::new(None);
/// Whether [`RECORDER`] is installed (read on every call measured).
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Installs the Prometheus recorder unless this process already did, and
/// returns its handle. Safe to call any number of times, from any thread.
pub fn install_recorder() -> Result<PrometheusHandle, MetricsError> {
    let mut installed = RECORDER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(handle) = installed.as_ref() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.into()), DURATION_BUCKETS)?
        .install_recorder()?;
    describe();
    *installed = Some(handle.clone());
    INSTALLED.store(true, Ordering::SeqCst);
    Ok(handle)
}

/// Whether this process records metrics (an endpoint was started).
pub fn enabled() -> bool {
    RECORDER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .is_some()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        REQUESTS_TOTAL,
        "gRPC calls finished, by service, method and status code."
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time to handle a gRPC call (for a server stream, until it is opened)."
    );
    describe_gauge!(IN_FLIGHT, "gRPC calls being handled.");
    describe_gauge!(INITIATIVES, "Initiatives in the domain's store.");
    describe_gauge!(
        STORE_SIZE,
        Unit::Bytes,
        "Size of the domain's store on disk."
    );
    describe_gauge!(
        LAST_REVISION,
        "Last revision made durable in the domain's store."
    );
    describe_gauge!(
        CHANGE_STREAMS,
        "Change streams open, reading their backlog (state=backlog) or following live changes (state=live)."
    );
    describe_counter!(
        CHANGES_READ,
        "Changes read from the domain's change log since it opened (once per change for all caught-up change streams)."
    );
    describe_gauge!(
        GATEWAY_FOLLOWING,
        "Whether the gateway follows the domain's change stream (1: the overview of today answers from memory) or not (0: it asks the domain)."
    );
    describe_counter!(
        GATEWAY_FROM_MEMORY,
        "Domain summaries of today the gateway's overview answered from memory (without asking the domain)."
    );
    describe_counter!(
        STORE_FLUSHES,
        "Flushes that made writes to the domain's store durable since it opened (concurrent writes share one)."
    );
}

/// A metrics endpoint running in this process.
#[derive(Debug)]
pub struct MetricsServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Ends after the shutdown token fires.
    pub task: JoinHandle<()>,
}

/// Installs the recorder (once per process) and serves `GET /metrics` on
/// `listen` until `shutdown` fires. Port 0 picks a free port; the address is
/// logged (`serving metrics`) and returned.
pub async fn start_metrics(
    listen: SocketAddr,
    shutdown: CancellationToken,
) -> Result<MetricsServer, MetricsError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| MetricsError::Listen {
            addr: listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| MetricsError::Listen {
            addr: listen,
            source,
        })?;
    let handle = install_recorder()?;
    let render = handle.clone();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let render = render.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    render.render(),
                )
            }
        }),
    );
    tracing::info!(%addr, "serving metrics");
    let task = tokio::spawn(async move {
        let stop = shutdown.clone();
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .into_future();
        let upkeep = async {
            let mut tick = tokio::time::interval(UPKEEP_PERIOD);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => handle.run_upkeep(),
                }
            }
        };
        let (served, ()) = tokio::join!(served, upkeep);
        if let Err(e) = served {
            tracing::error!(error = %e, "the metrics endpoint failed");
        }
    });
    Ok(MetricsServer { addr, task })
}

/// The canonical name of a gRPC status code, as in the gRPC specification.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The path prefix of the calls measured: the cet.v1 API, not health checks
/// or reflection.
const MEASURED_PREFIX: &str = "/cet.v1.";

/// The `method` label of a call to a cet.v1 path that names no method of
/// the contract (answered UNIMPLEMENTED). The path is the caller's: were
/// it a label, every made-up name would add series to the registry for as
/// long as the process runs.
pub const UNKNOWN_METHOD: &str = "unknown";

/// Every method of the contract, as its path without the leading slash
/// (`cet.v1.DomainService/GetInitiative`), read from the contract's file
/// descriptor set.
static METHODS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    use prost::Message;
    let set = match prost_types::FileDescriptorSet::decode(
        cetrack_contract::proto::FILE_DESCRIPTOR_SET,
    ) {
        Ok(set) => set,
        Err(e) => {
            tracing::error!(error = %e, "the contract's descriptor does not decode: every call is measured as an unknown method");
            return HashSet::new();
        }
    };
    set.file
        .iter()
        .flat_map(|f| {
            f.service.iter().flat_map(move |s| {
                s.method
                    .iter()
                    .map(move |m| format!("{}.{}/{}", f.package(), s.name(), m.name()))
            })
        })
        .collect()
});

/// The `method` label of a call to `path`, if it is measured: the method's
/// name for a method of the contract, [`UNKNOWN_METHOD`] for any other
/// cet.v1 path.
fn method_label(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(MEASURED_PREFIX)?;
    let (_, method) = rest.split_once('/')?;
    Some(if METHODS.contains(&path[1..]) {
        method
    } else {
        UNKNOWN_METHOD
    })
}

/// The measures of one method of one service, registered once and then
/// moved without looking them up by their labels again.
struct Measures {
    service: &'static str,
    method: String,
    in_flight: metrics::Gauge,
    duration: metrics::Histogram,
    /// Calls finished, by code (registered on the first call that ends
    /// with it).
    finished: [OnceLock<metrics::Counter>; 17],
}

/// Measures by service and method, kept once the recorder is installed.
type Kept = HashMap<&'static str, HashMap<String, Arc<Measures>>>;
static KEPT: LazyLock<RwLock<Kept>> = LazyLock::new(RwLock::default);

impl Measures {
    fn new(service: &'static str, method: &str) -> Self {
        Self {
            service,
            method: method.to_string(),
            in_flight: metrics::gauge!(IN_FLIGHT, "service" => service, "method" => method.to_string()),
            duration: metrics::histogram!(REQUEST_DURATION, "service" => service, "method" => method.to_string()),
            finished: Default::default(),
        }
    }

    /// The measures of `method` of `service`: those kept, or registered
    /// now (and kept, once the recorder is installed: a handle taken before
    /// would measure nothing).
    fn of(service: &'static str, method: &str) -> Arc<Self> {
        let kept = || {
            KEPT.read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(m) = kept().get(service).and_then(|m| m.get(method)) {
            return m.clone();
        }
        let measures = Arc::new(Self::new(service, method));
        if INSTALLED.load(Ordering::SeqCst) {
            let mut kept = KEPT
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // The methods are the contract's and one more: the map is
            // bounded.
            return kept
                .entry(service)
                .or_default()
                .entry(method.to_string())
                .or_insert(measures)
                .clone();
        }
        measures
    }

    /// The counter of calls ending with `code`.
    fn finished(&self, code: Code) -> &metrics::Counter {
        let slot = usize::try_from(i32::from(code)).unwrap_or(0) % self.finished.len();
        self.finished[slot].get_or_init(|| {
            metrics::counter!(
                REQUESTS_TOTAL,
                "service" => self.service,
                "method" => self.method.clone(),
                "code" => code_name(code)
            )
        })
    }
}

/// One call being handled: counted in flight from its start until it is
/// dropped (with the response's body, for a call that has one); counted as
/// finished with the code it ends with, or CANCELLED when it is dropped
/// first (the caller went away or the server's timeout fired).
struct Call {
    measures: Arc<Measures>,
    start: Instant,
    finished: bool,
}

impl Call {
    fn start(service: &'static str, method: &str) -> Self {
        let measures = Measures::of(service, method);
        measures.in_flight.increment(1.0);
        Self {
            measures,
            start: Instant::now(),
            finished: false,
        }
    }

    /// Counts the call as ended with `code`, once; logs the codes that are
    /// a server's own failures (INTERNAL, DATA_LOSS) with their `message`.
    fn finish(&mut self, code: Code, message: &str) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let m = &self.measures;
        if matches!(code, Code::Internal | Code::DataLoss) {
            tracing::error!(service = m.service, method = %m.method, code = code_name(code), message, "call failed on the server");
        }
        m.finished(code).increment(1);
        m.duration.record(self.start.elapsed().as_secs_f64());
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.finish(Code::Cancelled, "");
        self.measures.in_flight.decrement(1.0);
    }
}

/// The tower layer that measures every cet.v1 call of a server under the
/// `service` label it was made with (a domain's slug or `gateway`), and logs
/// the calls that end INTERNAL or DATA_LOSS (a server's own failures).
#[derive(Debug, Clone, Copy)]
pub struct MetricsLayer {
    service: &'static str,
}

impl MetricsLayer {
    /// Measures calls as `service`.
    pub fn new(service: &'static str) -> Self {
        Self { service }
    }
}

impl<S> tower_layer::Layer<S> for MetricsLayer {
    type Service = Metered<S>;

    fn layer(&self, inner: S) -> Metered<S> {
        Metered {
            inner,
            service: self.service,
        }
    }
}

/// A service measured by [`MetricsLayer`].
#[derive(Debug, Clone)]
pub struct Metered<S> {
    inner: S,
    service: &'static str,
}

impl<S, B, R> tower_service::Service<http::Request<B>> for Metered<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
{
    type Response = http::Response<MeteredBody<R>>;
    type Error = S::Error;
    type Future = MeteredFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let call =
            method_label(request.uri().path()).map(|method| Call::start(self.service, method));
        MeteredFuture {
            inner: self.inner.call(request),
            call,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response of a call measured by [`MetricsLayer`].
    pub struct MeteredFuture<F> {
        #[pin]
        inner: F,
        call: Option<Call>,
    }
}

impl<F, R, E> Future for MeteredFuture<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
{
    type Output = Result<http::Response<MeteredBody<R>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = std::task::ready!(this.inner.poll(cx));
        let mut call = this.call.take();
        Poll::Ready(match output {
            Err(e) => {
                if let Some(mut call) = call {
                    call.finish(Code::Internal, "");
                }
                Err(e)
            }
            Ok(response) => {
                // A trailers-only response (every error) ends here; any
                // other goes on in its body, which carries the call until
                // its trailers.
                if let Some(status) = response.headers().get("grpc-status") {
                    if let Some(mut call) = call.take() {
                        let message = response
                            .headers()
                            .get("grpc-message")
                            .and_then(|m| m.to_str().ok())
                            .unwrap_or_default();
                        call.finish(Code::from_bytes(status.as_bytes()), message);
                    }
                }
                Ok(response.map(|inner| MeteredBody { inner, call }))
            }
        })
    }
}

pin_project_lite::pin_project! {
    /// The body of a measured response: a call stays in flight until its
    /// trailers are sent (a stream until its end), is counted with the code
    /// they carry, and as CANCELLED when the body is dropped before them
    /// (the caller went away).
    pub struct MeteredBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
    }
}

impl<B: http_body::Body> http_body::Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(trailers) = f.trailers_ref() {
                    if let Some(mut call) = this.call.take() {
                        let code = trailers
                            .get("grpc-status")
                            .map_or(Code::Ok, |s| Code::from_bytes(s.as_bytes()));
                        let message = trailers
                            .get("grpc-message")
                            .and_then(|m| m.to_str().ok())
                            .unwrap_or_default();
                        call.finish(code, message);
                    }
                }
            }
            Some(Err(_)) => {
                if let Some(mut call) = this.call.take() {
                    call.finish(Code::Internal, "the response body failed");
                }
            }
            None => {
                if let Some(mut call) = this.call.take() {
                    call.finish(Code::Ok, "");
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_canonical_name() {
        // Every code, by its number, as grpc/doc/statuscodes.md names it.
        let names = [
            "OK",
            "CANCELLED",
            "UNKNOWN",
            "INVALID_ARGUMENT",
            "DEADLINE_EXCEEDED",
            "NOT_FOUND",
            "ALREADY_EXISTS",
            "PERMISSION_DENIED",
            "RESOURCE_EXHAUSTED",
            "FAILED_PRECONDITION",
            "ABORTED",
            "OUT_OF_RANGE",
            "UNIMPLEMENTED",
            "INTERNAL",
            "UNAVAILABLE",
            "DATA_LOSS",
            "UNAUTHENTICATED",
        ];
        for (n, name) in names.into_iter().enumerate() {
            assert_eq!(code_name(Code::from_i32(n as i32)), name, "code {n}");
        }
    }

    #[test]
    fn a_call_is_labelled_by_a_method_of_the_contract_or_as_unknown() {
        for (path, label) in [
            ("/cet.v1.DomainService/GetInitiative", Some("GetInitiative")),
            ("/cet.v1.DomainService/WatchChanges", Some("WatchChanges")),
            ("/cet.v1.GatewayService/GetOverview", Some("GetOverview")),
            ("/cet.v1.DomainService/GetInitiative2", Some(UNKNOWN_METHOD)),
            ("/cet.v1.DomainService/", Some(UNKNOWN_METHOD)),
            ("/cet.v1.NoService/GetInitiative", Some(UNKNOWN_METHOD)),
            (
                "/cet.v1.GatewayService/CreateInitiative",
                Some(UNKNOWN_METHOD),
            ),
            ("/grpc.health.v1.Health/Check", None),
            ("/cet.v1.DomainService", None),
        ] {
            assert_eq!(method_label(path), label, "{path}");
        }
    }

    #[tokio::test]
    async fn installing_twice_returns_the_same_recorder() {
        let first = install_recorder();
        let second = install_recorder();
        assert!(first.is_ok() && second.is_ok());
        assert!(enabled());
    }

    /// How a test answer ends.
    #[derive(Clone, Copy)]
    enum Answer {
        /// A trailers-only response with this `grpc-status` (an error).
        Failed(&'static str),
        /// A body whose trailers carry this `grpc-status`.
        Trailers(&'static str),
    }

    /// A response body: its trailers, if any.
    struct Ends(Option<http::HeaderMap>);

    impl http_body::Body for Ends {
        type Data = &'static [u8];
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
            Poll::Ready(self.0.take().map(|t| Ok(http_body::Frame::trailers(t))))
        }
    }

    impl tower_service::Service<http::Request<()>> for Answer {
        type Response = http::Response<Ends>;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<http::Response<Ends>, Self::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            let status = |code| {
                let mut h = http::HeaderMap::new();
                h.insert("grpc-status", http::HeaderValue::from_static(code));
                h
            };
            let response = match *self {
                Answer::Failed(code) => {
                    let mut r = http::Response::new(Ends(None));
                    *r.headers_mut() = status(code);
                    r
                }
                Answer::Trailers(code) => http::Response::new(Ends(Some(status(code)))),
            };
            std::future::ready(Ok(response))
        }
    }

    /// Calls `path` through the layer and reads the answer's body to its
    /// end, or drops it unread when `read` is false.
    async fn call_through_layer(answer: Answer, path: &str, read: bool) {
        use http_body::Body;
        use tower_layer::Layer;
        use tower_service::Service;
        let mut service = MetricsLayer::new("layer-test").layer(answer);
        let request = http::Request::builder()
            .uri(path)
            .body(())
            .unwrap_or_else(|e| panic!("{e}"));
        let Ok(response) = service.call(request).await;
        let mut body = std::pin::pin!(response.into_body());
        while read
            && std::future::poll_fn(|cx| body.as_mut().poll_frame(cx))
                .await
                .is_some()
        {}
    }

    #[tokio::test]
    async fn the_layer_counts_cet_calls_by_method_and_code_and_skips_the_rest() {
        let handle = install_recorder().unwrap_or_else(|e| panic!("{e}"));
        let get = "/cet.v1.DomainService/GetInitiative";
        let watch = "/cet.v1.DomainService/WatchChanges";
        call_through_layer(Answer::Trailers("0"), get, true).await;
        call_through_layer(Answer::Failed("5"), get, true).await;
        call_through_layer(Answer::Failed("5"), get, false).await;
        // A stream: counted when its trailers are sent, with their code;
        // dropped before them, it was cancelled.
        call_through_layer(Answer::Trailers("13"), watch, true).await;
        call_through_layer(Answer::Trailers("0"), watch, false).await;
        call_through_layer(Answer::Trailers("0"), "/grpc.health.v1.Health/Check", true).await;
        let text = handle.render();
        for line in [
            r#"cetrack_grpc_requests_total{service="layer-test",method="GetInitiative",code="OK"} 1"#,
            r#"cetrack_grpc_requests_total{service="layer-test",method="GetInitiative",code="NOT_FOUND"} 2"#,
            r#"cetrack_grpc_in_flight{service="layer-test",method="GetInitiative"} 0"#,
            r#"cetrack_grpc_requests_total{service="layer-test",method="WatchChanges",code="INTERNAL"} 1"#,
            r#"cetrack_grpc_requests_total{service="layer-test",method="WatchChanges",code="CANCELLED"} 1"#,
            r#"cetrack_grpc_in_flight{service="layer-test",method="WatchChanges"} 0"#,
        ] {
            assert!(text.contains(line), "{line} missing in:\n{text}");
        }
        assert!(!text.contains(r#"method="Check""#), "{text}");
    }
}
