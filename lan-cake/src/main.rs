//! lan-cake: the LAN-scope directory, one per local network, on every interface at port 54195.

use clap::Parser;
use layer_cake::daemon::{run_directory, DaemonArgs};
use layer_cake::lan::DIRECTORY_PORT;
use layer_cake::Scope;
use std::net::{Ipv4Addr, SocketAddr};

/// The directory for one local network: processes on its hosts that publish or subscribe at
/// LAN scope find each other through it, by way of each host's host-cake. Run it on a host
/// of its own at the LAN's standard address (10.0.0.195, 172.16.0.195 or 192.168.0.195, as
/// the LAN's private range has it), where every host-cake looks for it with no
/// configuration. It listens on every interface at port 54195, so it cannot share a host
/// with a host-cake.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    daemon: DaemonArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let listen = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), DIRECTORY_PORT);
    let result = run_directory("lan-cake", Scope::Lan, listen, None, cli.daemon).await;
    layer_cake::daemon::finish("lan-cake", result)
}
