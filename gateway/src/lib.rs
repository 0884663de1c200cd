//! The cetrack gateway: the cross-domain view over the seven domain services.
//! It keeps no store; every answer comes from the domains over gRPC.

pub mod api;
pub mod deadline;
pub mod domains;
pub mod views;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cetrack_shared::proto::gateway_service_server::GatewayServiceServer;
use cetrack_shared::runtime::{
    RunningServer, GATEWAY_SERVICE, HEALTH_SERVICE, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES,
    REFLECTION_SERVICE, SERVER_TIMEOUT,
};
use cetrack_shared::Domain;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

use crate::api::GatewayApi;
use crate::domains::Domains;

/// Default deadline of one call to a domain when the caller sets none.
pub const DEFAULT_DOMAIN_DEADLINE: Duration = Duration::from_secs(5);

/// How the gateway reaches the domains.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// URL of each domain service, e.g. `http://127.0.0.1:50051`.
    pub domains: BTreeMap<Domain, String>,
    /// Deadline of a call to a domain when the caller sets none.
    pub domain_deadline: Duration,
}

impl GatewayConfig {
    /// Every domain on 127.0.0.1 at its default port.
    pub fn local_defaults() -> Self {
        Self {
            domains: Domain::ALL
                .into_iter()
                .map(|d| (d, format!("http://127.0.0.1:{}", d.default_port())))
                .collect(),
            domain_deadline: DEFAULT_DOMAIN_DEADLINE,
        }
    }

    /// Every domain at the given addresses.
    pub fn with_addrs(addrs: impl IntoIterator<Item = (Domain, SocketAddr)>) -> Self {
        Self {
            domains: addrs
                .into_iter()
                .map(|(d, a)| (d, format!("http://{a}")))
                .collect(),
            domain_deadline: DEFAULT_DOMAIN_DEADLINE,
        }
    }
}

/// Serves the gateway on `listener` until `shutdown` fires.
pub async fn start_gateway(
    config: GatewayConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningServer> {
    let domains = Arc::new(Domains::new(&config.domains)?);
    let addr = listener.local_addr()?;
    let api = GatewayServiceServer::new(GatewayApi::new(
        domains,
        config.domain_deadline,
        shutdown.clone(),
    ))
    .max_decoding_message_size(MAX_REQUEST_BYTES)
    .max_encoding_message_size(MAX_RESPONSE_BYTES);
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<GatewayServiceServer<GatewayApi>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(cetrack_shared::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // Advertise only what the gateway serves.
        .with_service_name(GATEWAY_SERVICE)
        .with_service_name(HEALTH_SERVICE)
        .with_service_name(REFLECTION_SERVICE)
        .build_v1()?;
    tracing::info!(%addr, domains = ?config.domains, "gateway serving");
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        let signal = async move {
            stop.cancelled().await;
            health
                .set_not_serving::<GatewayServiceServer<GatewayApi>>()
                .await;
            health
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
            tracing::info!("gateway shutting down: finishing calls in flight");
        };
        Server::builder()
            .timeout(SERVER_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .add_service(health_service)
            .add_service(reflection)
            .add_service(api)
            // Set TCP_NODELAY on accepted sockets (Server::tcp_nodelay does not apply
            // to an incoming stream), or small responses wait for delayed ACKs.
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                signal,
            )
            .await?;
        tracing::info!("gateway stopped");
        Ok(())
    });
    Ok(RunningServer {
        addr,
        shutdown,
        task,
    })
}
