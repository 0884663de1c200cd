//! TLS end to end, with certificates made by `cetrack certs` (the same code):
//! a TLS port refuses plaintext, a client trusting another CA is refused,
//! mutual TLS refuses a client without a certificate, and the gateway reaches
//! TLS domains and serves TLS itself.

use std::path::Path;
use std::time::Duration;

use cetrack_contract::proto::domain_service_client::DomainServiceClient;
use cetrack_contract::proto::gateway_service_client::GatewayServiceClient;
use cetrack_contract::proto::*;
use cetrack_contract::Domain;
use cetrack_server::tls::{certs, ClientTlsArgs, ServerTlsArgs};
use cetrack_tests::*;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, ServerTlsConfig};

fn make_certs(dir: &Path) -> anyhow::Result<()> {
    certs::make(dir, &["localhost".into(), "127.0.0.1".into()], 2)
}

fn server_tls(dir: &Path, mutual: bool) -> anyhow::Result<Option<ServerTlsConfig>> {
    ServerTlsArgs {
        tls_cert: Some(dir.join(certs::SERVER_CERT)),
        tls_key: Some(dir.join(certs::SERVER_KEY)),
        tls_client_ca: mutual.then(|| dir.join(certs::CA_CERT)),
    }
    .load()
}

fn client_tls(ca_dir: &Path, with_client_cert: bool) -> anyhow::Result<Option<ClientTlsConfig>> {
    ClientTlsArgs {
        tls_ca: Some(ca_dir.join(certs::CA_CERT)),
        tls_client_cert: with_client_cert.then(|| ca_dir.join(certs::CLIENT_CERT)),
        tls_client_key: with_client_cert.then(|| ca_dir.join(certs::CLIENT_KEY)),
    }
    .load()
}

/// A channel to `url` (TLS when `tls` is given) carrying the admin token.
async fn channel(url: &str, tls: Option<&ClientTlsConfig>) -> anyhow::Result<AuthChannel> {
    let channel: Channel = cetrack_server::tls::endpoint(url, tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    Ok(InterceptedService::new(
        channel,
        Bearer::new(Some(&admin_token())),
    ))
}

/// Whether a summary call to `url` over `tls` succeeds.
async fn summary_ok(url: &str, tls: Option<&ClientTlsConfig>) -> bool {
    let Ok(channel) = channel(url, tls).await else {
        return false;
    };
    DomainServiceClient::new(channel)
        .get_domain_summary(GetDomainSummaryRequest {
            parent: Domain::Quantum.parent(),
            ..Default::default()
        })
        .await
        .is_ok()
}

#[tokio::test]
async fn tls_refuses_plaintext_and_strangers_and_mutual_tls_refuses_a_client_without_a_certificate(
) -> anyhow::Result<()> {
    let ours = tempfile::tempdir()?;
    let theirs = tempfile::tempdir()?;
    make_certs(ours.path())?;
    make_certs(theirs.path())?;

    let data = tempfile::tempdir()?;
    let server = serve_with(
        Domain::Quantum,
        data.path(),
        test_auth(),
        server_tls(ours.path(), false)?,
    )
    .await?;
    let https = format!("https://localhost:{}", server.addr.port());
    let http = format!("http://127.0.0.1:{}", server.addr.port());
    assert!(
        summary_ok(&https, client_tls(ours.path(), false)?.as_ref()).await,
        "TLS with our CA"
    );
    assert!(
        summary_ok(
            &format!("https://127.0.0.1:{}", server.addr.port()),
            client_tls(ours.path(), false)?.as_ref()
        )
        .await,
        "TLS to the address (it is in the certificate)"
    );
    assert!(
        !summary_ok(&http, None).await,
        "plaintext on a TLS port is refused"
    );
    assert!(
        !summary_ok(&https, client_tls(theirs.path(), false)?.as_ref()).await,
        "a server of another CA is not trusted"
    );
    server.stop().await?;

    let data = tempfile::tempdir()?;
    let server = serve_with(
        Domain::Quantum,
        data.path(),
        test_auth(),
        server_tls(ours.path(), true)?,
    )
    .await?;
    let https = format!("https://localhost:{}", server.addr.port());
    assert!(
        !summary_ok(&https, client_tls(ours.path(), false)?.as_ref()).await,
        "mutual TLS without a client certificate is refused"
    );
    assert!(
        !summary_ok(&https, client_tls(theirs.path(), true)?.as_ref()).await,
        "a client certificate of another CA is refused"
    );
    assert!(
        summary_ok(&https, client_tls(ours.path(), true)?.as_ref()).await,
        "mutual TLS with our client certificate"
    );
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn the_gateway_reaches_tls_domains_and_serves_tls() -> anyhow::Result<()> {
    let certs_dir = tempfile::tempdir()?;
    make_certs(certs_dir.path())?;
    let data = tempfile::tempdir()?;
    let domain = serve_with(
        Domain::Quantum,
        data.path(),
        test_auth(),
        server_tls(certs_dir.path(), true)?,
    )
    .await?;
    let mut config = cetrack_gateway::GatewayConfig::with_addrs([], test_auth());
    config.domains.insert(
        Domain::Quantum,
        format!("https://localhost:{}", domain.addr.port()),
    );
    config.tls = server_tls(certs_dir.path(), false)?;
    config.domain_tls = ClientTlsArgs {
        tls_ca: Some(certs_dir.path().join(certs::CA_CERT)),
        tls_client_cert: Some(certs_dir.path().join(certs::CLIENT_CERT)),
        tls_client_key: Some(certs_dir.path().join(certs::CLIENT_KEY)),
    }
    .load_both()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gateway = cetrack_gateway::start_gateway(
        config,
        listener,
        tokio_util::sync::CancellationToken::new(),
    )
    .await?;
    let channel = channel(
        &format!("https://localhost:{}", gateway.addr.port()),
        client_tls(certs_dir.path(), false)?.as_ref(),
    )
    .await?;
    // A write and a read passed through the gateway to the domain, over
    // the gateway's own TLS connection (mutual TLS at the domain).
    let mut routed = DomainServiceClient::new(channel.clone());
    let made = routed
        .create_initiative(create_request(
            Domain::Quantum,
            "over-tls",
            sample(Domain::Quantum, "Over TLS", 2025),
        ))
        .await?
        .into_inner();
    let read = routed
        .get_initiative(GetInitiativeRequest {
            name: made.name.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(read, made);
    let overview = GatewayServiceClient::new(channel)
        .get_overview(GetOverviewRequest::default())
        .await?
        .into_inner();
    let quantum = overview
        .domains
        .iter()
        .find(|d| d.domain == Domain::Quantum.to_proto() as i32)
        .expect("quantum in the overview");
    assert!(quantum.available, "{quantum:?}");
    gateway.stop().await?;
    domain.stop().await?;
    Ok(())
}
