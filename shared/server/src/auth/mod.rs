//! Authentication: every cet.v1 call carries a bearer token (a JWT signed by
//! a key of the operator's JWKS file) that [`AuthLayer`] verifies before any
//! handler runs; the handler finds the verified [`Caller`] in the request's
//! extensions (an `Arc<Caller>`, shared by every call of one token). Health
//! checks and reflection stay open.
//!
//! Keys: EdDSA (Ed25519) and ES256, several at once (rotation), matched by
//! `kid`; the file is re-read when it changes. Issuer, audience, `exp` and
//! `nbf` are checked with [`LEEWAY_SECS`] of leeway. Verified tokens are
//! cached until they expire, so a read pays no signature check per call.
//!
//! [`keys`] makes a local signing key and its JWKS and issues tokens, for
//! `cetrack up`, `cetrack token issue` and tests.

pub mod keys;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cetrack_contract::auth::{Caller, Claims};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio_util::sync::CancellationToken;

/// Seconds of clock skew allowed on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;
/// How often the key file is checked for changes.
pub const KEYS_POLL: Duration = Duration::from_secs(1);
/// Most verified tokens kept; the cache starts afresh when full.
const CACHE_CAPACITY: usize = 10_000;
/// Why a token whose `nbf` is still ahead is refused (the one refusal that
/// does not last).
const NOT_YET_VALID: &str = "the token is not valid yet";
/// The path prefix of the calls that need a token: the cet.v1 API.
const PROTECTED_PREFIX: &str = "/cet.v1.";

/// How a server authenticates its callers.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Every caller is an admin cleared for everything: local development
    /// only, said loudly at start.
    Off,
    /// Bearer JWTs verified against the operator's keys.
    Jwt(Arc<Authenticator>),
}

/// What a server needs to verify tokens.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// The JWKS file (`{"keys": [...]}`).
    pub keys: PathBuf,
    /// The issuer tokens must name (`iss`).
    pub issuer: String,
    /// The audience tokens must name (`aud`).
    pub audience: String,
}

/// Why the keys cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The file cannot be read.
    #[error("cannot read the key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a JWKS.
    #[error("{path} is not a JWKS file: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// One verification key.
struct Key {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// A verified token as cached: every call that carries it shares the one
/// `Caller` (a reference count, not a copy of its strings, per call).
struct Cached {
    caller: Arc<Caller>,
    exp: u64,
    nbf: u64,
}

/// Verifies bearer tokens against the keys of a JWKS file.
pub struct Authenticator {
    config: JwtConfig,
    keys: RwLock<Vec<Key>>,
    /// (modified time, length) of the key file as last read.
    stamp: Mutex<Option<(SystemTime, u64)>>,
    /// Verified tokens. Read by every call, written once per token: a
    /// read lock, hashed with foldhash (only verified tokens are kept, so
    /// a caller cannot choose the keys; `refused` keeps SipHash).
    cache: RwLock<HashMap<String, Cached, foldhash::fast::RandomState>>,
    /// Tokens refused for good (expired, a signature that does not verify,
    /// another issuer, ...), with why: a client that keeps sending one
    /// costs a lookup, not a signature check each time. A token not valid
    /// yet is not kept; all are forgotten when the keys change.
    refused: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("config", &self.config)
            .finish()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Reads the keys of a JWKS file: EdDSA (OKP Ed25519) and ES256 (EC P-256)
/// keys; others are refused.
pub fn read_keys(path: &Path) -> Result<Vec<KeyInfo>, KeysError> {
    Ok(load_keys(path)?
        .into_iter()
        .map(|k| KeyInfo {
            kid: k.kid,
            algorithm: k.algorithm,
        })
        .collect())
}

/// What a key of a JWKS file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Its key id.
    pub kid: Option<String>,
    /// What it verifies.
    pub algorithm: Algorithm,
}

fn load_keys(path: &Path) -> Result<Vec<Key>, KeysError> {
    let invalid = |reason: String| KeysError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|source| KeysError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let set: JwkSet = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    if set.keys.is_empty() {
        return Err(invalid("it holds no key".into()));
    }
    set.keys
        .iter()
        .map(|jwk| {
            let kid = jwk.common.key_id.clone();
            let algorithm = match &jwk.algorithm {
                AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                    Algorithm::ES256
                }
                _ => {
                    return Err(invalid(format!(
                        "key {} is neither Ed25519 (EdDSA) nor P-256 (ES256)",
                        kid.as_deref().unwrap_or("without kid")
                    )))
                }
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| invalid(e.to_string()))?;
            Ok(Key {
                kid,
                algorithm,
                key,
            })
        })
        .collect()
}

