//! A running composite, as its home records it: the lock, the status, each role's history.
//!
//! ```text
//! .layer-cake/
//!   run/lock                    locked (flock) by the group-cake running the home
//!   run/status.json             the composite's state, rewritten by group-cake on every change
//!   run/group-cake.log          group-cake's own log, when started in the background
//!   roles/<role>/history.json   the role's last runs: start, end, how it ended, its result
//!   roles/<role>/returned.json  where a running role leaves its result (`LC_RETURNED`)
//!   roles/<role>/log/           the role's output (see [`super::log`])
//! ```
//!
//! group-cake writes these files and the CLI reads them; both through this module. Whether a
//! home is running is decided by the lock, never by a process id that may have been reused.

use super::files::{read_json, write_json_with};
use super::{io_error, Home, HomeError};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;

/// How long a new holder of the run lock may take to record itself (and its status).
const HOLDER_RECORDED: std::time::Duration = std::time::Duration::from_secs(2);

/// The room a composite needs on its home's disk to start.
pub const ROOM_TO_START: u64 = 256 * 1024;

/// How many runs a role's history keeps.
pub const HISTORY_LEN: usize = 50;

const RUN_DIR: &str = "run";
const LOCK_FILE: &str = "lock";
const STATUS_FILE: &str = "status.json";
const HISTORY_FILE: &str = "history.json";
const RETURNED_FILE: &str = "returned.json";

/// Held by the group-cake running a home; released when it ends, however it ends.
///
/// The lock file also names the holder's process id (written by whoever takes the lock, as
/// soon as it knows it), so `stop` signals the process that holds the lock now, never the one
/// an old status file names. `layer-cake start` takes the lock before it starts group-cake
/// and hands it over ([`hand_over`](Self::hand_over), [`Home::adopt_lock`]): from the
/// moment `start` is typed, the home is running.
#[derive(Debug)]
pub struct RunLock {
    /// The lock file, locked (`flock`: the lock belongs to the open file, so it lasts while any
    /// process holds a descriptor of it; closing one does not let it go while another is open).
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// Records `pid` as the holder (0: not known yet): written in place, at a fixed width, so
    /// that writing it again (the next holder) needs no new room on the disk.
    pub fn set_holder(&self, pid: u32) -> Result<(), HomeError> {
        use std::os::unix::fs::FileExt;
        self.file
            .write_all_at(format!("{pid:<10}\n").as_bytes(), 0)
            .map_err(io_error(&self.path))
    }

    /// Lets a child process inherit the lock: the descriptor (which the child takes with
    /// [`Home::adopt_lock`]) stays open across `exec`. The lock is held until every process
    /// that has it has let it go.
    pub fn hand_over(&self) -> Result<std::os::fd::RawFd, HomeError> {
        use nix::fcntl::{fcntl, FcntlArg, FdFlag};
        use std::os::fd::AsRawFd;
        let fd = self.file.as_raw_fd();
        fcntl(&self.file, FcntlArg::F_SETFD(FdFlag::empty())).map_err(|e| HomeError::Io {
            path: self.path.clone(),
            error: e.into(),
        })?;
        Ok(fd)
    }
}

/// The composite as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CompositeState {
    /// Starting its roles.
    Starting,
    /// Running.
    Running,
    /// Stopping its roles.
    Stopping,
    /// Over: every role process has ended.
    Stopped,
}

/// What one role is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleState {
    /// Its process is running.
    Running,
    /// Its process ended; it will be started again at `next_start`.
    Restarting,
    /// It ended and will not be started again (no restart policy).
    Ended,
    /// It restarted too often (the policy's intensity limit) and is left stopped.
    Failed,
    /// It was stopped with the composite.
    Stopped,
    /// Not started yet: it waits for names to be published (its `after` searches).
    Waiting,
}

impl RoleState {
    /// Running, about to be started again, or waiting to start.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            RoleState::Running | RoleState::Restarting | RoleState::Waiting
        )
    }
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It exited with this status.
    Exited {
        /// The exit status.
        code: i32,
    },
    /// A signal ended it.
    Signalled {
        /// The signal's number.
        signal: i32,
        /// The signal's name (`SIGKILL`).
        name: String,
    },
    /// It could not be started.
    NotStarted {
        /// Why.
        reason: String,
    },
    /// Its end was not recorded: the group-cake that ran it ended first (killed itself, say);
    /// the next run of the home found it so.
    Unrecorded {
        /// What is known.
        reason: String,
    },
}

impl Outcome {
    /// The status a shell would report: the exit code, or 128 + the signal.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Exited { code } => *code,
            Outcome::Signalled { signal, .. } => 128 + signal,
            Outcome::NotStarted { .. } => 127,
            Outcome::Unrecorded { .. } => 255,
        }
    }

    /// Exited with status 0.
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Exited { code: 0 })
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Exited { code } => write!(f, "exited {code}"),
            Outcome::Signalled { name, .. } => write!(f, "killed by {name}"),
            Outcome::NotStarted { reason } => write!(f, "not started: {reason}"),
            Outcome::Unrecorded { reason } => write!(f, "end not recorded: {reason}"),
        }
    }
}

