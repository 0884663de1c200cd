//! The dashboard: the gateway's cross-domain views as web pages, served over
//! HTTP on a port of their own. Every number comes from the same view
//! functions the gRPC API answers with ([`crate::views`]), asked on behalf of
//! the viewer: their token (an HttpOnly cookie set by the sign-in page, or
//! `Authorization: Bearer`), or, when the operator allows anonymous reading,
//! the public identity the operator gave. Restricted records reach only a
//! viewer cleared for them, as in the API.
//!
//! - [`pages`]: one handler and one template per page (maud escapes every
//!   value it prints: record text is untrusted);
//! - [`charts`]: the SVG charts, drawn on the server;
//! - `assets/`: the one stylesheet and the one script (live updates), served
//!   from the binary.
//!
//! Every response carries a Content-Security-Policy without inline script
//! or style, refuses framing, and is not cached.

pub mod charts;
pub mod feed;
pub mod pages;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::http::header::{self, HeaderValue};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use cetrack_contract::auth::Caller;
use cetrack_server::auth::Auth;
use cetrack_server::RunningServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::domains::{CallCtx, Domains};

/// The cookie that holds a signed-in viewer's token.
pub const TOKEN_COOKIE: &str = "cetrack_token";

/// The dashboard's Content-Security-Policy: its own script and stylesheet
/// only, no inline code, no framing, forms post only to itself.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// How the dashboard is served.
#[derive(Debug, Clone, Default)]
pub struct DashboardOptions {
    /// A file holding the token anonymous viewers read with (a viewer
    /// without clearance: they see public records only). `None`: every
    /// viewer signs in.
    pub public_token: Option<PathBuf>,
    /// Proxies in front of the dashboard whose `X-Forwarded-For` names the
    /// visitor (for the per-address caps of the live feed).
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// What every page handler gets.
#[derive(Debug, Clone)]
pub struct Dashboard {
    domains: Arc<Domains>,
    auth: Auth,
    options: DashboardOptions,
    deadline: Duration,
    shutdown: CancellationToken,
    /// The live feed anonymous visitors share.
    public_feed: Arc<feed::PublicFeed>,
}

/// Where a visitor is, for the per-address caps: the connection's address,
/// or, when it is a trusted proxy's, the last address of `X-Forwarded-For`
/// that is not one; an IPv6 address stands for its /64 (one subscriber's
/// network); `None` when the server does not know.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<std::net::IpAddr>);

impl FromRequestParts<Arc<Dashboard>> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<Dashboard>,
    ) -> Result<Self, Self::Rejection> {
        let trusted = &state.options.trusted_proxies;
        let mut peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        if peer.is_some_and(|p| trusted.contains(&p)) {
            let forwarded = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
                .collect::<Vec<_>>();
            if let Some(visitor) = forwarded.into_iter().rev().find(|a| !trusted.contains(a)) {
                peer = Some(visitor);
            }
        }
        Ok(Peer(peer.map(network)))
    }
}

/// An address as the caps count it: IPv4 as it is, IPv6 by its /64.
fn network(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => std::net::IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                std::net::IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// The viewer of a page: who they are, and the context their calls to the
/// domains carry.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The verified caller.
    pub caller: Arc<Caller>,
    /// The calls' context (deadline, the viewer's token).
    pub ctx: CallCtx,
    /// Signed in (a cookie or a bearer token) rather than anonymous.
    pub signed_in: bool,
}

/// Why a page cannot be shown to this viewer.
#[derive(Debug)]
pub enum Refused {
    /// No identity: to the sign-in page.
    SignIn(String),
    /// A token that does not verify.
    BadToken(String),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::SignIn(next) => {
                Redirect::to(&format!("/sign-in?next={}", pages::encode(&next))).into_response()
            }
            Refused::BadToken(why) => {
                pages::sign_in_page(Some(&why), "/", StatusCode::UNAUTHORIZED)
            }
        }
    }
}

