//! TLS: every listener serves TLS when given a certificate and its key
//! (rustls through tonic), mutual TLS when also given the CA that client
//! certificates must chain to; clients (the gateway, the command line)
//! connect to `https://` addresses trusting a CA of the operator's. [`certs`]
//! makes a CA and certificates signed by it, with no download.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read the {what} {}", path.display()))
}

/// The TLS options of a server.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerTlsArgs {
    /// The server's certificate chain (PEM); with --tls-key, the server
    /// speaks TLS only.
    #[arg(long, env = "CETRACK_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "CETRACK_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// A CA certificate (PEM) client certificates must chain to: mutual TLS,
    /// a client without such a certificate is refused.
    #[arg(long, env = "CETRACK_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

impl ServerTlsArgs {
    /// The server's TLS configuration; `None`: plaintext.
    pub fn load(&self) -> anyhow::Result<Option<ServerTlsConfig>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let mut config = ServerTlsConfig::new().identity(Identity::from_pem(
            read(cert, "certificate")?,
            read(key, "private key")?,
        ));
        if let Some(ca) = &self.tls_client_ca {
            config = config.client_ca_root(Certificate::from_pem(read(ca, "client CA")?));
        }
        Ok(Some(config))
    }
}

/// The TLS options of a client (the gateway towards the domains, the
/// command line).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientTlsArgs {
    /// The CA certificate (PEM) `https://` servers must chain to [default:
    /// none: only plaintext `http://` addresses can be used].
    #[arg(long, global = true, env = "CETRACK_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// A client certificate (PEM) to present, for servers that require
    /// mutual TLS.
    #[arg(
        long,
        global = true,
        env = "CETRACK_TLS_CLIENT_CERT",
        requires = "tls_client_key"
    )]
    pub tls_client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(
        long,
        global = true,
        env = "CETRACK_TLS_CLIENT_KEY",
        requires = "tls_client_cert"
    )]
    pub tls_client_key: Option<PathBuf>,
}

impl ClientTlsArgs {
    /// The client's TLS configuration; `None` when no CA is given.
    pub fn load(&self) -> anyhow::Result<Option<ClientTlsConfig>> {
        Ok(self.load_both()?.map(|tls| tls.tonic))
    }

    /// The client's TLS configuration for tonic's channels and for a
    /// connection of its own ([`ClientTls`]); `None` when no CA is given.
    pub fn load_both(&self) -> anyhow::Result<Option<ClientTls>> {
        let Some(ca) = &self.tls_ca else {
            return Ok(None);
        };
        let ca = read(ca, "CA certificate")?;
        let identity = match (&self.tls_client_cert, &self.tls_client_key) {
            (Some(cert), Some(key)) => {
                Some((read(cert, "client certificate")?, read(key, "client key")?))
            }
            _ => None,
        };
        ClientTls::from_pem(&ca, identity).map(Some)
    }
}

/// A client's TLS configuration, loaded once: for tonic's channels and as a
/// rustls connector (HTTP/2 offered by ALPN) for a connection the caller
/// drives itself (the gateway's pass-through to the domains).
#[derive(Clone)]
pub struct ClientTls {
    tonic: ClientTlsConfig,
    connector: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls").finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Trusting the CA certificates of `ca` (PEM), presenting `identity`
    /// (certificate chain and private key, PEM) when given.
    pub fn from_pem(ca: &[u8], identity: Option<(Vec<u8>, Vec<u8>)>) -> anyhow::Result<Self> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let mut tonic = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca) {
            roots
                .add(cert.context("the CA certificate is not PEM")?)
                .context("the CA certificate is not one rustls accepts")?;
        }
        anyhow::ensure!(!roots.is_empty(), "the CA file holds no certificate");
        let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
        let mut config = match identity {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(&cert)
                    .collect::<Result<Vec<_>, _>>()
                    .context("the client certificate is not PEM")?;
                let private =
                    PrivateKeyDer::from_pem_slice(&key).context("the client key is not PEM")?;
                tonic = tonic.identity(Identity::from_pem(&cert, &key));
                builder.with_client_auth_cert(chain, private)?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self {
            tonic,
            connector: tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)),
        })
    }

    /// For tonic's channels.
    pub fn tonic(&self) -> &ClientTlsConfig {
        &self.tonic
    }

    /// Opens TLS over `io` to `host` (a DNS name or an IP address, as the
    /// server's certificate names it).
    pub async fn connect<IO>(
        &self,
        host: &str,
        io: IO,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<IO>>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = rustls_pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("`{host}`: {e}"))
        })?;
        self.connector.connect(name, io).await
    }
}

