//! The wire: frames, the handshake, and the messages of the two protocols.
//!
//! Every connection (process to directory, directory to directory, process to process) carries
//! length-prefixed frames: a 4-byte big-endian length, then that many bytes of body. The body is
//! encoded by a [`BodyCodec`]; today that is JSON ([`JsonCodec`]). The first frame in each
//! direction is a [`Hello`]. See `docs/protocol.md` for the full description.
//!
//! Public with the `internals` feature only (the daemons, the CLI, the tests); applications
//! see the few constants they need at the crate's root.
#![cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]

mod body;
pub mod directory;
pub(crate) mod frame;
pub(crate) mod greeting;
mod hello;
pub(crate) mod opening;
pub mod peer;
#[cfg(test)]
mod roundtrip;

pub use body::{BodyCodec, BodyError, JsonCodec};
pub use frame::{MessageCodec, WireError};
pub use greeting::{GreetingError, MAX_GREETING};
pub use hello::{Hello, HelloError, PeerKind, MAGIC, PROTOCOL_VERSION};
pub use opening::OpeningError;

use std::time::Duration;

/// The largest frame accepted on a directory link. Directory messages are small; anything
/// larger is a fault or an attack, and closes that one connection.
pub const MAX_DIRECTORY_FRAME: usize = 1 << 20;

/// The longest readable name a greeting may carry ([`Hello::name`]), in bytes: what a
/// directory keeps and reports for each of its children.
pub const MAX_PEER_NAME: usize = 256;

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

/// The heartbeat bookkeeping of one directory link (child or parent side): what was last
/// heard and sent, and whether the peer is gone. Off on loopback, where every call is free.
pub(crate) struct Liveness {
    on: bool,
    last_rx: std::time::Instant,
    last_tx: std::time::Instant,
}

/// What a [`HEARTBEAT_CHECK`] tick calls for.
pub(crate) enum Beat {
    /// Nothing to do.
    Quiet,
    /// Nothing was sent for [`HEARTBEAT_EVERY`]: send a heartbeat (counted as sent).
    Send,
    /// Nothing was heard for [`HEARTBEAT_DEAD`]: the peer is gone.
    Dead,
}

impl Liveness {
    /// For a link with a peer at `peer`: on unless the peer is on this host.
    pub(crate) fn new(peer: std::net::SocketAddr) -> Liveness {
        let now = std::time::Instant::now();
        Liveness {
            on: needs_heartbeat(peer),
            last_rx: now,
            last_tx: now,
        }
    }

    /// Does this link carry heartbeats (and so need [`tick`](Self::tick)s)?
    pub(crate) fn on(&self) -> bool {
        self.on
    }

    /// Something came from the peer.
    pub(crate) fn heard(&mut self) {
        if self.on {
            self.last_rx = std::time::Instant::now();
        }
    }

    /// Something went to the peer.
    pub(crate) fn sent(&mut self) {
        if self.on {
            self.last_tx = std::time::Instant::now();
        }
    }

    /// At each check: is the peer gone, or a heartbeat due?
    pub(crate) fn tick(&mut self) -> Beat {
        if self.last_rx.elapsed() >= HEARTBEAT_DEAD {
            Beat::Dead
        } else if self.last_tx.elapsed() >= HEARTBEAT_EVERY {
            self.last_tx = std::time::Instant::now();
            Beat::Send
        } else {
            Beat::Quiet
        }
    }
}

/// Is `addr` on this host's loopback (`127.0.0.0/8`, `::1`, or `::ffff:127.x.x.x` as an IPv6
/// socket reports an IPv4 loopback peer)? One rule for every "within this host" decision, so
/// that both ends of a connection always agree: heartbeats, encryption, GROUP and HOST guards.
pub fn is_local(addr: std::net::SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}
