//! Where the command line finds the gateway and the domain services, and the
//! token it sends them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use cetrack_contract::domain::normalize_url;
use cetrack_contract::proto::domain_service_client::DomainServiceClient;
use cetrack_contract::proto::gateway_service_client::GatewayServiceClient;
use cetrack_contract::proto::store_admin_service_client::StoreAdminServiceClient;
use cetrack_contract::Domain;
use cetrack_server::auth::keys::ADMIN_TOKEN_FILE;
use cetrack_server::MAX_RESPONSE_BYTES;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Uri};

/// A channel whose every request carries the bearer token.
pub(crate) type Chan = InterceptedService<Channel, Bearer>;

/// Adds `authorization: Bearer <token>` to every request (when there is a
/// token).
#[derive(Debug, Clone)]
pub(crate) struct Bearer(Option<AsciiMetadataValue>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            r.metadata_mut().insert("authorization", v.clone());
        }
        Ok(r)
    }
}

/// The addresses of the system and the caller's token.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    /// The gateway's URL.
    pub(crate) gateway: String,
    /// Each domain's URL.
    pub(crate) domains: BTreeMap<Domain, String>,
    /// The bearer token sent with every call.
    token: Option<String>,
    /// TLS towards `https://` addresses.
    tls: Option<ClientTlsConfig>,
}

/// The token `cetrack up` keeps for the command line on the same machine:
/// `<data dir>/auth/admin.token`, the data directory being
/// `CETRACK_DATA_DIR` or `./cetrack-data`.
pub(crate) fn local_token() -> Option<String> {
    let dir = std::env::var_os("CETRACK_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cetrack-data"));
    std::fs::read_to_string(dir.join("auth").join(ADMIN_TOKEN_FILE))
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// The key directory of `cetrack up` over `data_dir`.
pub(crate) fn key_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("auth")
}

/// Whether `url` names this machine (a token may be sent there in plain
/// text).
fn loopback(url: &str) -> bool {
    let Ok(uri) = url.parse::<Uri>() else {
        return false;
    };
    match uri.host() {
        Some("localhost") => true,
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

impl Endpoints {
    /// The gateway at `addr`; each domain at `overrides`, or through the
    /// gateway (which routes every domain's calls); `token` sent with every
    /// call.
    pub(crate) fn new(
        addr: &str,
        overrides: &[(Domain, String)],
        token: Option<String>,
        tls: Option<ClientTlsConfig>,
    ) -> anyhow::Result<Self> {
        let gateway = normalize_url(addr).map_err(anyhow::Error::msg)?;
        let uri: Uri = gateway
            .parse()
            .with_context(|| format!("`{addr}` is not a URL"))?;
        if uri.host().is_none() {
            bail!("`{addr}` names no host");
        }
        // The gateway serves every domain's API too: one address is enough.
        let mut domains: BTreeMap<Domain, String> = Domain::ALL
            .into_iter()
            .map(|d| (d, gateway.clone()))
            .collect();
        for (d, url) in overrides {
            domains.insert(*d, url.clone());
        }
        Ok(Self {
            gateway,
            domains,
            token: token.filter(|t| !t.is_empty()),
            tls,
        })
    }

    async fn channel(&self, url: &str) -> anyhow::Result<Chan> {
        let header = match &self.token {
            None => None,
            Some(t) => {
                if url.starts_with("http://") && !loopback(url) {
                    bail!("refusing to send a token in plain text to {url}: use an https:// address (or a loopback one)");
                }
                Some(
                    format!("Bearer {t}")
                        .parse::<AsciiMetadataValue>()
                        .context("the token holds characters a header cannot carry")?,
                )
            }
        };
        let channel = cetrack_server::tls::endpoint(url, self.tls.as_ref())?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        Ok(InterceptedService::new(channel, Bearer(header)))
    }

    /// A client of the gateway.
    pub(crate) async fn gateway(&self) -> anyhow::Result<GatewayServiceClient<Chan>> {
        Ok(
            GatewayServiceClient::new(self.channel(&self.gateway).await?)
                .max_decoding_message_size(MAX_RESPONSE_BYTES),
        )
    }

    fn url(&self, d: Domain) -> anyhow::Result<&str> {
        self.domains
            .get(&d)
            .map(String::as_str)
            .context("no address for this domain")
    }

    /// A client of one domain service.
    pub(crate) async fn domain(&self, d: Domain) -> anyhow::Result<DomainServiceClient<Chan>> {
        Ok(DomainServiceClient::new(self.channel(self.url(d)?).await?)
            .max_decoding_message_size(MAX_RESPONSE_BYTES))
    }

    /// A client of one domain's store administration (backups).
    pub(crate) async fn store_admin(
        &self,
        d: Domain,
    ) -> anyhow::Result<StoreAdminServiceClient<Chan>> {
        Ok(
            StoreAdminServiceClient::new(self.channel(self.url(d)?).await?)
                .max_decoding_message_size(MAX_RESPONSE_BYTES),
        )
    }
}
