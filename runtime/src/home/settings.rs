//! What a home stores: the group's settings and each role's.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// When and how often a role that ended is started again.
///
/// Two ways to say it, as in the original: a list of delays (`first_steps`, then
/// `regular_steps` for ever, each spread by `randomized`), or an exponential backoff between
/// `min` and `max`. Either way `stable` resets the sequence once a process has stayed up that
/// long, and more than `intensity` restarts within `period` seconds marks the role failed.
/// `{"regular_steps": 30.0}` restarts every 30 s for ever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Which ends are followed by a restart: every one (the default), only failures, or none.
    pub mode: RestartMode,
    /// Delays (seconds) for the first restarts.
    pub first_steps: Vec<f64>,
    /// The delay (seconds) for every restart after `first_steps`; when absent, the delay
    /// doubles from `min` up to `max`.
    pub regular_steps: Option<f64>,
    /// The first delay of the exponential backoff, in seconds.
    pub min: f64,
    /// The largest delay of the exponential backoff, in seconds.
    pub max: f64,
    /// Up to this many seconds are added to each delay at random.
    pub randomized: f64,
    /// A process up for this many seconds resets the sequence.
    pub stable: f64,
    /// How many restarts are allowed within `period` before the role is marked failed.
    pub intensity: u32,
    /// The window, in seconds, for `intensity`.
    pub period: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            mode: RestartMode::Always,
            first_steps: Vec::new(),
            regular_steps: None,
            min: 0.1,
            max: 30.0,
            randomized: 0.0,
            stable: 60.0,
            intensity: 10,
            period: 60.0,
        }
    }
}

/// Which ends of a role's process are followed by a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartMode {
    /// Every end.
    #[default]
    Always,
    /// Every end but an exit with status 0.
    OnFailure,
    /// None (the role runs once, even where the group restarts its roles).
    Never,
}

impl std::str::FromStr for RestartMode {
    type Err = String;

    fn from_str(s: &str) -> Result<RestartMode, String> {
        match s {
            "always" => Ok(RestartMode::Always),
            "on-failure" => Ok(RestartMode::OnFailure),
            "never" => Ok(RestartMode::Never),
            other => Err(format!("no restart mode {other:?} (always, on-failure, never)")),
        }
    }
}

impl RetryPolicy {
    /// A policy of `mode` with every other field at its default.
    pub fn of_mode(mode: RestartMode) -> RetryPolicy {
        RetryPolicy {
            mode,
            ..RetryPolicy::default()
        }
    }

    /// Whether a process that ended with `outcome` is started again (the delay and the
    /// intensity limit aside).
    pub fn restarts_after(&self, outcome: &super::run::Outcome) -> bool {
        match self.mode {
            RestartMode::Always => true,
            RestartMode::OnFailure => !outcome.is_success(),
            RestartMode::Never => false,
        }
    }

    /// Checks the numbers make sense.
    pub fn validate(&self) -> Result<(), BadRetryPolicy> {
        let steps = self.first_steps.iter().chain(self.regular_steps.iter());
        for (name, value) in [
            ("min", self.min),
            ("max", self.max),
            ("randomized", self.randomized),
        ]
        .into_iter()
        .chain(steps.map(|s| ("steps", *s)))
        {
            if !value.is_finite() || value < 0.0 {
                return Err(BadRetryPolicy::NotSeconds { name, value });
            }
        }
        if self.min > self.max {
            return Err(BadRetryPolicy::MinOverMax {
                min: self.min,
                max: self.max,
            });
        }
        if self.period <= 0.0 || !self.period.is_finite() {
            return Err(BadRetryPolicy::Period);
        }
        Ok(())
    }
}

/// Why a restart policy's numbers make no sense.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BadRetryPolicy {
    /// A duration that is negative or not a number.
    #[error("{name} must be a number of seconds, 0 or more (got {value})")]
    NotSeconds {
        /// Which field.
        name: &'static str,
        /// What it held.
        value: f64,
    },
    /// `min` over `max`.
    #[error("min ({min}) is over max ({max})")]
    MinOverMax {
        /// The shortest delay.
        min: f64,
        /// The longest delay.
        max: f64,
    },
    /// `period` not over 0.
    #[error("period must be over 0 seconds")]
    Period,
}

/// How much of a log is kept: files of up to `size` bytes, `files` of them (the one being
/// written included); the oldest goes when a new one starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogLimits {
    /// The size at which a log file is moved aside and a new one begun, in bytes.
    pub size: u64,
    /// How many files are kept, the current one included (at least 1).
    pub files: u32,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            size: 1 << 20,
            files: 2,
        }
    }
}

/// The group's own settings (`layer-cake create ...`, `layer-cake update group ...`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupSettings {
    /// Restart roles that end; off when absent.
    pub retry: Option<RetryPolicy>,
    /// The role whose end ends the composite (with its exit status).
    pub main_role: Option<String>,
    /// The host directory to connect to, when not host-cake's standard address.
    pub directory_at_host: Option<SocketAddr>,
    /// A LAN directory to connect to directly (no host-cake).
    pub directory_at_lan: Option<SocketAddr>,
    /// The LAN's secret (a file made by `layer-cake secret`), for a composite that joins an
    /// encrypted LAN: group-cake's link to lan-cake, and every role's sessions with other hosts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    /// How much of each role's log is kept, unless the role says otherwise (and of
    /// group-cake's own log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<LogLimits>,
}

impl RoleSettings {
    /// A role that runs `executable` with no arguments, and every other setting left to the
    /// group or the defaults.
    pub fn new(executable: PathBuf) -> RoleSettings {
        RoleSettings {
            executable,
            args: Vec::new(),
            retry: None,
            log: None,
            env: Default::default(),
            env_file: None,
            cwd: None,
            user: None,
            after: Vec::new(),
            ready_when_published: Vec::new(),
            ready_probe: None,
        }
    }
}

/// One role: what to run and with what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSettings {
    /// The program (absolute path).
    pub executable: PathBuf,
    /// The arguments it is started with.
    #[serde(default)]
    pub args: Vec<String>,
    /// A restart policy for this role alone, over the group's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// How much of this role's log is kept, over the group's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogLimits>,
    /// Variables the process starts with (over those of `env_file`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env: std::collections::BTreeMap<String, String>,
    /// A file of `KEY=VALUE` lines the process's variables are read from at each start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_file: Option<PathBuf>,
    /// The folder the process starts in (default: the folder the home is in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// The user the process runs as (group-cake must be root to change it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Searches (whole-name regular expressions): the role starts only once each matches a
    /// name published in the composite.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// Searches: the role is ready once its process has published a name matching each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ready_when_published: Vec<String>,
    /// A shell command (`sh -c`, in the role's folder and environment): the role is ready
    /// once it exits 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_probe: Option<String>,
}
