//! Encrypted, authenticated connections for LAN scope: the original's `encrypted-directory`.
//!
//! When the operator gives a LAN a secret (a file holding 32 random bytes as 64 hex digits, made
//! with `layer-cake secret FILE` or `openssl rand -hex 32`, readable by its owner only), every
//! connection that crosses hosts runs the Noise handshake
//! [`Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s`](NOISE) before anything else: lan-cake's children
//! (host-cakes), and sessions to LAN publications. Both sides prove they hold the secret (a peer
//! without it fails the first message and is refused, with a logged reason); each connection
//! gets fresh keys from an ephemeral Diffie-Hellman exchange (forward secrecy); every byte after
//! the handshake is encrypted and authenticated (ChaCha20-Poly1305), in messages of at most
//! 65,535 bytes, each a 2-byte big-endian length then the ciphertext. There is no default or
//! built-in secret: without a file, nothing is encrypted. See `docs/security.md`.

use bytes::{Buf, BufMut, BytesMut};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The Noise protocol every encrypted connection runs.
pub const NOISE: &str = "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s";
/// Bound into the handshake, so a layer-cake key is good for layer-cake connections only.
const PROLOGUE: &[u8] = b"layer-cake/1";
/// The largest Noise message, and the authentication tag each carries.
const MAX_MESSAGE: usize = 65_535;
const TAG: usize = 16;
/// The most plaintext one message carries.
const MAX_PLAIN: usize = MAX_MESSAGE - TAG;
/// Both handshake messages of `NNpsk0` with an empty payload are 48 bytes (an ephemeral key
/// and a tag); anything longer is refused before it is read.
const MAX_HANDSHAKE_MESSAGE: usize = 64;
/// Encrypted bytes waiting to be written, at most, before a write waits for the socket.
const WRITE_BOUND: usize = 256 * 1024;

mod secret;
pub use secret::{named, HexError, Secret, SecretError};

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The connection failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The peer does not hold the same secret, or does not speak Noise at all.
    #[error("refused: the peer does not hold this LAN's secret ({0})")]
    Refused(String),
}

fn noise(secret: &Secret) -> snow::Builder<'_> {
    snow::Builder::new(NOISE.parse().expect("a valid Noise pattern"))
        .prologue(PROLOGUE)
        .expect("a prologue is accepted")
        .psk(0, secret.key())
        .expect("a 32-byte key at position 0")
}

async fn write_message<S: AsyncWrite + Unpin>(io: &mut S, message: &[u8]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(2 + message.len());
    frame.extend_from_slice(&(message.len() as u16).to_be_bytes());
    frame.extend_from_slice(message);
    io.write_all(&frame).await?;
    io.flush().await
}

async fn read_message<S: AsyncRead + Unpin>(io: &mut S) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    io.read_exact(&mut len).await?;
    let len = u16::from_be_bytes(len) as usize;
    if len > MAX_HANDSHAKE_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a handshake message of {len} bytes (at most {MAX_HANDSHAKE_MESSAGE})"),
        ));
    }
    let mut message = vec![0u8; len];
    io.read_exact(&mut message).await?;
    Ok(message)
}

/// The connecting side's handshake over `io` (the caller bounds it in time).
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    secret: &Secret,
) -> Result<SecureStream<S>, HandshakeError> {
    let refused = |e: snow::Error| HandshakeError::Refused(e.to_string());
    let mut state = noise(secret).build_initiator().map_err(refused)?;
    let mut buf = [0u8; MAX_HANDSHAKE_MESSAGE];
    let n = state.write_message(&[], &mut buf).map_err(refused)?;
    write_message(&mut io, &buf[..n]).await?;
    let reply = read_message(&mut io).await?;
    state.read_message(&reply, &mut buf).map_err(refused)?;
    Ok(SecureStream::new(
        io,
        state.into_transport_mode().map_err(refused)?,
    ))
}

/// The accepting side's handshake over `io` (the caller bounds it in time).
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    secret: &Secret,
) -> Result<SecureStream<S>, HandshakeError> {
    let refused = |e: snow::Error| HandshakeError::Refused(e.to_string());
    let mut state = noise(secret).build_responder().map_err(refused)?;
    let mut buf = [0u8; MAX_HANDSHAKE_MESSAGE];
    let first = read_message(&mut io).await?;
    state.read_message(&first, &mut buf).map_err(refused)?;
    let n = state.write_message(&[], &mut buf).map_err(refused)?;
    write_message(&mut io, &buf[..n]).await?;
    Ok(SecureStream::new(
        io,
        state.into_transport_mode().map_err(refused)?,
    ))
}

