//! The protobuf codec of every generated cet.v1 client and server: prost's,
//! except that a message that cannot be decoded is INVALID_ARGUMENT (the
//! sender's mistake) rather than tonic's INTERNAL.

use tonic::codec::{BufferSettings, DecodeBuf, Decoder};
use tonic::Status;
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// prost's codec with decoding failures reported as INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct Codec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Self(ProstCodec::default())
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = CheckedDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        CheckedDecoder(self.0.decoder())
    }
}

/// The status of a message that is not a valid encoding of `U`: the
/// sender's mistake, INVALID_ARGUMENT, naming the message type and `why`.
pub fn undecodable<U>(why: &str) -> Status {
    undecodable_as(type_name::<U>(), why)
}

/// The proto name of the message type `U` (e.g. `GetInitiativeRequest`).
fn type_name<U>() -> &'static str {
    std::any::type_name::<U>()
        .rsplit("::")
        .next()
        .unwrap_or("it")
}

/// Room for everything but a record in a request, generously: the largest
/// valid request without a record is far smaller.
pub const SMALL_REQUEST_BYTES: usize = 64 * 1024;

/// The largest encoding a valid request of the type called `name` can have
/// (`None`: not a request, no limit but tonic's): a request that carries a
/// record (create, update) at most the record cap and [`SMALL_REQUEST_BYTES`];
/// a progress update or a milestone at most four times that; any other
/// request [`SMALL_REQUEST_BYTES`]. A larger one is refused before it is
/// decoded: decoding a few megabytes of values only to refuse them would
/// cost the server tens of milliseconds of work a caller chose.
pub fn max_request_bytes(name: &str) -> Option<usize> {
    match name {
        "CreateInitiativeRequest" | "UpdateInitiativeRequest" => {
            Some(crate::rules::MAX_RECORD_BYTES + SMALL_REQUEST_BYTES)
        }
        "AddProgressUpdateRequest" | "UpdateMilestoneRequest" => Some(4 * SMALL_REQUEST_BYTES),
        n if n.ends_with("Request") => Some(SMALL_REQUEST_BYTES),
        _ => None,
    }
}

/// The status of a message that is not a valid encoding of the message type
/// called `name` (e.g. `GetInitiativeRequest`), as [`undecodable`].
pub fn undecodable_as(name: &str, why: &str) -> Status {
    Status::invalid_argument(format!(
        "the message is not a valid protobuf encoding of {name}: {why}"
    ))
}

/// prost's decoder; a message it cannot decode is INVALID_ARGUMENT.
#[derive(Debug)]
pub struct CheckedDecoder<U>(ProstDecoder<U>);

impl<U: prost::Message + Default> Decoder for CheckedDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let name = type_name::<U>();
        if let Some(most) = max_request_bytes(name) {
            let size = prost::bytes::Buf::remaining(buf);
            if size > most {
                return Err(Status::invalid_argument(format!(
                    "the {name} is {size} bytes; a valid one is at most {most} bytes"
                )));
            }
        }
        self.0
            .decode(buf)
            .map_err(|s| undecodable::<U>(s.message()))
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
