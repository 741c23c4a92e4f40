//! group-cake: the GROUP-scope directory of one composite process, and its supervisor.
//!
//! Without `--home` it is only the directory. With `--home` (how `layer-cake run` and
//! `layer-cake start` use it) it also starts the home's roles, restarts them by their policy,
//! records their output and history in the home, and stops them all when it stops.

mod child;
mod control;
mod operate;
mod ordering;
mod own_log;
mod readiness;
mod retry;
mod role;
mod sentinel;
mod stopping;
mod supervisor;

use clap::Parser;
use layer_cake::daemon::{BoundDirectory, DaemonArgs};
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
    /// (Internal) the home's run lock, handed over by `layer-cake start` or `run` as this
    /// open descriptor.
    #[arg(long, hide = true, requires = "home", value_name = "FD")]
    run_lock_fd: Option<i32>,
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
            let _ = layer_cake::daemon::finish("group-cake", Err(e));
            std::process::exit(1);
        }
    }
}

/// A home made ready to run: locked, its roles chosen.
struct Prepared {
    home: Home,
    lock: layer_cake::home::run::RunLock,
    roles: Vec<String>,
    main_role: Option<String>,
    parent: Option<SocketAddr>,
    /// The LAN's secret, when the composite joins an encrypted LAN.
    secret_file: Option<PathBuf>,
}

async fn serve(cli: Cli, grace: Duration) -> anyhow::Result<i32> {
    cli.daemon.log.init();
    // The home first: a home that is already running must not get a second directory.
    let prepared = match &cli.home {
        Some(path) => {
            let home = Home::open(path)?;
            let lock = match cli.run_lock_fd {
                // SAFETY: the descriptor was left open across exec by the process that started
                // this one, for this alone; nothing else in this process knows of it or owns
                // it. `adopt_lock` checks it is the home's lock file.
                Some(fd) => home.adopt_lock(unsafe {
                    <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd)
                })?,
                None => home.lock()?,
            };
            lock.set_holder(std::process::id())?;
            match home.close_unrecorded_runs(&lock) {
                Ok(0) => {}
                Ok(closed) => tracing::warn!(runs = closed, "the last composite ended without recording how its roles ended; their runs are marked so"),
                Err(e) => tracing::warn!(error = %e, "cannot mark the runs the last composite did not record"),
            }
            let group = home.group()?;
            own_log::keep_within(&home, group.log.unwrap_or_default());
            let roles = home.select(&cli.roles)?;
            if roles.is_empty() {
                anyhow::bail!("no roles to run in {}", home.path().display());
            }
            let main_role = cli.main_role.clone().or(group.main_role.clone());
            let parent = group.directory_at_host.or(group.directory_at_lan);
            Some(Prepared {
                home,
                lock,
                roles,
                main_role,
                parent,
                secret_file: group.secret_file,
            })
        }
        None => None,
    };
    let home_parent = prepared.as_ref().and_then(|p| p.parent);
    // The LAN's secret, for the directory and the roles alike: --secret-file (or
    // LC_SECRET_FILE), else the home's.
    let home_secret = prepared.as_ref().and_then(|p| p.secret_file.clone());
    let secret_file = layer_cake::secure::named(cli.daemon.secret_file.as_deref())
        .map(std::path::Path::to_path_buf)
        .or(home_secret);
    let directory = BoundDirectory::bind(
        "group-cake",
        Scope::Group,
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        Some(home_parent.unwrap_or(DEFAULT_HOST_DIRECTORY)),
        secret_file.as_deref(),
        &cli.daemon,
        // (In the foreground, stdout is the roles'.)
        !cli.foreground,
    )
    .await?;
    let mut directory = directory;
    let published = directory.watch_published();
    let bound = directory.bound;
    let shutdown = CancellationToken::new();
    let directory = tokio::spawn(directory.serve(shutdown.clone()));

    let code = match prepared {
        None => {
            layer_cake::daemon::wait_for_signal().await;
            0
        }
        Some(prepared) => {
            let options = supervisor::Options {
                home: prepared.home,
                roles: prepared.roles,
                searches: cli.roles.clone(),
                main_role: prepared.main_role,
                main_role_fixed: cli.main_role.is_some(),
                secret_file,
                foreground: cli.foreground,
                grace,
                directory: bound,
                published,
            };
            supervisor::run(options, prepared.lock).await?
        }
    };
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(1), directory).await;
    Ok(code)
}
