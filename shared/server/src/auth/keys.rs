//! Local keys: an Ed25519 signing key, the JWKS file servers verify with, and
//! tokens signed with it. `cetrack up` keeps them in `<data-dir>/auth/`
//! (readable only by the user); `cetrack token issue` signs with them; tests
//! make their own. An operator with an identity provider uses its JWKS
//! instead and never needs these.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cetrack_contract::auth::{Claims, Clearance, Role};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

/// The issuer of locally signed tokens, and what servers expect by default.
pub const DEFAULT_ISSUER: &str = "cetrack";
/// The audience of locally signed tokens, and what servers expect by default.
pub const DEFAULT_AUDIENCE: &str = "cetrack";
/// The signing key's file in a key directory (PKCS#8 DER, mode 0600).
pub const SIGNING_KEY_FILE: &str = "signing-key.p8";
/// The JWKS file in a key directory (the public keys).
pub const JWKS_FILE: &str = "jwks.json";
/// The admin token `cetrack up` writes for the command line (mode 0600).
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Why keys or tokens cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The signing key file is not an Ed25519 PKCS#8 key.
    #[error("{0} is not an Ed25519 signing key in PKCS#8 DER")]
    NotAKey(PathBuf),
    /// The token cannot be signed.
    #[error("cannot sign the token: {0}")]
    Sign(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An Ed25519 signing key and its key id.
#[derive(Clone)]
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
    kid: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish()
    }
}

impl SigningKey {
    /// A new random key.
    pub fn generate() -> Self {
        Self::from_dalek(ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng))
    }

    fn from_dalek(key: ed25519_dalek::SigningKey) -> Self {
        let public = key.verifying_key().to_bytes();
        let kid = format!("ed-{}", URL_SAFE_NO_PAD.encode(&public[..9]));
        Self { key, kid }
    }

    /// Its key id (`kid`), derived from the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Its public key as a JWK (a JSON object).
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(self.key.verifying_key().to_bytes()),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        })
    }

    /// Signs `claims` (with this key's `kid` in the header).
    pub fn issue(&self, claims: &Claims) -> Result<String, KeyError> {
        let der = self
            .key
            .to_pkcs8_der()
            .map_err(|e| KeyError::Sign(e.to_string()))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes()))
            .map_err(|e| KeyError::Sign(e.to_string()))
    }

    /// Writes the key to `path`, readable only by the user.
    pub fn write(&self, path: &Path) -> Result<(), KeyError> {
        let der = self
            .key
            .to_pkcs8_der()
            .map_err(|e| KeyError::Sign(e.to_string()))?;
        write_private(path, der.as_bytes())
    }

    /// Reads a key written by [`SigningKey::write`].
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let der = std::fs::read(path).map_err(io(path))?;
        ed25519_dalek::SigningKey::from_pkcs8_der(&der)
            .map(Self::from_dalek)
            .map_err(|_| KeyError::NotAKey(path.to_path_buf()))
    }
}

/// A JWKS document listing the public keys of `keys`.
pub fn jwks(keys: &[&SigningKey]) -> String {
    let keys: Vec<_> = keys.iter().map(|k| k.jwk()).collect();
    serde_json::json!({ "keys": keys }).to_string()
}

