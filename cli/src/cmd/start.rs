//! `layer-cake start`: the composite process in the background.

use super::{check_main_role, group_cake_command, select_existing, wait_until};
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use layer_cake::home::run::CompositeState;
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
}

impl Start {
    pub fn run(self, home_path: &Path) -> Result<()> {
        let home = Home::open(home_path)?;
        let roles = select_existing(&home, &self.search)?;
        check_main_role(self.main_role.as_deref(), &roles)?;
        // Held from here on, and handed over to group-cake: a `stop` or another `start` sees
        // the home running from this moment, and the process to signal.
        let lock = match home.lock() {
            // Running already: some roles of it may be started.
            Err(layer_cake::home::HomeError::Running { .. }) if !self.search.is_empty() => {
                return super::operate::start_or_stop(&home, &self.search, true);
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
        Ok(())
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
