//! The settings a command takes as flags (a role's: `add`, `update ROLE`; the group's:
//! `create`, `update group`), and the parsers of their values.

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use layer_cake::home::{GroupSettings, LogLimits, RestartMode, RetryPolicy};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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

/// When a role starts and when it counts as ready, as flags (`add`, `update ROLE`).
///
/// Without them a role starts with the composite and is ready once its process runs.
#[derive(Debug, Clone, Default, Args)]
pub struct ReadyFlags {
    /// Start the role only once a name matching SEARCH (a regular expression on whole names,
    /// e.g. 'db:.*') is published by a process of the composite; again for more (each must
    /// match). Until then `status` shows it waiting. The composite stops such roles before
    /// the roles they waited for. With `update`, replaces the list; '' clears it.
    #[arg(long, value_name = "SEARCH", value_parser = parse_search)]
    pub after: Vec<String>,
    /// The role is ready once its process has published a name matching SEARCH; again for
    /// more (each must match). With `update`, replaces the list; '' clears it.
    #[arg(long, value_name = "SEARCH", value_parser = parse_search)]
    pub ready_when_published: Vec<String>,
    /// The role is ready once COMMAND exits 0: run with `sh -c` in the role's folder and
    /// environment, every 250 ms until it does (each try killed after 5 s). '' clears it.
    #[arg(long, value_name = "COMMAND")]
    pub ready_probe: Option<String>,
}

impl ReadyFlags {
    /// Whether any was given.
    pub fn given(&self) -> bool {
        !self.after.is_empty() || !self.ready_when_published.is_empty() || self.ready_probe.is_some()
    }

    /// Lays the flags given over `settings`; returns whether any was given.
    pub fn apply(&self, settings: &mut layer_cake::home::RoleSettings) -> bool {
        let list = |given: &[String], setting: &mut Vec<String>| {
            if !given.is_empty() {
                *setting = given.iter().filter(|s| !s.is_empty()).cloned().collect();
            }
        };
        list(&self.after, &mut settings.after);
        list(&self.ready_when_published, &mut settings.ready_when_published);
        if let Some(probe) = &self.ready_probe {
            settings.ready_probe = (!probe.trim().is_empty()).then(|| probe.clone());
        }
        self.given()
    }
}

/// A search (a regular expression on whole names), checked now; empty to clear a list.
fn parse_search(text: &str) -> Result<String, String> {
    if !text.is_empty() {
        layer_cake::Search::new(text).map_err(|e| e.to_string())?;
    }
    Ok(text.to_string())
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

/// A number of seconds, over 0 and at most a day (`call --timeout`, `start --wait-timeout`).
pub fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds between 0 and 86400")),
    }
}

/// KEY=VALUE.
fn parse_var(text: &str) -> Result<(String, String), String> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))?;
    if !layer_cake::home::launch::valid_key(k) {
        return Err(format!("{k:?} is not a variable name (letters, digits and _)"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// A size: bytes, or a number with K, M or G (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
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
fn parse_secret_file(text: &str) -> Result<PathBuf, String> {
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
fn parse_directory(text: &str) -> Result<SocketAddr, String> {
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
