//! Ordering by names, and readiness, as the supervisor runs them: a role with `after`
//! searches starts only once every one matches a name published in the composite (it waits
//! in state `waiting` until then); a role is *ready* once its process has published a name
//! matching each of its `ready_when_published` searches and passed its `ready_probe`, or at
//! once when it declares neither (the declarations: [`crate::readiness`]).
//!
//! What the composite publishes comes from group-cake's own directory
//! ([`layer_cake::daemon::Published`]), told after every change; the role of each publisher
//! is the one its process greeted with (`LC_ROLE`). A role remembers the roles whose names it
//! waited for; it is one level deeper than the deepest of them, and the composite stops the
//! deepest roles first ([`crate::stopping`]): those that waited for others end before the
//! others do.

use crate::readiness::{probe, Probed, PROBE_EVERY};
use crate::supervisor::Supervisor;
use layer_cake::daemon::Published;
use layer_cake::home::launch::Launch;
use layer_cake::home::run::RoleState;
use tokio::time::Instant;
use tracing::{info, warn};

impl Supervisor {
    /// Starts role `i`, or leaves it waiting while some of its `after` searches match no
    /// name published in the composite.
    pub(crate) fn launch(&mut self, i: usize) {
        let (missing, providers) = {
            let published = self.published.borrow();
            let missing = self.roles[i].ready.missing_after(&published);
            let providers = missing.is_empty().then(|| self.providers(i, &published));
            (missing, providers)
        };
        if let Some(providers) = providers {
            self.roles[i].ready.waited_for = providers;
            self.start(i);
            return;
        }
        let role = &mut self.roles[i];
        if role.status.state != RoleState::Waiting || role.status.waiting_for != missing {
            let text = format!("waiting for names matching {}", missing.join(", "));
            info!(role = %role.name, "{text}");
            role.output.note(0, &text);
        }
        if role.status.state == RoleState::Waiting && role.status.waiting_for == missing {
            return;
        }
        if role.status.state != RoleState::Waiting {
            role.status.since = jiff::Timestamp::now();
        }
        role.status.state = RoleState::Waiting;
        role.status.ready = false;
        role.status.waiting_for = missing;
        self.dirty = true;
    }

    /// The roles of the composite whose published names role `i`'s `after` searches match
    /// now: the roles it waited for.
    fn providers(&self, i: usize, published: &Published) -> Vec<String> {
        let mut found: Vec<String> = self.roles[i]
            .ready
            .after
            .iter()
            .flat_map(|(_, search)| published.matching(search))
            .filter_map(|l| l.role)
            .filter(|role| *role != self.roles[i].name && self.roles.iter().any(|r| r.name == *role))
            .map(str::to_string)
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }

    /// Each role's depth, for the order of stopping: 0 for a role that waited for no other;
    /// else one more than the deepest of the roles it waited for (as they are now: a role
    /// given an `after` of its own by a reload makes those that waited for it deeper too).
    pub(crate) fn depths(&self) -> Vec<u32> {
        fn depth(sup: &Supervisor, i: usize, memo: &mut [Option<u32>], visiting: &mut [bool]) -> u32 {
            if let Some(d) = memo[i] {
                return d;
            }
            if std::mem::replace(&mut visiting[i], true) {
                return 0; // (A cycle: it cannot have happened as a wait; cut it.)
            }
            let d = sup.roles[i]
                .ready
                .waited_for
                .iter()
                .filter_map(|name| sup.roles.iter().position(|r| &r.name == name && !r.removed))
                .map(|j| depth(sup, j, memo, visiting) + 1)
                .max()
                .unwrap_or(0);
            memo[i] = Some(d);
            d
        }
        let n = self.roles.len();
        let (mut memo, mut visiting) = (vec![None; n], vec![false; n]);
        (0..n).map(|i| depth(self, i, &mut memo, &mut visiting)).collect()
    }

    /// What the composite publishes changed: waiting roles whose names are all there start,
    /// and running roles whose own names are all there become ready.
    pub(crate) fn on_published(&mut self) {
        if self.stopping {
            return;
        }
        for i in 0..self.roles.len() {
            let role = &self.roles[i];
            if role.removed {
                continue;
            }
            match role.status.state {
                RoleState::Waiting => self.launch(i),
                // (A role ready by its probe alone is not concerned.)
                RoleState::Running if !role.status.ready && !role.ready.names.is_empty() => {
                    self.check_ready(i)
                }
                _ => {}
            }
        }
    }

    /// Role `i`'s process is about to start: what earlier processes of the role published,
    /// and the directory has not yet seen go, will not make this one ready. (Taken before the
    /// process exists: a process may publish before its start has been noted.)
    pub(crate) fn before_start(&mut self, i: usize) {
        let role = &mut self.roles[i];
        role.ready.stale = {
            let published = self.published.borrow();
            role.ready
                .names
                .iter()
                .flat_map(|(_, search)| published.matching(search))
                .filter(|l| l.role == Some(role.name.as_str()))
                .map(|l| l.process)
                .collect()
        };
    }

