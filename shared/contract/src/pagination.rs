//! Opaque page tokens (AIP-158). A token carries the position of the last item
//! returned and a fingerprint of the request it belongs to, so that a token is
//! refused with another filter instead of silently returning wrong pages.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use prost::Message;

use crate::error::FieldViolation;

/// Page size when the caller sends 0.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest page size; larger requests are capped.
pub const MAX_PAGE_SIZE: usize = 1_000;
/// Most bytes of records one page carries: a page ends before the record
/// that would pass it (but holds at least one), far below the 4 MiB a
/// message may have.
pub const MAX_PAGE_BYTES: usize = 2 << 20;
/// Most records one page of a filtered list examines: a filter that
/// matches few records answers a short (even empty) page with a token to
/// go on, instead of walking the whole store in one call.
pub const MAX_EXAMINED: usize = 10_000;

/// The position a page token resumes from.
#[derive(Clone, PartialEq, Message)]
pub struct PageToken {
    /// The fingerprint of the request the token was made for.
    #[prost(fixed64, tag = "1")]
    pub fingerprint: u64,
    /// The last id returned (for walks in id order).
    #[prost(string, tag = "2")]
    pub last_id: String,
    /// The last revision returned (for walks in revision order).
    #[prost(uint64, tag = "3")]
    pub last_revision: u64,
    /// Free positions for views that walk several sources.
    #[prost(string, repeated, tag = "4")]
    pub cursors: Vec<String>,
    /// A position sealed by the service that made the token (for a
    /// position the caller may not read: see the domain service's `seal`).
    #[prost(bytes = "vec", tag = "5")]
    pub sealed: Vec<u8>,
}

/// A 64-bit FNV-1a hash, stable across builds and platforms.
pub fn fingerprint(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(&[0xff]) {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The fingerprint of a ListInitiatives request: its parent and filter.
pub fn list_fingerprint(parent: &str, filter: &crate::proto::InitiativeFilter) -> u64 {
    fingerprint(&[parent.as_bytes(), &filter.encode_to_vec()])
}

/// A ListInitiatives page token that resumes after initiative `last_id`, for
/// callers (the gateway) that walk a domain from a position of their own.
pub fn list_token_after(
    parent: &str,
    filter: &crate::proto::InitiativeFilter,
    last_id: &str,
) -> String {
    encode(&PageToken {
        fingerprint: list_fingerprint(parent, filter),
        last_id: last_id.to_string(),
        ..Default::default()
    })
}

/// Checks a requested page size: negative is an error, 0 is the default,
/// larger than the maximum is capped.
pub fn page_size(requested: i32, field: &str) -> Result<usize, FieldViolation> {
    match requested {
        n if n < 0 => Err(FieldViolation::new(
            field,
            format!("must not be negative, is {n}"),
        )),
        0 => Ok(DEFAULT_PAGE_SIZE),
        n => Ok((n as usize).min(MAX_PAGE_SIZE)),
    }
}

/// Encodes a token.
pub fn encode(token: &PageToken) -> String {
    URL_SAFE_NO_PAD.encode(token.encode_to_vec())
}

/// Decodes a token made for a request with `fingerprint`; empty is `None`.
pub fn decode(
    token: &str,
    fingerprint: u64,
    field: &str,
) -> Result<Option<PageToken>, FieldViolation> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || FieldViolation::new(field, "not a page token returned by this API");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let t = PageToken::decode(bytes.as_slice()).map_err(|_| bad())?;
    if t.fingerprint != fingerprint {
        return Err(FieldViolation::new(
            field,
            "the page token belongs to a request with other parameters; send the same parent and filter",
        ));
    }
    Ok(Some(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_are_bound_to_their_request() {
        let t = PageToken {
            fingerprint: 7,
            last_id: "x".into(),
            ..Default::default()
        };
        let s = encode(&t);
        assert_eq!(decode(&s, 7, "page_token").unwrap(), Some(t));
        assert!(decode(&s, 8, "page_token").is_err());
        assert!(decode("%%%", 7, "page_token").is_err());
        assert!(decode("AAAA", 7, "page_token").is_err());
        assert_eq!(decode("", 7, "page_token").unwrap(), None);
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(0, "p"), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(5000, "p"), Ok(MAX_PAGE_SIZE));
        assert!(page_size(-1, "p").is_err());
        assert_ne!(fingerprint(&[b"ab", b"c"]), fingerprint(&[b"a", b"bc"]));
    }
}
