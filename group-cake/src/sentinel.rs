//! No orphans: a small process that outlives group-cake just long enough to end its roles.
//!
//! group-cake starts itself again as `group-cake --sentinel`, in a new process group, with a
//! pipe on its stdin whose other end only group-cake holds; every role is started in the
//! sentinel's process group. When group-cake ends, however it ends (even by SIGKILL), the pipe
//! closes: the sentinel sends SIGTERM to the whole group, gives the roles the grace period,
//! then sends SIGKILL to whatever remains, itself included.
//!
//! Roles are started with the fast spawn path (no `pre_exec` closure): joining a process group
//! is something `posix_spawn` does by itself. A role that leaves the group on purpose (its own
//! `setsid`) is beyond its reach.

use nix::sys::signal::{killpg, signal, SigHandler, Signal};
use nix::unistd::{getpgrp, getpid, Pid};
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, ChildStdin, Command};

/// The running sentinel, from group-cake's side.
pub struct Sentinel {
    child: Child,
    stdin: Option<ChildStdin>,
    pid: u32,
}

impl Sentinel {
    /// Starts the sentinel: this same executable with `--sentinel`.
    pub fn start(grace: Duration) -> std::io::Result<Sentinel> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--sentinel")
            .arg("--grace-ms")
            .arg(grace.as_millis().to_string())
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take();
        let pid = child.id().unwrap_or_default();
        Ok(Sentinel { child, stdin, pid })
    }

    /// The process group roles join.
    pub fn group(&self) -> i32 {
        self.pid as i32
    }

    /// Lets it go (closing the pipe) and waits for it, at most `deadline`.
    pub async fn finish(mut self, deadline: Duration) {
        drop(self.stdin.take());
        if tokio::time::timeout(deadline, self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

/// The sentinel's whole life: wait for group-cake to go, then end the group.
pub fn run(grace: Duration) -> ! {
    // SAFETY: setting a signal to be ignored installs no handler code.
    unsafe {
        for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
            let _ = signal(sig, SigHandler::SigIgn);
        }
    }
    let mut stdin = std::io::stdin();
    let mut buf = [0u8; 64];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let group = getpgrp();
    if others_in_group(group) {
        let _ = killpg(group, Signal::SIGTERM);
        let until = Instant::now() + grace;
        while Instant::now() < until && others_in_group(group) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = killpg(group, Signal::SIGKILL);
    std::process::exit(0)
}

/// Is any live process other than this one in `group`?
fn others_in_group(group: Pid) -> bool {
    let me = getpid().as_raw();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            return false;
        };
        if pid == me {
            return false;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // After the command name in parentheses: state, ppid, pgrp, ...
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|f| f.parse::<i32>().ok());
        pgrp == Some(group.as_raw()) && state != Some("Z")
    })
}
