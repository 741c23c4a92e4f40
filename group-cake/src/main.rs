//! group-cake: the GROUP-scope directory of one composite process, and its supervisor.
//!
//! Without `--home` it is only the directory. With `--home` (how `layer-cake run` and
//! `layer-cake start` use it) it also starts the home's roles, restarts them by their policy,
//! records their output and history in the home, and stops them all when it stops.

mod child;
mod retry;
mod sentinel;
mod supervisor;

use anyhow::Context;
use clap::Parser;
use layer_cake::daemon::DaemonArgs;
use layer_cake::directory::server::{self, DirectoryConfig};
use layer_cake::home::Home;
use layer_cake::node::DEFAULT_HOST_DIRECTORY;
use layer_cake::Scope;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The directory for one composite process: its member processes (started with
/// `LC_DIRECTORY` pointing here) find each other at GROUP scope; listings at HOST scope or
/// wider go on to host-cake, connected only when the first such listing arrives.
///
/// With --home, group-cake also runs that home's roles (as `layer-cake run` does).
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    daemon: DaemonArgs,
    /// Run the roles of the home at PATH as one composite process.
    #[arg(long, value_name = "PATH")]
    home: Option<PathBuf>,
    /// Run only the roles matching these searches (regular expressions on the whole name).
    #[arg(requires = "home", value_name = "SEARCH")]
    roles: Vec<String>,
    /// End the composite when this role ends, with its exit status (over the group's setting).
    #[arg(long, requires = "home", value_name = "ROLE")]
    main_role: Option<String>,
    /// Copy every role's output to stderr, each line tagged `role[pid]`.
    #[arg(long, requires = "home")]
    foreground: bool,
    /// How long roles get to end after SIGTERM before they are killed, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    grace_ms: u64,
    /// (Internal) run as the sentinel that ends the roles if group-cake dies.
    #[arg(long, hide = true)]
    sentinel: bool,
}

fn main() {
    let cli = Cli::parse();
    let grace = Duration::from_millis(cli.grace_ms);
    if cli.sentinel {
        sentinel::run(grace);
    }
    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(serve(cli, grace)));
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("group-cake: {e:#}");
            std::process::exit(1);
        }
    }
}

async fn serve(cli: Cli, grace: Duration) -> anyhow::Result<i32> {
    cli.daemon.log.init();
    layer_cake::daemon::raise_open_files_limit();
    // The home first: a home that is already running must not get a second directory.
    let prepared = match &cli.home {
        Some(path) => {
            let home = Home::open(path)?;
            let lock = home.lock()?;
            let group = home.group()?;
            let roles = home.select(&cli.roles)?;
            if roles.is_empty() {
                anyhow::bail!("no roles to run in {}", home.path().display());
            }
            let main_role = cli.main_role.clone().or(group.main_role.clone());
            let parent = group.directory_at_host.or(group.directory_at_lan);
            Some((home, lock, roles, main_role, parent))
        }
        None => None,
    };
    let listen = cli
        .daemon
        .listen
        .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    layer_cake::directory::server::check_listen(Scope::Group, listen).map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let bound = listener.local_addr()?;
    println!("listening {bound}");
    let mut config = DirectoryConfig::new(Scope::Group, "group-cake");
    let home_parent = prepared.as_ref().and_then(|p| p.4);
    config.parent = Some(
        cli.daemon
            .connect_to_directory
            .or(home_parent)
            .unwrap_or(DEFAULT_HOST_DIRECTORY),
    );
    config.handshake_timeout = Duration::from_millis(cli.daemon.handshake_timeout_ms);
    tracing::info!(%bound, parent = ?config.parent, id = %config.id.short(), "group-cake started");
    let shutdown = CancellationToken::new();
    let directory = tokio::spawn(server::run(listener, config, shutdown.clone()));

    let code = match prepared {
        None => {
            layer_cake::daemon::wait_for_signal().await;
            0
        }
        Some((home, lock, roles, main_role, _)) => {
            let options = supervisor::Options {
                home,
                roles,
                main_role,
                foreground: cli.foreground,
                grace,
                directory: bound,
            };
            supervisor::run(options, lock).await?
        }
    };
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(1), directory).await;
    Ok(code)
}
