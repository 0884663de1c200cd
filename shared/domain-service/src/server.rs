//! A domain server: its command line, its start-up on the server kit over
//! the domain's store, the store gauges, and the `main` of a domain binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use cetrack_contract::proto::store_admin_service_server::StoreAdminServiceServer;
use cetrack_contract::served::domain_service_server::DomainServiceServer;
use cetrack_contract::Domain;
use cetrack_server::auth::{Auth, AuthArgs};
use cetrack_server::metrics::{
    self, CHANGES_READ, INITIATIVES, LAST_REVISION, STORE_FLUSHES, STORE_SIZE,
};
use cetrack_server::tls::ServerTlsArgs;
use cetrack_server::{
    init_tracing, serve, serve_main, CommonArgs, RunningServer, Services, MAX_REQUEST_BYTES,
    MAX_RESPONSE_BYTES,
};
use cetrack_store::{OpenError, Store, StoreConfig, StoreStats};
use clap::Parser;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::ServerTlsConfig;

use crate::api::{DomainApi, StoreAdminApi};
use crate::core::DomainCore;
use crate::feed::Feed;

/// How often the store gauges are refreshed besides after every write (the
/// size on disk also changes when sled compacts).
pub const STORE_GAUGE_PERIOD: Duration = Duration::from_secs(10);

/// How long [`open_store`] waits for the lock of a store that is still being
/// closed.
const STORE_LOCK_WAIT: Duration = Duration::from_secs(1);

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
    /// sled page cache, in MiB. sled holds about twice this in memory
    /// (measured: a domain of 10,000 records after the speed bench, 240 MiB
    /// resident with 64, 163 MiB with 32, 135 MiB with 16; reads and writes
    /// measured no slower with 32).
    #[arg(long, env = "CETRACK_CACHE_MB", default_value_t = 32)]
    pub cache_mb: u64,
    /// How long a request id is remembered (AIP-155), in days: a retry
    /// after that is a new call.
    #[arg(long, env = "CETRACK_REQUEST_ID_RETENTION_DAYS", default_value_t = DEFAULT_REQUEST_ID_RETENTION_DAYS)]
    pub request_id_retention_days: u32,
    /// Address of the Prometheus metrics endpoint (`GET /metrics`), e.g.
    /// `0.0.0.0:9100` [default: none, no metrics].
    #[arg(long, env = "CETRACK_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Authentication.
    #[command(flatten)]
    pub auth: AuthArgs,
    /// TLS.
    #[command(flatten)]
    pub tls: ServerTlsArgs,
    /// Logging.
    #[command(flatten)]
    pub common: CommonArgs,
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
    /// How callers are authenticated.
    pub auth: Auth,
    /// TLS (`None`: plaintext).
    pub tls: Option<ServerTlsConfig>,
    /// How long a request id is remembered.
    pub request_id_retention: Duration,
}

/// How long a request id is remembered unless configured: 90 days.
pub const DEFAULT_REQUEST_ID_RETENTION_DAYS: u32 = 90;

/// How often expired request ids are forgotten.
const REQUEST_ID_SWEEP: Duration = Duration::from_secs(3600);

/// Forgets the request ids older than `retention` now and every
/// [`REQUEST_ID_SWEEP`], until `shutdown` fires.
async fn sweep_request_ids(store: Store, retention: Duration, shutdown: CancellationToken) {
    let domain = store.domain();
    let mut tick = tokio::time::interval(REQUEST_ID_SWEEP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let before = time::OffsetDateTime::now_utc().unix_timestamp()
            - i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.prune_requests(before)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(%domain, forgotten = n, "expired request ids forgotten"),
            Ok(Err(e)) => tracing::warn!(%domain, error = %e, "cannot forget expired request ids"),
            Err(e) => tracing::warn!(%domain, error = %e, "cannot forget expired request ids"),
        }
    }
}

