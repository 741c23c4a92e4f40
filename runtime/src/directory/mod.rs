//! Directories: matching subscriptions to publications, and the daemons that do it.
//!
//! - [`Engine`]: the pure matching state machine every directory (and every process) runs.
//! - [`Attachments`]: the subscriber side, choosing the nearest route and handling fallback and
//!   upgrade.
//! - [`Search`]: exact names and full-match regular expressions.
//! - [`server`]: the directory daemon (group-cake, host-cake, lan-cake) around an engine.
//! - [`client`]: inspecting a directory and pinging through it (`layer-cake network`, `ping`).

// Applications (no `internals` feature) use the engine, the attachments and searches; the
// daemon's parts are built only for the daemons, the CLI and the tests.
#![cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]

mod attach;
#[cfg(feature = "internals")]
mod child_link;
#[cfg(feature = "internals")]
pub mod client;
mod engine;
#[cfg(feature = "internals")]
pub mod published;
mod search;
#[cfg(feature = "internals")]
pub mod server;
pub(crate) mod uplink;

pub use attach::{Action, Attachments};
pub use engine::{Engine, LinkId, Output};
pub use search::{valid_name, Search, SearchError};
