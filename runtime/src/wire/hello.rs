//! The handshake: the first frame each side sends on every connection.

use crate::ids::ProcessId;
use crate::scope::Scope;
use serde::{Deserialize, Serialize};

/// The value of [`Hello::magic`]: says "this is layer-cake" before anything else is trusted.
pub const MAGIC: &str = "layer-cake";

/// The protocol version this build speaks. A peer with another version is refused.
pub const PROTOCOL_VERSION: u32 = 2;

/// What kind of party is at the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerKind {
    /// An application process (or the CLI).
    Process,
    /// A directory daemon (group-cake, host-cake, lan-cake).
    Directory,
}

/// The first frame on every connection, in both directions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`MAGIC`].
    pub magic: String,
    /// The sender's [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The body codec the sender will use after this frame (`"json"`).
    pub codec: String,
    /// What the sender is.
    pub kind: PeerKind,
    /// The sender's identity, stable for the life of its process.
    pub id: ProcessId,
    /// The scope of the sender's own directory (`PROCESS` for an application).
    pub scope: Scope,
    /// A readable name for the sender: its executable's name.
    pub name: String,
    /// Where a directory accepts children (absent for an application process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<std::net::SocketAddr>,
    /// The role a composite runs the process as (`worker-3`, from `LC_ROLE`); absent for a
    /// process no composite started, and for directories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// Why a [`Hello`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    /// Not a layer-cake peer.
    #[error("bad magic {0:?}")]
    Magic(String),
    /// A layer-cake peer speaking another protocol version.
    #[error("protocol version {0} is not supported (this side speaks {PROTOCOL_VERSION})")]
    Version(u32),
    /// A body codec this side does not have.
    #[error("codec {0:?} is not supported")]
    Codec(String),
    /// A readable name over [`MAX_PEER_NAME`](crate::wire::MAX_PEER_NAME) bytes.
    #[error("a name of {0} bytes (at most {max})", max = crate::wire::MAX_PEER_NAME)]
    Name(usize),
}

impl Hello {
    /// The greeting this side sends. A `name` over
    /// [`MAX_PEER_NAME`](crate::wire::MAX_PEER_NAME) bytes is cut short (at a character).
    pub fn new(kind: PeerKind, id: ProcessId, scope: Scope, name: impl Into<String>) -> Self {
        let name = cut(name.into());
        Hello {
            magic: MAGIC.to_string(),
            version: PROTOCOL_VERSION,
            codec: crate::wire::JsonCodec::NAME_STR.to_string(),
            kind,
            id,
            scope,
            name,
            listen: None,
            role: None,
        }
    }

    /// With the role the sender runs as (cut short like the name).
    pub fn with_role(mut self, role: Option<String>) -> Self {
        self.role = role.map(cut).filter(|r| !r.is_empty());
        self
    }

    /// Checks that the peer speaks this protocol.
    pub fn check(&self) -> Result<(), HelloError> {
        if self.magic != MAGIC {
            return Err(HelloError::Magic(self.magic.clone()));
        }
        if self.version != PROTOCOL_VERSION {
            return Err(HelloError::Version(self.version));
        }
        if self.codec != crate::wire::JsonCodec::NAME_STR {
            return Err(HelloError::Codec(self.codec.clone()));
        }
        if self.name.len() > crate::wire::MAX_PEER_NAME {
            return Err(HelloError::Name(self.name.len()));
        }
        if let Some(role) = self
            .role
            .as_ref()
            .filter(|r| r.len() > crate::wire::MAX_PEER_NAME)
        {
            return Err(HelloError::Name(role.len()));
        }
        Ok(())
    }
}

/// `text` cut to [`MAX_PEER_NAME`](crate::wire::MAX_PEER_NAME) bytes, at a character.
fn cut(mut text: String) -> String {
    if text.len() > crate::wire::MAX_PEER_NAME {
        let mut end = crate::wire::MAX_PEER_NAME;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

impl crate::wire::JsonCodec {
    /// [`BodyCodec::NAME`](crate::wire::BodyCodec::NAME) as an inherent constant.
    pub const NAME_STR: &'static str = <crate::wire::JsonCodec as crate::wire::BodyCodec>::NAME;
}