/// Opens a store, waiting a little while its lock is still held: when a
/// server of this process has just stopped, sled's background threads may
/// hold the files for a few more milliseconds after the store is dropped.
async fn open_store(config: &StoreConfig) -> Result<Store, OpenError> {
    let deadline = tokio::time::Instant::now() + STORE_LOCK_WAIT;
    loop {
        match Store::open(config) {
            Err(OpenError::Locked { .. }) if tokio::time::Instant::now() < deadline => {
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
    tracing::info!(domain = %config.domain, data_dir = %config.data_dir.display(), "store open");
    serve_store(store, config, listener, shutdown).await
}

/// Serves `store` (opened from `config`) on `listener` until `shutdown`
/// fires, as [`start_domain`] does.
pub async fn serve_store(
    store: Store,
    config: DomainServerConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningServer> {
    let domain = store.domain();
    let feed_stop = shutdown.child_token();
    let (feed, feed_task) = Feed::start(store.clone(), feed_stop.clone());
    let core = Arc::new(DomainCore::new(domain, store.clone(), feed)?);
    let services = Services::new(domain.slug(), config.auth)
        .with_tls(config.tls)
        .with_failure(store.failed())
        .with(
            DomainServiceServer::new(DomainApi::new(core.clone(), shutdown.clone()))
                .max_decoding_message_size(MAX_REQUEST_BYTES)
                .max_encoding_message_size(MAX_RESPONSE_BYTES),
        )
        .with(
            StoreAdminServiceServer::new(StoreAdminApi::new(core))
                .max_encoding_message_size(MAX_RESPONSE_BYTES),
        );
    let server = match serve(services, listener, shutdown.clone()).await {
        Ok(server) => server,
        Err(e) => {
            feed_stop.cancel();
            let _ = feed_task.await;
            return Err(e);
        }
    };
    let gauges_stop = shutdown.child_token();
    let gauges = tokio::spawn(track_store(store.clone(), gauges_stop.clone()));
    let sweeper = tokio::spawn(sweep_request_ids(
        store.clone(),
        config.request_id_retention,
        gauges_stop.clone(),
    ));
    let task = tokio::spawn(async move {
        let served = server.task.await;
        // The gauges and feed tasks hold clones of the store: let them end
        // first.
        gauges_stop.cancel();
        let _ = gauges.await;
        let _ = sweeper.await;
        feed_stop.cancel();
        let _ = feed_task.await;
        let flushed = store.flush();
        tracing::info!(%domain, "stopped");
        served??;
        flushed?;
        Ok(())
    });
    Ok(RunningServer {
        addr: server.addr,
        shutdown,
        task,
    })
}

/// Sets the store gauges of the store's domain now, after every durable
/// write and every [`STORE_GAUGE_PERIOD`], until `shutdown` fires. Returns at
/// once when metrics are not enabled in this process.
async fn track_store(store: Store, shutdown: CancellationToken) {
    if !metrics::enabled() {
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

fn set_store_gauges(domain: Domain, stats: StoreStats) {
    let domain = domain.slug();
    ::metrics::gauge!(INITIATIVES, "domain" => domain).set(stats.initiatives as f64);
    ::metrics::gauge!(STORE_SIZE, "domain" => domain).set(stats.size_on_disk as f64);
    ::metrics::gauge!(LAST_REVISION, "domain" => domain).set(stats.last_revision as f64);
    ::metrics::counter!(STORE_FLUSHES, "domain" => domain).absolute(stats.flushes);
    ::metrics::counter!(CHANGES_READ, "domain" => domain).absolute(stats.changes_read);
}

/// The `main` of a domain binary (see [`serve_main`] for exit codes).
pub fn domain_main(domain: Domain) -> ExitCode {
    let args = DomainArgs::parse_from(std::env::args_os());
    init_tracing(&args.common);
    let listen = args
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], domain.default_port())));
    let data_dir = args
        .data_dir
        .unwrap_or_else(|| PathBuf::from("cetrack-data").join(domain.slug()));
    let (cache_capacity, auth, tls) = (args.cache_mb * 1024 * 1024, args.auth, args.tls);
    let request_id_retention =
        Duration::from_secs(u64::from(args.request_id_retention_days) * 86_400);
    serve_main(
        listen,
        args.metrics_listen,
        |listener, shutdown| async move {
            let config = DomainServerConfig {
                domain,
                data_dir,
                cache_capacity,
                auth: auth.load()?,
                tls: tls.load()?,
                request_id_retention,
            };
            start_domain(config, listener, shutdown).await
        },
    )
}
