//! A record as the records tree keeps it (schema version 7): a header of
//! [`HEADER_LEN`] bytes, then the record's protobuf encoding, which reads
//! pass on as it is. The header holds the record's [`Spans`] (its marking,
//! the first day it exists and the first day it is as kept), so that a read
//! decides who may see a record and what it is on a day without reading
//! its encoding.
//!
//! Layout: byte 0 is [`MARK`] (0: an encoding kept by an earlier version
//! never starts with it, as protobuf has no field number 0, so the two are
//! told apart), byte 1 the flags (bit 0: restricted), bytes 2..6 the first
//! day it exists and 6..10 the first day it is as kept, each a big-endian
//! `dates::day_key`.

use cetrack_contract::error::{Error, Result};
use cetrack_contract::proto::Initiative;
use cetrack_contract::valid_time::{Facets, Spans};
use prost::bytes::{Buf, Bytes};
use prost::Message;

/// The bytes before the encoding.
pub(crate) const HEADER_LEN: usize = 10;
/// The first byte of a kept record with a header.
const MARK: u8 = 0;
/// The flag of a record marked RESTRICTED.
const RESTRICTED: u8 = 1;

/// `init` as the records tree keeps it.
pub(crate) fn encode(init: &Initiative) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + init.encoded_len());
    out.resize(HEADER_LEN, 0);
    // Writing to a Vec does not fail (it grows).
    let _ = init.encode(&mut out);
    let spans = spans_of(&out[HEADER_LEN..]).unwrap_or(Spans {
        // Not reached: the facets of an encoding just made always decode.
        restricted: cetrack_contract::auth::is_restricted(init),
        exists_from: i32::MIN,
        kept_from: i32::MAX,
    });
    write_header(&mut out[..HEADER_LEN], &spans);
    out
}

/// `encoding` (a record as an earlier version kept it) with its header.
pub(crate) fn with_header(encoding: &[u8]) -> Result<Vec<u8>> {
    let spans = spans_of(encoding)?;
    let mut out = vec![0; HEADER_LEN];
    write_header(&mut out, &spans);
    out.extend_from_slice(encoding);
    Ok(out)
}

/// Whether `value` has its header (a record an earlier version kept has
/// not, until the migration gives it one).
pub(crate) fn has_header(value: &[u8]) -> bool {
    value.first() == Some(&MARK)
}

/// The spans and the encoding of a kept record; a record without its
/// header (kept by an earlier version: a store being migrated, or a
/// backup's) has its spans read from its encoding.
pub(crate) fn split(value: &[u8]) -> Result<(Spans, &[u8])> {
    if !has_header(value) {
        return Ok((spans_of(value)?, value));
    }
    let (header, encoding) = value
        .split_at_checked(HEADER_LEN)
        .ok_or_else(|| Error::Corrupt("a kept record shorter than its header".into()))?;
    let day = |at: usize| {
        header
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, i32::from_be_bytes)
    };
    let spans = Spans {
        restricted: header[1] & RESTRICTED != 0,
        exists_from: day(2),
        kept_from: day(6),
    };
    Ok((spans, encoding))
}

/// The encoding of a kept record.
pub(crate) fn encoding(value: &[u8]) -> Result<&[u8]> {
    if has_header(value) {
        value
            .get(HEADER_LEN..)
            .ok_or_else(|| Error::Corrupt("a kept record shorter than its header".into()))
    } else {
        Ok(value)
    }
}

/// The encoding of the kept record `value`, as a `Bytes` over `value`
/// itself (no copy): what a read passes on as stored.
pub(crate) fn encoding_bytes<T>(value: T) -> Result<Bytes>
where
    T: AsRef<[u8]> + Send + 'static,
{
    let header = value.as_ref().len() - encoding(value.as_ref())?.len();
    let mut encoded = Bytes::from_owner(value);
    encoded.advance(header);
    Ok(encoded)
}

/// A kept record, decoded, once its spans are checked against its
/// encoding (a header that disagrees, say one that calls a restricted
/// record public, is damage: `Corrupt`).
pub(crate) fn checked(value: &[u8]) -> Result<Initiative> {
    let (spans, encoding) = split(value)?;
    if spans != spans_of(encoding)? {
        return Err(Error::Corrupt(format!(
            "the spans kept with a record ({spans:?}) disagree with its encoding"
        )));
    }
    record(value)
}

/// A kept record, decoded.
pub(crate) fn record(value: &[u8]) -> Result<Initiative> {
    Initiative::decode(encoding(value)?).map_err(|e| Error::Corrupt(e.to_string()))
}

fn spans_of(encoding: &[u8]) -> Result<Spans> {
    Facets::decode(encoding)
        .map(|f| Spans::from(&f))
        .map_err(|e| Error::Corrupt(e.to_string()))
}

fn write_header(header: &mut [u8], spans: &Spans) {
    header[0] = MARK;
    header[1] = if spans.restricted { RESTRICTED } else { 0 };
    header[2..6].copy_from_slice(&spans.exists_from.to_be_bytes());
    header[6..10].copy_from_slice(&spans.kept_from.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use cetrack_contract::proto::{Sensitivity, StatusChange};

    #[test]
    fn a_kept_record_reads_back_with_its_spans_with_or_without_its_header() {
        let mut init = Initiative {
            name: "domains/biotech/initiatives/a".into(),
            title: "A".into(),
            status: 2,
            status_date: Some(cetrack_contract::dates::day(2024, 3, 1)),
            status_history: vec![StatusChange {
                status: 2,
                effective: Some(cetrack_contract::dates::day(2024, 3, 1)),
                record_time: None,
            }],
            ..Default::default()
        };
        for restricted in [false, true] {
            if restricted {
                init.sensitivity = Sensitivity::Restricted as i32;
            }
            let plain = init.encode_to_vec();
            let expected = Spans::from(&Facets::decode(plain.as_slice()).unwrap());
            assert_eq!(expected.restricted, restricted);
            let kept = encode(&init);
            assert!(has_header(&kept) && !has_header(&plain));
            assert_eq!(with_header(&plain).unwrap(), kept);
            for value in [&kept, &plain] {
                let (spans, encoded) = split(value).unwrap();
                assert_eq!(spans, expected);
                assert_eq!(encoded, plain.as_slice());
                assert_eq!(encoding(value).unwrap(), plain.as_slice());
                assert_eq!(encoding_bytes(value.clone()).unwrap(), plain.as_slice());
                assert_eq!(record(value).unwrap(), init);
            }
        }
        let day = cetrack_contract::dates::day_key(time::macros::date!(2024 - 03 - 01));
        assert_eq!(split(&encode(&init)).unwrap().0.exists_from, day);
        assert!(split(&[MARK, 0, 0]).is_err(), "a header cut short");
        assert_eq!(checked(&encode(&init)).unwrap(), init);
        let mut damaged = encode(&init);
        damaged[1] ^= RESTRICTED;
        assert!(
            checked(&damaged).is_err(),
            "a restricted record called public"
        );
        let mut damaged = encode(&init);
        damaged[9] ^= 1;
        assert!(checked(&damaged).is_err(), "another first day as kept");
    }
}
