//! What every layer-cake binary shares, daemons and applications alike (feature `binary`):
//! its log options and how it waits to be told to stop.

/// Logging options every layer-cake binary takes.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log level or filter: error, warn, info, debug, trace, or a tracing filter such as
    /// `layer_cake=debug`. `RUST_LOG`, when set, wins.
    #[arg(long, value_name = "LEVEL", default_value = "info", env = "LC_DEBUG_LEVEL")]
    pub debug_level: String,
}

impl LogArgs {
    /// Sends logs to stderr, each line naming the object that spoke (its span: directory, node,
    /// link) and what it did.
    pub fn init(&self) {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .or_else(|_| tracing_subscriber::EnvFilter::try_new(&self.debug_level))
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .try_init();
    }
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("can install a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
