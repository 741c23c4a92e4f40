//! `layer-cake returned`: how a role's latest run ended, and what it returned.

use super::wait_until;
use anyhow::{bail, Result};
use clap::Args;
use layer_cake::home::Home;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// Show how a role's latest run ended and the value it returned (a role leaves one with
/// `layer_cake::role::set_returned`, or by writing JSON to the file named in $LC_RETURNED).
/// Prints the outcome, then the value as JSON when there is one. If the role is still running,
/// waits up to --timeout seconds for it to end.
#[derive(Args)]
pub struct Returned {
    /// The role.
    role: String,
    /// Wait this many seconds for a running role to end.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
    timeout: f64,
    /// One JSON document {"outcome": ..., "returned": ...}, for scripts.
    #[arg(long)]
    json: bool,
}

impl Returned {
    pub fn run(self, home_path: &Path) -> Result<()> {
        let home = Home::open(home_path)?;
        home.role(&self.role)?;
        let latest = || -> Result<_> { Ok(home.history(&self.role)?.pop()) };
        let ended = |home: &Home| -> Result<bool> {
            let Some(run) = home.history(&self.role)?.pop() else {
                return Ok(false);
            };
            // A run with no end in a home no longer running ended unrecorded.
            Ok(run.end.is_some() || !home.is_running()?)
        };
        if latest()?.is_none() {
            bail!("role {:?} has not run yet", self.role);
        }
        if !ended(&home)? {
            let timeout = Duration::try_from_secs_f64(self.timeout.max(0.0)).unwrap_or(Duration::MAX);
            if !wait_until(timeout, || ended(&home))? {
                let pid = latest()?.and_then(|r| r.pid).unwrap_or(0);
                bail!(
                    "role {:?} is still running (pid {pid}); give --timeout to wait for it",
                    self.role
                );
            }
        }
        let run = latest()?.expect("a run exists");
        if self.json {
            let doc = json!({ "outcome": run.outcome, "returned": run.returned });
            println!("{}", serde_json::to_string_pretty(&doc)?);
            return Ok(());
        }
        match &run.outcome {
            Some(outcome) => println!("{outcome}"),
            None => println!("ended unrecorded (group-cake stopped while it ran)"),
        }
        if let Some(value) = &run.returned {
            println!("{}", serde_json::to_string_pretty(value)?);
        }
        Ok(())
    }
}
