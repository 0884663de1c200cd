//! `cetrack up`: the seven domain services and the gateway in one process,
//! each on its own port with its own store under one data directory.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use cetrack_contract::auth::{Clearance, Role};
use cetrack_contract::domain::GATEWAY_DEFAULT_PORT;
use cetrack_contract::Domain;
use cetrack_domain_service::{start_domain, DomainServerConfig};
use cetrack_gateway::dashboard::DashboardOptions;
use cetrack_gateway::{start_gateway_with, together, GatewayConfig};
use cetrack_server::auth::keys::{self, LocalKeys};
use cetrack_server::auth::{Auth, AuthMode, Authenticator, JwtConfig};
use cetrack_server::metrics::start_metrics;
use cetrack_server::{cancel_on_signals, CommonArgs, RunningServer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::client::Endpoints;
use crate::seed;

/// Options of `cetrack up`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct UpArgs {
    /// Directory holding one store per domain.
    #[arg(long, env = "CETRACK_DATA_DIR", default_value = "./cetrack-data")]
    pub data_dir: PathBuf,
    /// Address every server listens on.
    #[arg(long, env = "CETRACK_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port of the gateway; the domains take the next seven.
    #[arg(long, env = "CETRACK_BASE_PORT", default_value_t = GATEWAY_DEFAULT_PORT)]
    pub base_port: u16,
    /// Port of the dashboard (the web pages of the cross-domain views) on
    /// the same host; 0 picks a free one.
    #[arg(long, env = "CETRACK_HTTP_PORT", default_value_t = 8080)]
    pub http_port: u16,
    /// Load the 2023-12-08 fact sheet (what is not there yet).
    #[arg(long)]
    pub seed: bool,
    /// sled page cache per domain, in MiB.
    #[arg(long, env = "CETRACK_CACHE_MB", default_value_t = 32)]
    pub cache_mb: u64,
    /// Address of the Prometheus metrics endpoint of the whole process
    /// (`GET /metrics`; series labelled by `service` or `domain`), e.g.
    /// `0.0.0.0:9100` [default: none, no metrics].
    #[arg(long, env = "CETRACK_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// `jwt` (default): callers need a token; on first start a local signing
    /// key and an admin token are made in <data-dir>/auth (readable only by
    /// you), which the command line on this machine finds by itself. `off`:
    /// no authentication (local development only).
    #[arg(long, env = "CETRACK_AUTH", value_enum, default_value_t = AuthMode::Jwt)]
    pub auth: AuthMode,
    /// Logging.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// How long the admin token `cetrack up` writes stays valid.
const ADMIN_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// The file of the gateway's own token (its service identity) in the key
/// directory of `cetrack up`.
const GATEWAY_TOKEN_FILE: &str = "gateway.token";

/// The authentication of `cetrack up`, the admin token for the command
/// line and the file of the gateway's own token.
type LocalAuth = (Auth, Option<String>, Option<std::path::PathBuf>);

/// The authentication of `cetrack up`, the admin token for the command
/// line and the gateway's own token: with `jwt`, the local keys in
/// <data-dir>/auth (made on first start) and fresh tokens written beside
/// them (the gateway's: a viewer cleared for restricted records).
fn local_auth(args: &UpArgs) -> anyhow::Result<LocalAuth> {
    if args.auth == AuthMode::Off {
        tracing::warn!("AUTHENTICATION IS OFF: every caller is an admin cleared for restricted records. For local development only.");
        return Ok((Auth::Off, None, None));
    }
    let local = LocalKeys::open_or_create(&crate::client::key_dir(&args.data_dir))?;
    let token = local.key.issue(&keys::claims(
        "local-admin",
        None,
        &[Role::Admin],
        None,
        Clearance::Restricted,
        ADMIN_TOKEN_TTL,
    ))?;
    keys::write_private(&local.admin_token_path(), token.as_bytes())?;
    // The gateway's own identity, for what it keeps across callers.
    let gateway = local.key.issue(&keys::claims(
        "cetrack-gateway",
        None,
        &[Role::Viewer],
        None,
        Clearance::Restricted,
        ADMIN_TOKEN_TTL,
    ))?;
    let gateway_token = local.admin_token_path().with_file_name(GATEWAY_TOKEN_FILE);
    keys::write_private(&gateway_token, gateway.as_bytes())?;
    let auth = Authenticator::load(JwtConfig {
        keys: local.jwks_path(),
        issuer: keys::DEFAULT_ISSUER.into(),
        audience: keys::DEFAULT_AUDIENCE.into(),
    })?;
    Ok((Auth::Jwt(auth), Some(token), Some(gateway_token)))
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} for {what} (is cetrack already running?)")
    })
}

