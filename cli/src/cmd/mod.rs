//! One module per sub-command, plus the group-settings flags several of them share.

pub mod add;
pub mod call;
pub mod completions;
pub mod create;
pub mod delete;
pub mod destroy;
pub mod edit;
pub mod export;
pub mod history;
pub mod list;
pub mod log;
pub mod network;
pub mod operate;
pub mod ping;
pub mod returned;
pub mod run;
pub mod secret;
pub mod service;
pub mod start;
pub mod status;
pub mod stop;
pub mod tree;
pub mod update;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use layer_cake::home::{GroupSettings, Home, LogLimits, RestartMode, RetryPolicy};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// "Nothing runs": what `status` and `stop` end with (exit status 3) when the home's composite
/// is not running. The message, if any, goes to stderr.
#[derive(Debug)]
pub struct NothingRuns(pub String);

impl std::fmt::Display for NothingRuns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NothingRuns {}

/// The exit status of [`NothingRuns`].
pub const NOTHING_RUNS: u8 = 3;

/// How much of a log is kept, as flags (roles: `add`, `update ROLE`; the group's default for
/// its roles and for group-cake's own log: `create`, `update group`).
#[derive(Debug, Clone, Default, Args)]
pub struct LogFlags {
    /// The size at which a log file is moved aside: bytes, or with K, M or G (KiB, MiB, GiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub log_size: Option<u64>,
    /// How many log files are kept, the current one included (default 2).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub log_files: Option<u32>,
}

impl LogFlags {
    /// Lays the flags given over `limits`; returns whether any was given.
    pub fn apply(&self, limits: &mut Option<LogLimits>) -> bool {
        if self.log_size.is_none() && self.log_files.is_none() {
            return false;
        }
        let mut l = limits.unwrap_or_default();
        if let Some(size) = self.log_size {
            l.size = size;
        }
        if let Some(files) = self.log_files {
            l.files = files;
        }
        *limits = Some(l);
        true
    }
}

/// How a role's process is started, as flags (`add`, `update ROLE`). By default a role starts
/// in the folder the home is in, with a fixed environment (see `layer-cake add --help`).
#[derive(Debug, Clone, Default, Args)]
pub struct LaunchFlags {
    /// A variable the process starts with, KEY=VALUE (again for more).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_var)]
    pub env: Vec<(String, String)>,
    /// Remove a variable set with --env (update).
    #[arg(long = "unset-env", value_name = "KEY")]
    pub unset_env: Vec<String>,
    /// A file of KEY=VALUE lines, read at each start (empty: none).
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// The folder the process starts in (default: the folder the home is in; empty: the default).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// The user the process runs as (group-cake must run as root; empty: group-cake's own).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
}

impl LaunchFlags {
    /// Lays the flags given over `settings`; returns whether any was given. Paths are made
    /// absolute (group-cake does not run in this folder), and a user must exist.
    pub fn apply(&self, settings: &mut layer_cake::home::RoleSettings) -> Result<bool> {
        let mut changed = false;
        for (k, v) in &self.env {
            settings.env.insert(k.clone(), v.clone());
            changed = true;
        }
        for k in &self.unset_env {
            changed |= settings.env.remove(k).is_some();
        }
        if let Some(file) = &self.env_file {
            settings.env_file = absolute(file)?;
            if let Some(f) = &settings.env_file {
                let text = std::fs::read_to_string(f).with_context(|| f.display().to_string())?;
                layer_cake::home::launch::parse_env_file(&text)
                    .map_err(|e| anyhow!("{}: {e}", f.display()))?;
            }
            changed = true;
        }
        if let Some(dir) = &self.cwd {
            settings.cwd = absolute(dir)?;
            if let Some(d) = settings.cwd.as_ref().filter(|d| !d.is_dir()) {
                bail!("{} is not a folder", d.display());
            }
            changed = true;
        }
        if let Some(user) = &self.user {
            settings.user = (!user.is_empty()).then(|| user.clone());
            if let Some(u) = &settings.user {
                layer_cake::home::launch::user_ids(u)?;
            }
            changed = true;
        }
        Ok(changed)
    }
}

/// `path` made absolute; `None` for an empty one (clearing a setting).
fn absolute(path: &Path) -> Result<Option<PathBuf>> {
    if path.as_os_str().is_empty() {
        return Ok(None);
    }
    Ok(Some(
        std::path::absolute(path).with_context(|| path.display().to_string())?,
    ))
}

