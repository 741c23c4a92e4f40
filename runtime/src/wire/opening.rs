//! How every connection begins, the same way on all of them (sessions, directory links, the
//! inspection client): TCP; then, when it crosses hosts on an encrypted LAN, the Noise
//! handshake; then the greetings. And the one way a listener takes its next connection.

use super::greeting::{self, GreetingError, Side};
use super::hello::Hello;
use crate::secure::{HandshakeError, MaybeSecure, Secret};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// A connection after its handshake: encrypted or not, as it crosses hosts and the LAN has a
/// secret.
pub(crate) type Opened = MaybeSecure<TcpStream>;

/// Why a connection could not be opened. It concerns that one connection only.
#[derive(Debug, thiserror::Error)]
pub enum OpeningError {
    /// The TCP connection failed.
    #[error("connect {addr}: {source}")]
    Connect {
        /// Where.
        addr: SocketAddr,
        /// The socket's error.
        #[source]
        source: std::io::Error,
    },
    /// The Noise handshake failed: the peer does not hold this LAN's secret, or went.
    #[error("{addr}: {source}")]
    Secure {
        /// The peer.
        addr: SocketAddr,
        /// What the handshake said.
        #[source]
        source: HandshakeError,
    },
    /// The greetings failed: not layer-cake, another version, a silent or oversized peer.
    #[error("{addr}: {source}")]
    Greeting {
        /// The peer.
        addr: SocketAddr,
        /// What went wrong.
        #[source]
        source: GreetingError,
    },
    /// The whole handshake took longer than its deadline.
    #[error("{addr}: no handshake within {deadline:?}")]
    Timeout {
        /// The peer.
        addr: SocketAddr,
        /// The deadline.
        deadline: Duration,
    },
}

impl OpeningError {
    /// What went wrong, without the peer's address: for a log line that names it already.
    pub fn reason(&self) -> String {
        match self {
            OpeningError::Connect { source, .. } => source.to_string(),
            OpeningError::Secure { source, .. } => source.to_string(),
            OpeningError::Greeting { source, .. } => source.to_string(),
            OpeningError::Timeout { deadline, .. } => format!("no handshake within {deadline:?}"),
        }
    }
}

/// Connects to `addr` and greets it with `ours`, all within `deadline`. The connection is
/// encrypted when `addr` is on another host and there is a `secret`; never within a host.
pub(crate) async fn dial(
    addr: SocketAddr,
    ours: &Hello,
    secret: Option<&Secret>,
    deadline: Duration,
) -> Result<(Opened, Hello), OpeningError> {
    let opening = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| OpeningError::Connect { addr, source })?;
        let _ = stream.set_nodelay(true);
        handshake(stream, addr, ours, secret, Side::Connecting).await
    };
    tokio::time::timeout(deadline, opening)
        .await
        .map_err(|_| OpeningError::Timeout { addr, deadline })?
}

/// The accepting side of [`dial`]: the Noise handshake when `addr` is on another host and there
/// is a `secret`, then the peer's greeting, checked, and ours; all within `deadline`.
pub(crate) async fn accept(
    stream: TcpStream,
    addr: SocketAddr,
    ours: &Hello,
    secret: Option<&Secret>,
    deadline: Duration,
) -> Result<(Opened, Hello), OpeningError> {
    tokio::time::timeout(deadline, handshake(stream, addr, ours, secret, Side::Accepting))
        .await
        .map_err(|_| OpeningError::Timeout { addr, deadline })?
}

async fn handshake(
    stream: TcpStream,
    addr: SocketAddr,
    ours: &Hello,
    secret: Option<&Secret>,
    side: Side,
) -> Result<(Opened, Hello), OpeningError> {
    let secret = secret.filter(|_| !super::is_local(addr));
    let secured = match side {
        Side::Connecting => MaybeSecure::connect(stream, secret).await,
        Side::Accepting => MaybeSecure::accept(stream, secret).await,
    };
    let mut stream = secured.map_err(|source| OpeningError::Secure { addr, source })?;
    let theirs = greeting::exchange(&mut stream, ours, side)
        .await
        .map_err(|source| OpeningError::Greeting { addr, source })?;
    Ok((stream, theirs))
}

/// Takes `listener`'s next connection, with no delay on its writes. A failed accept (out of
/// descriptors and the like) is logged, and the listener tried again a little later: it never
/// ends the caller's loop.
pub(crate) async fn next_connection(listener: &TcpListener, what: &str) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let _ = stream.set_nodelay(true);
                return (stream, addr);
            }
            Err(e) => {
                tracing::warn!(error = %e, "{what} accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
