//! group-cake: the GROUP-scope directory of one composite process.

use clap::Parser;
use layer_cake::daemon::{run_directory, DaemonArgs};
use layer_cake::node::DEFAULT_HOST_DIRECTORY;
use layer_cake::Scope;
use std::net::{Ipv4Addr, SocketAddr};

/// The directory for one composite process: its member processes (started with
/// `LC_DIRECTORY` pointing here) find each other at GROUP scope; listings at HOST scope or
/// wider go on to host-cake, connected only when the first such listing arrives.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    daemon: DaemonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let any_port = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    run_directory(
        "group-cake",
        Scope::Group,
        any_port,
        Some(DEFAULT_HOST_DIRECTORY),
        cli.daemon,
    )
    .await?;
    Ok(())
}