impl Authenticator {
    /// Reads the keys of `config`.
    pub fn load(config: JwtConfig) -> Result<Arc<Self>, KeysError> {
        let keys = load_keys(&config.keys)?;
        let stamp = file_stamp(&config.keys);
        Ok(Arc::new(Self {
            config,
            keys: RwLock::new(keys),
            stamp: Mutex::new(stamp),
            cache: RwLock::new(HashMap::default()),
            refused: Mutex::new(HashMap::new()),
        }))
    }

    /// Reads the key file again if it changed since it was last read; a
    /// file that cannot be read or parsed keeps the keys in force (logged).
    /// Verified tokens are forgotten when the keys change.
    pub fn reload_if_changed(&self) {
        let stamp = file_stamp(&self.config.keys);
        {
            let mut last = self
                .stamp
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if stamp.is_none() || *last == stamp {
                return;
            }
            *last = stamp;
        }
        match load_keys(&self.config.keys) {
            Ok(keys) => {
                let n = keys.len();
                *self
                    .keys
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = keys;
                self.cache
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clear();
                self.refused
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clear();
                tracing::info!(keys = n, file = %self.config.keys.display(), "verification keys reloaded");
            }
            Err(e) => {
                tracing::error!(error = %e, "the key file changed but cannot be used: the keys in force stay")
            }
        }
    }

    /// Checks the key file for changes every [`KEYS_POLL`] until `stop`.
    pub fn watch_keys(self: &Arc<Self>, stop: CancellationToken) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(KEYS_POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {
                        let a = this.clone();
                        let _ = tokio::task::spawn_blocking(move || a.reload_if_changed()).await;
                    }
                }
            }
        });
    }

    /// The caller a bearer token names, or why it is refused (a reason that
    /// helps the caller and reveals nothing else).
    pub fn verify(&self, token: &str) -> Result<Arc<Caller>, String> {
        let now = now_secs();
        if let Some(c) = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(token)
        {
            if now > c.exp + LEEWAY_SECS {
                return Err("the token has expired".into());
            }
            if now + LEEWAY_SECS < c.nbf {
                return Err(NOT_YET_VALID.into());
            }
            return Ok(c.caller.clone());
        }
        if let Some(why) = self
            .refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(token)
        {
            return Err(why.clone());
        }
        let refused = self.check(token);
        if let Err(why) = &refused {
            if why != NOT_YET_VALID {
                let mut refused = self
                    .refused
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if refused.len() >= CACHE_CAPACITY {
                    refused.clear();
                }
                refused.insert(token.to_string(), why.clone());
            }
        }
        refused
    }

    /// Verifies `token` against the keys (signature, then claims), keeping
    /// a valid one in the cache.
    fn check(&self, token: &str) -> Result<Arc<Caller>, String> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| "the bearer token is not a JWT".to_string())?;
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let candidates: Vec<&Key> = keys
            .iter()
            .filter(|k| k.algorithm == header.alg)
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            })
            .collect();
        if candidates.is_empty() {
            return Err(match header.kid {
                Some(kid) => format!("no key `{kid}` for {:?} tokens is trusted here", header.alg),
                None => format!("no key for {:?} tokens is trusted here", header.alg),
            });
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let mut last = String::new();
        for k in candidates {
            match jsonwebtoken::decode::<Claims>(token, &k.key, &validation) {
                Ok(data) => {
                    let (exp, nbf) = (data.claims.exp, data.claims.nbf.unwrap_or(0));
                    let caller = Arc::new(Caller::from_claims(data.claims)?);
                    let mut cache = self
                        .cache
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if cache.len() >= CACHE_CAPACITY {
                        cache.clear();
                    }
                    cache.insert(
                        token.to_string(),
                        Cached {
                            caller: caller.clone(),
                            exp,
                            nbf,
                        },
                    );
                    return Ok(caller);
                }
                Err(e) => last = reason(&e),
            }
        }
        Err(last)
    }
}

fn reason(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::ImmatureSignature => NOT_YET_VALID.into(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
        ErrorKind::InvalidIssuer => "the token is from another issuer".into(),
        ErrorKind::InvalidAudience => "the token is for another audience".into(),
        ErrorKind::MissingRequiredClaim(c) => format!("the token has no `{c}` claim"),
        _ => "the token cannot be read".into(),
    }
}

