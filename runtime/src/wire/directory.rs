//! Messages on a directory link: a child (process or directory) below, a directory above.
//!
//! The child sends [`Up`] frames: its [`Hello`](super::Hello), then listings. The parent sends
//! [`Down`] frames: its `Hello`, then the status of the child's publications and the routes its
//! matches produce. Application traffic never flows on these links.

use crate::ids::{ProcessId, PubId, SubId};
use crate::scope::Scope;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// A publication as directories see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubInfo {
    /// Unique for the life of the publication.
    pub id: PubId,
    /// The published name.
    pub name: String,
    /// How far the publication reaches.
    pub scope: Scope,
    /// The publishing process.
    pub process: ProcessId,
    /// Where subscribers connect to open sessions with it.
    pub addr: SocketAddr,
}

/// A subscription as directories see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubInfo {
    /// Unique for the life of the subscription.
    pub id: SubId,
    /// An exact name or a regular expression, matched against the whole name.
    pub search: String,
    /// How far the subscription reaches.
    pub scope: Scope,
    /// The subscribing process.
    pub process: ProcessId,
}

/// A publication's standing in one directory: only one publication of a name is active there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PubState {
    /// This publication is the one subscribers are routed to.
    Active,
    /// Another process holds the name; this one takes over when the holder goes.
    Standby {
        /// The process holding the name.
        holder: ProcessId,
    },
    /// The directory would not take the publication.
    Refused {
        /// Why.
        reason: String,
    },
}

/// A match: the directory at `at` found that `sub` matches the active publication of `name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The subscription that matched.
    pub sub: SubId,
    /// The scope of the directory that made the match (how near the publisher is).
    pub at: Scope,
    /// The publication matched.
    pub publisher: PubInfo,
}

impl Route {
    /// The key that a later [`Down::RouteCleared`] names.
    pub fn key(&self) -> RouteKey {
        RouteKey {
            sub: self.sub,
            at: self.at,
            publication: self.publisher.id,
            name: self.publisher.name.clone(),
        }
    }
}

/// Names one route, for clearing it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RouteKey {
    /// The subscription.
    pub sub: SubId,
    /// The directory scope that made the match.
    pub at: Scope,
    /// The publication.
    pub publication: PubId,
    /// The publication's name.
    pub name: String,
}

/// Frames from a child to its directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Up {
    /// The handshake; first frame only.
    Hello(super::Hello),
    /// Register a publication (or re-register it after a reconnect).
    Publish(PubInfo),
    /// Withdraw a publication.
    Retract {
        /// The publication.
        id: PubId,
    },
    /// Register a subscription (or re-register it after a reconnect).
    Subscribe(SubInfo),
    /// Withdraw a subscription.
    Unsubscribe {
        /// The subscription.
        id: SubId,
    },
    /// Still here (between hosts only; see [`HEARTBEAT_EVERY`](super::HEARTBEAT_EVERY)).
    Heartbeat,
}

/// Frames from a directory to a child.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Down {
    /// The handshake; first frame only.
    Hello(super::Hello),
    /// A publication's standing in the directory at `at`.
    PubStatus {
        /// The publication.
        id: PubId,
        /// The scope of the directory reporting.
        at: Scope,
        /// Its standing there.
        state: PubState,
    },
    /// A subscription was refused by the directory at `at` (the search did not compile there).
    SubRefused {
        /// The subscription.
        id: SubId,
        /// The scope of the directory reporting.
        at: Scope,
        /// Why.
        reason: String,
    },
    /// A new match.
    Route(Route),
    /// A match that no longer holds (the publication went, or stopped being active, or the
    /// directory that made it went away). A session opened over it is not closed by this.
    RouteCleared(RouteKey),
    /// Still here (between hosts only; see [`HEARTBEAT_EVERY`](super::HEARTBEAT_EVERY)).
    Heartbeat,
}

#[cfg(test)]
mod tests {
    //! These pin the wire format: the same frames appear in `docs/protocol.md`.
    use super::*;
    use crate::wire::{Hello, PeerKind};
    use uuid::Uuid;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn frames_have_the_documented_json() {
        let hello = Hello::new(PeerKind::Process, ProcessId(id(1)), Scope::Process, "publisher");
        assert_eq!(
            serde_json::to_string(&Up::Hello(hello)).unwrap(),
            r#"{"Hello":{"magic":"layer-cake","version":1,"codec":"json","kind":"process","id":"00000000-0000-0000-0000-000000000001","scope":"PROCESS","name":"publisher"}}"#
        );
        let info = PubInfo {
            id: PubId(id(2)),
            name: "svc".into(),
            scope: Scope::Host,
            process: ProcessId(id(1)),
            addr: "127.0.0.1:40001".parse().unwrap(),
        };
        assert_eq!(
            serde_json::to_string(&Up::Publish(info.clone())).unwrap(),
            r#"{"Publish":{"id":"00000000-0000-0000-0000-000000000002","name":"svc","scope":"HOST","process":"00000000-0000-0000-0000-000000000001","addr":"127.0.0.1:40001"}}"#
        );
        let sub = SubInfo {
            id: SubId(id(3)),
            search: "s.c".into(),
            scope: Scope::Host,
            process: ProcessId(id(4)),
        };
        assert_eq!(
            serde_json::to_string(&Up::Subscribe(sub)).unwrap(),
            r#"{"Subscribe":{"id":"00000000-0000-0000-0000-000000000003","search":"s.c","scope":"HOST","process":"00000000-0000-0000-0000-000000000004"}}"#
        );
        assert_eq!(
            serde_json::to_string(&Up::Retract { id: PubId(id(2)) }).unwrap(),
            r#"{"Retract":{"id":"00000000-0000-0000-0000-000000000002"}}"#
        );
        let standby = Down::PubStatus {
            id: PubId(id(2)),
            at: Scope::Host,
            state: PubState::Standby {
                holder: ProcessId(id(9)),
            },
        };
        assert_eq!(
            serde_json::to_string(&standby).unwrap(),
            r#"{"PubStatus":{"id":"00000000-0000-0000-0000-000000000002","at":"HOST","state":{"standby":{"holder":"00000000-0000-0000-0000-000000000009"}}}}"#
        );
        let active = Down::PubStatus {
            id: PubId(id(2)),
            at: Scope::Host,
            state: PubState::Active,
        };
        assert!(serde_json::to_string(&active)
            .unwrap()
            .ends_with(r#""state":"active"}}"#));
        let route = Route {
            sub: SubId(id(3)),
            at: Scope::Host,
            publisher: info,
        };
        assert_eq!(
            serde_json::to_string(&Down::Route(route.clone())).unwrap(),
            r#"{"Route":{"sub":"00000000-0000-0000-0000-000000000003","at":"HOST","publisher":{"id":"00000000-0000-0000-0000-000000000002","name":"svc","scope":"HOST","process":"00000000-0000-0000-0000-000000000001","addr":"127.0.0.1:40001"}}}"#
        );
        assert_eq!(
            serde_json::to_string(&Down::RouteCleared(route.key())).unwrap(),
            r#"{"RouteCleared":{"sub":"00000000-0000-0000-0000-000000000003","at":"HOST","publication":"00000000-0000-0000-0000-000000000002","name":"svc"}}"#
        );
        assert_eq!(serde_json::to_string(&Up::Heartbeat).unwrap(), r#""Heartbeat""#);
        assert_eq!(serde_json::to_string(&Down::Heartbeat).unwrap(), r#""Heartbeat""#);
    }
}
