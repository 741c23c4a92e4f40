//! `layer-cake start`: the composite process in the background.

use super::status::state_name;
use super::{check_main_role, group_cake_command, select_existing, wait_until};
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use layer_cake::home::run::{CompositeState, Outcome, RoleState};
use layer_cake::home::Home;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// How long `start` waits for the composite to be up.
const READY: Duration = Duration::from_secs(20);

/// Start roles as one composite process in the background, and return once it runs. While
/// it runs, `start ROLE...` starts those roles in it (stopped ones, or roles added since).
///
/// The same composite as `run`, detached from the terminal: the roles' output goes to their
/// logs in the home (`layer-cake log ROLE`), group-cake's own to run/group-cake.log. See it with
/// `layer-cake status`; end it with `layer-cake stop`.
#[derive(Args)]
pub struct Start {
    /// Only the roles matching these regular expressions (whole names); all when none.
    search: Vec<String>,
    /// End when this role ends, with its exit status (over the group's setting).
    #[arg(long, value_name = "ROLE")]
    main_role: Option<String>,
    /// How long roles get to end after SIGTERM before they are killed, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    grace_ms: u64,
    /// Return only once every role started is ready (see `layer-cake status`), or, for a role
    /// that runs once, has ended with status 0. Fails when a role ends otherwise first, or at
    /// --wait-timeout (the composite keeps running either way).
    #[arg(long)]
    wait: bool,
    /// How long --wait waits, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, requires = "wait", value_parser = super::parse_seconds)]
    wait_timeout: f64,
}

impl Start {
    pub fn run(self, home_path: &Path) -> Result<()> {
        let began = std::time::Instant::now();
        let home = Home::open(home_path)?;
        let roles = select_existing(&home, &self.search)?;
        check_main_role(self.main_role.as_deref(), &roles)?;
        // Held from here on, and handed over to group-cake: a `stop` or another `start` sees
        // the home running from this moment, and the process to signal.
        let lock = match home.lock() {
            // Running already: some roles of it may be started.
            Err(layer_cake::home::HomeError::Running { .. }) if !self.search.is_empty() => {
                super::operate::start_or_stop(&home, &self.search, true)?;
                if self.wait {
                    let chosen = home.select(&self.search)?;
                    wait_ready(&home, &chosen, Duration::from_secs_f64(self.wait_timeout), began)?;
                }
                return Ok(());
            }
            other => other?,
        };
        home.check_room()
            .with_context(|| format!("cannot start {}", home.path().display()))?;
        // No holder yet (0: `stop` waits for group-cake's pid; it never signals this process),
        // and a full disk is found out here, before anything starts.
        lock.set_holder(0)
            .with_context(|| format!("cannot start {}", home.path().display()))?;
        let log_path = home.run_dir().join("group-cake.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| log_path.display().to_string())?;
        let mut child = group_cake_command(
            home.path(),
            &lock,
            &self.search,
            self.main_role.as_deref(),
            self.grace_ms,
            false,
            None,
        )?
        // Its own process group: the terminal's Ctrl-C and hang-up are not for it.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .map_err(|e| anyhow!("cannot start {}: {e}", super::group_cake().display()))?;
        let pid = child.id();
        lock.set_holder(pid)?;
        // (Closing this end does not let the lock go: group-cake holds the same open file.)
        drop(lock);
        let mut exited = None;
        let up = wait_until(READY, || {
            if let Some(status) = child.try_wait()? {
                exited = Some(status);
                return Ok(true);
            }
            Ok(home
                .status()
                .ok()
                .flatten()
                .is_some_and(|s| s.pid == pid && s.state == CompositeState::Running))
        })?;
        if let Some(status) = exited {
            // Told to stop (`layer-cake stop`) before it was up: it stopped, as asked.
            if status.success() || status.signal() == Some(nix::libc::SIGTERM) {
                bail!("stopped while starting (group-cake pid {pid} was asked to stop)");
            }
            bail!(
                "group-cake ended at once ({status}); its log ({}) ends with:\n{}",
                log_path.display(),
                tail(&log_path, 10)
            );
        }
        if !up {
            bail!(
                "group-cake (pid {pid}) did not report running within {READY:?}; see {}",
                log_path.display()
            );
        }
        let status = home.status()?.expect("checked above");
        println!(
            "started {} role{} (group-cake pid {pid}, directory {})",
            roles.len(),
            if roles.len() == 1 { "" } else { "s" },
            status.directory
        );
        if self.wait {
            wait_ready(&home, &roles, Duration::from_secs_f64(self.wait_timeout), began)?;
        }
        Ok(())
    }
}

/// Waits until every role of `roles` is ready, or has ended with status 0; fails when one
/// ends otherwise, is stopped, or at `deadline`, saying which and what they wait for. Says
/// how long since `began` (the command's start) they took.
fn wait_ready(home: &Home, roles: &[String], deadline: Duration, began: std::time::Instant) -> Result<()> {
    let mut failed: Option<String> = None;
    let mut pending: Vec<String> = Vec::new();
    let done = wait_until(deadline, || {
        let Some(status) = home.running()? else {
            failed = Some(format!("{} stopped while waiting", home.path().display()));
            return Ok(true);
        };
        pending.clear();
        for name in roles {
            let Some(r) = status.roles.get(name) else { continue };
            let ok_end = r.last.as_ref().is_some_and(Outcome::is_success);
            match r.state {
                RoleState::Running if r.ready => {}
                RoleState::Ended if ok_end => {}
                RoleState::Failed | RoleState::Ended | RoleState::Stopped => {
                    let how = r
                        .last
                        .as_ref()
                        .map_or("never ran".to_string(), Outcome::to_string);
                    failed = Some(format!(
                        "{name} is {} ({how}) while start waits for every role to be ready",
                        state_name(r.state)
                    ));
                    return Ok(true);
                }
                _ if r.waiting_for.is_empty() => pending.push(format!("{name} ({})", state_name(r.state))),
                _ => pending.push(format!(
                    "{name} ({}, waits for {})",
                    state_name(r.state),
                    r.waiting_for.join(", ")
                )),
            }
        }
        Ok(pending.is_empty())
    })?;
    if let Some(why) = failed {
        bail!("{why}; see `layer-cake status` and `layer-cake log`");
    }
    if !done {
        bail!(
            "not every role was ready within {:.1} s: {}",
            deadline.as_secs_f64(),
            pending.join("; ")
        );
    }
    println!(
        "{} role{} ready, {} ms after start",
        roles.len(),
        if roles.len() == 1 { "" } else { "s" },
        began.elapsed().as_millis()
    );
    Ok(())
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
