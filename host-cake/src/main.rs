//! host-cake: the HOST-scope directory, one per machine, at `127.0.0.1:54195`.

use clap::Parser;
use layer_cake::daemon::{run_directory, DaemonArgs};
use layer_cake::node::DEFAULT_HOST_DIRECTORY;
use layer_cake::Scope;

/// The directory for one host: processes on this machine that publish or subscribe at HOST
/// scope find each other through it. Listens on loopback only.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    daemon: DaemonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The LAN directory arrives with lan-cake; until then host-cake has a parent only if told.
    run_directory("host-cake", Scope::Host, DEFAULT_HOST_DIRECTORY, None, cli.daemon).await?;
    Ok(())
}
