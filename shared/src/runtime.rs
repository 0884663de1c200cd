//! The server runtime every binary is built from: command-line and
//! environment configuration, logging, health, reflection, limits and a
//! graceful shutdown.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

use crate::core::DomainCore;
use crate::domain::Domain;
use crate::grpc::DomainApi;
use crate::proto::domain_service_server::DomainServiceServer;
use crate::store::{Store, StoreConfig};

/// The full name of the domain service.
pub const DOMAIN_SERVICE: &str = "cet.v1.DomainService";
/// The full name of the store administration service.
pub const STORE_ADMIN_SERVICE: &str = "cet.v1.StoreAdminService";
/// The full name of the gateway service.
pub const GATEWAY_SERVICE: &str = "cet.v1.GatewayService";
/// The full name of the health service.
pub const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
/// The full name of the reflection service.
pub const REFLECTION_SERVICE: &str = "grpc.reflection.v1.ServerReflection";

/// Largest request a server decodes, in bytes.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Largest response a server encodes, in bytes.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Longest any call may run on the server, whatever the caller's deadline.
pub const SERVER_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a graceful shutdown waits for calls in flight before it closes
/// them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// The gRPC name of the domain API, as health reports it.
const DOMAIN_SERVICE_NAME: &str =
    <DomainServiceServer<DomainApi> as tonic::server::NamedService>::NAME;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// Lines for people.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Options shared by every binary.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Log format.
    #[arg(long, env = "CETRACK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Log filter, in tracing's EnvFilter syntax (e.g. `info`, `cetrack_shared=debug`).
    #[arg(long, env = "CETRACK_LOG", default_value = "info")]
    pub log: String,
}

/// The command line of a domain service.
#[derive(Debug, Clone, Parser)]
#[command(
    version,
    about = "A cetrack domain service: a gRPC server over its own sled store."
)]
pub struct DomainArgs {
    /// Address to listen on [default: 127.0.0.1 and the domain's port].
    #[arg(long, env = "CETRACK_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory of the domain's store [default: ./cetrack-data/<domain>].
    #[arg(long, env = "CETRACK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// sled page cache, in MiB.
    #[arg(long, env = "CETRACK_CACHE_MB", default_value_t = 64)]
    pub cache_mb: u64,
    /// Address of the Prometheus metrics endpoint (`GET /metrics`), e.g.
    /// `0.0.0.0:9100` [default: none, no metrics].
    #[arg(long, env = "CETRACK_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Token that callers of StoreAdminService (backups) must present as
    /// `authorization: Bearer <token>` [default: none, backups disabled].
    #[arg(long, env = "CETRACK_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Logging.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Starts logging to standard error.
pub fn init_tracing(args: &CommonArgs) {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match args.log_format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Everything a running domain server needs.
#[derive(Debug, Clone)]
pub struct DomainServerConfig {
    /// The domain.
    pub domain: Domain,
    /// The directory of its store.
    pub data_dir: PathBuf,
    /// sled page cache, in bytes.
    pub cache_capacity: u64,
    /// The token StoreAdminService callers must present; `None` disables it.
    pub admin_token: Option<String>,
}

/// A server running in this process.
#[derive(Debug)]
pub struct RunningServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Fire to shut it down gracefully.
    pub shutdown: CancellationToken,
    /// Ends when the server has stopped and flushed.
    pub task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Shuts the server down and waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await?
    }
}

/// How long [`open_store`] waits for the lock of a store that is still being
/// closed.
const STORE_LOCK_WAIT: Duration = Duration::from_secs(1);

/// Opens a store, waiting a little while its file lock is still held: when a
/// server of this process has just stopped, sled's background threads may
/// hold the files for a few more milliseconds after the store is dropped.
async fn open_store(config: &StoreConfig) -> Result<Store, crate::store::OpenError> {
    let deadline = tokio::time::Instant::now() + STORE_LOCK_WAIT;
    loop {
        match Store::open(config) {
            Err(crate::store::OpenError::Io { source, .. })
                if source.to_string().contains("could not acquire lock")
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => return other,
        }
    }
}

