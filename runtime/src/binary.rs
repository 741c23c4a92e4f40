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
        let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(|| LossyStderr)
            .with_ansi(colour)
            .with_target(false)
            .log_internal_errors(false);
        // A role of a composite: group-cake stamps each line it keeps, so one time is enough.
        let _ = if std::env::var_os(crate::role::ROLE_ENV).is_some() {
            builder.without_time().try_init()
        } else {
            builder.try_init()
        };
    }
}

/// Log lines that could not be written since the last one that was.
static LOST_LINES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Writes log lines to stderr, never failing: a line that cannot be written (stderr is a file
/// on a full disk) is counted, and the next line that can be is preceded by how many were
/// lost. A process whose log cannot be written goes on running.
struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        use std::sync::atomic::Ordering;
        let mut err = std::io::stderr().lock();
        let lost = LOST_LINES.load(Ordering::Relaxed);
        let written = if lost > 0 {
            let note =
                format!("\n{lost} log lines were lost: they could not be written (the disk was full?)\n");
            err.write_all(note.as_bytes()).and_then(|()| err.write_all(line))
        } else {
            err.write_all(line)
        };
        match written {
            Ok(()) if lost > 0 => LOST_LINES.fetch_sub(lost, Ordering::Relaxed),
            Ok(()) => 0,
            Err(_) => LOST_LINES.fetch_add(1, Ordering::Relaxed),
        };
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How a binary ends: `Ok` exits 0; an error is printed as `NAME: error: ...` (its causes
/// after it, never a backtrace, whatever `RUST_BACKTRACE` says) and exits 1.
pub fn finish<E: std::fmt::Display>(name: &str, result: Result<(), E>) -> std::process::ExitCode {
    use std::io::Write;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // (Never fails: stderr may be a log file on a full disk.)
            let _ = writeln!(std::io::stderr(), "{name}: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
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
