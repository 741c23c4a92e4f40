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
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;

/// How many runs a role's history keeps.
pub const HISTORY_LEN: usize = 50;

const RUN_DIR: &str = "run";
const LOCK_FILE: &str = "lock";
const STATUS_FILE: &str = "status.json";
const HISTORY_FILE: &str = "history.json";
const RETURNED_FILE: &str = "returned.json";

/// Held by the group-cake running a home; released when it ends, however it ends.
#[derive(Debug)]
pub struct RunLock {
    _lock: Flock<File>,
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
}

impl RoleState {
    /// Running or about to be started again.
    pub fn is_active(self) -> bool {
        matches!(self, RoleState::Running | RoleState::Restarting)
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
}

impl Outcome {
    /// The status a shell would report: the exit code, or 128 + the signal.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Exited { code } => *code,
            Outcome::Signalled { signal, .. } => 128 + signal,
            Outcome::NotStarted { .. } => 127,
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
        match Flock::lock(self.lock_file()?, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(RunLock { _lock: lock }),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(HomeError::Running {
                home: self.path.clone(),
                pid: self.status().ok().flatten().map(|s| s.pid),
            }),
            Err((_, e)) => Err(HomeError::Io {
                path: self.run_dir().join(LOCK_FILE),
                source: e.into(),
            }),
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

    /// The running composite's status; `None` when the home is not running.
    pub fn running(&self) -> Result<Option<Status>, HomeError> {
        if !self.is_running()? {
            return Ok(None);
        }
        self.status()
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

    /// The file a role's process leaves its result in.
    pub fn returned_file(&self, role: &str) -> PathBuf {
        self.role_dir(role).join(RETURNED_FILE)
    }
}
