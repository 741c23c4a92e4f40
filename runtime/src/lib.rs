//! # layer-cake
//!
//! Processes that find each other by name. A process [`publish`](Node::publish)es a name at a
//! [`Scope`] and another [`subscribe`](Node::subscribe)s with an exact name or a regular
//! expression; the directory tree (group-cake, host-cake, lan-cake) introduces them, and each
//! matching pair gets a [`Session`]: a direct connection carrying typed messages both ways.
//! No addresses or ports are configured.
//!
//! Each subscriber is attached to the **nearest** live publisher of each matching name (a
//! GROUP one beats a HOST one beats a LAN one), **falls back** to a wider one when the nearest
//! goes, and **upgrades** back when a nearer one returns.
//!
//! Crate map:
//! - [`node`]: the application API ([`Node`], [`Publication`], [`Subscription`], [`Session`]);
//! - [`caller`]: calls to every instance a search matches: to one by a policy (nearest,
//!   least busy, in turn, random, by key), to all, one-way; bounds and retries;
//! - `http` (feature `http`): an HTTP front that maps requests to typed messages;
//! - [`Scope`], [`Search`], the identities in [`ids`], and [`Message`] for what travels;
//! - for the daemons, the CLI and the tests only (feature `internals`): `directory` (the
//!   matching engine and the directory daemon) and `wire` (frames and messages, see
//!   `docs/protocol.md`); `daemon` and `home` (features of the same names) build on them.
#![deny(missing_docs)]

pub(crate) mod backoff;
#[cfg(feature = "binary")]
pub mod binary;
pub mod caller;
#[cfg(feature = "daemon")]
pub mod daemon;
#[cfg(feature = "internals")]
pub mod directory;
#[cfg(not(feature = "internals"))]
pub(crate) mod directory;
pub mod fsutil;
#[cfg(any(test, feature = "fuzz"))]
#[doc(hidden)]
pub mod fuzz;
#[cfg(feature = "home")]
pub mod home;
#[cfg(feature = "http")]
pub mod http;
pub mod ids;
pub mod lan;
mod message;
pub mod node;
pub mod role;
mod scope;
pub mod secure;
#[cfg(feature = "internals")]
pub mod wire;
#[cfg(not(feature = "internals"))]
pub(crate) mod wire;

pub use directory::{Search, SearchError};
pub use ids::{ProcessId, PubId, SessionId, SubId};
pub use message::{Message, Received};
pub use node::{
    DropReason, Dropped, FailKind, Incoming, Node, NodeBuilder, NodeConfig, NodeStopped, ParentState,
    Publication, PublicationEvent, PublishError, PublishStatus, RawReply, RequestError, SendError, Session,
    SessionEnd, SubscribeError, Subscription, SubscriptionEvent,
};
pub use scope::{ParseScopeError, Scope};
pub use wire::directory::PubState;
pub use wire::{MAX_SESSION_FRAME, PROTOCOL_VERSION};
