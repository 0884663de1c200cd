//! Answers a server sends already encoded: wire-compatible with the message
//! of the same name in [`crate::proto`] (same fields, same tags), but
//! carrying records as the bytes the store keeps (and the gateway's overview
//! as the bytes it keeps), so that a server passes them on without decoding
//! and encoding each again. Clients decode these
//! answers as the generated messages; only [`crate::served`] (the servers)
//! speaks in these types.

use prost::bytes::{Buf, BufMut, Bytes};
use prost::encoding::{DecodeContext, WireType};
use prost::{DecodeError, Message};

use crate::proto;

/// `cet.v1.Initiative` as its encoding: what a server answers with a
/// record it keeps (passed on as stored) or one it has (encoded once).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Initiative(Bytes);

impl Initiative {
    /// The record whose encoding is `encoded` (a valid encoding of
    /// `cet.v1.Initiative`, as the store keeps it).
    pub fn encoded(encoded: Bytes) -> Self {
        Self(encoded)
    }

    /// The encoding.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }
}

impl From<&proto::Initiative> for Initiative {
    fn from(record: &proto::Initiative) -> Self {
        Self(Bytes::from(record.encode_to_vec()))
    }
}

impl Message for Initiative {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    /// Read as the generated message, kept as its encoding (a server only
    /// sends these; reading one is for tests and tools).
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        let mut record = proto::Initiative::decode(self.0.as_ref())?;
        record.merge_field(tag, wire_type, buf, ctx)?;
        self.0 = Bytes::from(record.encode_to_vec());
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0 = Bytes::new();
    }
}

/// `cet.v1.ListInitiativesResponse` with each initiative as its encoding.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListInitiativesResponse {
    /// The page of initiatives, each a valid encoding of
    /// `cet.v1.Initiative`, ordered by initiative id.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub initiatives: Vec<Bytes>,
    /// Token of the next page; empty when this is the last page.
    #[prost(string, tag = "2")]
    pub next_page_token: String,
}

/// `cet.v1.Overview` as its encoding: what the gateway answers with an
/// overview it keeps encoded (everything but its generation time), followed
/// by the generation time of this answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overview {
    /// A valid encoding of `cet.v1.Overview` without `generate_time`.
    rest: Bytes,
    /// `generate_time` (tag 4).
    generate_time: Option<pbjson_types::Timestamp>,
}

/// The tag of `cet.v1.Overview.generate_time`.
const OVERVIEW_GENERATE_TIME: u32 = 4;

impl Overview {
    /// The overview whose encoding without `generate_time` is `rest`,
    /// generated at `generate_time`.
    pub fn encoded(rest: Bytes, generate_time: Option<pbjson_types::Timestamp>) -> Self {
        Self {
            rest,
            generate_time,
        }
    }

    /// The encoding without `generate_time`.
    pub fn rest(&self) -> &Bytes {
        &self.rest
    }
}

/// The overview sent as its encoding (without its time) and its time.
impl From<proto::Overview> for Overview {
    fn from(mut overview: proto::Overview) -> Self {
        let generate_time = overview.generate_time.take();
        Self::encoded(Bytes::from(overview.encode_to_vec()), generate_time)
    }
}

impl Message for Overview {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.rest);
        if let Some(t) = &self.generate_time {
            prost::encoding::message::encode(OVERVIEW_GENERATE_TIME, t, buf);
        }
    }

    /// Read as the generated message, kept as its encoding (the gateway
    /// only sends these; reading one is for tests and tools).
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        let mut overview = proto::Overview::decode(self.rest.as_ref())?;
        overview.generate_time = self.generate_time;
        overview.merge_field(tag, wire_type, buf, ctx)?;
        *self = Self::from(overview);
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        self.rest.len()
            + self.generate_time.as_ref().map_or(0, |t| {
                prost::encoding::message::encoded_len(OVERVIEW_GENERATE_TIME, t)
            })
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An overview sent as its kept encoding and this answer's time is read
    /// as the generated message, time included, and its length is the
    /// length sent.
    #[test]
    fn an_encoded_overview_reads_as_the_generated_message() {
        let overview = proto::Overview {
            domains: vec![proto::DomainOverview {
                domain: 3,
                available: true,
                summary: Some(proto::DomainSummary {
                    initiative_count: 7,
                    ..Default::default()
                }),
                ..Default::default()
            }],
            totals: Some(proto::OverviewTotals {
                initiative_count: 7,
                complete: true,
                ..Default::default()
            }),
            as_of: Some(proto::CalendarDate {
                year: 2026,
                month: 12,
                day: 3,
            }),
            generate_time: Some(pbjson_types::Timestamp {
                seconds: 1_796_300_000,
                nanos: 5,
            }),
            ..Default::default()
        };
        let later = pbjson_types::Timestamp {
            seconds: 1_796_300_001,
            nanos: 0,
        };
        let kept = Overview::from(overview.clone()).rest().clone();
        let sent = Overview::encoded(kept, Some(later));
        let bytes = sent.encode_to_vec();
        assert_eq!(sent.encoded_len(), bytes.len());
        let read = proto::Overview::decode(bytes.as_slice()).unwrap();
        assert_eq!(
            read,
            proto::Overview {
                generate_time: Some(later),
                ..overview.clone()
            }
        );
        let whole = Overview::from(overview.clone());
        assert_eq!(
            proto::Overview::decode(whole.encode_to_vec().as_slice()).unwrap(),
            overview
        );
        assert_eq!(Overview::decode(bytes.as_slice()).unwrap(), sent);
    }

    /// A record sent as its encoding is read as the generated message, and
    /// one read back is the same encoding.
    #[test]
    fn an_encoded_record_reads_as_the_generated_message() {
        let record = proto::Initiative {
            name: "domains/ai/initiatives/a".into(),
            title: "A".into(),
            topics: vec!["x".into(), "y".into()],
            revision: 3,
            ..Default::default()
        };
        let sent = Initiative::from(&record);
        assert_eq!(sent.encoded_len(), record.encoded_len());
        let bytes = sent.encode_to_vec();
        assert_eq!(proto::Initiative::decode(bytes.as_slice()).unwrap(), record);
        let read = Initiative::decode(bytes.as_slice()).unwrap();
        assert_eq!(read.bytes().as_ref(), record.encode_to_vec().as_slice());
        assert_eq!(Initiative::encoded(Bytes::from(bytes.clone())), read);
    }

    /// A client reads the encoded answer as the generated message, record
    /// for record.
    #[test]
    fn an_encoded_list_decodes_as_the_generated_message() {
        let records = vec![
            proto::Initiative {
                name: "domains/ai/initiatives/a".into(),
                title: "A".into(),
                topics: vec!["x".into()],
                ..Default::default()
            },
            proto::Initiative::default(),
            proto::Initiative {
                name: "domains/ai/initiatives/b".into(),
                revision: 7,
                ..Default::default()
            },
        ];
        let sent = ListInitiativesResponse {
            initiatives: records
                .iter()
                .map(|r| Bytes::from(r.encode_to_vec()))
                .collect(),
            next_page_token: "next".into(),
        };
        let read = proto::ListInitiativesResponse::decode(sent.encode_to_vec().as_slice())
            .expect("a valid encoding");
        assert_eq!(read.initiatives, records);
        assert_eq!(read.next_page_token, "next");
        let expected = proto::ListInitiativesResponse {
            initiatives: records,
            next_page_token: "next".into(),
        };
        assert_eq!(sent.encode_to_vec(), expected.encode_to_vec());
    }
}
