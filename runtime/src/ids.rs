//! Identities of processes, publications, subscriptions and sessions.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new random identity.
            pub fn random() -> Self {
                $name(Uuid::new_v4())
            }

            /// The first 8 hex digits, as shown in logs and trees.
            pub fn short(&self) -> ShortId {
                ShortId(self.0.as_u128())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

uuid_id!(
    /// One running process (application or directory); fixed for the life of the process.
    ProcessId
);
uuid_id!(
    /// One publication: a name registered by one process.
    PubId
);
uuid_id!(
    /// One subscription: a search registered by one process.
    SubId
);

/// The first 8 hex digits of an identity: what logs and trees print.
#[derive(Clone, Copy)]
pub struct ShortId(u128);

impl fmt::Display for ShortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", (self.0 >> 96) as u32)
    }
}

impl fmt::Debug for ShortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A session between one subscriber and one publisher; unique within the subscriber's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub u64);

impl SessionId {
    /// Never a session: a `Data` frame on it is a probe, which the peer answers with `Failed`
    /// (as for any session it does not know), proving that its process is running.
    pub const PROBE: SessionId = SessionId(0);
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_is_first_eight_hex_digits() {
        let id = ProcessId(Uuid::parse_str("9e7db6d6-1234-4000-8000-000000000000").unwrap());
        assert_eq!(id.short().to_string(), "9e7db6d6");
    }
}
