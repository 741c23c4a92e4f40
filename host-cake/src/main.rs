//! host-cake: the HOST-scope directory, one per machine, at `127.0.0.1:54195`.

use clap::Parser;
use layer_cake::daemon::{run_directory, DaemonArgs};
use layer_cake::node::DEFAULT_HOST_DIRECTORY;
use layer_cake::Scope;
use std::net::SocketAddr;

/// The directory for one host: processes on this machine that publish or subscribe at HOST
/// scope find each other through it. Listens on loopback only.
///
/// When something registers at LAN scope, host-cake connects up to the LAN directory: at
/// --directory-at-lan if given, else at the standard address derived from this host's
/// address (192.168.x.x → 192.168.0.195, 172.16-31.x.x → 172.16.0.195, 10.x.x.x →
/// 10.0.0.195; port 54195). It keeps trying, quietly, while that directory is absent.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// The LAN directory, when it is not at the standard .195 address.
    #[arg(long, value_name = "ADDR", conflicts_with = "connect_to_directory")]
    directory_at_lan: Option<SocketAddr>,
    #[command(flatten)]
    daemon: DaemonArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let lan = cli.directory_at_lan.or_else(layer_cake::lan::lan_directory);
    let result = run_directory("host-cake", Scope::Host, DEFAULT_HOST_DIRECTORY, lan, cli.daemon).await;
    layer_cake::daemon::finish("host-cake", result)
}