/// KEY=VALUE.
pub fn parse_var(text: &str) -> Result<(String, String), String> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))?;
    if !layer_cake::home::launch::valid_key(k) {
        return Err(format!("{k:?} is not a variable name (letters, digits and _)"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// A size: bytes, or a number with K, M or G (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (bytes, or 64K, 1M, 2G)"))?;
    let scale = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return Err(format!("{text:?} is not a size (bytes, or 64K, 1M, 2G)")),
    };
    match n.checked_mul(scale) {
        Some(size) if size >= 1024 => Ok(size),
        _ => Err(format!("{text:?}: a log file is at least 1K")),
    }
}

/// The group's settings, as flags (`create`, and `update group`).
#[derive(Debug, Clone, Default, Args)]
pub struct GroupFlags {
    /// Restart roles that end: `always`, `on-failure` (not after an exit with status 0),
    /// `never`, or JSON for the delays too, e.g. '{"mode": "on-failure", "min": 0.1, "max": 30}'
    /// or '{"regular_steps": 30.0}' (fields: mode, first_steps, regular_steps, min, max,
    /// randomized, stable, intensity, period). `none` clears the policy (a role's then follows
    /// the group's).
    #[arg(long, value_name = "POLICY", value_parser = parse_retry)]
    pub retry: Option<RetryChange>,
    /// The role whose end ends the composite, with its exit status.
    #[arg(long, value_name = "ROLE", conflicts_with = "no_main_role")]
    pub main_role: Option<String>,
    /// No main role: the composite runs while any role runs.
    #[arg(long)]
    pub no_main_role: bool,
    /// The host directory to join, when not host-cake's standard 127.0.0.1:54195
    /// (`ip:port` or `name:port`, the name looked up now).
    #[arg(long, value_name = "ADDR", conflicts_with = "directory_at_lan", value_parser = parse_directory)]
    pub directory_at_host: Option<SocketAddr>,
    /// A LAN directory to join directly, with no host-cake (`ip:port` or `name:port`).
    #[arg(long, value_name = "ADDR", value_parser = parse_directory)]
    pub directory_at_lan: Option<SocketAddr>,
    /// The LAN's secret (made by `layer-cake secret FILE`), when the LAN is encrypted:
    /// group-cake's link to the LAN directory and every role's sessions with other hosts use
    /// it. Checked now; an empty value clears it.
    #[arg(long, value_name = "FILE", value_parser = parse_secret_file)]
    pub secret_file: Option<PathBuf>,
    #[command(flatten)]
    pub log: LogFlags,
}

impl GroupFlags {
    /// Lays the flags given over `group`; returns whether any was given.
    pub fn apply(&self, group: &mut GroupSettings) -> bool {
        let mut changed = false;
        if let Some(retry) = &self.retry {
            group.retry = retry.policy();
            changed = true;
        }
        if let Some(role) = &self.main_role {
            group.main_role = Some(role.clone());
            changed = true;
        }
        if self.no_main_role {
            group.main_role = None;
            changed = true;
        }
        if let Some(addr) = self.directory_at_host {
            group.directory_at_host = Some(addr);
            group.directory_at_lan = None;
            changed = true;
        }
        if let Some(addr) = self.directory_at_lan {
            group.directory_at_lan = Some(addr);
            group.directory_at_host = None;
            changed = true;
        }
        if let Some(file) = &self.secret_file {
            group.secret_file = (!file.as_os_str().is_empty()).then(|| file.clone());
            changed = true;
        }
        changed |= self.log.apply(&mut group.log);
        changed
    }
}

/// Checks that `text` names a usable LAN secret file, and makes it absolute (group-cake does
/// not run in the folder `create` was run in). An empty `text` is kept, to clear the setting.
pub fn parse_secret_file(text: &str) -> Result<PathBuf, String> {
    if text.is_empty() {
        return Ok(PathBuf::new());
    }
    let path = std::path::absolute(text).map_err(|e| format!("{text}: {e}"))?;
    layer_cake::secure::Secret::from_file(&path).map_err(|e| e.to_string())?;
    Ok(path)
}

/// Parses and checks a restart policy given as JSON.
pub fn parse_retry(text: &str) -> Result<RetryChange, String> {
    let text = text.trim();
    if text == "none" {
        return Ok(RetryChange::Clear);
    }
    if !text.starts_with('{') {
        return text
            .parse::<RestartMode>()
            .map(|mode| RetryChange::Set(RetryPolicy::of_mode(mode)))
            .map_err(|e| format!("{e}, none, or a JSON policy"));
    }
    let policy: RetryPolicy = serde_json::from_str(text).map_err(|e| format!("not a restart policy: {e}"))?;
    policy.validate().map_err(|e| e.to_string())?;
    Ok(RetryChange::Set(policy))
}

/// A directory's address: `ip:port`, or `name:port` looked up now (its first IPv4 address,
/// else its first).
pub fn parse_directory(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if !text.contains(':') {
        return Err(format!("{text:?} has no port: give ip:port or name:port"));
    }
    let found: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(text)
        .map_err(|e| format!("cannot look up {text:?}: {e}"))?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(|| format!("{text:?} has no address"))
}

/// What `--retry` asks for: a policy, or none.
#[derive(Debug, Clone)]
pub enum RetryChange {
    /// This policy.
    Set(RetryPolicy),
    /// No policy of its own.
    Clear,
}

impl RetryChange {
    /// The setting it leaves.
    pub fn policy(&self) -> Option<RetryPolicy> {
        match self {
            RetryChange::Set(p) => Some(p.clone()),
            RetryChange::Clear => None,
        }
    }
}

/// The roles `searches` select (all when none), failing if any search matches no role.
pub fn select_existing(home: &Home, searches: &[String]) -> Result<Vec<String>> {
    for search in searches {
        if home.select(std::slice::from_ref(search))?.is_empty() {
            bail!("no role matches {search:?} (see `layer-cake list`)");
        }
    }
    let roles = home.select(searches)?;
    if roles.is_empty() {
        bail!(
            "{} has no roles: add some with `layer-cake add`",
            home.path().display()
        );
    }
    Ok(roles)
}

/// The group-cake to run: `$LC_GROUP_CAKE`, else the one beside this executable, else the one
/// on `PATH`.
pub fn group_cake() -> PathBuf {
    if let Some(path) = std::env::var_os("LC_GROUP_CAKE") {
        return PathBuf::from(path);
    }
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("group-cake"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("group-cake"))
}

/// The group-cake command line that runs `searches` of `home` as a composite.
pub fn group_cake_command(
    home: &Path,
    lock: &layer_cake::home::run::RunLock,
    searches: &[String],
    main_role: Option<&str>,
    grace_ms: u64,
    foreground: bool,
    log_level: Option<&str>,
) -> Result<std::process::Command> {
    let mut command = std::process::Command::new(group_cake());
    command
        .arg("--home")
        .arg(home)
        .arg("--run-lock-fd")
        .arg(lock.hand_over()?.to_string())
        .arg("--grace-ms")
        .arg(grace_ms.to_string());
    if foreground {
        command.arg("--foreground");
    }
    if let Some(level) = log_level {
        command.arg("--debug-level").arg(level);
    }
    if let Some(main) = main_role {
        command.arg("--main-role").arg(main);
    }
    command.arg("--").args(searches);
    Ok(command)
}

/// Checks that a `--main-role` given on the command line is among the roles to run.
pub fn check_main_role(main_role: Option<&str>, roles: &[String]) -> Result<()> {
    if let Some(main) = main_role {
        if !roles.iter().any(|r| r == main) {
            bail!(
                "the main role {main:?} is not among the roles to run ({})",
                roles.join(", ")
            );
        }
    }
    Ok(())
}

/// Waits for `done` to hold, checking every few milliseconds, at most `deadline`.
pub fn wait_until(deadline: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<bool> {
    let until = std::time::Instant::now() + deadline;
    loop {
        if done()? {
            return Ok(true);
        }
        if std::time::Instant::now() >= until {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether process `pid` has ended (gone, or a zombie waiting to be reaped).
pub fn process_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state == "Z" || state == "X"),
        Err(_) => true,
    }
}

/// A duration as a person reads it: `45s`, `5m03s`, `2h07m`, `3d04h`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// Time since `t` (zero if in the future).
pub fn since(t: jiff::Timestamp) -> Duration {
    let now = jiff::Timestamp::now();
    Duration::try_from(now.duration_since(t)).unwrap_or_default()
}
