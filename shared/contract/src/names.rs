//! Resource names (AIP-122): `domains/{domain}` and
//! `domains/{domain}/initiatives/{initiative_id}`, and the ids inside them.

use crate::domain::Domain;
use crate::error::{quote, FieldViolation};

/// Longest initiative, milestone, topic or organization id.
pub const MAX_ID_LEN: usize = 63;

/// A parsed initiative name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InitiativeName {
    /// The domain holding it.
    pub domain: Domain,
    /// The initiative id.
    pub id: String,
}

impl InitiativeName {
    /// The name of initiative `id` in `domain`.
    pub fn new(domain: Domain, id: impl Into<String>) -> Self {
        Self {
            domain,
            id: id.into(),
        }
    }

    /// Parses `domains/{domain}/initiatives/{id}`; `field` names the request
    /// field in the violation.
    pub fn parse(name: &str, field: &str) -> Result<Self, FieldViolation> {
        let parts: Vec<&str> = name.splitn(5, '/').collect();
        match parts.as_slice() {
            ["domains", domain, "initiatives", id] => {
                let domain = domain
                    .parse::<Domain>()
                    .map_err(|e| FieldViolation::new(field, e.to_string()))?;
                check_resource_id(id).map_err(|d| FieldViolation::new(field, d))?;
                Ok(Self::new(domain, *id))
            }
            _ if name.is_empty() => Err(FieldViolation::new(field, "required")),
            _ => Err(FieldViolation::new(
                field,
                format!(
                    "{} is not of the form domains/{{domain}}/initiatives/{{initiative_id}}",
                    quote(name)
                ),
            )),
        }
    }
}

impl std::fmt::Display for InitiativeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "domains/{}/initiatives/{}", self.domain.slug(), self.id)
    }
}

/// Parses a parent `domains/{domain}`.
pub fn parse_parent(parent: &str, field: &str) -> Result<Domain, FieldViolation> {
    match parent.splitn(3, '/').collect::<Vec<_>>().as_slice() {
        ["domains", domain] => domain
            .parse::<Domain>()
            .map_err(|e| FieldViolation::new(field, e.to_string())),
        _ if parent.is_empty() => Err(FieldViolation::new(field, "required")),
        _ => Err(FieldViolation::new(
            field,
            format!("{} is not of the form domains/{{domain}}", quote(parent)),
        )),
    }
}

/// Checks an initiative id: lowercase letters, digits and hyphens, starting
/// with a letter, not ending with a hyphen, 1 to 63 characters.
pub fn check_resource_id(id: &str) -> Result<(), String> {
    check_slug(id, 1)?;
    if !id.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("must start with a lowercase letter".into());
    }
    Ok(())
}

/// Checks a slug-like id (organization, milestone, topic): lowercase letters,
/// digits and hyphens, `min_len` to 63 characters, not starting or ending
/// with a hyphen.
pub fn check_slug(id: &str, min_len: usize) -> Result<(), String> {
    if id.is_empty() {
        return Err("required".into());
    }
    if id.len() < min_len || id.len() > MAX_ID_LEN {
        return Err(format!(
            "must be {min_len} to {MAX_ID_LEN} characters, is {}",
            id.chars().count()
        ));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("may hold only lowercase letters, digits and hyphens".into());
    }
    if id.starts_with('-') || id.ends_with('-') {
        return Err("must not start or end with a hyphen".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_names() {
        let n = InitiativeName::parse("domains/quantum/initiatives/nist-kriss", "name").unwrap();
        assert_eq!(n, InitiativeName::new(Domain::Quantum, "nist-kriss"));
        assert_eq!(n.to_string(), "domains/quantum/initiatives/nist-kriss");
    }

    #[test]
    fn rejects_malformed_names() {
        for bad in [
            "",
            "domains/quantum",
            "domains/chemistry/initiatives/x",
            "domains/quantum/initiatives/",
            "domains/quantum/initiatives/Upper",
            "domains/quantum/initiatives/1abc",
            "domains/quantum/initiatives/a/b",
            "domains/quantum/things/x",
        ] {
            let v = InitiativeName::parse(bad, "name").unwrap_err();
            assert_eq!(v.field, "name", "{bad}");
        }
    }

    #[test]
    fn parses_parents() {
        assert_eq!(parse_parent("domains/ai", "parent"), Ok(Domain::Ai));
        assert!(parse_parent("domains/", "parent").is_err());
        assert!(parse_parent("ai", "parent").is_err());
    }
}