/// The bearer token of a request's `authorization` header.
fn bearer<B>(request: &http::Request<B>) -> Result<&str, String> {
    let value = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .ok_or("no credentials: send `authorization: Bearer <token>`")?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "the authorization header is not `Bearer <token>`".to_string())
}

/// The tower layer that authenticates every cet.v1 call (see the module).
#[derive(Debug, Clone)]
pub struct AuthLayer {
    auth: Auth,
}

impl AuthLayer {
    /// Authenticates callers as `auth` says.
    pub fn new(auth: Auth) -> Self {
        Self { auth }
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Authenticated<S> {
        Authenticated {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// A service behind [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    auth: Auth,
}

impl<S, B> tower_service::Service<http::Request<B>> for Authenticated<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = AuthFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if !request.uri().path().starts_with(PROTECTED_PREFIX) {
            return AuthFuture::Inner {
                future: self.inner.call(request),
            };
        }
        let caller = match &self.auth {
            Auth::Off => Ok(Arc::new(Caller::development())),
            Auth::Jwt(a) => bearer(&request).and_then(|t| a.verify(t)),
        };
        match caller {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                AuthFuture::Inner {
                    future: self.inner.call(request),
                }
            }
            Err(why) => AuthFuture::Refused {
                response: Some(tonic::Status::unauthenticated(why).into_http()),
                error: std::marker::PhantomData,
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of a call behind [`AuthLayer`]: the service's, or a
    /// refusal.
    // pin-project-lite takes no doc comments on variant fields.
    #[allow(missing_docs)]
    #[project = AuthFutureProj]
    pub enum AuthFuture<F, E> {
        /// Authenticated: the service answers (`future`).
        Inner { #[pin] future: F },
        /// Refused with UNAUTHENTICATED: the `response` until it is returned.
        Refused { response: Option<http::Response<tonic::body::Body>>, error: std::marker::PhantomData<E> },
    }
}

impl<F, E> std::future::Future for AuthFuture<F, E>
where
    F: std::future::Future<Output = Result<http::Response<tonic::body::Body>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AuthFutureProj::Inner { future } => future.poll(cx),
            AuthFutureProj::Refused { response, .. } => match response.take() {
                Some(r) => Poll::Ready(Ok(r)),
                None => Poll::Pending,
            },
        }
    }
}

/// The verified caller of a request (put there by [`AuthLayer`]); a request
/// that did not pass the layer (a handler called directly) has none and is
/// refused.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Arc<Caller>, tonic::Status> {
    request
        .extensions()
        .get::<Arc<Caller>>()
        .cloned()
        .ok_or_else(|| tonic::Status::unauthenticated("no verified caller"))
}

/// Options of every server that authenticates callers.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    /// `jwt`: every call carries a bearer JWT verified against
    /// --jwt-keys; `off`: no authentication, every caller is an admin
    /// (local development only).
    #[arg(long, env = "CETRACK_AUTH", value_enum, default_value_t = AuthMode::Jwt)]
    pub auth: AuthMode,
    /// The JWKS file of the keys tokens are signed with (re-read when it
    /// changes).
    #[arg(long, env = "CETRACK_JWT_KEYS")]
    pub jwt_keys: Option<PathBuf>,
    /// The issuer (`iss`) tokens must name.
    #[arg(long, env = "CETRACK_JWT_ISSUER", default_value = keys::DEFAULT_ISSUER)]
    pub jwt_issuer: String,
    /// The audience (`aud`) tokens must name.
    #[arg(long, env = "CETRACK_JWT_AUDIENCE", default_value = keys::DEFAULT_AUDIENCE)]
    pub jwt_audience: String,
}

/// Whether callers are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// Bearer JWTs.
    Jwt,
    /// None (local development only).
    Off,
}

impl AuthArgs {
    /// The authentication these options ask for, its keys read.
    pub fn load(&self) -> anyhow::Result<Auth> {
        match self.auth {
            AuthMode::Off => {
                tracing::warn!("AUTHENTICATION IS OFF: every caller is an admin cleared for restricted records. For local development only; never expose this server.");
                Ok(Auth::Off)
            }
            AuthMode::Jwt => {
                let Some(keys) = &self.jwt_keys else {
                    anyhow::bail!("--jwt-keys (CETRACK_JWT_KEYS) is required: the JWKS file of the keys tokens are signed with (or --auth off for local development)");
                };
                Ok(Auth::Jwt(Authenticator::load(JwtConfig {
                    keys: keys.clone(),
                    issuer: self.jwt_issuer.clone(),
                    audience: self.jwt_audience.clone(),
                })?))
            }
        }
    }
}
