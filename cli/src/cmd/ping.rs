//! `layer-cake ping`: round trips to one node of the tree.

use super::tree::{find, gather, DirectoryArgs};
use anyhow::{bail, Result};
use clap::Args;
use layer_cake::directory::client::DirectoryClient;
use std::path::Path;
use std::time::Duration;

/// Send round trips to a node of the tree (an id from `layer-cake network`, or its first
/// characters) through its directory, and print their times, like `ping`.
#[derive(Args)]
pub struct Ping {
    /// The node's id (8 characters are enough).
    id: String,
    /// How many round trips.
    #[arg(short, long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    count: u32,
    /// Milliseconds between round trips.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    interval_ms: u64,
    /// How long to wait for each answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    deadline_ms: u64,
    #[command(flatten)]
    directory: DirectoryArgs,
}

impl Ping {
    pub fn run(self, home_path: &Path) -> Result<()> {
        let me = &self;
        self.directory.block_on(home_path, |addr, secret| async move {
            let tree = gather(addr, me.directory.named(), false, secret.as_ref()).await?;
            let node = find(&tree, &me.id)?;
            let Some(via) = node.via else {
                bail!("no way to reach {}", node.short());
            };
            let mut client = DirectoryClient::connect(via, "layer-cake", secret.as_ref()).await?;
            let target = layer_cake::ProcessId(node.id.parse().map_err(|e| anyhow::anyhow!("{e}"))?);
            println!(
                "PING [{}] {} ({}) via {} ({})",
                node.scope,
                node.label(),
                node.short(),
                client.peer.name,
                &client.peer.id.to_string()[..8]
            );
            let deadline = Duration::from_millis(me.deadline_ms);
            let mut times = Vec::new();
            for seq in 1..=me.count {
                if seq > 1 {
                    client.idle(Duration::from_millis(me.interval_ms)).await?;
                }
                match client.ping(target, deadline).await? {
                    Some(t) => {
                        println!(
                            "reply from {}: seq={seq} time={:.3} ms",
                            node.short(),
                            t.as_secs_f64() * 1e3
                        );
                        times.push(t);
                    }
                    None => println!("no reply from {}: seq={seq} (waited {deadline:?})", node.short()),
                }
            }
            let ms = |d: &Duration| d.as_secs_f64() * 1e3;
            let summary = if times.is_empty() {
                String::new()
            } else {
                let min = times.iter().map(ms).fold(f64::INFINITY, f64::min);
                let max = times.iter().map(ms).fold(0.0, f64::max);
                let avg = times.iter().map(ms).sum::<f64>() / times.len() as f64;
                format!(", min/avg/max {min:.3}/{avg:.3}/{max:.3} ms")
            };
            println!("--- {} sent, {} answered{summary}", me.count, times.len());
            if times.is_empty() {
                bail!("{} did not answer", node.short());
            }
            Ok(())
        })
    }
}
