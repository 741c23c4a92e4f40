//! One process of a role: started, its output read into the role's log, signalled, reaped.

use jiff::Timestamp;
use layer_cake::home::log::LogWriter;
use layer_cake::home::run::Outcome;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::mpsc;

/// Lines longer than this are cut into pieces.
const MAX_LINE: usize = 16 * 1024;

/// After a process ends, how long its output may take to drain before its end is reported
/// (a process it left behind may hold the pipes open).
const DRAIN: Duration = Duration::from_millis(200);

/// Which of a role's streams a line came from (or group-cake's own note about the role).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Its stdout.
    Out,
    /// Its stderr.
    Err,
    /// A line of group-cake's own about it (started, ended).
    Note,
}

/// Where a role's output goes: its log, and (for `run`) this process's stdout or stderr,
/// tagged.
pub struct Output {
    /// The role's log.
    pub log: Mutex<LogWriter>,
    /// Also copy each line, tagged `role[pid] text`, to stdout (what the role wrote to its
    /// stdout) or stderr (its stderr, and group-cake's notes).
    pub echo: bool,
    /// The role's name.
    pub role: String,
}

impl Output {
    /// Writes lines to the log (one write) and, when echoing, to the stream they came from.
    pub fn lines(&self, pid: u32, lines: &[&[u8]], stream: Stream) {
        let at = Timestamp::now();
        {
            let mut log = self.log.lock().expect("log lock");
            for line in lines {
                log.push(at, pid, line);
            }
            let lines_before = log.lost();
            if let Err(e) = log.flush() {
                // Once per spell of failures, not once per line.
                if lines_before == 0 {
                    tracing::warn!(role = %self.role, error = %e, "cannot write the role's log; its lines are counted until it can");
                }
            }
        }
        if self.echo {
            let echo = |to: &mut dyn Write| {
                for line in lines {
                    let _ = writeln!(
                        to,
                        "{}[{pid}] {}",
                        self.role,
                        String::from_utf8_lossy(line).trim_end()
                    );
                }
            };
            match stream {
                Stream::Out => echo(&mut std::io::stdout().lock()),
                Stream::Err | Stream::Note => echo(&mut std::io::stderr().lock()),
            }
        }
    }

    /// A line of group-cake's own about the role (start, end), in its log and on stderr.
    pub fn note(&self, pid: u32, text: &str) {
        self.lines(pid, &[format!("--- {text}").as_bytes()], Stream::Note);
    }
}

/// What a role process reports to the supervisor.
#[derive(Debug)]
pub struct Exited {
    /// The role's index.
    pub role: usize,
    /// Which start of the role it was.
    pub generation: u64,
    /// How it ended.
    pub outcome: Outcome,
}

/// A running role process, from the supervisor's side.
pub struct Running {
    /// Its process id.
    pub pid: u32,
    signals: mpsc::UnboundedSender<Signal>,
}

impl Running {
    /// Sends it `signal` (if it has not been reaped yet).
    pub fn signal(&self, signal: Signal) {
        let _ = self.signals.send(signal);
    }
}

/// How to start one process of a role.
pub struct Start<'a> {
    /// The program.
    pub executable: &'a Path,
    /// Its arguments.
    pub args: &'a [String],
    /// Its environment, folder and user.
    pub launch: &'a layer_cake::home::launch::Launch,
    /// The process group to join.
    pub group: Option<i32>,
}

/// Starts the process; a task reads its output and reports its end on `exits`.
pub fn spawn(
    start: Start<'_>,
    role: usize,
    generation: u64,
    output: Arc<Output>,
    exits: mpsc::Sender<Exited>,
) -> std::io::Result<Running> {
    let mut command = Command::new(start.executable);
    command
        .args(start.args)
        // The role's own environment, and nothing else of group-cake's (systemd's readiness
        // socket, say, is group-cake's own).
        .env_clear()
        .envs(start.launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(&start.launch.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false);
    if let Some(group) = start.group {
        command.process_group(group);
    }
    if let Some((uid, gid)) = start.launch.ids {
        command.uid(uid).gid(gid);
    }
    let mut child = command.spawn()?;
    let pid = child.id().unwrap_or_default();
    // Group-cake's line first, then what the process prints, then (below) its end.
    output.note(pid, &format!("started ({})", start.executable.display()));
    let mut pumps = Vec::new();
    if let Some(out) = child.stdout.take() {
        pumps.push(tokio::spawn(pump(out, pid, output.clone(), Stream::Out)));
    }
    if let Some(err) = child.stderr.take() {
        pumps.push(tokio::spawn(pump(err, pid, output, Stream::Err)));
    }
    let (signals, mut incoming) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                Some(signal) = incoming.recv() => {
                    // Not reaped yet, so the pid is still this process's.
                    let _ = kill(Pid::from_raw(pid as i32), signal);
                }
            }
        };
        let drained = async {
            for pump in pumps {
                let _ = pump.await;
            }
        };
        let _ = tokio::time::timeout(DRAIN, drained).await;
        let outcome = match status {
            Ok(status) => match (status.code(), status.signal()) {
                (Some(code), _) => Outcome::Exited { code },
                (None, Some(signal)) => Outcome::Signalled {
                    signal,
                    name: Signal::try_from(signal)
                        .map_or_else(|_| format!("signal {signal}"), |s| s.to_string()),
                },
                (None, None) => Outcome::Exited { code: -1 },
            },
            Err(e) => Outcome::NotStarted {
                reason: format!("cannot wait for it: {e}"),
            },
        };
        let _ = exits
            .send(Exited {
                role,
                generation,
                outcome,
            })
            .await;
    });
    Ok(Running { pid, signals })
}

/// Reads one output stream into the role's output, a chunk of lines at a time.
async fn pump<R: AsyncRead + Unpin>(mut stream: R, pid: u32, output: Arc<Output>, from: Stream) {
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut lines = Vec::new();
        let mut rest = &buf[..];
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            lines.push(&rest[..end]);
            rest = &rest[end + 1..];
        }
        while rest.len() > MAX_LINE {
            lines.push(&rest[..MAX_LINE]);
            rest = &rest[MAX_LINE..];
        }
        if !lines.is_empty() {
            output.lines(pid, &lines, from);
        }
        let kept = rest.len();
        let from = buf.len() - kept;
        buf.copy_within(from.., 0);
        buf.truncate(kept);
    }
    if !buf.is_empty() {
        output.lines(pid, &[&buf], from);
    }
}
