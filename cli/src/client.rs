//! Where the command line finds the gateway and the domain services.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context};
use cetrack_contract::domain::normalize_url;
use cetrack_contract::proto::domain_service_client::DomainServiceClient;
use cetrack_contract::proto::gateway_service_client::GatewayServiceClient;
use cetrack_contract::Domain;
use cetrack_server::MAX_RESPONSE_BYTES;
use tonic::transport::{Channel, Endpoint, Uri};

/// The addresses of the system.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    /// The gateway's URL.
    pub gateway: String,
    /// Each domain's URL.
    pub domains: BTreeMap<Domain, String>,
}

impl Endpoints {
    /// The gateway at `addr`; each domain at `overrides`, or on the gateway's
    /// host at its default port.
    pub(crate) fn new(addr: &str, overrides: &[(Domain, String)]) -> anyhow::Result<Self> {
        let gateway = normalize_url(addr).map_err(anyhow::Error::msg)?;
        let uri: Uri = gateway
            .parse()
            .with_context(|| format!("`{addr}` is not a URL"))?;
        let Some(host) = uri.host() else {
            bail!("`{addr}` names no host");
        };
        let scheme = uri.scheme_str().unwrap_or("http");
        let mut domains: BTreeMap<Domain, String> = Domain::ALL
            .into_iter()
            .map(|d| (d, format!("{scheme}://{host}:{}", d.default_port())))
            .collect();
        for (d, url) in overrides {
            domains.insert(*d, url.clone());
        }
        Ok(Self { gateway, domains })
    }

    async fn channel(url: &str) -> anyhow::Result<Channel> {
        Endpoint::from_shared(url.to_string())?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .with_context(|| format!("cannot connect to {url}"))
    }

    /// A client of the gateway.
    pub(crate) async fn gateway(&self) -> anyhow::Result<GatewayServiceClient<Channel>> {
        Ok(
            GatewayServiceClient::new(Self::channel(&self.gateway).await?)
                .max_decoding_message_size(MAX_RESPONSE_BYTES),
        )
    }

    /// A client of one domain service.
    pub(crate) async fn domain(&self, d: Domain) -> anyhow::Result<DomainServiceClient<Channel>> {
        let url = self.domains.get(&d).context("no address for this domain")?;
        Ok(DomainServiceClient::new(Self::channel(url).await?)
            .max_decoding_message_size(MAX_RESPONSE_BYTES))
    }
}
