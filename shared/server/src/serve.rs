//! One way to build a cetrack server: [`Services`] lists what it serves,
//! [`serve`] adds health and reflection for exactly those, wraps everything
//! in the cross-cutting layers and serves until the shutdown token fires.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Server, ServerTlsConfig};
use tonic_health::ServingStatus;
use tower_service::Service;

use crate::auth::{Auth, AuthLayer};
use crate::metrics::MetricsLayer;

/// Longest any call may run on the server, whatever the caller's deadline.
pub const SERVER_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a graceful shutdown waits for calls in flight before it closes
/// them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often an idle HTTP/2 connection is pinged.
const KEEPALIVE: Duration = Duration::from_secs(30);
/// Most calls (HTTP/2 streams) open at once on one connection; a client
/// waits for one to end before it opens the next (tonic would otherwise
/// allow any number).
pub const MAX_STREAMS_PER_CONNECTION: u32 = 256;
/// Most calls of one connection being handled at once; one more is shed
/// at once with RESOURCE_EXHAUSTED rather than queued.
pub const MAX_CALLS_PER_CONNECTION: usize = 256;

/// The gRPC services one server serves, and the name it goes by in logs and
/// in the metrics' `service` label (a domain's slug or `gateway`).
pub struct Services {
    label: &'static str,
    auth: Auth,
    tls: Option<ServerTlsConfig>,
    routes: RoutesBuilder,
    names: Vec<&'static str>,
    failed: Option<tokio::sync::watch::Receiver<Option<String>>>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("label", &self.label)
            .field("names", &self.names)
            .finish()
    }
}

impl Services {
    /// No services yet, for the server called `label`, whose callers are
    /// authenticated as `auth` says.
    pub fn new(label: &'static str, auth: Auth) -> Self {
        Self {
            label,
            auth,
            tls: None,
            routes: RoutesBuilder::default(),
            names: Vec::new(),
            failed: None,
        }
    }

    /// Adds a generated service; health and reflection will report it under
    /// its generated name (`NamedService::NAME`, the `SERVICE_NAME` of its
    /// module).
    pub fn with<S>(mut self, service: S) -> Self
    where
        S: Service<http::Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// Serves over TLS as `tls` says (`None`: plaintext).
    pub fn with_tls(mut self, tls: Option<ServerTlsConfig>) -> Self {
        self.tls = tls;
        self
    }

    /// Reports NOT_SERVING for every service (and the server) once `failed`
    /// holds a reason (e.g. the store failed), until the process restarts.
    pub fn with_failure(mut self, failed: tokio::sync::watch::Receiver<Option<String>>) -> Self {
        self.failed = Some(failed);
        self
    }

    /// The names of the services added, e.g. `cet.v1.DomainService`.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }
}

/// A server running in this process.
#[derive(Debug)]
pub struct RunningServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Fire to shut it down gracefully.
    pub shutdown: CancellationToken,
    /// Ends when the server has stopped (and, for a domain, flushed its store).
    pub task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Shuts the server down and waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await?
    }
}

/// Serves `services` on `listener` until `shutdown` fires, with:
/// - grpc.health.v1, SERVING for each service and the server (`""`) until
///   the shutdown begins, then NOT_SERVING and watches ended;
/// - server reflection v1 listing exactly what this server serves;
/// - the metrics layer (`cetrack_grpc_*`, see [`crate::metrics`]), then
///   the authentication layer (see [`crate::auth`]): every cet.v1 call is
///   measured, refused ones too;
/// - TCP_NODELAY on accepted sockets, HTTP/2 keepalive, the
///   [`SERVER_TIMEOUT`] cap;
/// - a graceful shutdown: stop accepting, finish calls in flight, close what
///   is still open after [`SHUTDOWN_GRACE`].
///
/// Logs `serving` with the address once it accepts calls.
pub async fn serve(
    services: Services,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningServer> {
    let Services {
        label,
        auth,
        tls,
        mut routes,
        names,
        failed,
    } = services;
    let mut builder = Server::builder();
    let scheme = if tls.is_some() { "https" } else { "http" };
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    if let Auth::Jwt(a) = &auth {
        a.watch_keys(shutdown.child_token());
    }
    let addr = listener.local_addr()?;
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in &names {
        health
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    if let Some(mut failed) = failed {
        let (reporter, names, stop) = (health.clone(), names.clone(), shutdown.child_token());
        tokio::spawn(async move {
            loop {
                let why = failed.borrow_and_update().clone();
                if let Some(why) = why {
                    tracing::error!(service = label, reason = %why, "failed: reporting NOT_SERVING until restarted");
                    for name in names.iter().copied().chain([""]) {
                        reporter
                            .set_service_status(name, ServingStatus::NotServing)
                            .await;
                    }
                    return;
                }
                tokio::select! {
                    changed = failed.changed() => if changed.is_err() { return },
                    _ = stop.cancelled() => return,
                }
            }
        });
    }
    let mut reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(cetrack_contract::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    // Advertise only what this server serves: the descriptor set holds every
    // cet.v1 service.
    let advertised = names.iter().copied().chain([
        tonic_health::pb::health_server::SERVICE_NAME,
        tonic_reflection::pb::v1::server_reflection_server::SERVICE_NAME,
    ]);
    for name in advertised {
        reflection = reflection.with_service_name(name);
    }
    routes.add_service(health_service);
    routes.add_service(reflection.build_v1()?);

    tracing::info!(service = label, %addr, scheme, services = ?names, "serving");
    let stop = shutdown.clone();
    let grace = shutdown.clone();
    let task = tokio::spawn(async move {
        let signal = async move {
            stop.cancelled().await;
            let mut reporter = health;
            for name in names.iter().copied().chain([""]) {
                reporter
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
            // A grpc.health.v1 Watch stream lasts as long as its service has
            // a status: remove them, so that watchers get NOT_SERVING and
            // their streams end instead of holding the graceful shutdown.
            for name in names.iter().copied().chain([""]) {
                reporter.clear_service_status(name).await;
            }
            tracing::info!(service = label, "shutting down: finishing calls in flight");
        };
        let serving = builder
            .timeout(SERVER_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keepalive_interval(Some(KEEPALIVE))
            .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
            .concurrency_limit_per_connection(MAX_CALLS_PER_CONNECTION)
            .load_shed(true)
            .layer(MetricsLayer::new(label))
            .layer(AuthLayer::new(auth))
            .add_routes(routes.routes())
            // `Server::tcp_nodelay` is ignored for an incoming stream: set it
            // on the accepted sockets, or Nagle's algorithm and delayed ACKs
            // hold every small response back by ~40 ms.
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                signal,
            );
        // Calls still open SHUTDOWN_GRACE after the shutdown began (e.g. a
        // client that keeps a reflection stream open) do not hold it longer.
        tokio::select! {
            served = serving => served?,
            _ = async {
                grace.cancelled().await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } => {
                tracing::warn!(service = label, grace = ?SHUTDOWN_GRACE, "calls still open after the shutdown grace: closing them");
            }
        }
        tracing::info!(service = label, "stopped serving");
        Ok(())
    });
    Ok(RunningServer {
        addr,
        shutdown,
        task,
    })
}