/// An endpoint for `url`: over TLS with `tls` for an `https://` address
/// (which then needs a TLS configuration), plaintext for `http://`.
pub fn endpoint(url: &str, tls: Option<&ClientTlsConfig>) -> anyhow::Result<Endpoint> {
    let endpoint =
        Endpoint::from_shared(url.to_string()).with_context(|| format!("`{url}` is not a URL"))?;
    if url.starts_with("https://") {
        let tls = tls.with_context(|| {
            format!("{url} is an https:// address: give the CA it chains to (--tls-ca / CETRACK_TLS_CA)")
        })?;
        return Ok(endpoint.tls_config(tls.clone())?);
    }
    Ok(endpoint)
}

/// Certificates for a deployment, made here (no download): a CA, a server
/// certificate for every host name or address the services are reached at,
/// and a client certificate for mutual TLS.
pub mod certs {
    use std::path::Path;

    use anyhow::Context;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };

    /// The CA certificate's file.
    pub const CA_CERT: &str = "ca.pem";
    /// The CA's private key.
    pub const CA_KEY: &str = "ca.key";
    /// The servers' certificate.
    pub const SERVER_CERT: &str = "server.pem";
    /// The servers' private key.
    pub const SERVER_KEY: &str = "server.key";
    /// The client certificate (mutual TLS).
    pub const CLIENT_CERT: &str = "client.pem";
    /// The client's private key.
    pub const CLIENT_KEY: &str = "client.key";

    fn validity(params: &mut CertificateParams, days: i64) {
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(days);
    }

    /// Makes a CA and, signed by it, a server certificate for `hosts` (DNS
    /// names or IP addresses) and a client certificate, valid for `days`,
    /// in `dir`: certificates readable by anyone, keys by the user only.
    pub fn make(dir: &Path, hosts: &[String], days: i64) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "cetrack CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut ca, days);
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca.self_signed(&ca_key)?;
        let write_key = |name: &str, key: &KeyPair| {
            crate::auth::keys::write_private(&dir.join(name), key.serialize_pem().as_bytes())
        };
        std::fs::write(dir.join(CA_CERT), ca_cert.pem())?;
        write_key(CA_KEY, &ca_key)?;
        let issuer = Issuer::new(ca, ca_key);

        let mut server = CertificateParams::new(hosts.to_vec())?;
        server
            .distinguished_name
            .push(DnType::CommonName, "cetrack server");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.use_authority_key_identifier_extension = true;
        validity(&mut server, days);
        let server_key = KeyPair::generate()?;
        std::fs::write(
            dir.join(SERVER_CERT),
            server.signed_by(&server_key, &issuer)?.pem(),
        )?;
        write_key(SERVER_KEY, &server_key)?;

        let mut client = CertificateParams::new(Vec::<String>::new())?;
        client
            .distinguished_name
            .push(DnType::CommonName, "cetrack client");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client.use_authority_key_identifier_extension = true;
        validity(&mut client, days);
        let client_key = KeyPair::generate()?;
        std::fs::write(
            dir.join(CLIENT_CERT),
            client.signed_by(&client_key, &issuer)?.pem(),
        )?;
        write_key(CLIENT_KEY, &client_key)?;
        Ok(())
    }
}
