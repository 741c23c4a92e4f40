//! `layer-cake stop`: end the background composite.

use super::{process_ended, wait_until};
use anyhow::{bail, Result};
use clap::Args;
use layer_cake::home::Home;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::time::Duration;

/// Stop the composite started with `layer-cake start` (or `run`, from another terminal), or
/// with ROLEs, only those roles.
///
/// Asks group-cake to stop (SIGTERM): it stops every role in order (SIGTERM, the grace period,
/// then SIGKILL) and ends. Returns once it has. Exit status 3 when nothing runs (as `status`
/// says too).
#[derive(Args)]
pub struct Stop {
    /// Only these roles (regular expressions matching whole names): they stop, the rest of
    /// the composite carries on (`start ROLE` starts them again).
    search: Vec<String>,
    /// How long to wait for the composite to end, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    timeout: u64,
}

impl Stop {
    pub fn run(self, home_path: &Path) -> Result<()> {
        let home = Home::open(home_path)?;
        if !self.search.is_empty() {
            return super::operate::start_or_stop(&home, &self.search, false);
        }
        // The process that holds the run lock now (as the lock file names it), however far
        // it has got with starting: never a pid from an older run's status.
        let Some(pid) = home.holder()? else {
            return Err(super::NothingRuns(format!("{} is not running", home.path().display())).into());
        };
        match kill(Pid::from_raw(pid as i32), Signal::SIGTERM) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => bail!("cannot signal group-cake (pid {pid}): {e}"),
        }
        let timeout = Duration::from_secs(self.timeout);
        // The lock is let go as group-cake ends; "stopped" means the process is gone too.
        if !wait_until(timeout, || Ok(!home.is_running()? && process_ended(pid)))? {
            bail!(
                "group-cake (pid {pid}) is still stopping after {timeout:?}; see {}",
                home.run_dir().join("group-cake.log").display()
            );
        }
        println!("stopped (group-cake pid {pid})");
        Ok(())
    }
}