/// Writes `bytes` to `path` (replacing it) with mode 0600, durably.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Writes a public file (the JWKS) atomically.
fn write_public(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// The claims of a token for `sub` valid for `ttl` from now, with the
/// default issuer and audience.
pub fn claims(
    sub: &str,
    org: Option<&str>,
    roles: &[Role],
    domains: Option<Vec<String>>,
    clearance: Clearance,
    ttl: Duration,
) -> Claims {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Claims {
        sub: sub.to_string(),
        org: org.map(str::to_string),
        roles: roles.to_vec(),
        domains,
        clearance,
        iss: DEFAULT_ISSUER.into(),
        aud: DEFAULT_AUDIENCE.into(),
        exp: now + ttl.as_secs(),
        nbf: Some(now),
        iat: Some(now),
    }
}

/// A key directory: its signing key and JWKS file.
#[derive(Debug, Clone)]
pub struct LocalKeys {
    /// The directory.
    pub dir: PathBuf,
    /// The signing key.
    pub key: SigningKey,
}

impl LocalKeys {
    /// The keys in `dir`, made when there are none yet: the signing key
    /// readable only by the user (0600), `jwks.json` by anyone (servers in
    /// containers read it as another user).
    pub fn open_or_create(dir: &Path) -> Result<Self, KeyError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let key_path = dir.join(SIGNING_KEY_FILE);
        let key = if key_path.exists() {
            SigningKey::read(&key_path)?
        } else {
            let key = SigningKey::generate();
            key.write(&key_path)?;
            key
        };
        let jwks_path = dir.join(JWKS_FILE);
        if !jwks_path.exists() {
            write_public(&jwks_path, jwks(&[&key]).as_bytes())?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            key,
        })
    }

    /// The keys in `dir`, which must exist.
    pub fn open(dir: &Path) -> Result<Self, KeyError> {
        Ok(Self {
            dir: dir.to_path_buf(),
            key: SigningKey::read(&dir.join(SIGNING_KEY_FILE))?,
        })
    }

    /// The JWKS file servers verify with.
    pub fn jwks_path(&self) -> PathBuf {
        self.dir.join(JWKS_FILE)
    }

    /// Where the admin token of `cetrack up` is kept.
    pub fn admin_token_path(&self) -> PathBuf {
        self.dir.join(ADMIN_TOKEN_FILE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An authenticator trusting the keys of `made`.
    fn authenticator(made: &LocalKeys) -> std::sync::Arc<crate::auth::Authenticator> {
        crate::auth::Authenticator::load(crate::auth::JwtConfig {
            keys: made.jwks_path(),
            issuer: DEFAULT_ISSUER.into(),
            audience: DEFAULT_AUDIENCE.into(),
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A viewer's token for a minute, signed with `key`.
    fn viewer_token(key: &SigningKey) -> String {
        key.issue(&claims(
            "t",
            None,
            &[Role::Viewer],
            None,
            Clearance::Public,
            Duration::from_secs(60),
        ))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn local_keys_persist_and_sign_verifiable_tokens() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let made =
            LocalKeys::open_or_create(&dir.path().join("auth")).unwrap_or_else(|e| panic!("{e}"));
        let again = LocalKeys::open_or_create(&made.dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(made.key.kid(), again.key.kid());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(made.dir.join(SIGNING_KEY_FILE))
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_default();
        assert_eq!(mode, 0o600);
        let token = made
            .key
            .issue(&claims(
                "t",
                Some("us-nsf"),
                &[Role::Viewer],
                None,
                Clearance::Public,
                Duration::from_secs(60),
            ))
            .unwrap_or_else(|e| panic!("{e}"));
        let auth = authenticator(&made);
        let caller = auth.verify(&token).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(caller.sub, "t");
        assert_eq!(caller.org.as_deref(), Some("us-nsf"));
        let other = viewer_token(&SigningKey::generate());
        assert!(auth.verify(&other).is_err());
    }

    #[test]
    fn a_verified_token_is_answered_from_the_cache_until_the_keys_change() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let made =
            LocalKeys::open_or_create(&dir.path().join("auth")).unwrap_or_else(|e| panic!("{e}"));
        let auth = authenticator(&made);
        let token = viewer_token(&made.key);
        let first = auth.verify(&token).unwrap_or_else(|e| panic!("{e}"));
        // Every call of the token shares the caller verified first.
        let again = auth.verify(&token).unwrap_or_else(|e| panic!("{e}"));
        assert!(std::sync::Arc::ptr_eq(&first, &again));
        // The key file no longer trusts the key (two others: a file of
        // another length, seen as changed whatever the clock's grain): once
        // it is read again, the cached caller is gone and the token refused.
        let others = [SigningKey::generate(), SigningKey::generate()];
        std::fs::write(made.jwks_path(), jwks(&[&others[0], &others[1]]))
            .unwrap_or_else(|e| panic!("{e}"));
        auth.reload_if_changed();
        assert!(auth.verify(&token).is_err());
    }

    #[test]
    fn a_refused_token_stays_refused_until_the_keys_change() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let made =
            LocalKeys::open_or_create(&dir.path().join("auth")).unwrap_or_else(|e| panic!("{e}"));
        let auth = authenticator(&made);
        let stranger = SigningKey::generate();
        let token = viewer_token(&stranger);
        let first = auth.verify(&token).err();
        assert!(first.is_some());
        // Kept: asked again, the same answer without another check.
        assert!(auth
            .refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(&token));
        assert_eq!(auth.verify(&token).err(), first);
        // The key file now trusts the stranger's key too: once it is read
        // again, the token verifies.
        std::fs::write(made.jwks_path(), jwks(&[&made.key, &stranger]))
            .unwrap_or_else(|e| panic!("{e}"));
        auth.reload_if_changed();
        let caller = auth.verify(&token).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(caller.sub, "t");
    }
}