/// Runs everything until Ctrl-C or SIGTERM, then shuts down cleanly.
pub(crate) async fn up(args: UpArgs) -> anyhow::Result<()> {
    let (auth, admin_token, gateway_token) = local_auth(&args)?;
    let shutdown = CancellationToken::new();
    cancel_on_signals(shutdown.clone());
    let metrics = match args.metrics_listen {
        Some(at) => Some(start_metrics(at, shutdown.clone()).await?),
        None => None,
    };
    let mut servers: Vec<(String, RunningServer)> = Vec::new();
    let mut addrs = Vec::new();
    for (i, d) in Domain::ALL.into_iter().enumerate() {
        let addr = SocketAddr::new(args.host, args.base_port + 1 + i as u16);
        let listener = bind(addr, d.slug()).await?;
        let config = DomainServerConfig {
            domain: d,
            data_dir: args.data_dir.join(d.slug()),
            cache_capacity: args.cache_mb * 1024 * 1024,
            auth: auth.clone(),
            tls: None,
            request_id_retention: std::time::Duration::from_secs(
                u64::from(cetrack_domain_service::DEFAULT_REQUEST_ID_RETENTION_DAYS) * 86_400,
            ),
        };
        let server = start_domain(config, listener, shutdown.clone()).await?;
        addrs.push((d, server.addr));
        servers.push((d.slug().to_string(), server));
    }
    let gateway_addr = SocketAddr::new(args.host, args.base_port);
    let mut gateway_config = GatewayConfig::with_addrs(addrs.clone(), auth);
    gateway_config.service_token = gateway_token;
    let http = bind(SocketAddr::new(args.host, args.http_port), "the dashboard").await?;
    let (gateway, pages) = start_gateway_with(
        gateway_config,
        bind(gateway_addr, "the gateway").await?,
        Some((http, DashboardOptions::default())),
        shutdown.clone(),
    )
    .await?;
    let dashboard_addr = pages.as_ref().map(|p| p.addr);
    servers.push(("gateway".into(), together(gateway, pages)));

    if args.seed {
        let endpoints = Endpoints::new(
            &gateway_addr.to_string(),
            &addrs
                .iter()
                .map(|(d, a)| (*d, format!("http://{a}")))
                .collect::<Vec<_>>(),
            admin_token.clone(),
            None,
        )?;
        let loaded = seed::load(&endpoints, seed::FACT_SHEET_2023_12_08).await?;
        eprintln!(
            "seeded the 2023-12-08 fact sheet: {} created, {} already present, {} seeded before and deleted since (left deleted)",
            loaded.created, loaded.present, loaded.deleted_since
        );
    }
    let me = std::env::current_exe()
        .ok()
        .and_then(|p| {
            let cwd = std::env::current_dir().ok()?;
            Some(p.strip_prefix(&cwd).map(|r| r.to_path_buf()).unwrap_or(p))
        })
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "cetrack".into());
    let auth_note = match &admin_token {
        Some(_) => format!(
            "Authentication is on: the command line on this machine uses the admin token in {}/auth; \
             `{me} token issue --sub NAME --roles viewer` makes others.",
            args.data_dir.display()
        ),
        None => "AUTHENTICATION IS OFF (--auth off): every caller is an admin.".to_string(),
    };
    if let Some(addr) = dashboard_addr {
        eprintln!(
            "Dashboard: http://{addr}/ (sign in with a token, e.g. the admin token in {}/auth)",
            args.data_dir.display()
        );
    }
    eprintln!(
        "cetrack is up: gateway on {gateway_addr}, domains on ports {}-{}, data in {}.\n\
         {auth_note}\n\
         Try, in another terminal:\n  \
         {me} overview\n  \
         {me} search --org us-nsf\n  \
         {me} portfolio us-nsf\n  \
         {me} fact-sheet --out fact-sheet.md\n\
         Press Ctrl-C to stop.",
        args.base_port + 1,
        args.base_port + 7,
        args.data_dir.display()
    );
    if let Some(m) = &metrics {
        eprintln!("Metrics: http://{}/metrics", m.addr);
    }
    shutdown.cancelled().await;
    if let Some(m) = metrics {
        let _ = m.task.await;
    }
    let mut failed = false;
    for (name, server) in servers {
        match server.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failed = true;
                eprintln!("{name} failed: {e}");
            }
            Err(e) => {
                failed = true;
                eprintln!("{name} failed: {e}");
            }
        }
    }
    if failed {
        anyhow::bail!("some servers did not stop cleanly");
    }
    eprintln!("cetrack stopped; every store is flushed");
    Ok(())
}