/// One role in the status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleStatus {
    /// What it is doing.
    pub state: RoleState,
    /// Its process, while running.
    pub pid: Option<u32>,
    /// When it entered `state` (for a running role: when its process started).
    pub since: Timestamp,
    /// How many times it has been started again.
    pub restarts: u32,
    /// When it will be started again (state `restarting`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_start: Option<Timestamp>,
    /// How its last process ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Outcome>,
    /// Its process runs and has done what it declares makes it ready (published the names, or
    /// passed the probe; at once when it declares nothing).
    #[serde(default)]
    pub ready: bool,
    /// What it waits for: the searches no published name matches yet (state `waiting`), or,
    /// while running and not ready, what its readiness still needs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_for: Vec<String>,
}

/// The composite's state: `run/status.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// group-cake's process id.
    pub pid: u32,
    /// The group's directory, which the roles joined.
    pub directory: SocketAddr,
    /// When the composite started.
    pub started: Timestamp,
    /// Started with `run` (true) or `start` (false).
    pub foreground: bool,
    /// The composite as a whole.
    pub state: CompositeState,
    /// The role whose end ends the composite, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_role: Option<String>,
    /// Each role it runs.
    pub roles: BTreeMap<String, RoleStatus>,
}

/// One run of a role, in its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// When the process started.
    pub start: Timestamp,
    /// When it ended (`None` while it runs).
    #[serde(default)]
    pub end: Option<Timestamp>,
    /// Its process id.
    #[serde(default)]
    pub pid: Option<u32>,
    /// How it ended.
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// What it left with [`crate::role::set_returned`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned: Option<serde_json::Value>,
}

impl Home {
    /// The folder for a running composite's files.
    pub fn run_dir(&self) -> PathBuf {
        self.path.join(RUN_DIR)
    }

