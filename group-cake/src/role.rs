//! A role as the supervisor holds it: its settings, its restart policy, its log and its
//! state, from the start of the composite (or a reload) on.

use crate::child::{Output, Running};
use crate::retry::Restarts;
use jiff::Timestamp;
use layer_cake::home::log::LogWriter;
use layer_cake::home::run::{RoleState, RoleStatus};
use layer_cake::home::{Home, RoleSettings};
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

pub(crate) struct Role {
    pub(crate) name: String,
    pub(crate) settings: RoleSettings,
    pub(crate) restarts: Option<Restarts>,
    pub(crate) output: Arc<Output>,
    pub(crate) status: RoleStatus,
    pub(crate) generation: u64,
    pub(crate) running: Option<Running>,
    /// When the current process started (monotonic; for the policy's `stable`).
    pub(crate) started_at: Instant,
    /// When the current process started (for its history entry).
    pub(crate) run_start: Timestamp,
    pub(crate) next_start: Option<Instant>,
    /// Being stopped by request: when it is killed if still running, and what then.
    pub(crate) stopping: Option<(Instant, crate::operate::Then)>,
    /// Taken out of the composite by a reload (its place kept: exits name roles by index).
    pub(crate) removed: bool,
    /// Its ordering and readiness.
    pub(crate) ready: crate::readiness::Readiness,
}

/// A role of `home` as the supervisor holds it, not started yet (its log opened).
pub(crate) fn new_role(
    home: &Home,
    name: &str,
    group: &layer_cake::home::GroupSettings,
    foreground: bool,
) -> anyhow::Result<Role> {
    let settings = home.role(name)?;
    let ready = crate::readiness::Readiness::new(&settings)?;
    let policy = settings.retry.clone().or_else(|| group.retry.clone());
    let log = LogWriter::open(home, name, settings.log.or(group.log).unwrap_or_default())?;
    let now = Timestamp::now();
    Ok(Role {
        name: name.to_string(),
        restarts: policy.map(Restarts::new),
        settings,
        output: Arc::new(Output {
            log: Mutex::new(log),
            echo: foreground,
            role: name.to_string(),
        }),
        status: RoleStatus {
            state: RoleState::Ended,
            pid: None,
            since: now,
            restarts: 0,
            next_start: None,
            last: None,
            ready: false,
            waiting_for: Vec::new(),
        },
        generation: 0,
        running: None,
        started_at: Instant::now(),
        run_start: now,
        next_start: None,
        stopping: None,
        removed: false,
        ready,
    })
}
