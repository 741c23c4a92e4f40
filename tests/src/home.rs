//! A home in a temporary folder, driven with the real `layer-cake` binary.

use crate::{bin, WAIT};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A temporary folder holding a home (`.layer-cake`), and the CLI pointed at it. Dropping it
/// stops the composite if it runs and kills any role process still recorded, then removes
/// the folder.
pub struct TestHome {
    dir: tempfile::TempDir,
    /// Processes the test started itself, killed on drop.
    pub extra_pids: Vec<u32>,
}

impl Default for TestHome {
    fn default() -> Self {
        Self::new()
    }
}

impl TestHome {
    /// An empty folder (no home yet).
    pub fn new() -> TestHome {
        bin("layer-cake");
        TestHome {
            dir: tempfile::tempdir().expect("a temporary folder"),
            extra_pids: Vec::new(),
        }
    }

    /// An empty folder made inside `parent` (a file system of the test's own, say).
    pub fn in_folder(parent: &Path) -> TestHome {
        bin("layer-cake");
        TestHome {
            dir: tempfile::tempdir_in(parent).expect("a folder in the given one"),
            extra_pids: Vec::new(),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The home folder in it.
    pub fn home(&self) -> PathBuf {
        self.dir().join(".layer-cake")
    }

    /// A `layer-cake` command run in the folder.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("layer-cake"));
        cmd.args(args)
            .current_dir(self.dir())
            .env_remove("LC_HOME")
            .env_remove("LC_DIRECTORY")
            .env("LC_DEBUG_LEVEL", "warn");
        cmd
    }

    /// Runs `layer-cake args...` to the end.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("layer-cake runs")
    }

    /// Runs it, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "layer-cake {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs it, asserting failure with status 1; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "layer-cake {args:?} should fail: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `layer-cake status --json` (which exits 3 when nothing runs).
    pub fn status(&self) -> Value {
        let out = self.run(&["status", "--json"]);
        assert!(
            matches!(out.status.code(), Some(0 | 3)),
            "status --json failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status --json parses")
    }

    /// One role's entry in `status --json`, if the composite has it.
    pub fn role_status(&self, role: &str) -> Option<Value> {
        self.status()["roles"]
            .as_array()?
            .iter()
            .find(|r| r["role"] == role)
            .cloned()
    }

    /// The pid of each role in the status that has one.
    pub fn role_pids(&self) -> Vec<(String, u32)> {
        let status = self.status();
        status["roles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| Some((r["role"].as_str()?.to_string(), r["pid"].as_u64()? as u32)))
            .collect()
    }

    /// Writes an executable shell script into the folder; returns its path.
    pub fn script(&self, name: &str, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script written");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path.display().to_string()
    }
}

impl Drop for TestHome {
    fn drop(&mut self) {
        let mut pids = self.extra_pids.clone();
        if self.home().join("run/status.json").exists() {
            if let Ok(text) = std::fs::read_to_string(self.home().join("run/status.json")) {
                if let Ok(status) = serde_json::from_str::<Value>(&text) {
                    pids.extend(status["pid"].as_u64().map(|p| p as u32));
                    if let Some(roles) = status["roles"].as_object() {
                        pids.extend(roles.values().filter_map(|r| r["pid"].as_u64()).map(|p| p as u32));
                    }
                }
            }
            let _ = self.run(&["stop", "--timeout", "10"]);
        }
        for pid in pids {
            if alive(pid) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
    }
}

/// Is `pid` a live process (not gone, not a zombie)?
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Waits until `done` holds, checking every 10 ms; panics naming `what` after [`WAIT`]. For
/// what no file of a home tells (a process gone, a unit started): inside a home, use
/// [`TestHome::wait_for`], which waits on the home's own changes.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The longest a [`TestHome::wait_for`] goes without checking, should a change come from
/// outside the home's folder (a socket that starts answering).
const UNWATCHED_CHECK: Duration = Duration::from_millis(200);

impl TestHome {
    /// Waits until `done` holds, checking it each time something in the home's folder changes
    /// (inotify: a file created, written, renamed into place: the status group-cake rewrites,
    /// a role's log line), and otherwise every [`UNWATCHED_CHECK`]; panics naming `what`
    /// after [`WAIT`].
    pub fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        use std::os::fd::AsFd;
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).expect("inotify");
        let changes = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_DELETE;
        // Every folder of the tree now; then each folder made since (a role's log folder,
        // `run/`) as its creation is reported.
        let mut folders: std::collections::HashMap<_, PathBuf> = std::collections::HashMap::new();
        let watch_tree = |root: PathBuf, folders: &mut std::collections::HashMap<_, PathBuf>| {
            let mut todo = vec![root];
            while let Some(folder) = todo.pop() {
                if let Ok(wd) = inotify.add_watch(&folder, changes) {
                    folders.insert(wd, folder.clone());
                }
                if let Ok(entries) = std::fs::read_dir(&folder) {
                    todo.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
                }
            }
        };
        watch_tree(self.dir().to_path_buf(), &mut folders);
        let until = Instant::now() + WAIT;
        while !done() {
            let left = until.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out waiting for {what}");
            let wait = PollTimeout::try_from(left.min(UNWATCHED_CHECK)).expect("a short timeout");
            let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, wait);
            for event in inotify.read_events().unwrap_or_default() {
                let made = AddWatchFlags::IN_CREATE | AddWatchFlags::IN_ISDIR;
                if let (true, Some(name), Some(parent)) = (
                    event.mask.contains(made),
                    event.name,
                    folders.get(&event.wd).cloned(),
                ) {
                    watch_tree(parent.join(name), &mut folders);
                }
            }
        }
    }
}
