//! `cetrack keys` (signing keys and the JWKS servers verify with) and
//! `cetrack token issue` (a token signed with a local key).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use cetrack_contract::auth::{Clearance, Role};
use cetrack_server::auth::keys::{self, LocalKeys, SigningKey, JWKS_FILE, SIGNING_KEY_FILE};

/// `cetrack token ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum TokenCommand {
    /// Print a token signed with a local key.
    Issue(IssueArgs),
}

/// Options of `cetrack token issue`.
#[derive(Debug, clap::Args)]
pub(crate) struct IssueArgs {
    /// The data directory of `cetrack up` (its keys are in `auth/`).
    #[arg(long, env = "CETRACK_DATA_DIR", default_value = "./cetrack-data")]
    data_dir: PathBuf,
    /// A key directory made by `cetrack keys init` [default: <data-dir>/auth].
    #[arg(long)]
    keys: Option<PathBuf>,
    /// Who the token is for (`sub`).
    #[arg(long)]
    sub: String,
    /// The caller's organization id, e.g. `us-nsf` (reporters need one).
    #[arg(long)]
    org: Option<String>,
    /// Roles: viewer, reporter, editor, admin (comma-separated).
    #[arg(long, value_delimiter = ',', required = true)]
    roles: Vec<Role>,
    /// Domains the roles hold in (comma-separated) [default: every domain].
    #[arg(long, value_delimiter = ',')]
    domains: Vec<String>,
    /// What the caller may see.
    #[arg(long, value_enum, default_value_t = ClearanceArg::Public)]
    clearance: ClearanceArg,
    /// How long the token is valid, e.g. `30m`, `12h`, `7d`.
    #[arg(long, default_value = "12h", value_parser = humantime::parse_duration)]
    ttl: Duration,
}

/// A clearance on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ClearanceArg {
    /// Public records only.
    Public,
    /// Public and restricted records.
    Restricted,
}

/// `cetrack keys ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum KeysCommand {
    /// Make a key directory: an Ed25519 signing key (mode 0600) and
    /// `jwks.json`, the file servers verify with (--jwt-keys).
    Init {
        /// The directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Start signing with a new key; `jwks.json` lists the new key and every
    /// key before it, so tokens already issued stay valid until `retire`.
    Rotate {
        /// The directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Remove every key but the current signing key from `jwks.json`: tokens
    /// signed with the older keys are refused from then on.
    Retire {
        /// The directory.
        #[arg(long)]
        dir: PathBuf,
    },
}

/// Runs `cetrack token ...`.
pub(crate) fn token(command: TokenCommand) -> anyhow::Result<()> {
    let TokenCommand::Issue(a) = command;
    let dir = a
        .keys
        .unwrap_or_else(|| crate::client::key_dir(&a.data_dir));
    let local = LocalKeys::open(&dir).with_context(|| {
        format!(
            "no signing key in {}: start `cetrack up` once, or run `cetrack keys init --dir DIR`",
            dir.display()
        )
    })?;
    let clearance = match a.clearance {
        ClearanceArg::Public => Clearance::Public,
        ClearanceArg::Restricted => Clearance::Restricted,
    };
    let domains = (!a.domains.is_empty()).then_some(a.domains);
    if let Some(list) = &domains {
        for d in list {
            d.parse::<cetrack_contract::Domain>()?;
        }
    }
    let claims = keys::claims(
        &a.sub,
        a.org.as_deref(),
        &a.roles,
        domains,
        clearance,
        a.ttl,
    );
    println!("{}", local.key.issue(&claims)?);
    Ok(())
}

fn jwks_keys(dir: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let path = dir.join(JWKS_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    Ok(v["keys"].as_array().cloned().unwrap_or_default())
}

fn write_jwks(dir: &Path, keys: Vec<serde_json::Value>) -> anyhow::Result<()> {
    let path = dir.join(JWKS_FILE);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::json!({ "keys": keys }).to_string())?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

/// Runs `cetrack keys ...`.
pub(crate) fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Init { dir } => {
            if dir.join(SIGNING_KEY_FILE).exists() {
                anyhow::bail!("{} already holds a signing key", dir.display());
            }
            let local = LocalKeys::open_or_create(&dir)?;
            eprintln!(
                "made signing key {} in {}; servers verify with {}",
                local.key.kid(),
                dir.display(),
                local.jwks_path().display()
            );
        }
        KeysCommand::Rotate { dir } => {
            let old = LocalKeys::open(&dir)?;
            let mut listed = jwks_keys(&dir)?;
            let new = SigningKey::generate();
            listed.insert(0, new.jwk());
            // The JWKS first, so that servers trust the new key before any
            // token signed with it exists.
            write_jwks(&dir, listed)?;
            new.write(&dir.join(SIGNING_KEY_FILE))?;
            eprintln!(
                "now signing with {} (was {}); both are trusted until `cetrack keys retire`",
                new.kid(),
                old.key.kid()
            );
        }
        KeysCommand::Retire { dir } => {
            let current = LocalKeys::open(&dir)?;
            let kept: Vec<_> = jwks_keys(&dir)?
                .into_iter()
                .filter(|k| k["kid"].as_str() == Some(current.key.kid()))
                .collect();
            anyhow::ensure!(
                !kept.is_empty(),
                "jwks.json does not list the current signing key {}",
                current.key.kid()
            );
            write_jwks(&dir, kept)?;
            eprintln!("only {} is trusted now", current.key.kid());
        }
    }
    Ok(())
}
