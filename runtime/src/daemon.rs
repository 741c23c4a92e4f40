//! What the daemon binaries share: their command line and their start.

pub use crate::binary::{finish, wait_for_signal, LogArgs};
pub use crate::directory::published::Published;
use crate::directory::server::{self, DirectoryConfig};
use crate::scope::Scope;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The command line of a directory daemon.
#[derive(Debug, Clone, clap::Args)]
pub struct DaemonArgs {
    /// Where to accept processes and lower directories. Use port 0 for any free port; the
    /// address actually bound is printed on stdout as `listening <address>`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// The parent directory, connected to (on demand) when something registers at a scope
    /// wider than this directory's.
    #[arg(long, value_name = "ADDR")]
    pub connect_to_directory: Option<SocketAddr>,
    /// How long a new connection has to send its greeting before it is closed, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub handshake_timeout_ms: u64,
    /// The LAN's secret: a file of 64 hex digits, readable by its owner only (`layer-cake
    /// secret FILE` makes one). Connections with other hosts are then encrypted and
    /// authenticated, and a peer without the secret is refused. Without it, nothing is.
    #[arg(long, value_name = "PATH", env = "LC_SECRET_FILE")]
    pub secret_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub log: LogArgs,
}

/// Runs a directory daemon at `scope` until Ctrl-C or SIGTERM: binds, prints
/// `listening <address>` on stdout, serves.
pub async fn run_directory(
    name: &str,
    scope: Scope,
    default_listen: SocketAddr,
    default_parent: Option<SocketAddr>,
    args: DaemonArgs,
) -> std::io::Result<()> {
    args.log.init();
    let directory =
        BoundDirectory::bind(name, scope, default_listen, default_parent, None, &args, true).await?;
    notify_ready();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        stop.cancel();
    });
    directory.serve(shutdown).await;
    Ok(())
}

/// A directory daemon that is listening, not yet serving: what every daemon binary does
/// before it serves, in one place (group-cake's supervisor starts its roles in between).
pub struct BoundDirectory {
    listener: TcpListener,
    config: DirectoryConfig,
    /// Where it listens.
    pub bound: SocketAddr,
}

impl BoundDirectory {
    /// Raises the open-files limit, reads the LAN's secret (`--secret-file`, else
    /// `home_secret`: a bad file stops the daemon before it listens, never running it in the
    /// clear by mistake), checks and binds the listening address (`--listen`, else
    /// `default_listen`), prints `listening <address>` on stdout when `announce` (stdout is
    /// the roles' in a foreground composite), and logs that `name` started.
    pub async fn bind(
        name: &str,
        scope: Scope,
        default_listen: SocketAddr,
        default_parent: Option<SocketAddr>,
        home_secret: Option<&std::path::Path>,
        args: &DaemonArgs,
        announce: bool,
    ) -> std::io::Result<BoundDirectory> {
        let open_files = raise_open_files_limit();
        let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
        let secret_file = crate::secure::named(args.secret_file.as_deref()).or(home_secret);
        let secret =
            crate::secure::Secret::from_optional_file(secret_file).map_err(|e| invalid(e.to_string()))?;
        let listen = args.listen.unwrap_or(default_listen);
        server::check_listen(scope, listen).map_err(|e| invalid(e.to_string()))?;
        let listener = TcpListener::bind(listen).await.map_err(|e| {
            let why = if e.kind() == std::io::ErrorKind::AddrInUse && listen.port() == crate::lan::DIRECTORY_PORT {
                // host-cake (loopback) and lan-cake (every interface) both want this port.
                format!(
                    "another directory holds port {} on this host (a host-cake or a lan-cake): one host runs \
                     either host-cake or lan-cake, not both; run lan-cake on a host of its own at the LAN's .195 address",
                    listen.port()
                )
            } else {
                format!("is another {name} running?")
            };
            std::io::Error::new(e.kind(), format!("cannot listen on {listen}: {e} ({why})"))
        })?;
        let bound = listener.local_addr()?;
        // Never fails: a stdout that cannot be written (a log file on a full disk) must not
        // stop the directory.
        if announce {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "listening {bound}").and_then(|()| out.flush());
        }
        let mut config = DirectoryConfig::new(scope, name);
        config.parent = args.connect_to_directory.or(default_parent);
        config.handshake_timeout = std::time::Duration::from_millis(args.handshake_timeout_ms);
        config.secret = secret;
        let encrypted = config.secret.is_some();
        tracing::info!(%bound, parent = ?config.parent, %scope, id = %config.id.short(), ?open_files, encrypted, "{name} started");
        Ok(BoundDirectory {
            listener,
            config,
            bound,
        })
    }

    /// What the directory's children publish, kept up to date at every change (group-cake's
    /// ordering and readiness of its roles).
    pub fn watch_published(&mut self) -> tokio::sync::watch::Receiver<Published> {
        let (tx, rx) = tokio::sync::watch::channel(Published::default());
        self.config.published = Some(tx);
        rx
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn serve(self, shutdown: CancellationToken) {
        server::run(self.listener, self.config, shutdown).await
    }
}

/// Raises this process's soft limit on open files to its hard limit: a directory holds one
/// connection per child (a thousand processes on a host), and the usual soft limit is 1,024.
/// Returns the limit now in force.
pub fn raise_open_files_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard {
        if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            tracing::warn!(error = %e, soft, hard, "could not raise the open-files limit");
            return Some(soft);
        }
    }
    Some(hard)
}

/// Tells systemd (a `Type=notify` unit) that the daemon is ready: it listens and serves.
/// Does nothing when not started by systemd (no `NOTIFY_SOCKET`).
pub fn notify_ready() {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "could not tell systemd the daemon is ready");
    }
}
