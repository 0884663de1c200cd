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
    undecodable_as(
        std::any::type_name::<U>()
            .rsplit("::")
            .next()
            .unwrap_or("it"),
        why,
    )
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
        self.0
            .decode(buf)
            .map_err(|s| undecodable::<U>(s.message()))
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
