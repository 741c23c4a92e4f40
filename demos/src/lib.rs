//! Messages and helpers shared by the demo programs.

use clap::Args;
use layer_cake::{Node, NodeConfig};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// A request the subscriber demo sends on each new session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ping {
    /// A counter, echoed back.
    pub seq: u64,
    /// Any text, echoed back.
    pub text: String,
}

/// The publisher demo's answer to a [`Ping`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pong {
    /// The ping's counter.
    pub seq: u64,
    /// The ping's text.
    pub text: String,
    /// The name the publisher published.
    pub name: String,
    /// The publisher's process id (operating system).
    pub pid: u32,
}

/// Where a demo finds its directory.
#[derive(Debug, Clone, Args)]
pub struct DirectoryArgs {
    /// The directory to join (`host:port`); by default host-cake at 127.0.0.1:54195, or the
    /// group-cake that started this process.
    #[arg(long, value_name = "ADDR", env = "LC_DIRECTORY")]
    pub directory: Option<String>,
}

impl DirectoryArgs {
    /// Starts a node joined to the chosen directory.
    pub async fn start(&self) -> anyhow::Result<Node> {
        let mut config = NodeConfig::from_env()?;
        if let Some(directory) = &self.directory {
            config.directory = if directory.eq_ignore_ascii_case("none") {
                None
            } else {
                Some(
                    directory
                        .parse::<SocketAddr>()
                        .map_err(|e| anyhow::anyhow!("--directory {directory}: {e}"))?,
                )
            };
        }
        Ok(Node::with_config(config).await?)
    }
}
