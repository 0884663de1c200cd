//! Identities for the tests: one signing key and JWKS file per test process
//! (in a temporary directory), tokens of any role and clearance signed with
//! it, clients that send them, and the `--jwt-keys` option the binaries are
//! started with.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use cetrack_contract::auth::{Clearance, Role};
use cetrack_server::auth::keys::{self, LocalKeys};
use cetrack_server::auth::{Auth, Authenticator, JwtConfig};
use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// How long test tokens stay valid.
const TTL: Duration = Duration::from_secs(3600);

struct TestKeys {
    /// Kept for the life of the test process.
    _dir: tempfile::TempDir,
    local: LocalKeys,
    auth: Auth,
}

fn test_keys() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
        let local = LocalKeys::open_or_create(&dir.path().join("auth"))
            .unwrap_or_else(|e| panic!("cannot make the test keys: {e}"));
        let auth = Auth::Jwt(
            Authenticator::load(JwtConfig {
                keys: local.jwks_path(),
                issuer: keys::DEFAULT_ISSUER.into(),
                audience: keys::DEFAULT_AUDIENCE.into(),
            })
            .unwrap_or_else(|e| panic!("cannot load the test keys: {e}")),
        );
        TestKeys {
            _dir: dir,
            local,
            auth,
        }
    })
}

/// The authentication of servers started in this process: tokens signed
/// with the test key.
pub fn test_auth() -> Auth {
    test_keys().auth.clone()
}

/// The JWKS file binaries verify test tokens with.
pub fn test_jwks() -> PathBuf {
    test_keys().local.jwks_path()
}

/// `--jwt-keys <the test JWKS>`, for binaries.
pub fn jwt_args() -> [OsString; 2] {
    ["--jwt-keys".into(), test_jwks().into_os_string()]
}

/// A token signed with the test key.
pub fn token(
    sub: &str,
    org: Option<&str>,
    roles: &[Role],
    domains: Option<&[&str]>,
    clearance: Clearance,
) -> String {
    let domains = domains.map(|d| d.iter().map(|s| s.to_string()).collect());
    test_keys()
        .local
        .key
        .issue(&keys::claims(sub, org, roles, domains, clearance, TTL))
        .unwrap_or_else(|e| panic!("cannot sign a test token: {e}"))
}

/// The file of the test gateways' own token (their service identity: a
/// viewer cleared for restricted records), beside the test keys.
pub fn gateway_service_token_file() -> PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = test_keys()
            .local
            .jwks_path()
            .with_file_name("gateway.token");
        let t = token(
            "test-gateway",
            None,
            &[Role::Viewer],
            None,
            Clearance::Restricted,
        );
        std::fs::write(&path, t).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    })
    .clone()
}

/// A token of an admin cleared for restricted records (what the tests'
/// default clients send).
pub fn admin_token() -> String {
    static ADMIN: OnceLock<String> = OnceLock::new();
    ADMIN
        .get_or_init(|| {
            token(
                "test-admin",
                None,
                &[Role::Admin],
                None,
                Clearance::Restricted,
            )
        })
        .clone()
}

/// Adds `authorization: Bearer <token>` to every request.
#[derive(Debug, Clone)]
pub struct Bearer(Option<AsciiMetadataValue>);

impl Bearer {
    /// Sends `token` (none: no credentials).
    pub fn new(token: Option<&str>) -> Self {
        Self(token.map(|t| {
            format!("Bearer {t}")
                .parse()
                .unwrap_or_else(|e| panic!("a token a header cannot carry: {e}"))
        }))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            r.metadata_mut().insert("authorization", v.clone());
        }
        Ok(r)
    }
}

/// A channel whose requests carry a token.
pub type AuthChannel = InterceptedService<Channel, Bearer>;

/// `claims` signed with the test key (for tokens the helpers above do not
/// make: expired, for another audience, ...).
pub fn sign(claims: &cetrack_contract::auth::Claims) -> String {
    test_keys()
        .local
        .key
        .issue(claims)
        .unwrap_or_else(|e| panic!("cannot sign a test token: {e}"))
}

/// The claims of a test token for `sub`, valid for an hour.
pub fn claims_for(sub: &str, roles: &[Role]) -> cetrack_contract::auth::Claims {
    keys::claims(sub, None, roles, None, Clearance::Public, TTL)
}
