//! The socket under a connection: plain TCP, whose write half senders may also write to
//! directly, or an encrypted stream, written by the connection's task only.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::AsyncWrite;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

/// The write side of a connection's socket.
pub(crate) enum Writer {
    /// Plain TCP, shared with the senders' direct path.
    Plain(Arc<OwnedWriteHalf>),
    /// The write half of an encrypted stream.
    Secure(Box<tokio::io::WriteHalf<Box<crate::secure::SecureStream<TcpStream>>>>),
}

impl Writer {
    /// Writes `chunk[*written..]` (and flushes), resuming where it left off; cancel-safe.
    pub(crate) fn poll_write_all(
        &mut self,
        cx: &mut Context<'_>,
        chunk: &[u8],
        written: &mut usize,
    ) -> Poll<io::Result<()>> {
        while *written < chunk.len() {
            let n = match self {
                Writer::Plain(tcp) => {
                    ready!(tcp.as_ref().as_ref().poll_write_ready(cx))?;
                    match tcp.try_write(&chunk[*written..]) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                }
                Writer::Secure(w) => ready!(Pin::new(w.as_mut()).poll_write(cx, &chunk[*written..]))?,
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        match self {
            Writer::Plain(_) => Poll::Ready(Ok(())),
            // An encrypted stream sends what it has sealed on flush.
            Writer::Secure(w) => Pin::new(w.as_mut()).poll_flush(cx),
        }
    }

    pub(crate) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Writer::Plain(_) => Poll::Ready(Ok(())),
            Writer::Secure(w) => Pin::new(w.as_mut()).poll_shutdown(cx),
        }
    }

    /// Shuts the socket down in both directions, whoever else still holds it.
    pub(crate) fn shutdown_now(&self) {
        if let Writer::Plain(tcp) = self {
            let tcp: &TcpStream = tcp.as_ref().as_ref();
            let _ = socket2::SockRef::from(tcp).shutdown(std::net::Shutdown::Both);
        }
    }
}
