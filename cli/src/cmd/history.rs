//! `layer-cake history`: a role's last runs.

use super::human_duration;
use anyhow::{bail, Result};
use clap::Args;
use layer_cake::home::Home;
use std::path::Path;

/// Show a role's last runs, oldest first: when each started, how long it ran, how it ended
/// (exit status or signal) and the value it returned. The number in the first column is what
/// `layer-cake log ROLE --start=N` takes.
#[derive(Args)]
pub struct History {
    /// The role.
    role: String,
    /// Show only the last N runs.
    #[arg(long, value_name = "N")]
    count: Option<usize>,
    /// One JSON document (an array of runs), for scripts.
    #[arg(long)]
    json: bool,
}

impl History {
    pub fn run(self, home_path: &Path) -> Result<()> {
        let home = Home::open(home_path)?;
        home.role(&self.role)?;
        let mut runs = home.history(&self.role)?;
        // A run with no end while nothing runs the home ended unrecorded (its group-cake was
        // killed); the next start records it so, and until then it is shown so.
        if home.holder()?.is_none() {
            if let Some(last) = runs.last_mut().filter(|r| r.end.is_none() && r.outcome.is_none()) {
                last.outcome = Some(layer_cake::home::run::unrecorded(last.pid));
            }
        }
        let first = runs.len().saturating_sub(self.count.unwrap_or(usize::MAX));
        if self.json {
            println!("{}", serde_json::to_string_pretty(&runs[first..])?);
            return Ok(());
        }
        if runs.is_empty() {
            bail!("role {:?} has not run yet", self.role);
        }
        println!(
            "{:>3}  {:20}  {:>8}  {:24}  RETURNED",
            "#", "START (UTC)", "RAN", "ENDED"
        );
        for (i, run) in runs.iter().enumerate().skip(first) {
            let start = run.start.strftime("%Y-%m-%d %H:%M:%S").to_string();
            let (ran, ended) = match (run.end, &run.outcome) {
                (Some(end), Some(outcome)) => (
                    human_duration(
                        std::time::Duration::try_from(end.duration_since(run.start)).unwrap_or_default(),
                    ),
                    outcome.to_string(),
                ),
                (None, Some(outcome)) => ("?".to_string(), outcome.to_string()),
                _ => ("-".to_string(), format!("running (pid {})", run.pid.unwrap_or(0))),
            };
            let returned = run.returned.as_ref().map_or(String::new(), |v| v.to_string());
            let row = format!("{i:>3}  {start:20}  {ran:>8}  {ended:24}  {returned}");
            println!("{}", row.trim_end());
        }
        Ok(())
    }
}
