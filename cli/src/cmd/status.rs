//! `layer-cake status`: what a running composite's roles are doing.

use super::{human_duration, since};
use anyhow::Result;
use clap::Args;
use layer_cake::home::run::{Outcome, RoleState};
use layer_cake::home::Home;
use layer_cake::Search;
use serde::Serialize;
use std::path::Path;

/// Show the running composite's roles: each role's state and whether it is ready (or what it
/// waits for), or with --long-listing its pid, time up, restarts and how its last process
/// ended too; --json for scripts.
///
/// A role is ready once its process runs and has done what the role declares
/// (--ready-when-published, --ready-probe); a role added with --after is `waiting` until the
/// names it waits for are published.
///
/// Exit status: 0 while the composite runs; 3 when nothing runs (as `stop` says too; with
/// --json the document says `"running": false`); 1 for an error.
#[derive(Args)]
pub struct Status {
    /// Only roles matching these regular expressions (whole names).
    search: Vec<String>,
    /// Pid, time up, restarts and last outcome too.
    #[arg(short = 'l', long)]
    long_listing: bool,
    /// One JSON document, for scripts.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    running: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    up_seconds: Option<f64>,
    roles: Vec<Row>,
}

#[derive(Serialize)]
struct Row {
    role: String,
    state: RoleState,
    pid: Option<u32>,
    /// Seconds in this state (for a running role: since its process started).
    seconds: f64,
    restarts: u32,
    last: Option<Outcome>,
    ready: bool,
    /// What it waits for (to start, or to be ready).
    waiting_for: Vec<String>,
}

impl Status {
    pub fn run(self, home_path: &Path) -> Result<()> {
        let home = Home::open(home_path)?;
        let patterns = self
            .search
            .iter()
            .map(|s| Search::new(s))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(status) = home.running()? else {
            if self.json {
                let report = Report {
                    running: false,
                    pid: None,
                    directory: None,
                    up_seconds: None,
                    roles: Vec::new(),
                };
                println!("{}", serde_json::to_string_pretty(&report)?);
                return Err(super::NothingRuns(String::new()).into());
            }
            return Err(super::NothingRuns(format!("{} is not running", home.path().display())).into());
        };
        let rows: Vec<Row> = status
            .roles
            .iter()
            .filter(|(name, _)| patterns.is_empty() || patterns.iter().any(|p| p.matches(name)))
            .map(|(name, r)| Row {
                role: name.clone(),
                state: r.state,
                pid: r.pid,
                seconds: since(r.since).as_secs_f64(),
                restarts: r.restarts,
                last: r.last.clone(),
                ready: r.ready,
                waiting_for: r.waiting_for.clone(),
            })
            .collect();
        if self.json {
            let report = Report {
                running: true,
                pid: Some(status.pid),
                directory: Some(status.directory.to_string()),
                up_seconds: Some(since(status.started).as_secs_f64()),
                roles: rows,
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(());
        }
        let width = rows.iter().map(|r| r.role.len()).max().unwrap_or(4).max(4);
        if !self.long_listing {
            for r in &rows {
                println!("{:width$}  {}{}", r.role, state_name(r.state), readiness(r));
            }
            return Ok(());
        }
        println!(
            "group-cake pid {}, directory {}, up {}",
            status.pid,
            status.directory,
            human_duration(since(status.started))
        );
        println!(
            "{:width$}  {:10}  {:5}  {:>7}  {:>7}  {:>8}  LAST",
            "ROLE", "STATE", "READY", "PID", "UP", "RESTARTS"
        );
        for r in &rows {
            let pid = r.pid.map_or("-".to_string(), |p| p.to_string());
            let up = if r.state == RoleState::Running {
                human_duration(std::time::Duration::from_secs_f64(r.seconds))
            } else {
                "-".to_string()
            };
            let mut last = r.last.as_ref().map_or("-".to_string(), Outcome::to_string);
            if !r.waiting_for.is_empty() {
                last = format!("{last} (waits for {})", r.waiting_for.join(", "));
            }
            let ready = match (r.state, r.ready) {
                (_, true) => "yes",
                (RoleState::Running, false) => "no",
                _ => "-",
            };
            println!(
                "{:width$}  {:10}  {ready:5}  {pid:>7}  {up:>7}  {:>8}  {last}",
                r.role,
                state_name(r.state),
                r.restarts
            );
        }
        Ok(())
    }
}

/// A role's state as `status` shows it.
pub(super) fn state_name(state: RoleState) -> &'static str {
    match state {
        RoleState::Running => "running",
        RoleState::Restarting => "restarting",
        RoleState::Ended => "ended",
        RoleState::Failed => "FAILED",
        RoleState::Stopped => "stopped",
        RoleState::Waiting => "waiting",
    }
}

/// After the state: whether a running role is ready, or what a role waits for.
fn readiness(r: &Row) -> String {
    match r.state {
        RoleState::Running if r.ready => ", ready".to_string(),
        RoleState::Running => format!(", not ready (waits for {})", r.waiting_for.join(", ")),
        RoleState::Waiting => format!(" for {}", r.waiting_for.join(", ")),
        _ => String::new(),
    }
}
