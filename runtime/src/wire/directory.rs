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
}