    fn lock_file(&self) -> Result<File, HomeError> {
        let dir = self.run_dir();
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let path = dir.join(LOCK_FILE);
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error(&path))
    }

    /// Takes the run lock, or says who holds it.
    pub fn lock(&self) -> Result<RunLock, HomeError> {
        let file = self.lock_file()?;
        match file.try_lock() {
            Ok(()) => Ok(RunLock {
                file,
                path: self.run_dir().join(LOCK_FILE),
            }),
            Err(std::fs::TryLockError::WouldBlock) => Err(HomeError::Running {
                home: self.path.clone(),
                pid: self.recorded_holder(),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(HomeError::Io {
                path: self.run_dir().join(LOCK_FILE),
                error: e,
            }),
        }
    }

    /// Fails with [`HomeError::DiskFull`] when the disk holding the home has less room than a
    /// composite needs to start (its status, its roles' first log lines): [`ROOM_TO_START`].
    pub fn check_room(&self) -> Result<(), HomeError> {
        let Ok(fs) = nix::sys::statvfs::statvfs(&self.path) else {
            return Ok(()); // (Not knowing is no reason to refuse.)
        };
        let free = fs.blocks_available().saturating_mul(fs.fragment_size());
        if free < ROOM_TO_START {
            return Err(HomeError::DiskFull {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// Takes over the run lock a parent process handed over ([`RunLock::hand_over`]) as
    /// descriptor `fd`: checked to be this home's lock file, and closed again across `exec`
    /// (the roles must not hold it).
    pub fn adopt_lock(&self, fd: std::os::fd::OwnedFd) -> Result<RunLock, HomeError> {
        use nix::fcntl::{fcntl, FcntlArg, FdFlag};
        let path = self.run_dir().join(LOCK_FILE);
        let file = File::from(fd);
        let given = file.metadata().map_err(io_error(&path))?;
        let ours = std::fs::metadata(&path).map_err(io_error(&path))?;
        if !crate::fsutil::same_file(&given, &ours) {
            return Err(HomeError::Io {
                path,
                error: std::io::Error::other("the descriptor handed over is not this home's lock file"),
            });
        }
        fcntl(&file, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(|e| HomeError::Io {
            path: path.clone(),
            error: e.into(),
        })?;
        // The same open file holds the lock already: taking it again cannot block.
        match file.try_lock() {
            Ok(()) => Ok(RunLock { file, path }),
            Err(e) => Err(HomeError::Io {
                path,
                error: std::io::Error::other(format!("the lock handed over is not held: {e}")),
            }),
        }
    }

    /// The holder's process id as the lock file records it: `None` while not written yet
    /// (or written as 0, by a `start` that has not started group-cake yet).
    fn recorded_holder(&self) -> Option<u32> {
        std::fs::read_to_string(self.run_dir().join(LOCK_FILE))
            .ok()?
            .trim()
            .parse()
            .ok()
            .filter(|pid| *pid != 0)
    }

    /// The process that holds the run lock now (group-cake, or `start` handing it over);
    /// `None` when the home is not running. Waits a moment for a holder that has just taken
    /// the lock to record itself.
    pub fn holder(&self) -> Result<Option<u32>, HomeError> {
        let until = std::time::Instant::now() + HOLDER_RECORDED;
        loop {
            if !self.is_running()? {
                return Ok(None);
            }
            if let Some(pid) = self.recorded_holder() {
                return Ok(Some(pid));
            }
            if std::time::Instant::now() >= until {
                return Err(HomeError::Running {
                    home: self.path.clone(),
                    pid: None,
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// Is a group-cake running this home?
    pub fn is_running(&self) -> Result<bool, HomeError> {
        if !self.run_dir().join(LOCK_FILE).exists() {
            return Ok(false);
        }
        match self.lock() {
            Ok(_released_at_once) => Ok(false),
            Err(HomeError::Running { .. }) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// The running composite's status; `None` when the home is not running. A composite
    /// still starting (its status not yet written: the file is the last run's) is waited for a
    /// moment, then reported as [`HomeError::Starting`].
    pub fn running(&self) -> Result<Option<Status>, HomeError> {
        let until = std::time::Instant::now() + HOLDER_RECORDED;
        loop {
            let Some(pid) = self.holder()? else {
                return Ok(None);
            };
            match self.status()? {
                Some(status) if status.pid == pid => return Ok(Some(status)),
                _ if std::time::Instant::now() >= until => {
                    return Err(HomeError::Starting {
                        home: self.path.clone(),
                        pid,
                    })
                }
                _ => std::thread::sleep(std::time::Duration::from_millis(2)),
            }
        }
    }

    /// The last status written (which may be of a composite that has ended).
    pub fn status(&self) -> Result<Option<Status>, HomeError> {
        let path = self.run_dir().join(STATUS_FILE);
        if !path.exists() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }

    /// Replaces the status (atomically; not flushed to disk: it describes processes, which a
    /// crash of the machine ends anyway).
    pub fn save_status(&self, status: &Status) -> Result<(), HomeError> {
        write_json_with(&self.run_dir().join(STATUS_FILE), status, false)
    }

    /// Roles of this home that a running composite is running (or about to restart).
    pub fn active_roles(&self) -> Result<Vec<String>, HomeError> {
        Ok(self
            .running()?
            .map(|s| {
                s.roles
                    .into_iter()
                    .filter(|(_, r)| r.state.is_active())
                    .map(|(name, _)| name)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Fails, naming them, if any of `roles` is running.
    pub fn check_not_running(&self, roles: &[String]) -> Result<(), HomeError> {
        let active = self.active_roles()?;
        let busy: Vec<String> = roles.iter().filter(|r| active.contains(r)).cloned().collect();
        if busy.is_empty() {
            Ok(())
        } else {
            Err(HomeError::RolesRunning(busy))
        }
    }

    /// A role's runs, oldest first.
    pub fn history(&self, role: &str) -> Result<Vec<Run>, HomeError> {
        let path = self.role_dir(role).join(HISTORY_FILE);
        if !path.exists() {
            return Ok(Vec::new());
        }
        read_json(&path)
    }

    /// Records the start (`run.end` is `None`) or the end of a role's latest run: an entry with
    /// the same start and process id is replaced, anything else is appended. Keeps the last
    /// [`HISTORY_LEN`] runs.
    pub fn record_run(&self, role: &str, run: &Run) -> Result<(), HomeError> {
        let mut runs = self.history(role).unwrap_or_default();
        match runs.last_mut() {
            Some(last) if last.start == run.start && last.pid == run.pid => *last = run.clone(),
            _ => runs.push(run.clone()),
        }
        if runs.len() > HISTORY_LEN {
            runs.drain(..runs.len() - HISTORY_LEN);
        }
        // Atomic, not flushed to disk at once: a role may start and end many times a second.
        write_json_with(&self.role_dir(role).join(HISTORY_FILE), &runs, false)
    }

    /// Closes every role's last run that has no end (its group-cake ended before it could
    /// record one): marked [`Outcome::Unrecorded`]. Done by the holder of the run lock, before
    /// it starts anything.
    pub fn close_unrecorded_runs(&self, _held: &RunLock) -> Result<usize, HomeError> {
        let mut closed = 0;
        for role in self.roles()? {
            let mut runs = self.history(&role).unwrap_or_default();
            let Some(last) = runs.last_mut().filter(|r| r.end.is_none() && r.outcome.is_none()) else {
                continue;
            };
            last.outcome = Some(unrecorded(last.pid));
            write_json_with(&self.role_dir(&role).join(HISTORY_FILE), &runs, false)?;
            closed += 1;
        }
        Ok(closed)
    }

    /// The file a role's process leaves its result in.
    pub fn returned_file(&self, role: &str) -> PathBuf {
        self.role_dir(role).join(RETURNED_FILE)
    }
}

/// What a run whose end was not recorded is marked with.
pub fn unrecorded(pid: Option<u32>) -> Outcome {
    Outcome::Unrecorded {
        reason: format!(
            "the composite ended before recording how process {} ended",
            pid.map_or("?".to_string(), |p| p.to_string())
        ),
    }
}
