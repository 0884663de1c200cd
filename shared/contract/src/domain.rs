//! The seven technology domains: their resource ids, binaries and default ports.

use std::fmt;
use std::str::FromStr;

use crate::proto;

/// A technology domain of the dialogue, each served by its own service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Domain {
    /// Semiconductor supply chains and technology.
    Semiconductors,
    /// Biotechnology and biomanufacturing.
    Biotech,
    /// Batteries and clean energy technology.
    Energy,
    /// Quantum science and technology.
    Quantum,
    /// Artificial intelligence and standards.
    Ai,
    /// Digital connectivity and ICT.
    Connectivity,
    /// Partnership with like-minded nations and cross-cutting commitments.
    Partnerships,
}

/// The port of the gateway; the domains follow it, 50051 to 50057.
pub const GATEWAY_DEFAULT_PORT: u16 = 50050;

impl Domain {
    /// Every domain, in the order of their default ports.
    pub const ALL: [Domain; 7] = [
        Domain::Semiconductors,
        Domain::Biotech,
        Domain::Energy,
        Domain::Quantum,
        Domain::Ai,
        Domain::Connectivity,
        Domain::Partnerships,
    ];

    /// The id used in resource names, e.g. `semiconductors`.
    pub fn slug(self) -> &'static str {
        match self {
            Domain::Semiconductors => "semiconductors",
            Domain::Biotech => "biotech",
            Domain::Energy => "energy",
            Domain::Quantum => "quantum",
            Domain::Ai => "ai",
            Domain::Connectivity => "connectivity",
            Domain::Partnerships => "partnerships",
        }
    }

    /// A title for people, as in the fact sheet.
    pub fn title(self) -> &'static str {
        match self {
            Domain::Semiconductors => "Semiconductor Supply Chains and Technology",
            Domain::Biotech => "Biotechnology and Biomanufacturing",
            Domain::Energy => "Batteries and Clean Energy Technology",
            Domain::Quantum => "Quantum",
            Domain::Ai => "Artificial Intelligence and Standards",
            Domain::Connectivity => {
                "Digital Connectivity and Information Communication Technologies (ICT)"
            }
            Domain::Partnerships => "Partnership with Like-Minded Nations",
        }
    }

    /// The name of the domain's binary, e.g. `cetrack-semiconductors`.
    pub fn binary(self) -> String {
        format!("cetrack-{}", self.slug())
    }

    /// The default port: 50051 to 50057 in the order of [`Domain::ALL`].
    pub fn default_port(self) -> u16 {
        let index = Domain::ALL.iter().position(|d| *d == self).unwrap_or(0);
        GATEWAY_DEFAULT_PORT + 1 + index as u16
    }

    /// The domain's resource name, `domains/{slug}`.
    pub fn parent(self) -> String {
        format!("domains/{}", self.slug())
    }

    /// The proto enum value.
    pub fn to_proto(self) -> proto::Domain {
        match self {
            Domain::Semiconductors => proto::Domain::Semiconductors,
            Domain::Biotech => proto::Domain::Biotech,
            Domain::Energy => proto::Domain::Energy,
            Domain::Quantum => proto::Domain::Quantum,
            Domain::Ai => proto::Domain::Ai,
            Domain::Connectivity => proto::Domain::Connectivity,
            Domain::Partnerships => proto::Domain::Partnerships,
        }
    }

    /// The domain whose slug is `slug`.
    pub fn from_slug(slug: &str) -> Option<Domain> {
        Domain::ALL.into_iter().find(|d| d.slug() == slug)
    }

    /// The domain of a proto enum value; `None` for unspecified or unknown.
    pub fn from_proto(value: i32) -> Option<Domain> {
        match proto::Domain::try_from(value).ok()? {
            proto::Domain::Unspecified => None,
            proto::Domain::Semiconductors => Some(Domain::Semiconductors),
            proto::Domain::Biotech => Some(Domain::Biotech),
            proto::Domain::Energy => Some(Domain::Energy),
            proto::Domain::Quantum => Some(Domain::Quantum),
            proto::Domain::Ai => Some(Domain::Ai),
            proto::Domain::Connectivity => Some(Domain::Connectivity),
            proto::Domain::Partnerships => Some(Domain::Partnerships),
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

/// A domain id that is not one of the seven.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown domain {}; expected one of semiconductors, biotech, energy, quantum, ai, connectivity, partnerships", crate::error::quote(.0))]
pub struct UnknownDomain(pub String);

impl FromStr for Domain {
    type Err = UnknownDomain;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Domain::ALL
            .into_iter()
            .find(|d| d.slug() == s)
            .ok_or_else(|| UnknownDomain(s.to_string()))
    }
}

/// Parses a domain service's address as `NAME=URL` (e.g.
/// `quantum=http://quantum:50054`); a bare `HOST:PORT` gets `http://`. The
/// one parser of `--domain` (gateway) and `--domain-addr` (command line).
pub fn parse_domain_url(s: &str) -> Result<(Domain, String), String> {
    let (name, url) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not NAME=URL"))?;
    let domain = name.trim().parse::<Domain>().map_err(|e| e.to_string())?;
    Ok((domain, normalize_url(url.trim())?))
}

/// An `http://` or `https://` URL; a bare `HOST:PORT` gets `http://`.
pub fn normalize_url(url: &str) -> Result<String, String> {
    match url.split_once("://") {
        None if !url.is_empty() => Ok(format!("http://{url}")),
        Some(("http" | "https", rest)) if !rest.is_empty() => Ok(url.to_string()),
        _ => Err(format!("`{url}` is not an http:// or https:// URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_urls_parse_with_or_without_a_scheme() {
        assert_eq!(
            parse_domain_url("quantum=http://quantum:50054"),
            Ok((Domain::Quantum, "http://quantum:50054".to_string()))
        );
        assert_eq!(
            parse_domain_url(" ai = 127.0.0.1:9 "),
            Ok((Domain::Ai, "http://127.0.0.1:9".to_string()))
        );
        assert_eq!(
            parse_domain_url("ai=https://h:1"),
            Ok((Domain::Ai, "https://h:1".to_string()))
        );
        for bad in [
            "ai",
            "chemistry=http://h:1",
            "ai=ftp://h:1",
            "ai=",
            "ai=http://",
        ] {
            assert!(parse_domain_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports_follow_the_gateway_in_order() {
        let ports: Vec<u16> = Domain::ALL.iter().map(|d| d.default_port()).collect();
        assert_eq!(ports, vec![50051, 50052, 50053, 50054, 50055, 50056, 50057]);
    }

    #[test]
    fn slugs_round_trip() {
        for d in Domain::ALL {
            assert_eq!(d.slug().parse::<Domain>(), Ok(d));
            assert_eq!(Domain::from_proto(d.to_proto() as i32), Some(d));
        }
        assert!("chemistry".parse::<Domain>().is_err());
        assert_eq!(Domain::from_proto(0), None);
    }
}
