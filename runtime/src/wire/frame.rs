//! Length-prefixed frames carrying one encoded message each.

use super::body::{BodyCodec, JsonCodec};
use bytes::{BufMut, BytesMut};
use serde::{de::DeserializeOwned, Serialize};
use std::marker::PhantomData;
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

/// Why a connection's frames could not be read or written. Any of these closes that one
/// connection; none of them is fatal to the process that saw it.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A frame announced a length over the connection's maximum.
    #[error("frame too large (over {max} bytes)")]
    TooLarge {
        /// The connection's maximum frame size.
        max: usize,
    },
    /// A frame's body did not decode as any message this side knows (or a message could not
    /// be encoded).
    #[error("malformed frame: {0}")]
    Malformed(#[source] super::body::BodyError),
    /// The peer broke the protocol in some other way (wrong handshake, unexpected message).
    #[error("protocol: {0}")]
    Protocol(String),
}

/// A tokio-util codec for frames that each carry one message: writes `Out`, reads `In`.
///
/// The framing is a 4-byte big-endian length followed by the body; frames over `max` bytes are
/// refused with [`WireError::TooLarge`] before any of their body is buffered.
pub struct MessageCodec<Out, In, C = JsonCodec> {
    frames: LengthDelimitedCodec,
    max: usize,
    body: C,
    _types: PhantomData<fn(Out) -> In>,
}

impl<Out, In, C: BodyCodec> MessageCodec<Out, In, C> {
    /// A codec refusing frames over `max` bytes.
    pub fn new(max: usize) -> Self {
        MessageCodec {
            frames: LengthDelimitedCodec::builder().max_frame_length(max).new_codec(),
            max,
            body: C::default(),
            _types: PhantomData,
        }
    }
}

impl<Out, In: DeserializeOwned, C: BodyCodec> Decoder for MessageCodec<Out, In, C> {
    type Item = In;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, WireError> {
        let frame = match self.frames.decode(src) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(None),
            Err(e) => return Err(frame_error(e, self.max)),
        };
        self.body.decode(&frame).map(Some).map_err(WireError::Malformed)
    }
}

impl<Out: Serialize, In, C: BodyCodec> Encoder<Out> for MessageCodec<Out, In, C> {
    type Error = WireError;

    fn encode(&mut self, item: Out, dst: &mut BytesMut) -> Result<(), WireError> {
        let start = dst.len();
        dst.put_u32(0);
        self.body.encode(&item, dst).map_err(WireError::Malformed)?;
        finish_frame(dst, start, self.max)
    }
}

/// Patches the 4-byte length of the frame that begins at `start`, now that its body follows.
pub(crate) fn finish_frame(dst: &mut BytesMut, start: usize, max: usize) -> Result<(), WireError> {
    let len = dst.len() - start - 4;
    if len > max {
        dst.truncate(start);
        return Err(WireError::TooLarge { max });
    }
    dst[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Turns the length codec's error into ours: an oversized frame, or the socket's own error.
pub(crate) fn frame_error(e: std::io::Error, max: usize) -> WireError {
    if e.get_ref()
        .is_some_and(|inner| inner.is::<tokio_util::codec::LengthDelimitedCodecError>())
    {
        WireError::TooLarge { max }
    } else {
        WireError::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Codec = MessageCodec<Vec<u32>, Vec<u32>>;

    #[test]
    fn round_trips_a_message() {
        let mut codec = Codec::new(1024);
        let mut buf = BytesMut::new();
        codec.encode(vec![1, 2, 3], &mut buf).unwrap();
        assert_eq!(&buf[..4], &7u32.to_be_bytes());
        assert_eq!(&buf[4..], b"[1,2,3]");
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(vec![1, 2, 3]));
    }

    #[test]
    fn refuses_oversized_frames_from_the_header_alone() {
        let mut codec = Codec::new(16);
        let mut buf = BytesMut::from(&100u32.to_be_bytes()[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(WireError::TooLarge { max: 16 })
        ));
    }

    #[test]
    fn refuses_malformed_bodies() {
        let mut codec = Codec::new(16);
        let mut buf = BytesMut::from(&3u32.to_be_bytes()[..]);
        buf.extend_from_slice(b"{{{");
        assert!(matches!(codec.decode(&mut buf), Err(WireError::Malformed(_))));
    }

    #[test]
    fn refuses_to_write_oversized_frames() {
        let mut codec = Codec::new(4);
        let mut buf = BytesMut::new();
        assert!(matches!(
            codec.encode(vec![1, 2, 3], &mut buf),
            Err(WireError::TooLarge { .. })
        ));
        assert!(buf.is_empty());
    }
}