/// A connection after the handshake: reads decrypt, writes encrypt. Writes are buffered (up
/// to 256 KiB of ciphertext) and go out on `flush`, as with any buffered writer.
pub struct SecureStream<S> {
    io: S,
    noise: snow::TransportState,
    /// Ciphertext read, not yet a whole message.
    rcipher: BytesMut,
    /// Plaintext decrypted, not yet read.
    rplain: BytesMut,
    /// Ciphertext to write.
    wcipher: BytesMut,
}

impl<S> SecureStream<S> {
    fn new(io: S, noise: snow::TransportState) -> SecureStream<S> {
        SecureStream {
            io,
            noise,
            rcipher: BytesMut::with_capacity(2 * MAX_MESSAGE),
            rplain: BytesMut::new(),
            wcipher: BytesMut::new(),
        }
    }

    /// The underlying connection.
    pub fn get_ref(&self) -> &S {
        &self.io
    }
}

fn bad_data(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("encrypted stream: {e}"))
}

impl<S: AsyncWrite + Unpin> SecureStream<S> {
    /// Writes out every buffered ciphertext byte.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.wcipher.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.wcipher))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.wcipher.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SecureStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.rplain.is_empty() {
                let n = buf.remaining().min(this.rplain.len());
                buf.put_slice(&this.rplain[..n]);
                this.rplain.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.rcipher.len() >= 2 {
                let len = u16::from_be_bytes([this.rcipher[0], this.rcipher[1]]) as usize;
                if len < TAG {
                    return Poll::Ready(Err(bad_data(format!("a message of {len} bytes"))));
                }
                if this.rcipher.len() >= 2 + len {
                    this.rplain.clear();
                    this.rplain.resize(len - TAG, 0);
                    let decrypted = this
                        .noise
                        .read_message(&this.rcipher[2..2 + len], &mut this.rplain);
                    let n = match decrypted {
                        Ok(n) => n,
                        Err(e) => {
                            // What failed its check must never be read as plaintext.
                            this.rplain.clear();
                            return Poll::Ready(Err(bad_data(e)));
                        }
                    };
                    this.rplain.truncate(n);
                    this.rcipher.advance(2 + len);
                    continue;
                }
            }
            this.rcipher.reserve(MAX_MESSAGE);
            let n = ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut this.io),
                cx,
                &mut this.rcipher
            ))?;
            if n == 0 {
                return Poll::Ready(if this.rcipher.is_empty() {
                    Ok(())
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                });
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SecureStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.wcipher.len() >= WRITE_BOUND {
            ready!(this.poll_drain(cx))?;
        }
        let n = buf.len().min(MAX_PLAIN);
        let start = this.wcipher.len();
        this.wcipher.put_u16((n + TAG) as u16);
        this.wcipher.resize(start + 2 + n + TAG, 0);
        let written = this
            .noise
            .write_message(&buf[..n], &mut this.wcipher[start + 2..])
            .map_err(|e| io::Error::other(format!("encrypting: {e}")))?;
        debug_assert_eq!(written, n + TAG);
        // Out now if the socket takes it; what it does not take goes on the next write or flush.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// A connection that is encrypted or not, as its configuration says: one type for the code
/// that reads and writes it.
pub enum MaybeSecure<S> {
    /// In the clear (loopback, or a LAN without a secret).
    Plain(S),
    /// After a Noise handshake.
    Secure(Box<SecureStream<S>>),
}

impl<S> MaybeSecure<S> {
    /// The underlying connection.
    pub fn get_ref(&self) -> &S {
        match self {
            MaybeSecure::Plain(s) => s,
            MaybeSecure::Secure(s) => s.get_ref(),
        }
    }

    /// Is it encrypted?
    pub fn is_secure(&self) -> bool {
        matches!(self, MaybeSecure::Secure(_))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> MaybeSecure<S> {
    /// Runs the connecting side's handshake when there is a `secret`.
    pub async fn connect(io: S, secret: Option<&Secret>) -> Result<MaybeSecure<S>, HandshakeError> {
        Ok(match secret {
            Some(secret) => MaybeSecure::Secure(Box::new(connect(io, secret).await?)),
            None => MaybeSecure::Plain(io),
        })
    }

    /// Runs the accepting side's handshake when there is a `secret`.
    pub async fn accept(io: S, secret: Option<&Secret>) -> Result<MaybeSecure<S>, HandshakeError> {
        Ok(match secret {
            Some(secret) => MaybeSecure::Secure(Box::new(accept(io, secret).await?)),
            None => MaybeSecure::Plain(io),
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeSecure<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeSecure::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeSecure::Secure(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeSecure<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeSecure::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeSecure::Secure(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeSecure::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeSecure::Secure(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeSecure::Plain(s) => s.is_write_vectored(),
            MaybeSecure::Secure(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeSecure::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeSecure::Secure(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeSecure::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeSecure::Secure(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Secret {
        Secret::from_hex(&format!("{b:02x}").repeat(32)).expect("64 hex digits")
    }

    async fn pair(
        a: Secret,
        b: Secret,
    ) -> (
        Result<SecureStream<tokio::io::DuplexStream>, HandshakeError>,
        Result<SecureStream<tokio::io::DuplexStream>, HandshakeError>,
    ) {
        let (x, y) = tokio::io::duplex(1 << 20);
        tokio::join!(connect(x, &a), accept(y, &b))
    }

    #[tokio::test]
    async fn the_same_secret_carries_bytes_both_ways_encrypted() {
        let (c, a) = pair(key(7), key(7)).await;
        let (mut c, mut a) = (c.unwrap(), a.unwrap());
        // More than one Noise message, in one write.
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let write = async {
            c.write_all(&big).await.unwrap();
            c.flush().await.unwrap();
            c.shutdown().await.unwrap();
            c
        };
        let read = async {
            let mut got = Vec::new();
            a.read_to_end(&mut got).await.unwrap();
            got
        };
        let (_c, got) = tokio::join!(write, read);
        assert_eq!(got, big);
        a.write_all(b"and back").await.unwrap();
        a.flush().await.unwrap();
    }

    #[tokio::test]
    async fn what_goes_on_the_wire_is_not_the_plaintext() {
        // initiator <-> (x_wire ... y_wire, recorded one way) <-> responder
        let (x, x_wire) = tokio::io::duplex(1 << 16);
        let (y, y_wire) = tokio::io::duplex(1 << 16);
        let (mut x_read, mut x_write) = tokio::io::split(x_wire);
        let (mut y_read, mut y_write) = tokio::io::split(y_wire);
        let recorder = tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = x_read.read(&mut chunk).await.unwrap();
                if n == 0 {
                    y_write.shutdown().await.unwrap();
                    return seen;
                }
                seen.extend_from_slice(&chunk[..n]);
                y_write.write_all(&chunk[..n]).await.unwrap();
            }
        });
        tokio::spawn(async move { tokio::io::copy(&mut y_read, &mut x_write).await });
        let secret = key(3);
        let (c, a) = tokio::join!(connect(x, &secret), accept(y, &secret));
        let (mut c, mut a) = (c.unwrap(), a.unwrap());
        c.write_all(b"publish svc:secret-name").await.unwrap();
        c.shutdown().await.unwrap();
        let mut got = Vec::new();
        a.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"publish svc:secret-name");
        drop(c);
        let seen = recorder.await.unwrap();
        assert!(seen.len() > 23, "{} bytes", seen.len());
        assert!(!seen.windows(6).any(|w| w == b"secret"), "plaintext on the wire");
    }

    #[tokio::test]
    async fn a_peer_with_another_secret_or_none_is_refused_at_the_handshake() {
        let (c, a) = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            let (x, y) = tokio::io::duplex(1 << 16);
            let (c, a) = tokio::join!(
                async {
                    let r = connect(x, &key(1)).await;
                    r.map(|_| ())
                },
                async {
                    let r = accept(y, &key(2)).await;
                    r.map(|_| ())
                }
            );
            (c, a)
        })
        .await
        .expect("no hang");
        assert!(matches!(a, Err(HandshakeError::Refused(_))), "{a:?}");
        // The initiator learns when the responder hangs up.
        assert!(c.is_err());

        // A first message longer than any handshake message is refused before it is read.
        let (mut x, y) = tokio::io::duplex(1 << 16);
        let accepting = tokio::spawn(async move { accept(y, &key(1)).await.map(|_| ()) });
        x.write_all(&[0xff, 0xff]).await.unwrap();
        let err = accepting.await.unwrap().unwrap_err().to_string();
        assert!(err.contains("a handshake message of 65535 bytes"), "{err}");

        // A peer that speaks the plain protocol (a 4-byte length, then JSON).
        let (mut x, y) = tokio::io::duplex(1 << 16);
        let accepting = tokio::spawn(async move { accept(y, &key(1)).await.map(|_| ()) });
        x.write_all(b"\0\0\0\x10{\"Hello\":{}}....").await.unwrap();
        drop(x);
        assert!(accepting.await.unwrap().is_err());
    }
}
