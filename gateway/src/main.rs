//! `cetrack-gateway`: the cross-domain view over the seven domain services.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use cetrack_contract::domain::parse_domain_url;
use cetrack_contract::Domain;
use cetrack_gateway::dashboard::DashboardOptions;
use cetrack_gateway::{start_gateway_with, together, GatewayConfig};
use cetrack_server::auth::AuthArgs;
use cetrack_server::tls::{ClientTlsArgs, ServerTlsArgs};
use cetrack_server::{init_tracing, serve_main, CommonArgs};
use clap::Parser;

/// The command line of the gateway.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "The cetrack gateway: the cross-domain view over the seven domain services."
)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "CETRACK_LISTEN", default_value = "127.0.0.1:50050")]
    listen: SocketAddr,
    /// A domain service's URL as NAME=URL, e.g. `quantum=http://quantum:50054`
    /// (a bare HOST:PORT means http://);
    /// repeat for each domain (env: comma-separated). Domains not given use
    /// 127.0.0.1 and their default port.
    #[arg(long = "domain", env = "CETRACK_DOMAINS", value_delimiter = ',', value_parser = parse_domain_url)]
    domains: Vec<(Domain, String)>,
    /// Deadline of one call to a domain when the caller sets none, in
    /// milliseconds.
    #[arg(long, env = "CETRACK_DOMAIN_TIMEOUT_MS", default_value_t = 5000)]
    domain_timeout_ms: u64,
    /// Address of the dashboard, the web pages of the cross-domain views
    /// (HTTP; put TLS in front of it when it leaves the host); `off` serves
    /// none.
    #[arg(long, env = "CETRACK_HTTP_LISTEN", default_value = "127.0.0.1:8080")]
    http_listen: String,
    /// A file holding the token anonymous visitors of the dashboard read
    /// with (issue it as a viewer without clearance: they see public records
    /// only) [default: none, every visitor signs in].
    #[arg(long, env = "CETRACK_DASHBOARD_PUBLIC_TOKEN_FILE")]
    dashboard_public_token_file: Option<std::path::PathBuf>,
    /// The address of a proxy in front of the dashboard (e.g. the one that
    /// adds TLS) whose `X-Forwarded-For` names the visitor; repeat for
    /// several (env: comma-separated) [default: none, the connection's
    /// address is the visitor's].
    #[arg(long, env = "CETRACK_DASHBOARD_TRUSTED_PROXY", value_delimiter = ',')]
    dashboard_trusted_proxy: Vec<std::net::IpAddr>,
    /// Address of the Prometheus metrics endpoint (`GET /metrics`), e.g.
    /// `0.0.0.0:9100` [default: none, no metrics].
    #[arg(long, env = "CETRACK_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// A file holding the gateway's own bearer token (e.g. `cetrack token
    /// issue --sub cetrack-gateway --roles viewer --clearance restricted`):
    /// its identity for what it keeps across callers, the domains'
    /// last-known summaries. Re-read at each use. Without it the gateway
    /// keeps none.
    #[arg(long, env = "CETRACK_SERVICE_TOKEN_FILE")]
    service_token_file: Option<std::path::PathBuf>,
    /// With a service token: follow each domain's change stream and answer
    /// the overview of today from the summaries kept in memory (`false`:
    /// ask the seven domains on every call).
    #[arg(long, env = "CETRACK_OVERVIEW_FROM_MEMORY", default_value_t = true, action = clap::ArgAction::Set)]
    overview_from_memory: bool,
    /// Authentication.
    #[command(flatten)]
    auth: AuthArgs,
    /// TLS of the gateway's port.
    #[command(flatten)]
    tls: ServerTlsArgs,
    /// TLS towards `https://` domains.
    #[command(flatten)]
    domain_tls: ClientTlsArgs,
    /// Logging.
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_tracing(&args.common);
    let (auth, deadline) = (
        args.auth,
        Duration::from_millis(args.domain_timeout_ms.max(1)),
    );
    let domains = args.domains;
    let service_token = args.service_token_file;
    let overview_from_memory = args.overview_from_memory;
    let (tls, domain_tls) = (args.tls, args.domain_tls);
    let http = match args.http_listen.as_str() {
        "off" => None,
        addr => match addr.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("--http-listen {addr}: {e} (an address such as 127.0.0.1:8080, or off)");
                return ExitCode::from(2);
            }
        },
    };
    let options = DashboardOptions {
        public_token: args.dashboard_public_token_file,
        trusted_proxies: args.dashboard_trusted_proxy,
    };
    serve_main(
        args.listen,
        args.metrics_listen,
        |listener, shutdown| async move {
            let mut config = GatewayConfig::local_defaults(auth.load()?);
            config.domain_deadline = deadline;
            config.domains.extend(domains);
            config.tls = tls.load()?;
            config.domain_tls = domain_tls.load_both()?;
            config.service_token = service_token;
            config.overview_from_memory = overview_from_memory;
            let dashboard = match http {
                Some(addr) => Some((tokio::net::TcpListener::bind(addr).await?, options)),
                None => None,
            };
            let (grpc, pages) = start_gateway_with(config, listener, dashboard, shutdown).await?;
            Ok(together(grpc, pages))
        },
    )
}