/// Opens the domain's store and serves it on `listener` until `shutdown`
/// fires: then stops accepting, ends watch streams, lets in-flight calls
/// finish, flushes the store and returns.
pub async fn start_domain(
    config: DomainServerConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningServer> {
    let store = open_store(&StoreConfig {
        domain: config.domain,
        path: config.data_dir.clone(),
        cache_capacity: config.cache_capacity,
    })
    .await?;
    let addr = listener.local_addr()?;
    let core = Arc::new(DomainCore::new(config.domain, store.clone()));
    let api = DomainServiceServer::new(DomainApi::new(core.clone(), shutdown.clone()))
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .max_encoding_message_size(MAX_RESPONSE_BYTES);
    let admin = crate::proto::store_admin_service_server::StoreAdminServiceServer::new(
        crate::grpc::StoreAdminApi::new(core.clone(), config.admin_token.clone()),
    )
    .max_encoding_message_size(MAX_RESPONSE_BYTES);
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<DomainServiceServer<DomainApi>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // Advertise only what this server serves (the descriptor set also
        // holds the gateway's service).
        .with_service_name(DOMAIN_SERVICE)
        .with_service_name(STORE_ADMIN_SERVICE)
        .with_service_name(HEALTH_SERVICE)
        .with_service_name(REFLECTION_SERVICE)
        .build_v1()?;
    let domain = config.domain;
    tracing::info!(%domain, %addr, data_dir = %config.data_dir.display(), "serving");
    let gauges_stop = shutdown.child_token();
    let gauges = tokio::spawn(crate::telemetry::track_store(
        store.clone(),
        gauges_stop.clone(),
    ));
    let stop = shutdown.clone();
    let grace = shutdown.clone();
    let task = tokio::spawn(async move {
        let reporter = health.clone();
        let signal = async move {
            stop.cancelled().await;
            reporter
                .set_not_serving::<DomainServiceServer<DomainApi>>()
                .await;
            reporter
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
            // A grpc.health.v1 Watch stream lasts as long as its service has a
            // status: remove them, so that watchers get NOT_SERVING and their
            // streams end instead of holding the graceful shutdown forever.
            let mut reporter = reporter;
            for service in [DOMAIN_SERVICE_NAME, ""] {
                reporter.clear_service_status(service).await;
            }
            tracing::info!(%domain, "shutting down: finishing calls in flight");
        };
        let serving = Server::builder()
            .timeout(SERVER_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .add_service(health_service)
            .add_service(reflection)
            .add_service(api)
            .add_service(admin)
            // `Server::tcp_nodelay` is ignored for an incoming stream: set it on
            // the accepted sockets, or Nagle's algorithm and delayed ACKs hold
            // every small response back by ~40 ms.
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                signal,
            );
        // Calls still open SHUTDOWN_GRACE after the shutdown began (e.g. a
        // client that keeps a reflection stream open) do not hold it longer.
        let served = tokio::select! {
            served = serving => served,
            _ = async {
                grace.cancelled().await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } => {
                tracing::warn!(%domain, grace = ?SHUTDOWN_GRACE, "calls still open after the shutdown grace: closing them");
                Ok(())
            }
        };
        // The gauges task holds a clone of the store: let it end first.
        gauges_stop.cancel();
        let _ = gauges.await;
        let flushed = store.flush();
        tracing::info!(%domain, "stopped");
        served?;
        flushed?;
        Ok(())
    });
    Ok(RunningServer {
        addr,
        shutdown,
        task,
    })
}

/// Fires `token` on SIGTERM or SIGINT.
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = terminate => {},
        }
        tracing::info!("signal received");
        token.cancel();
    });
}

/// The `main` of a server binary: starts the Tokio runtime, listens on
/// `listen`, serves metrics on `metrics_listen` when set, starts the server
/// with `start`, and waits until SIGTERM or SIGINT has shut it down. Exit 0
/// after a clean shutdown, 2 when the address, the metrics endpoint or the
/// server cannot start (e.g. a damaged store), 1 on any other failure.
pub fn serve_main<F, Fut>(
    listen: SocketAddr,
    metrics_listen: Option<SocketAddr>,
    start: F,
) -> ExitCode
where
    F: FnOnce(TcpListener, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<RunningServer>>,
{
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(%listen, error = %e, "cannot listen");
                return ExitCode::from(2);
            }
        };
        let shutdown = CancellationToken::new();
        cancel_on_signals(shutdown.clone());
        let metrics = match metrics_listen {
            None => None,
            Some(at) => match crate::telemetry::start_metrics(at, shutdown.clone()).await {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::error!(error = %e, "cannot serve metrics");
                    return ExitCode::from(2);
                }
            },
        };
        let server = match start(listener, shutdown.clone()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot start");
                return ExitCode::from(2);
            }
        };
        let code = match server.task.await {
            Ok(Ok(())) => ExitCode::SUCCESS,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "server failed");
                ExitCode::FAILURE
            }
            Err(e) => {
                tracing::error!(error = %e, "server task failed");
                ExitCode::FAILURE
            }
        };
        if let Some(m) = metrics {
            shutdown.cancel();
            let _ = m.task.await;
        }
        code
    })
}

/// The `main` of a domain binary (see [`serve_main`] for exit codes).
pub fn domain_main(domain: Domain) -> ExitCode {
    let args = DomainArgs::parse_from(std::env::args_os());
    init_tracing(&args.common);
    let listen = args
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], domain.default_port())));
    let config = DomainServerConfig {
        domain,
        data_dir: args
            .data_dir
            .unwrap_or_else(|| PathBuf::from("cetrack-data").join(domain.slug())),
        cache_capacity: args.cache_mb * 1024 * 1024,
        admin_token: args.admin_token.filter(|t| !t.is_empty()),
    };
    serve_main(listen, args.metrics_listen, |listener, shutdown| {
        start_domain(config, listener, shutdown)
    })
}
