//! Directories: matching subscriptions to publications, and the daemons that do it.
//!
//! - [`Engine`]: the pure matching state machine every directory (and every process) runs.
//! - [`Attachments`]: the subscriber side, choosing the nearest route and handling fallback and
//!   upgrade.
//! - [`Search`]: exact names and full-match regular expressions.
//! - [`server`]: the directory daemon (group-cake, host-cake, lan-cake) around an engine.
//! - [`client`]: inspecting a directory and pinging through it (`layer-cake network`, `ping`).

mod attach;
mod child_link;
pub mod client;
mod engine;
mod search;
pub mod server;
pub(crate) mod uplink;

pub use attach::{Action, Attachments};
pub use engine::{Engine, LinkId, Output};
pub use search::{Search, SearchError};
