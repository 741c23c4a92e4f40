//! How message bodies are turned into bytes and back.

use bytes::{BufMut, BytesMut};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// Why a body could not be encoded or decoded: the codec's own error, kept as the source.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct BodyError(Box<dyn std::error::Error + Send + Sync>);

impl From<serde_json::Error> for BodyError {
    fn from(e: serde_json::Error) -> BodyError {
        BodyError(Box::new(e))
    }
}

/// Turns values into frame bodies and back.
///
/// The handshake names the codec a connection uses, so a faster encoding can be added without
/// changing the framing. Today there is one: [`JsonCodec`].
pub trait BodyCodec: Default + Send + Sync + 'static {
    /// The name carried in the handshake (`"json"`).
    const NAME: &'static str;

    /// Appends the encoding of `value` to `buf`.
    fn encode<T: Serialize + ?Sized>(&self, value: &T, buf: &mut BytesMut) -> Result<(), BodyError>;

    /// Decodes an owned value from `bytes`.
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BodyError>;

    /// Decodes a value that may borrow from `bytes` (no copies of strings or raw bodies).
    fn decode_borrowed<'a, T: Deserialize<'a>>(&self, bytes: &'a [u8]) -> Result<T, BodyError>;
}

/// JSON bodies, via `serde_json`.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonCodec;

impl BodyCodec for JsonCodec {
    const NAME: &'static str = "json";

    fn encode<T: Serialize + ?Sized>(&self, value: &T, buf: &mut BytesMut) -> Result<(), BodyError> {
        serde_json::to_writer(buf.writer(), value).map_err(BodyError::from)
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BodyError> {
        serde_json::from_slice(bytes).map_err(BodyError::from)
    }

    fn decode_borrowed<'a, T: Deserialize<'a>>(&self, bytes: &'a [u8]) -> Result<T, BodyError> {
        serde_json::from_slice(bytes).map_err(BodyError::from)
    }
}
