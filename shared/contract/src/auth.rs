//! Who is calling and what they may do: the verified identity of a caller
//! (from a bearer token's claims) and the rules of each role. Pure rules: the
//! server kit verifies tokens, the domain services enforce these.
//!
//! | role | may |
//! |---|---|
//! | `viewer` | read what their clearance allows |
//! | `reporter` (needs `org`) | read; add progress updates reported by their organization; change their organization's own status and notes in a participation; update milestones of initiatives their organization takes part in |
//! | `editor` | read; create, update and delete initiatives |
//! | `admin` | everything, backups included |
//!
//! Roles hold in every domain, or only in the claim `domains` when it is
//! given. A record marked RESTRICTED exists only for callers with clearance
//! `restricted`.

use serde::{Deserialize, Serialize};

use crate::domain::Domain;
use crate::error::Error;
use crate::proto::{Initiative, Sensitivity};

/// A role a token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads.
    Viewer,
    /// Reports progress for their organization.
    Reporter,
    /// Creates, updates and deletes initiatives.
    Editor,
    /// Everything, backups included.
    Admin,
}

impl Role {
    /// The role's name in tokens.
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Reporter => "reporter",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Role::Viewer, Role::Reporter, Role::Editor, Role::Admin]
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown role {}: expected viewer, reporter, editor or admin",
                    crate::error::quote(s)
                )
            })
    }
}

/// What a caller is cleared to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Clearance {
    /// Public records only.
    #[default]
    Public,
    /// Public and restricted records.
    Restricted,
}

/// The claims of a cetrack token, as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The caller (a person or a system).
    pub sub: String,
    /// The caller's organization id, e.g. `us-nsf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// The roles granted.
    #[serde(default)]
    pub roles: Vec<Role>,
    /// The domains the roles hold in; absent: every domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domains: Option<Vec<String>>,
    /// What the caller may see.
    #[serde(default)]
    pub clearance: Clearance,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Not before, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Who (the token's `sub`).
    pub sub: String,
    /// Their organization.
    pub org: Option<String>,
    /// Their roles.
    pub roles: Vec<Role>,
    /// Where the roles hold; `None`: every domain.
    pub domains: Option<Vec<Domain>>,
    /// What they may see.
    pub clearance: Clearance,
}

/// What a caller asks to do, for the message of a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read records.
    Read,
    /// Create, update or delete records.
    Edit,
    /// Report progress, participation status or milestones.
    Report,
    /// Back up a store.
    Backup,
    /// See or write restricted records.
    Restricted,
}

impl Permission {
    fn name(self) -> &'static str {
        match self {
            Permission::Read => "initiatives.read (any role)",
            Permission::Edit => "initiatives.edit (role editor or admin)",
            Permission::Report => {
                "initiatives.report (role reporter of a taking-part organization, editor or admin)"
            }
            Permission::Backup => "stores.backup (role admin)",
            Permission::Restricted => "records.restricted (clearance restricted)",
        }
    }
}

impl Caller {
    /// The caller of a server run with authentication off (local
    /// development only): an admin cleared for everything.
    pub fn development() -> Self {
        Self {
            sub: "development".into(),
            org: None,
            roles: vec![Role::Admin],
            domains: None,
            clearance: Clearance::Restricted,
        }
    }

