//! A harness for end-to-end tests: spawns the real daemons and demo programs on loopback,
//! reads what they print, kills them, and cleans up every process it started.
//!
//! Every wait has a deadline ([`WAIT`]); a test that would hang fails instead, printing what
//! the process said.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Once;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// The longest any single expected event may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// A parent directory address where nothing listens (loopback port 1), for daemons that must
/// never connect upward.
pub const NO_DIRECTORY: &str = "127.0.0.1:1";

static BUILD: Once = Once::new();

/// The path of one of the workspace's binaries. The first call in a test run builds them all
/// (a no-op when they are up to date), so `cargo test` alone never runs stale binaries.
pub fn bin(name: &str) -> PathBuf {
    BUILD.call_once(|| {
        let mut cmd = std::process::Command::new(env!("CARGO"));
        cmd.args(["build", "--workspace", "--bins", "--quiet"]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let status = cmd
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the workspace's binaries failed");
    });
    assert_cmd::cargo::cargo_bin(name)
}

/// A running program whose stdout lines the test reads.
pub struct Proc {
    /// A label for failure messages.
    pub label: String,
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    /// Lines read from the process but not yet matched by [`expect`](Self::expect).
    unmatched: Vec<String>,
    /// Every line read so far, in order.
    pub seen: Vec<String>,
}

impl Proc {
    /// Spawns `program` with `args` and `envs`; stderr goes to the test's stderr (shown on failure).
    pub fn spawn(label: &str, program: &str, args: &[&str], envs: &[(&str, &str)]) -> Proc {
        Proc::spawn_command(label, Command::new(bin(program)), args, envs)
    }

    /// Spawns `cmd` (a program, perhaps behind a wrapper such as `ip netns exec`) with `args`
    /// and `envs`, as [`spawn`](Self::spawn) does.
    pub fn spawn_command(label: &str, mut cmd: Command, args: &[&str], envs: &[(&str, &str)]) -> Proc {
        let program = format!("{:?}", cmd.as_std().get_program());
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        cmd.env_remove("LC_DIRECTORY")
            .env("LC_DEBUG_LEVEL", "warn")
            .kill_on_drop(true);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            label: label.to_string(),
            child,
            lines,
            unmatched: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// The operating-system process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("process is running")
    }

    /// Returns the earliest line not matched before that contains every one of `parts`,
    /// waiting for it if need be. Lines it passes over stay available to later calls.
    pub async fn expect(&mut self, parts: &[&str]) -> String {
        let matches = |line: &String| parts.iter().all(|p| line.contains(p));
        if let Some(i) = self.unmatched.iter().position(matches) {
            return self.unmatched.remove(i);
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    self.seen.push(line.clone());
                    if matches(&line) {
                        return line;
                    }
                    self.unmatched.push(line);
                }
                Ok(None) => panic!(
                    "{} ended before printing {parts:?}; it printed {:#?}",
                    self.label, self.seen
                ),
                Err(_) => panic!(
                    "{} did not print {parts:?} within {WAIT:?}; it printed {:#?}",
                    self.label, self.seen
                ),
            }
        }
    }

    /// Every line printed so far (read or not), in order, without waiting.
    pub fn all_lines(&mut self) -> Vec<String> {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line.clone());
            self.unmatched.push(line);
        }
        self.seen.clone()
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid() as i32), signal).expect("signal delivered");
    }

    /// SIGSTOPs the process and waits until the kernel has stopped it (a signal takes effect
    /// when the process next runs, which may be after a request already reached it).
    pub async fn freeze(&self) {
        use nix::sys::wait::{waitid, Id, WaitPidFlag};
        self.signal(Signal::SIGSTOP);
        let pid = Pid::from_raw(self.pid() as i32);
        // Told by the kernel (WNOWAIT leaves the child's state for its own reaper).
        let stopped = tokio::task::spawn_blocking(move || {
            waitid(Id::Pid(pid), WaitPidFlag::WSTOPPED | WaitPidFlag::WNOWAIT)
        });
        let stopped = tokio::time::timeout(WAIT, stopped).await;
        assert!(
            matches!(stopped, Ok(Ok(Ok(nix::sys::wait::WaitStatus::Stopped(..))))),
            "{} did not stop: {stopped:?}",
            self.label
        );
    }

    /// SIGKILLs the process and reaps it.
    pub async fn kill9(mut self) {
        self.signal(Signal::SIGKILL);
        let _ = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("killed process is reaped");
    }

    /// SIGTERMs the process and waits for it to exit.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        self.signal(Signal::SIGTERM);
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("process exits on SIGTERM")
            .expect("wait")
    }
}

