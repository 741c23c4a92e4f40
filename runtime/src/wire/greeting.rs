//! The greeting exchange: the one way every connection (session, directory link, inspection)
//! trades its first frames.
//!
//! The greeting is one frame, `{"Hello":{...}}`, in both directions. The side that connected
//! sends first; the side that accepted reads and checks it, then answers. Exactly the
//! greeting frame is read, nothing beyond it, so whatever follows is left for the
//! connection's own framing.

use super::hello::{Hello, HelloError};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest greeting accepted, in bytes: room for every field at its longest (a readable
/// name is at most [`MAX_PEER_NAME`](super::MAX_PEER_NAME) bytes), and no more.
pub const MAX_GREETING: usize = 4 * 1024;

/// Why a greeting exchange failed. Any of these closes that one connection.
#[derive(Debug, thiserror::Error)]
pub enum GreetingError {
    /// The socket failed, or closed during the greeting.
    #[error("i/o during the greeting: {0}")]
    Io(#[from] std::io::Error),
    /// The first frame announced more than [`MAX_GREETING`] bytes.
    #[error("a greeting of {len} bytes (at most {MAX_GREETING})")]
    TooLarge {
        /// The length the frame announced.
        len: usize,
    },
    /// The first frame is not a greeting.
    #[error("the first frame is not a greeting: {0}")]
    Malformed(#[source] serde_json::Error),
    /// A greeting this side does not accept (another protocol, version or codec).
    #[error(transparent)]
    Refused(#[from] HelloError),
}

/// Which end of the connection this is, which says who greets first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// This side connected: it greets, then reads the answer.
    Connecting,
    /// This side accepted: it reads and checks the peer's greeting, then answers.
    Accepting,
}

/// The first frame's body on every connection, whatever protocol follows.
#[derive(Serialize, Deserialize)]
enum First {
    Hello(Hello),
}

/// Trades greetings over `io` as `side`; returns the peer's, checked. The caller bounds it
/// in time (the whole handshake has one deadline: [`super::opening`]).
pub(crate) async fn exchange<S>(io: &mut S, ours: &Hello, side: Side) -> Result<Hello, GreetingError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if side == Side::Connecting {
        write(io, ours).await?;
    }
    let theirs = read(io).await?;
    if side == Side::Accepting {
        write(io, ours).await?;
    }
    Ok(theirs)
}

/// A greeting frame's body: `{"Hello":{...}}`.
pub(crate) fn body(hello: &Hello) -> Vec<u8> {
    serde_json::to_vec(&First::Hello(hello.clone())).expect("a greeting encodes")
}

async fn write<W: AsyncWrite + Unpin>(io: &mut W, hello: &Hello) -> std::io::Result<()> {
    let body = body(hello);
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    io.write_all(&frame).await?;
    io.flush().await
}

/// Reads exactly one greeting frame, refusing one over [`MAX_GREETING`] from its length alone.
async fn read<R: AsyncRead + Unpin>(io: &mut R) -> Result<Hello, GreetingError> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_GREETING {
        return Err(GreetingError::TooLarge { len });
    }
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await?;
    decode(&body)
}

/// Decodes and checks one greeting frame's body: what [`exchange`] does with the frame it reads
/// (and what the fuzz target feeds).
pub(crate) fn decode(body: &[u8]) -> Result<Hello, GreetingError> {
    let First::Hello(hello) = serde_json::from_slice(body).map_err(GreetingError::Malformed)?;
    hello.check()?;
    Ok(hello)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ProcessId;
    use crate::scope::Scope;
    use crate::wire::PeerKind;

    fn hello(name: &str) -> Hello {
        Hello::new(PeerKind::Process, ProcessId::random(), Scope::Process, name)
    }

    #[tokio::test]
    async fn both_sides_learn_the_other_and_nothing_more_is_read() {
        let (mut a, mut b) = tokio::io::duplex(64 * 1024);
        let (ha, hb) = (hello("a"), hello("b"));
        let accepting = async {
            let theirs = exchange(&mut b, &hb, Side::Accepting).await;
            let mut after = [0u8; 5];
            b.read_exact(&mut after).await.unwrap();
            (theirs, after)
        };
        let connecting = async {
            let theirs = exchange(&mut a, &ha, Side::Connecting).await;
            a.write_all(b"after").await.unwrap();
            theirs
        };
        let (got_b, (got_a, after)) = tokio::join!(connecting, accepting);
        assert_eq!(got_b.unwrap(), hb);
        assert_eq!(got_a.unwrap(), ha);
        assert_eq!(
            &after, b"after",
            "the frame after the greeting is left for the connection"
        );
    }

    #[tokio::test]
    async fn an_oversized_greeting_is_refused_from_its_length() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        a.write_all(&(1u32 << 20).to_be_bytes()).await.unwrap();
        let err = exchange(&mut b, &hello("b"), Side::Accepting).await.unwrap_err();
        assert!(
            matches!(err, GreetingError::TooLarge { len } if len == 1 << 20),
            "{err}"
        );
    }

    #[test]
    fn other_first_frames_are_not_greetings() {
        for body in [&br#"{"Heartbeat":null}"#[..], b"\"Heartbeat\"", b"{}", b"[1]"] {
            assert!(matches!(decode(body), Err(GreetingError::Malformed(_))));
        }
        let mut h = hello("x");
        h.version += 1;
        let body = serde_json::to_vec(&First::Hello(h)).unwrap();
        assert!(matches!(
            decode(&body),
            Err(GreetingError::Refused(HelloError::Version(_)))
        ));
    }

    #[test]
    fn the_longest_greeting_fits_the_bound() {
        // A control character is written as six bytes (`\u0001`): the longest a name can be.
        let mut h = hello(&"\u{1}".repeat(crate::wire::MAX_PEER_NAME));
        assert_eq!(h.name.len(), crate::wire::MAX_PEER_NAME);
        h.listen = Some("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535".parse().unwrap());
        let body = serde_json::to_vec(&First::Hello(h.clone())).unwrap();
        assert!(body.len() <= MAX_GREETING, "{} bytes", body.len());
        assert_eq!(decode(&body).unwrap(), h);
    }
}
