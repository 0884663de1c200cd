//! Key layouts of the store's trees. Ids never contain a NUL byte (they are
//! checked slugs), so NUL separates the parts of a composite key.

use cetrack_contract::proto::Initiative;
use std::collections::BTreeSet;

/// Index of initiatives by lifecycle status: `s` + status + id.
pub(crate) const BY_STATUS: u8 = b's';
/// Index by instrument: `i` + instrument + id.
pub(crate) const BY_INSTRUMENT: u8 = b'i';
/// Index by organization: `o` + organization id + NUL + id.
pub(crate) const BY_ORGANIZATION: u8 = b'o';
/// Index by participant country: `c` + country code + NUL + id.
pub(crate) const BY_COUNTRY: u8 = b'c';
/// Index by topic: `t` + topic + NUL + id.
pub(crate) const BY_TOPIC: u8 = b't';

/// The prefix of an index on an integer value.
pub(crate) fn int_prefix(kind: u8, value: i32) -> Vec<u8> {
    let mut k = vec![kind];
    k.extend_from_slice(&value.to_be_bytes());
    k
}

/// The prefix of an index on a text value.
pub(crate) fn text_prefix(kind: u8, value: &str) -> Vec<u8> {
    let mut k = vec![kind];
    k.extend_from_slice(value.as_bytes());
    k.push(0);
    k
}

fn entry(mut prefix: Vec<u8>, id: &str) -> Vec<u8> {
    prefix.extend_from_slice(id.as_bytes());
    prefix
}

/// Every index entry of an initiative with id `id`.
pub(crate) fn index_entries(id: &str, init: &Initiative) -> BTreeSet<Vec<u8>> {
    let mut keys = BTreeSet::new();
    keys.insert(entry(int_prefix(BY_STATUS, init.status), id));
    keys.insert(entry(int_prefix(BY_INSTRUMENT, init.instrument), id));
    for o in init
        .participants
        .iter()
        .filter_map(|p| p.organization.as_ref())
    {
        keys.insert(entry(text_prefix(BY_ORGANIZATION, &o.id), id));
        keys.insert(entry(text_prefix(BY_COUNTRY, &o.country_code), id));
    }
    for t in &init.topics {
        keys.insert(entry(text_prefix(BY_TOPIC, t), id));
    }
    keys
}

/// A revision as a key that sorts in numeric order.
pub(crate) fn revision(rev: u64) -> [u8; 8] {
    rev.to_be_bytes()
}

/// The history key of revision `rev` of initiative `id`.
pub(crate) fn history(id: &str, rev: u64) -> Vec<u8> {
    let mut k = history_prefix(id);
    k.extend_from_slice(&rev.to_be_bytes());
    k
}

/// The prefix of every history key of initiative `id`.
pub(crate) fn history_prefix(id: &str) -> Vec<u8> {
    let mut k = id.as_bytes().to_vec();
    k.push(0);
    k
}

/// The idempotency key of a request id for one method.
pub(crate) fn request(method: &str, request_id: &str) -> Vec<u8> {
    let mut k = method.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(request_id.as_bytes());
    k
}