    /// The caller a token's verified claims name; unknown domains in the
    /// claim `domains` are an error.
    pub fn from_claims(claims: Claims) -> Result<Self, String> {
        let domains = match claims.domains {
            None => None,
            Some(list) => Some(
                list.iter()
                    .map(|d| d.parse::<Domain>().map_err(|e| e.to_string()))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        if claims.sub.trim().is_empty() {
            return Err("the token names no subject (`sub`)".into());
        }
        Ok(Self {
            sub: claims.sub,
            org: claims.org.filter(|o| !o.is_empty()),
            roles: claims.roles,
            domains,
            clearance: claims.clearance,
        })
    }

    /// Whether the caller holds `role` in `domain`.
    pub fn has(&self, role: Role, domain: Domain) -> bool {
        self.roles.contains(&role) && self.domains.as_ref().is_none_or(|d| d.contains(&domain))
    }

    /// Whether the caller may see restricted records.
    pub fn cleared(&self) -> bool {
        self.clearance == Clearance::Restricted
    }

    /// Whether the caller may see `init`.
    pub fn may_see(&self, init: &Initiative) -> bool {
        self.may_see_marked(is_restricted(init))
    }

    /// Whether the caller may see a record that is marked RESTRICTED
    /// (`restricted`) or not.
    pub fn may_see_marked(&self, restricted: bool) -> bool {
        self.cleared() || !restricted
    }

    /// The caller's organization when they report for it in `domain`.
    pub fn reporting_org(&self, domain: Domain) -> Option<&str> {
        if self.has(Role::Reporter, domain) {
            self.org.as_deref()
        } else {
            None
        }
    }

    /// Whether the caller may create, update and delete in `domain`.
    pub fn may_edit(&self, domain: Domain) -> bool {
        self.has(Role::Editor, domain) || self.has(Role::Admin, domain)
    }

    /// PERMISSION_DENIED unless the caller may read in `domain`.
    pub fn check_read(&self, domain: Domain) -> Result<(), Error> {
        let any = [Role::Viewer, Role::Reporter, Role::Editor, Role::Admin];
        if any.into_iter().any(|r| self.has(r, domain)) {
            Ok(())
        } else {
            Err(self.denied(Permission::Read, domain))
        }
    }

    /// PERMISSION_DENIED unless the caller may edit in `domain`.
    pub fn check_edit(&self, domain: Domain) -> Result<(), Error> {
        if self.may_edit(domain) {
            Ok(())
        } else {
            Err(self.denied(Permission::Edit, domain))
        }
    }

    /// PERMISSION_DENIED unless the caller is an admin in `domain`.
    pub fn check_admin(&self, domain: Domain) -> Result<(), Error> {
        if self.has(Role::Admin, domain) {
            Ok(())
        } else {
            Err(self.denied(Permission::Backup, domain))
        }
    }

    /// PERMISSION_DENIED unless the caller may write a record marked as
    /// `init` is.
    pub fn check_marking(&self, init: &Initiative, domain: Domain) -> Result<(), Error> {
        if self.may_see(init) {
            Ok(())
        } else {
            Err(self.denied(Permission::Restricted, domain))
        }
    }

    /// The refusal of `permission` in `domain`, naming what is missing.
    pub fn denied(&self, permission: Permission, domain: Domain) -> Error {
        Error::PermissionDenied(format!(
            "`{}` lacks the permission {} in the {domain} domain",
            self.sub,
            permission.name()
        ))
    }

    /// How the caller signs the history: `sub`, and the organization when
    /// there is one.
    pub fn signature(&self) -> String {
        match &self.org {
            Some(org) => format!("{} ({org})", self.sub),
            None => self.sub.clone(),
        }
    }
}

/// Whether `init` is marked RESTRICTED.
pub fn is_restricted(init: &Initiative) -> bool {
    init.sensitivity == Sensitivity::Restricted as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(roles: &[Role], domains: Option<Vec<Domain>>) -> Caller {
        Caller {
            sub: "t".into(),
            org: Some("us-nsf".into()),
            roles: roles.to_vec(),
            domains,
            clearance: Clearance::Public,
        }
    }

    #[test]
    fn roles_hold_in_their_domains_only() {
        let scoped = caller(&[Role::Editor], Some(vec![Domain::Ai]));
        assert!(scoped.check_edit(Domain::Ai).is_ok());
        assert!(matches!(
            scoped.check_edit(Domain::Quantum),
            Err(Error::PermissionDenied(m)) if m.contains("initiatives.edit") && m.contains("quantum")
        ));
        assert!(scoped.check_read(Domain::Quantum).is_err());
        let everywhere = caller(&[Role::Viewer], None);
        assert!(everywhere.check_read(Domain::Quantum).is_ok());
        assert!(everywhere.check_edit(Domain::Quantum).is_err());
        assert!(everywhere.check_admin(Domain::Quantum).is_err());
        assert!(caller(&[], None).check_read(Domain::Ai).is_err());
    }

    #[test]
    fn restricted_records_need_clearance() {
        let restricted = Initiative {
            sensitivity: Sensitivity::Restricted as i32,
            ..Default::default()
        };
        let public = Initiative::default();
        let mut c = caller(&[Role::Viewer], None);
        assert!(c.may_see(&public) && !c.may_see(&restricted));
        c.clearance = Clearance::Restricted;
        assert!(c.may_see(&restricted));
    }

    #[test]
    fn claims_name_known_domains_and_a_subject() {
        let claims = |sub: &str, domains: Option<Vec<String>>| Claims {
            sub: sub.into(),
            org: None,
            roles: vec![Role::Viewer],
            domains,
            clearance: Clearance::Public,
            iss: "i".into(),
            aud: "a".into(),
            exp: 0,
            nbf: None,
            iat: None,
        };
        assert!(Caller::from_claims(claims("x", Some(vec!["ai".into()]))).is_ok());
        assert!(Caller::from_claims(claims("x", Some(vec!["chemistry".into()]))).is_err());
        assert!(Caller::from_claims(claims(" ", None)).is_err());
    }
}