/// The token a request carries: `Authorization: Bearer`, else the cookie.
fn token_of(parts: &Parts) -> Option<String> {
    if let Some(bearer) = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim().to_string());
    }
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == TOKEN_COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

impl Dashboard {
    /// The viewer of a request with `token` (`None`: anonymous).
    fn viewer(&self, token: Option<String>, next: &str) -> Result<Viewer, Refused> {
        let signed_in = token.is_some();
        let token = match token {
            Some(t) => Some(t),
            None => match &self.options.public_token {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .map_err(|e| {
                            tracing::warn!(error = %e, "cannot read the dashboard's public token");
                            Refused::SignIn(next.to_string())
                        })?
                        .trim()
                        .to_string(),
                ),
                None if matches!(self.auth, Auth::Off) => None,
                None => return Err(Refused::SignIn(next.to_string())),
            },
        };
        let caller = match (&self.auth, &token) {
            (Auth::Off, _) => Arc::new(Caller::development()),
            (Auth::Jwt(a), Some(t)) => a.verify(t).map_err(Refused::BadToken)?,
            (Auth::Jwt(_), None) => return Err(Refused::SignIn(next.to_string())),
        };
        // Anonymous visitors see public records only: a public token with
        // clearance is the operator's mistake, and is not used.
        if !signed_in && caller.cleared() && !matches!(self.auth, Auth::Off) {
            tracing::warn!(
                "the dashboard's public token is cleared for restricted records: not used"
            );
            return Err(Refused::SignIn(next.to_string()));
        }
        let mut metadata = tonic::metadata::MetadataMap::new();
        if let Some(t) = &token {
            if let Ok(v) = format!("Bearer {t}").parse() {
                metadata.insert("authorization", v);
            }
        }
        Ok(Viewer {
            ctx: CallCtx::new(self.deadline, &metadata, caller.clone()),
            caller,
            signed_in,
        })
    }
}

impl FromRequestParts<Arc<Dashboard>> for Viewer {
    type Rejection = Refused;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<Dashboard>,
    ) -> Result<Self, Self::Rejection> {
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        state.viewer(token_of(parts), &next)
    }
}

/// Adds the security headers to every response.
async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The dashboard's routes.
pub fn router(dashboard: Arc<Dashboard>) -> Router {
    Router::new()
        .route("/", get(pages::overview))
        .route("/search", get(pages::search))
        .route("/timeline", get(pages::timeline))
        .route("/organizations/{id}", get(pages::portfolio))
        .route("/domains/{domain}/initiatives/{id}", get(pages::initiative))
        .route("/fact-sheet", get(pages::fact_sheet))
        .route("/fact-sheet.md", get(pages::fact_sheet_markdown))
        .route("/events", get(pages::events))
        .route("/sign-in", get(pages::sign_in).post(pages::sign_in_post))
        .route("/sign-out", post(pages::sign_out))
        .route("/assets/style.css", get(pages::stylesheet))
        .route("/assets/app.js", get(pages::script))
        .route("/assets/icon.svg", get(pages::icon))
        .route("/favicon.ico", get(pages::icon))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(dashboard)
}

/// Serves the dashboard on `listener` until `shutdown` fires.
pub async fn start_dashboard(
    domains: Arc<Domains>,
    auth: Auth,
    options: DashboardOptions,
    deadline: Duration,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<RunningServer> {
    let addr = listener.local_addr()?;
    let app = router(Arc::new(Dashboard {
        domains,
        auth,
        options,
        deadline,
        shutdown: shutdown.clone(),
        public_feed: Arc::default(),
    }));
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
        Ok(())
    });
    tracing::info!(%addr, "dashboard listening");
    Ok(RunningServer {
        addr,
        shutdown,
        task,
    })
}

/// The state shared by the page handlers.
pub type Shared = State<Arc<Dashboard>>;

#[cfg(test)]
mod tests {
    use super::network;
    use std::net::IpAddr;

    #[test]
    fn an_ipv6_visitor_counts_by_its_network() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(network(a), network(b));
        assert_ne!(network(a), network(other));
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(network(v4), v4);
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(network(mapped), v4);
    }
}
