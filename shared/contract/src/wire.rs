//! Answers a server sends already encoded: wire-compatible with the message
//! of the same name in [`crate::proto`] (same fields, same tags), but
//! carrying records as the bytes the store keeps, so that a server passes
//! them on without decoding and encoding each again. Clients decode these
//! answers as the generated messages; only [`crate::served`] (the servers)
//! speaks in these types.

use prost::bytes::Bytes;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto;
    use prost::Message;

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
