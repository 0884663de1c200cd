//! Key layouts of the store's trees. Ids never contain a NUL byte (they are
//! checked slugs), so NUL separates the parts of a composite key.

use cetrack_contract::dates;
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
/// Index by source document: `d` + the first [`DOCUMENT_DIGEST`] bytes of
/// the SHA-256 of the document's title + id. A title is free text of up to
/// 500 characters (a NUL included): its digest keeps every entry short and
/// where the id begins unambiguous. Two titles with the same digest would
/// only share entries; a filter still checks every record it reads.
pub(crate) const BY_DOCUMENT: u8 = b'd';
/// The bytes of a title's digest in a [`BY_DOCUMENT`] entry.
const DOCUMENT_DIGEST: usize = 16;
/// Index of milestones by the last day of their due period (any status):
/// `m` + day + id + NUL + milestone id, the day as 4 bytes that sort as the
/// day key does (see [`due_prefix`]).
pub(crate) const BY_DUE: u8 = b'm';
/// Index of initiatives by the last day of their planned end period (any
/// status): `e` + day + id, the day as in [`BY_DUE`].
pub(crate) const BY_END: u8 = b'e';

/// The prefix of the entries of day `day` (a [`dates::day_key`]) in the
/// index `kind` ([`BY_DUE`] or [`BY_END`]): its sign bit flipped,
/// big-endian, so that the bytes sort as the numbers do.
pub(crate) fn day_prefix(kind: u8, day: i32) -> Vec<u8> {
    let mut k = vec![kind];
    k.extend_from_slice(&((day as u32) ^ 0x8000_0000).to_be_bytes());
    k
}

/// The prefix of the due index entries of day `day`.
pub(crate) fn due_prefix(day: i32) -> Vec<u8> {
    day_prefix(BY_DUE, day)
}

/// The day and initiative id of an entry of a day index ([`BY_DUE`] or
/// [`BY_END`]): for a due entry, the id ends at its NUL.
pub(crate) fn parse_day_entry(key: &[u8]) -> Option<(i32, &str)> {
    let (kind, rest) = key.split_first()?;
    let (day, rest) = rest.split_first_chunk::<4>()?;
    let day = (u32::from_be_bytes(*day) ^ 0x8000_0000) as i32;
    let id = match *kind {
        BY_DUE => &rest[..rest.iter().position(|b| *b == 0)?],
        BY_END => rest,
        _ => return None,
    };
    Some((day, std::str::from_utf8(id).ok()?))
}

/// The due index entry of milestone `milestone` of initiative `id`, due by
/// the end of day `day`.
pub(crate) fn due_entry(day: i32, id: &str, milestone: &str) -> Vec<u8> {
    let mut k = due_prefix(day);
    k.extend_from_slice(id.as_bytes());
    k.push(0);
    k.extend_from_slice(milestone.as_bytes());
    k
}

/// The day, initiative id and milestone id of a due index entry.
pub(crate) fn parse_due(key: &[u8]) -> Option<(i32, &str, &str)> {
    let rest = key.strip_prefix(&[BY_DUE])?;
    let (day, rest) = rest.split_first_chunk::<4>()?;
    let day = (u32::from_be_bytes(*day) ^ 0x8000_0000) as i32;
    let nul = rest.iter().position(|b| *b == 0)?;
    let id = std::str::from_utf8(&rest[..nul]).ok()?;
    let milestone = std::str::from_utf8(&rest[nul + 1..]).ok()?;
    Some((day, id, milestone))
}

/// The prefix of the document index entries of the document titled
/// `title`.
pub(crate) fn document_prefix(title: &str) -> Vec<u8> {
    use sha2::Digest;
    let mut k = vec![BY_DOCUMENT];
    k.extend_from_slice(&sha2::Sha256::digest(title.as_bytes())[..DOCUMENT_DIGEST]);
    k
}

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
    for s in init.sources.iter().filter(|s| !s.document.is_empty()) {
        keys.insert(entry(document_prefix(&s.document), id));
    }
    if let Some(end) = init.planned_end.as_ref().and_then(dates::period_end) {
        keys.insert(entry(day_prefix(BY_END, dates::day_key(end)), id));
    }
    for m in &init.milestones {
        if let Some(end) = m.due.as_ref().and_then(dates::period_end) {
            keys.insert(due_entry(dates::day_key(end), id, &m.id));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_entries_sort_by_day_then_id_then_milestone_and_read_back() {
        let keys = [
            due_entry(i32::MIN, "a", "m"),
            due_entry(-1, "a", "m"),
            due_entry(0, "a", "m"),
            due_entry(2_460_000, "a", "m"),
            due_entry(2_460_000, "a", "n"),
            due_entry(2_460_000, "a-b", "a"),
            due_entry(2_460_001, "a", "a"),
            due_entry(i32::MAX, "z", "z"),
        ];
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert!(due_prefix(2_460_000) < keys[3] && keys[5] < due_prefix(2_460_001));
        assert_eq!(parse_due(&keys[5]), Some((2_460_000, "a-b", "a")));
        assert_eq!(parse_due(&keys[0]), Some((i32::MIN, "a", "m")));
        assert_eq!(parse_due(b"t\0topic"), None);
    }

    #[test]
    fn day_entries_of_both_kinds_read_back_their_day_and_id() {
        let end = entry(day_prefix(BY_END, -5), "a-b");
        assert_eq!(parse_day_entry(&end), Some((-5, "a-b")));
        let due = due_entry(2_460_000, "a-b", "m");
        assert_eq!(parse_day_entry(&due), Some((2_460_000, "a-b")));
        assert!(day_prefix(BY_END, -5) < end && end < day_prefix(BY_END, -4));
        assert_eq!(parse_day_entry(b"t\0topic"), None);
        assert_eq!(parse_day_entry(&[BY_DUE, 0, 0, 0, 1, b'a']), None);
    }
}
