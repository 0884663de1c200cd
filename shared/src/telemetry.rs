//! Prometheus metrics: a process-wide recorder, installed once, served as
//! Prometheus text over HTTP at `/metrics`, and the measurements every server
//! makes.
//!
//! Without [`start_metrics`] nothing is installed and every measurement is a
//! no-op, so servers started by tests pay nothing and need no configuration.
//! `cetrack up` starts one endpoint for its eight servers: every series
//! carries the `service` (a domain's slug or `gateway`) or `domain` label.
//!
//! Series:
//! - `cetrack_grpc_requests_total{service,method,code}`: finished calls by
//!   gRPC status code (`OK`, `NOT_FOUND`, ...);
//! - `cetrack_grpc_request_duration_seconds{service,method}`: histogram of
//!   call latency (for a server stream, until the stream is opened);
//! - `cetrack_grpc_in_flight{service,method}`: calls being handled;
//! - `cetrack_initiatives{domain}`, `cetrack_store_size_bytes{domain}`,
//!   `cetrack_last_revision{domain}`: the state of a domain's store.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Response, Status};

use crate::domain::Domain;
use crate::store::Store;

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

/// Upper bounds of the latency histogram's buckets, in seconds: from half a
/// millisecond (a read served from cache) to the server's two-minute timeout.
pub const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    120.0,
];

/// How often the store gauges are refreshed besides after every write (the
/// size on disk also changes when sled compacts).
pub const STORE_GAUGE_PERIOD: Duration = Duration::from_secs(10);

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

/// One call being handled: counted in flight from its start until it is
/// dropped; counted as finished with the code it ends with, or CANCELLED
/// when its future is dropped first (the caller went away or the server's
/// timeout fired).
struct Call {
    service: &'static str,
    method: &'static str,
    start: Instant,
    finished: bool,
}

impl Call {
    fn start(service: &'static str, method: &'static str) -> Self {
        metrics::gauge!(IN_FLIGHT, "service" => service, "method" => method).increment(1.0);
        Self {
            service,
            method,
            start: Instant::now(),
            finished: false,
        }
    }

    fn finish(&mut self, code: Code) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let (service, method) = (self.service, self.method);
        metrics::counter!(
            REQUESTS_TOTAL,
            "service" => service,
            "method" => method,
            "code" => code_name(code)
        )
        .increment(1);
        metrics::histogram!(REQUEST_DURATION, "service" => service, "method" => method)
            .record(self.start.elapsed().as_secs_f64());
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.finish(Code::Cancelled);
        metrics::gauge!(IN_FLIGHT, "service" => self.service, "method" => self.method)
            .decrement(1.0);
    }
}

/// Handles one gRPC call of `service` (a domain's slug or `gateway`) and
/// `method` (its gRPC name, e.g. `GetInitiative`), measuring it: `call`'s
/// value becomes the response, its error the status.
pub async fn observe<T, E, F>(
    service: &'static str,
    method: &'static str,
    call: F,
) -> Result<Response<T>, Status>
where
    F: Future<Output = Result<T, E>>,
    Status: From<E>,
{
    let mut measured = Call::start(service, method);
    let result = call.await.map(Response::new).map_err(Status::from);
    measured.finish(match &result {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    });
    result
}

/// Sets the store gauges of `domain` now, after every durable write and
/// every [`STORE_GAUGE_PERIOD`], until `shutdown` fires. Returns at once
/// when metrics are not enabled in this process.
pub async fn track_store(store: Store, shutdown: CancellationToken) {
    if !enabled() {
        return;
    }
    let domain = store.domain();
    let mut durable = store.subscribe();
    let mut tick = tokio::time::interval(STORE_GAUGE_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.stats()).await {
            Ok(Ok(stats)) => set_store_gauges(domain, stats),
            Ok(Err(e)) => tracing::warn!(%domain, error = %e, "cannot read the store's metrics"),
            Err(e) => tracing::warn!(%domain, error = %e, "cannot read the store's metrics"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
            changed = durable.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

fn set_store_gauges(domain: Domain, stats: crate::store::StoreStats) {
    let domain = domain.slug();
    metrics::gauge!(INITIATIVES, "domain" => domain).set(stats.initiatives as f64);
    metrics::gauge!(STORE_SIZE, "domain" => domain).set(stats.size_on_disk as f64);
    metrics::gauge!(LAST_REVISION, "domain" => domain).set(stats.last_revision as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_canonical_name() {
        for (n, name) in [
            (0, "OK"),
            (5, "NOT_FOUND"),
            (9, "FAILED_PRECONDITION"),
            (16, "UNAUTHENTICATED"),
        ] {
            assert_eq!(code_name(Code::from_i32(n)), name);
        }
    }

    #[tokio::test]
    async fn installing_twice_returns_the_same_recorder() {
        let first = install_recorder();
        let second = install_recorder();
        assert!(first.is_ok() && second.is_ok());
        assert!(enabled());
        observe("test", "Ping", async { Ok::<_, Status>(()) })
            .await
            .map(|_| ())
            .unwrap_or_else(|s| panic!("{s}"));
        let text = second.map(|h| h.render()).unwrap_or_default();
        assert!(
            text.contains(
                r#"cetrack_grpc_requests_total{service="test",method="Ping",code="OK"} 1"#
            ),
            "{text}"
        );
    }
}
