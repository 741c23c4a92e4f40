//! `layer-cake restart`, `layer-cake reload`, and `start`/`stop` of some roles while the
//! composite runs: requests to group-cake (`run/control.sock`), then a wait until the roles
//! are where they were asked to be.

use super::wait_until;
use anyhow::{bail, Result};
use clap::Args;
use layer_cake::home::control::{Answer, Request};
use layer_cake::home::run::RoleState;
use layer_cake::home::Home;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// How long a role has to be started, or stopped, after group-cake took the request (its grace
/// period included).
const SETTLE: Duration = Duration::from_secs(30);

/// Restart roles of the running composite: each is stopped (SIGTERM, its grace period, then
/// SIGKILL) and started again; the others carry on. Returns once each runs again.
#[derive(Args)]
pub struct Restart {
    /// The roles (regular expressions matching whole names).
    #[arg(required = true)]
    search: Vec<String>,
}

impl Restart {
    pub fn run(self, home_path: &Path) -> Result<()> {
        let home = Home::open(home_path)?;
        let before = pids(&home)?;
        let said = ask(&home, Request::Restart(self.search.clone()))?;
        println!("{said}");
        let chosen = home.select(&self.search)?;
        settle(&home, &chosen, |name, pid, state| {
            (state == RoleState::Running && pid.is_some() && pid != before.get(name).copied().flatten())
                || state == RoleState::Waiting
        })
    }
}

/// Apply the home's changes to the running composite: start roles added (that the
/// composite's searches match), stop removed ones, restart those whose settings changed, and
/// take the group's new restart policy and main role (its directories take effect at the
/// next start); leave the rest alone. (SIGHUP to group-cake does the same.)
#[derive(Args)]
pub struct Reload {}

impl Reload {
    pub fn run(self, home_path: &Path) -> Result<()> {
        let home = Home::open(home_path)?;
        println!("{}", ask(&home, Request::Reload)?);
        Ok(())
    }
}

/// Asks the running composite to start (or stop) `searches`; returns once they run (or have
/// ended).
pub fn start_or_stop(home: &Home, searches: &[String], start: bool) -> Result<()> {
    let request = if start {
        Request::Start(searches.to_vec())
    } else {
        Request::Stop(searches.to_vec())
    };
    println!("{}", ask(home, request)?);
    let chosen = home.select(searches)?;
    if start {
        // (A role waiting for names to be published has been started as far as it can be.)
        settle(home, &chosen, |_, pid, state| {
            (state == RoleState::Running && pid.is_some()) || state == RoleState::Waiting
        })
    } else {
        settle(home, &chosen, |_, pid, _| pid.is_none())
    }
}

fn ask(home: &Home, request: Request) -> Result<String> {
    if home.running()?.is_none() {
        return Err(super::NothingRuns(format!("{} is not running", home.path().display())).into());
    }
    match home.ask(&request)? {
        Answer::Ok(text) => Ok(text),
        Answer::Error(text) => bail!("{text}"),
    }
}

fn pids(home: &Home) -> Result<BTreeMap<String, Option<u32>>> {
    Ok(home
        .running()?
        .map(|s| s.roles.into_iter().map(|(name, r)| (name, r.pid)).collect())
        .unwrap_or_default())
}

/// Waits until every role of `roles` the composite has is `done`, at most [`SETTLE`].
fn settle(home: &Home, roles: &[String], done: impl Fn(&str, Option<u32>, RoleState) -> bool) -> Result<()> {
    let ok = wait_until(SETTLE, || {
        let Some(status) = home.running()? else {
            return Ok(true);
        };
        Ok(roles.iter().all(|name| {
            status
                .roles
                .get(name)
                .is_none_or(|r| done(name, r.pid, r.state) || r.state == RoleState::Failed)
        }))
    })?;
    if !ok {
        bail!("not done within {SETTLE:?}: see `layer-cake status`");
    }
    Ok(())
}