    /// Role `i`'s process has just started (with `launch`): not ready until it does what it
    /// declares (ready at once when it declares nothing); its probe is due now.
    pub(crate) fn on_started(&mut self, i: usize, launch: Option<Launch>) {
        let role = &mut self.roles[i];
        role.ready.probe_passed = false;
        role.ready.next_probe = role.ready.probe.as_ref().map(|_| Instant::now());
        role.ready.launch = launch;
        role.status.ready = false;
        self.check_ready(i);
    }

    /// Role `i`'s process ended: not ready, and no more probes for it.
    pub(crate) fn on_ended(&mut self, i: usize) {
        let role = &mut self.roles[i];
        role.ready.next_probe = None;
        role.ready.launch = None;
        role.status.ready = false;
        role.status.waiting_for.clear();
    }

    /// Marks role `i` ready if it has done all it declares; else notes what it still needs.
    fn check_ready(&mut self, i: usize) {
        let role = &mut self.roles[i];
        let mut missing: Vec<String> = {
            let published = self.published.borrow();
            role.ready
                .names
                .iter()
                .filter(|(_, search)| {
                    !published
                        .matching(search)
                        .any(|l| l.role == Some(role.name.as_str()) && !role.ready.stale.contains(&l.process))
                })
                .map(|(text, _)| text.clone())
                .collect()
        };
        if let Some(probe) = role.ready.probe.as_ref().filter(|_| !role.ready.probe_passed) {
            missing.push(format!("probe: {probe}"));
        }
        let ready = missing.is_empty();
        if ready && !role.status.ready && (!role.ready.names.is_empty() || role.ready.probe.is_some()) {
            info!(role = %role.name, "role ready");
            role.output.note(role.status.pid.unwrap_or(0), "ready");
        }
        if role.status.ready != ready || role.status.waiting_for != missing {
            role.status.ready = ready;
            role.status.waiting_for = missing;
            self.dirty = true;
        }
    }

    /// When the next probe is due, if any.
    pub(crate) fn next_probe(&self) -> Option<Instant> {
        self.roles.iter().filter_map(|r| r.ready.next_probe).min()
    }

    /// Runs the probes that are due, each in a task of its own that reports on `probes`.
    pub(crate) fn probe_due(&mut self) {
        let now = Instant::now();
        for (i, role) in self.roles.iter_mut().enumerate() {
            if role.ready.next_probe.is_none_or(|at| at > now) {
                continue;
            }
            role.ready.next_probe = None;
            let (Some(command), Some(launch)) = (role.ready.probe.clone(), role.ready.launch.clone()) else {
                continue;
            };
            let report = self.probes.clone();
            let generation = role.generation;
            tokio::spawn(async move {
                let passed = probe(&command, &launch).await;
                let _ = report
                    .send(Probed {
                        role: i,
                        generation,
                        passed,
                    })
                    .await;
            });
        }
    }

    /// A probe's result: ready once it passes; else another in a while.
    pub(crate) fn on_probe(&mut self, probed: Probed) {
        let role = &mut self.roles[probed.role];
        if probed.generation != role.generation || role.status.state != RoleState::Running || self.stopping {
            return;
        }
        if probed.passed {
            role.ready.probe_passed = true;
            self.check_ready(probed.role);
        } else {
            role.ready.next_probe = Some(Instant::now() + PROBE_EVERY);
        }
    }

    /// Warns, once per spell, when roles wait for names and no role of the composite runs (or
    /// is about to) that could publish them: they wait until a process from outside does, or
    /// the home changes.
    pub(crate) fn warn_if_stalled(&mut self) {
        let mut waiting = self
            .roles
            .iter()
            .filter(|r| !r.removed && r.status.state == RoleState::Waiting)
            .peekable();
        let stalled = waiting.peek().is_some()
            && !self.roles.iter().any(|r| {
                r.running.is_some() || r.stopping.is_some() || r.status.state == RoleState::Restarting
            });
        if stalled && !self.stalled {
            let what: Vec<String> = waiting
                .map(|r| format!("{} (for {})", r.name, r.status.waiting_for.join(", ")))
                .collect();
            warn!(
                roles = %what.join("; "),
                "roles wait for names that no running role of the composite publishes"
            );
        }
        self.stalled = stalled;
    }

    /// Tells systemd (a `Type=notify` unit) the composite is ready, once: when no role waits
    /// for names or a restart, and every running role is ready.
    pub(crate) fn notify_when_ready(&mut self) {
        if self.told_ready {
            return;
        }
        let pending = self
            .roles
            .iter()
            .filter(|r| !r.removed)
            .any(|r| match r.status.state {
                RoleState::Waiting | RoleState::Restarting => true,
                RoleState::Running => !r.status.ready,
                RoleState::Ended | RoleState::Failed | RoleState::Stopped => false,
            });
        if !pending {
            info!("every role is ready");
            layer_cake::daemon::notify_ready();
            self.told_ready = true;
        }
    }
}
