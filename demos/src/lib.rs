//! Messages and helpers shared by the demo programs.

use clap::Args;
pub use layer_cake::binary::{wait_for_signal, LogArgs};
use layer_cake::{Node, NodeConfig};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// A tokio runtime with `threads` worker threads; 1 (or 0) runs everything on this thread.
pub fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}

/// A request the subscriber demo sends on each new session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ping {
    /// A counter, echoed back.
    pub seq: u64,
    /// Any text, echoed back.
    pub text: String,
}
layer_cake::message!(Ping);

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
layer_cake::message!(Pong);

/// The multihosting demo's request: a table of `x` rows by `y` columns, please.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xy {
    /// Rows.
    pub x: usize,
    /// Columns.
    pub y: usize,
}
layer_cake::message!(Xy);

/// The most cells a table may have: as JSON each cell takes at most 32 bytes (a float of up to
/// 24 characters, a separator, the brackets of a one-cell row), so the largest table still fits
/// in one session frame ([`MAX_SESSION_FRAME`](layer_cake::MAX_SESSION_FRAME)).
pub const MAX_CELLS: usize = layer_cake::MAX_SESSION_FRAME / 32;

impl Xy {
    /// Checks the table is not too big to make.
    pub fn check(&self) -> Result<(), String> {
        match self.x.checked_mul(self.y) {
            Some(cells) if cells <= MAX_CELLS => Ok(()),
            _ => Err(format!(
                "a table of {} by {} is over {MAX_CELLS} cells",
                self.x, self.y
            )),
        }
    }
}

/// The multihosting demo's answer to an [`Xy`]: `x` rows of `y` random floats in [0, 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table(pub Vec<Vec<f64>>);
layer_cake::message!(Table);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_table_allowed_fits_in_a_session_frame() {
        for xy in [
            Xy { x: MAX_CELLS, y: 1 },
            Xy { x: 1, y: MAX_CELLS },
            Xy { x: 724, y: 724 },
        ] {
            assert!(xy.check().is_ok());
            // The longest float JSON writes, in every cell.
            let table = vec![vec![-1.2345678901234567e-300f64; xy.y]; xy.x];
            let bytes = serde_json::to_vec(&table).unwrap().len();
            assert!(
                bytes + 256 < layer_cake::MAX_SESSION_FRAME,
                "{xy:?}: {bytes} bytes"
            );
        }
        assert!(Xy { x: 1000, y: 1000 }.check().is_err());
    }
}

/// Makes the table an [`Xy`] asks for (the worker's whole job).
pub fn texture(xy: Xy) -> Table {
    Table(
        (0..xy.x)
            .map(|_| (0..xy.y).map(|_| fastrand::f64()).collect())
            .collect(),
    )
}

/// What a multihosting worker answers instead of a [`Table`] when it cannot make one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Refused {
    /// Why.
    pub reason: String,
}
layer_cake::message!(Refused);

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
