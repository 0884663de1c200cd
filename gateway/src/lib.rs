//! The cetrack gateway: the cross-domain view over the seven domain services.
//! It keeps no store; every answer comes from the domains over gRPC.
//!
//! - [`api`]: the thin gRPC handlers of `cet.v1.GatewayService`;
//! - [`views`]: one module per view (overview, search, portfolio, timeline,
//!   fact sheet, merged change stream);
//! - [`route`]: `cet.v1.DomainService` and `cet.v1.StoreAdminService`
//!   served at the gateway too, each call routed to its domain;
//! - [`domains`]: the connections to the domains, calls under a deadline and
//!   the fan-out every view uses;
//! - [`live`]: today's summary of each domain, kept fresh from its change
//!   stream (the overview of today answers from it);
//! - [`deadline`]: the deadline of the calls to the domains;
//! - [`dashboard`]: the same views as web pages, on an HTTP port of their
//!   own.

pub mod api;
pub mod dashboard;
pub mod deadline;
pub mod domains;
pub mod live;
pub mod onward;
pub mod proxy;
pub mod route;
pub mod views;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cetrack_contract::proto::store_admin_service_server::StoreAdminServiceServer;
use cetrack_contract::served::gateway_service_server::GatewayServiceServer;
use cetrack_contract::Domain;
use cetrack_server::auth::Auth;
use cetrack_server::{serve, RunningServer, Services, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::ServerTlsConfig;

use crate::api::GatewayApi;
use crate::domains::Domains;
use crate::proxy::DomainProxy;
use crate::route::StoreAdminRouter;

/// The gateway's name in logs and in the metrics' `service` label.
pub const SERVICE_LABEL: &str = "gateway";

/// Default deadline of one call to a domain when the caller sets none.
pub const DEFAULT_DOMAIN_DEADLINE: Duration = Duration::from_secs(5);

/// How the gateway reaches the domains.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// URL of each domain service, e.g. `http://127.0.0.1:50051`.
    pub domains: BTreeMap<Domain, String>,
    /// Deadline of a call to a domain when the caller sets none.
    pub domain_deadline: Duration,
    /// How callers are authenticated.
    pub auth: Auth,
    /// TLS of the gateway's own port (`None`: plaintext).
    pub tls: Option<ServerTlsConfig>,
    /// TLS towards `https://` domains (the CA they chain to, a client
    /// certificate for mutual TLS).
    pub domain_tls: Option<cetrack_server::tls::ClientTls>,
    /// The file of the gateway's own bearer token, its service identity
    /// for what it keeps across callers (last-known summaries); none: it
    /// keeps nothing across callers.
    pub service_token: Option<std::path::PathBuf>,
    /// With a service token: follow the domains' change streams and answer
    /// the overview of today from memory (see [`live`]).
    pub overview_from_memory: bool,
}

impl GatewayConfig {
    /// Every domain on 127.0.0.1 at its default port; callers authenticated
    /// as `auth` says.
    pub fn local_defaults(auth: Auth) -> Self {
        Self {
            domains: Domain::ALL
                .into_iter()
                .map(|d| (d, format!("http://127.0.0.1:{}", d.default_port())))
                .collect(),
            domain_deadline: DEFAULT_DOMAIN_DEADLINE,
            auth,
            tls: None,
            domain_tls: None,
            service_token: None,
            overview_from_memory: true,
        }
    }

    /// Every domain at the given addresses; callers authenticated as `auth`
    /// says.
    pub fn with_addrs(addrs: impl IntoIterator<Item = (Domain, SocketAddr)>, auth: Auth) -> Self {
        Self {
            domains: addrs
                .into_iter()
                .map(|(d, a)| (d, format!("http://{a}")))
                .collect(),
            domain_deadline: DEFAULT_DOMAIN_DEADLINE,
            auth,
            tls: None,
            domain_tls: None,
            service_token: None,
            overview_from_memory: true,
        }
    }
}

/// Serves the gateway on `listener` until `shutdown` fires.
pub async fn start_gateway(
    config: GatewayConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningServer> {
    Ok(start_gateway_with(config, listener, None, shutdown)
        .await?
        .0)
}

/// Serves the gateway on `listener` and, when `dashboard` names an HTTP
/// listener, the dashboard on it, until `shutdown` fires.
pub async fn start_gateway_with(
    config: GatewayConfig,
    listener: TcpListener,
    dashboard: Option<(TcpListener, dashboard::DashboardOptions)>,
    shutdown: CancellationToken,
) -> anyhow::Result<(RunningServer, Option<RunningServer>)> {
    let domains = Arc::new(Domains::new(
        &config.domains,
        config.domain_tls.as_ref(),
        config.service_token.clone(),
    )?);
    tracing::info!(domains = ?config.domains, "gateway configured");
    if config.overview_from_memory {
        live::Live::follow(&domains, &config.auth, &shutdown);
    }
    let pages = match dashboard {
        Some((http, options)) => Some(
            dashboard::start_dashboard(
                domains.clone(),
                config.auth.clone(),
                options,
                config.domain_deadline,
                http,
                shutdown.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let api = GatewayServiceServer::new(GatewayApi::new(
        domains.clone(),
        config.domain_deadline,
        shutdown.clone(),
    ))
    .max_decoding_message_size(MAX_REQUEST_BYTES)
    .max_encoding_message_size(MAX_RESPONSE_BYTES);
    let router = DomainProxy::new(domains.clone());
    let admin = StoreAdminServiceServer::new(StoreAdminRouter::new(domains))
        .max_encoding_message_size(MAX_RESPONSE_BYTES);
    let grpc = serve(
        Services::new(SERVICE_LABEL, config.auth)
            .with_tls(config.tls)
            .with(api)
            .with(router)
            .with(admin),
        listener,
        shutdown,
    )
    .await?;
    Ok((grpc, pages))
}

/// One running server for both the gateway and its dashboard: its task
/// ends when both have stopped.
pub fn together(grpc: RunningServer, pages: Option<RunningServer>) -> RunningServer {
    match pages {
        None => grpc,
        Some(pages) => RunningServer {
            addr: grpc.addr,
            shutdown: grpc.shutdown.clone(),
            task: tokio::spawn(async move {
                let (a, b) = tokio::join!(grpc.task, pages.task);
                a??;
                b??;
                Ok(())
            }),
        },
    }
}
