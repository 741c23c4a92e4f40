//! The wire: frames, the handshake, and the messages of the two protocols.
//!
//! Every connection (process to directory, directory to directory, process to process) carries
//! length-prefixed frames: a 4-byte big-endian length, then that many bytes of body. The body is
//! encoded by a [`BodyCodec`]; today that is JSON ([`JsonCodec`]). The first frame in each
//! direction is a [`Hello`]. See `docs/protocol.md` for the full description.

mod body;
pub mod directory;
pub(crate) mod frame;
mod hello;
pub mod peer;
#[cfg(test)]
mod roundtrip;

pub use body::{BodyCodec, JsonCodec};
pub use frame::{MessageCodec, WireError};
pub use hello::{Hello, HelloError, PeerKind, MAGIC, PROTOCOL_VERSION};

use std::time::Duration;

/// The largest frame accepted on a directory link. Directory messages are small; anything
/// larger is a fault or an attack, and closes that one connection.
pub const MAX_DIRECTORY_FRAME: usize = 1 << 20;

/// The largest frame accepted on a session between two processes (application messages).
pub const MAX_SESSION_FRAME: usize = 16 << 20;

/// How long a peer has, after connecting, to send its [`Hello`].
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// On a connection between hosts (a peer that is not on loopback), each side sends a
/// `Heartbeat` frame when it has sent nothing else for this long...
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// ...and the connection is over when nothing at all has come from the peer for this long:
/// a host that vanished without closing its sockets (its link down, its processes frozen) is
/// noticed within this, plus up to [`HEARTBEAT_CHECK`].
pub const HEARTBEAT_DEAD: Duration = Duration::from_secs(3);

/// How often both of the above are checked.
pub const HEARTBEAT_CHECK: Duration = Duration::from_millis(500);

/// Whether a connection with a peer at `addr` carries heartbeats: those between hosts do;
/// on loopback the kernel tells at once of a peer that goes.
pub fn needs_heartbeat(addr: std::net::SocketAddr) -> bool {
    !is_local(addr)
}

/// Is `addr` on this host's loopback (`127.0.0.0/8`, `::1`, or `::ffff:127.x.x.x` as an IPv6
/// socket reports an IPv4 loopback peer)? One rule for every "within this host" decision, so
/// that both ends of a connection always agree: heartbeats, encryption, GROUP and HOST guards.
pub fn is_local(addr: std::net::SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}
