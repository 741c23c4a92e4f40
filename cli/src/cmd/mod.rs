//! One module per sub-command, plus the group-settings flags several of them share.

pub mod add;
pub mod call;
pub mod completions;
pub mod create;
pub mod delete;
pub mod destroy;
pub mod edit;
pub mod export;
mod flags;
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

pub use flags::{parse_retry, parse_seconds, GroupFlags, LaunchFlags, LogFlags, ReadyFlags, RetryChange};

use anyhow::{bail, Result};
use layer_cake::home::Home;
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