/// A directory daemon under test.
pub struct Daemon {
    /// The running process.
    pub proc: Proc,
    /// Where it accepts connections.
    pub addr: SocketAddr,
}

impl Daemon {
    /// Starts host-cake on a free loopback port. Its parent is a loopback port where nothing
    /// listens: a test in the machine's own network namespace must never reach for the LAN
    /// directory at the standard `.195` address (the lab tests do that, in namespaces).
    pub async fn host_cake() -> Daemon {
        Daemon::host_cake_at("127.0.0.1:0".parse().unwrap()).await
    }

    /// Starts host-cake on `addr` (to restart one where it was), with no LAN parent.
    pub async fn host_cake_at(addr: SocketAddr) -> Daemon {
        Daemon::start(
            "host-cake",
            &[
                "--listen",
                &addr.to_string(),
                "--connect-to-directory",
                NO_DIRECTORY,
            ],
        )
        .await
    }

    /// Starts group-cake on a free loopback port, its parent at `host`.
    pub async fn group_cake(host: SocketAddr) -> Daemon {
        Daemon::start(
            "group-cake",
            &[
                "--listen",
                "127.0.0.1:0",
                "--connect-to-directory",
                &host.to_string(),
            ],
        )
        .await
    }

    /// Starts a directory binary with `args` and reads the address it bound.
    pub async fn start(program: &str, args: &[&str]) -> Daemon {
        let mut proc = Proc::spawn(program, program, args, &[]);
        let line = proc.expect(&["listening "]).await;
        let addr = line
            .trim_start_matches("listening ")
            .trim()
            .parse()
            .expect("listening line has an address");
        Daemon { proc, addr }
    }

    /// The value for `LC_DIRECTORY` that joins this directory.
    pub fn env(&self) -> String {
        self.addr.to_string()
    }
}

/// Starts `n` bench-echo processes publishing `{prefix}-{i}` at HOST scope, joined to `host`,
/// each once it has published.
pub async fn echoes(host: &Daemon, prefix: &str, n: usize) -> Vec<Proc> {
    let mut procs = Vec::new();
    for i in 0..n {
        let name = format!("{prefix}-{i}");
        let mut p = Proc::spawn(
            &name,
            "bench-echo",
            &["--name", &name, "--scope", "HOST"],
            &[("LC_DIRECTORY", &host.env())],
        );
        p.expect(&["published"]).await;
        procs.push(p);
    }
    procs
}

/// Whether a benchmark's `main` should run: under `cargo bench`, not when `cargo test
/// --benches` merely runs it to see that it starts (that prints a line saying so).
pub fn bench_requested() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let requested =
        args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test" || a == "--list");
    if !requested {
        println!("benchmark skipped (run with cargo bench)");
    }
    requested
}

/// Starts the publisher demo publishing `name` at `scope`, joined to `directory`.
pub fn publisher(label: &str, directory: &str, name: &str, scope: &str) -> Proc {
    Proc::spawn(
        label,
        "publisher",
        &["--name", name, "--scope", scope],
        &[("LC_DIRECTORY", directory)],
    )
}

/// Starts the subscriber demo searching `search` at `scope`, joined to `directory`.
pub fn subscriber(label: &str, directory: &str, search: &str, scope: &str) -> Proc {
    Proc::spawn(
        label,
        "subscriber",
        &["--search", search, "--scope", scope],
        &[("LC_DIRECTORY", directory)],
    )
}

/// A loopback port nothing listens on now (for a daemon started later, at a known address).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The value of `key=` in a line (`publisher=1a2b3c4d`).
pub fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line
        .find(&format!("{key}="))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
        + key.len()
        + 1;
    line[start..].split_whitespace().next().unwrap_or("")
}

pub mod churn;
pub mod home;
pub mod lab;
pub mod procfs;
pub mod table;
