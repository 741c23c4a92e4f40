//! How message bodies are turned into bytes and back.

use bytes::{BufMut, BytesMut};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// Turns values into frame bodies and back.
///
/// The handshake names the codec a connection uses, so a faster encoding can be added without
/// changing the framing. Today there is one: [`JsonCodec`].
pub trait BodyCodec: Default + Send + Sync + 'static {
    /// The name carried in the handshake (`"json"`).
    const NAME: &'static str;

    /// Appends the encoding of `value` to `buf`.
    fn encode<T: Serialize + ?Sized>(&self, value: &T, buf: &mut BytesMut) -> Result<(), String>;

    /// Decodes an owned value from `bytes`.
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, String>;

    /// Decodes a value that may borrow from `bytes` (no copies of strings or raw bodies).
    fn decode_borrowed<'a, T: Deserialize<'a>>(&self, bytes: &'a [u8]) -> Result<T, String>;
}

/// JSON bodies, via `serde_json`.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonCodec;

impl BodyCodec for JsonCodec {
    const NAME: &'static str = "json";

    fn encode<T: Serialize + ?Sized>(&self, value: &T, buf: &mut BytesMut) -> Result<(), String> {
        serde_json::to_writer(buf.writer(), value).map_err(|e| e.to_string())
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    fn decode_borrowed<'a, T: Deserialize<'a>>(&self, bytes: &'a [u8]) -> Result<T, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}
