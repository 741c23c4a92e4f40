//! Stopping the composite: its roles in waves, the deepest first (a role that waited for
//! others' names ends before they do; see [`crate::readiness`]), each wave SIGTERMed, given
//! its grace period, then SIGKILLed; and every role's outcome reported at the end.

use crate::child::Exited;
use crate::supervisor::{Supervisor, KILL_WAIT};
use layer_cake::home::run::{CompositeState, Outcome, RoleState};
use nix::sys::signal::Signal;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{error, info, warn};

impl Supervisor {
    /// Stops every role process, in waves from the deepest; returns when every process has
    /// been reaped (or, for processes that survive SIGKILL, after a while).
    pub(crate) async fn stop(&mut self, exits: &mut mpsc::Receiver<Exited>, grace: Duration) {
        self.stopping = true;
        self.status.state = CompositeState::Stopping;
        for role in &mut self.roles {
            role.next_start = None;
            role.status.next_start = None;
            if matches!(role.status.state, RoleState::Restarting | RoleState::Waiting) {
                role.status.state = RoleState::Stopped;
                role.status.waiting_for.clear();
            }
        }
        self.dirty = true;
        self.save();
        let depth_of = self.depths();
        let mut depths: Vec<u32> = (0..self.roles.len())
            .filter(|i| self.roles[*i].running.is_some())
            .map(|i| depth_of[i])
            .collect();
        depths.sort_unstable_by(|a, b| b.cmp(a));
        depths.dedup();
        let waves = depths.len();
        for depth in depths {
            if waves > 1 {
                info!(depth, "stopping the roles of this depth");
            }
            let wave: Vec<bool> = depth_of.iter().map(|d| *d == depth).collect();
            self.stop_wave(exits, grace, &wave).await;
        }
        for role in &self.roles {
            if let Some(r) = &role.running {
                error!(role = %role.name, pid = r.pid, "the role's process did not end even when killed");
            }
        }
        self.status.state = CompositeState::Stopped;
        self.dirty = true;
        self.save();
    }

    /// SIGTERM to the running roles `in_wave` picks (by index), SIGKILL to those of them left
    /// after `grace`; returns once they have ended (or [`KILL_WAIT`] after the kill).
    async fn stop_wave(&mut self, exits: &mut mpsc::Receiver<Exited>, grace: Duration, in_wave: &[bool]) {
        let wave_running = |sup: &Supervisor| {
            sup.roles
                .iter()
                .zip(in_wave)
                .any(|(r, chosen)| *chosen && r.running.is_some())
        };
        self.signal_where(Signal::SIGTERM, in_wave);
        for (deadline, then) in [(grace, Some(Signal::SIGKILL)), (KILL_WAIT, None)] {
            let until = Instant::now() + deadline;
            while wave_running(self) {
                match tokio::time::timeout_at(until, exits.recv()).await {
                    Ok(Some(exit)) => self.on_exit(exit),
                    Ok(None) | Err(_) => break,
                }
                self.save();
            }
            match then {
                Some(signal) if wave_running(self) => {
                    warn!("roles still running after {grace:?}: killing them");
                    self.signal_where(signal, in_wave);
                }
                _ => {}
            }
        }
    }

    /// Sends `signal` to every running role process `in_wave` picks.
    fn signal_where(&self, signal: Signal, in_wave: &[bool]) {
        for (role, chosen) in self.roles.iter().zip(in_wave) {
            if let Some(running) = role.running.as_ref().filter(|_| *chosen) {
                running.signal(signal);
            }
        }
    }

    /// Every role's outcome, on stderr.
    pub(crate) fn report(&self) {
        let width = self.roles.iter().map(|r| r.name.len()).max().unwrap_or(0);
        for role in &self.roles {
            let outcome = role
                .status
                .last
                .as_ref()
                .map_or("never ran".to_string(), Outcome::to_string);
            let state = match role.status.state {
                RoleState::Failed => " (failed: restart limit reached)",
                _ => "",
            };
            // (Never fails: stderr may be a log file on a full disk.)
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!(
                    "{:width$}  {outcome}, {} restarts{state}\n",
                    role.name, role.status.restarts
                ),
            );
        }
    }
}
