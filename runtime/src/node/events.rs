//! What publications and subscriptions hear: their events, and why a session ended.

use super::{Incoming, Session};
use crate::ids::{ProcessId, SessionId};
use crate::scope::Scope;
use crate::wire::directory::PubState;

/// What a [`Subscription`](super::Subscription) hears.
#[derive(Debug)]
pub enum SubscriptionEvent {
    /// A session with a matching publisher is open: the nearest one of that name.
    Available(Session),
    /// A publisher sent a message (or a request) on one of the sessions.
    Message(Incoming),
    /// A session is over, and why: the subscription may get another for the same name.
    Dropped(Dropped),
}

/// What a [`Publication`](super::Publication) hears.
#[derive(Debug)]
pub enum PublicationEvent {
    /// A subscriber opened a session.
    Delivered(Session),
    /// A subscriber sent a message (or a request) on one of the sessions.
    Message(Incoming),
    /// A session is over, and why.
    Dropped(Dropped),
    /// The publication's standing in the directory at `at` changed: promoted from standby to
    /// active, or made a standby.
    Status {
        /// The directory's scope.
        at: Scope,
        /// The new standing.
        state: PubState,
    },
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// This process retracted the publication.
    Retracted,
    /// This process cleared the subscription.
    Cleared,
    /// A nearer publisher of the name appeared, and the subscription moved to it.
    Upgraded,
    /// The publisher did not accept the session in time.
    OpenTimedOut,
    /// The other end refused the session; its reason.
    Refused(String),
    /// The other end closed the session (its publication retracted, its subscription cleared,
    /// moved elsewhere); its reason.
    ClosedByPeer(String),
    /// The connection with the other process ended (it went, or a bad frame, or no heartbeat).
    ConnectionLost(String),
    /// This node stopped.
    NodeStopped,
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DropReason::Retracted => f.write_str("publication retracted"),
            DropReason::Cleared => f.write_str("subscription cleared"),
            DropReason::Upgraded => f.write_str("upgrade to a nearer publisher"),
            DropReason::OpenTimedOut => f.write_str("open timed out"),
            DropReason::Refused(reason) => write!(f, "refused: {reason}"),
            DropReason::ClosedByPeer(reason) => write!(f, "closed by the other end: {reason}"),
            DropReason::ConnectionLost(reason) => write!(f, "connection lost: {reason}"),
            DropReason::NodeStopped => f.write_str("the node stopped"),
        }
    }
}

/// A session is over, and why.
#[derive(Debug, Clone)]
pub struct Dropped {
    /// The session.
    pub session: SessionId,
    /// The published name it was with.
    pub name: String,
    /// The scope of the directory that had matched it.
    pub scope: Scope,
    /// The process at the other end.
    pub peer: ProcessId,
    /// Why it ended.
    pub reason: DropReason,
}

impl Dropped {
    pub(crate) fn new(session: &Session, reason: DropReason) -> Dropped {
        Dropped {
            session: session.id(),
            name: session.name().to_string(),
            scope: session.matched_at(),
            peer: session.peer(),
            reason,
        }
    }
}

/// What the node's connections deliver to a handle's queue: either kind of event. Each
/// handle turns it into its own kind; a connection never sends a publication a subscriber's
/// event, or the other way round.
#[derive(Debug)]
pub(crate) enum Event {
    Available(Session),
    Delivered(Session),
    Message(Incoming),
    Dropped(Dropped),
    Status { at: Scope, state: PubState },
}

impl Event {
    pub(crate) fn for_subscription(self) -> Option<SubscriptionEvent> {
        match self {
            Event::Available(s) => Some(SubscriptionEvent::Available(s)),
            Event::Message(m) => Some(SubscriptionEvent::Message(m)),
            Event::Dropped(d) => Some(SubscriptionEvent::Dropped(d)),
            Event::Delivered(_) | Event::Status { .. } => None,
        }
    }

    pub(crate) fn for_publication(self) -> Option<PublicationEvent> {
        match self {
            Event::Delivered(s) => Some(PublicationEvent::Delivered(s)),
            Event::Message(m) => Some(PublicationEvent::Message(m)),
            Event::Dropped(d) => Some(PublicationEvent::Dropped(d)),
            Event::Status { at, state } => Some(PublicationEvent::Status { at, state }),
            Event::Available(_) => None,
        }
    }
}
