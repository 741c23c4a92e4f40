//! Operating one role in a running composite: restart it, stop it, start it, and reload the
//! home (start added roles, stop removed ones, restart changed ones; the rest left alone).

use crate::supervisor::{new_role, Supervisor};
use layer_cake::home::control::{Answer, Request};
use layer_cake::home::run::RoleState;
use layer_cake::Search;
use nix::sys::signal::Signal;
use tokio::time::Instant;
use tracing::{info, warn};

/// What follows a stop asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Start it again (with its settings as the home has them now).
    Restart,
    /// Leave it stopped (it may be started again).
    Stay,
    /// Take it out of the composite (a reload found it gone from the home).
    Remove,
    /// Start it again with its settings read anew (a reload found them changed).
    Replace,
}

impl Supervisor {
    /// Acts on a request from the CLI; what it did.
    pub(crate) fn on_request(&mut self, request: Request) -> Answer {
        if self.stopping {
            return Answer::Error("the composite is stopping".into());
        }
        let answer = match request {
            Request::Restart(searches) => self.chosen(&searches).map(|roles| {
                for &i in &roles {
                    self.stop_role(i, Then::Restart);
                }
                format!("restarting {}", self.names(&roles))
            }),
            Request::Stop(searches) => self.chosen(&searches).map(|roles| {
                for &i in &roles {
                    self.stop_role(i, Then::Stay);
                }
                format!("stopping {}", self.names(&roles))
            }),
            Request::Start(searches) => self.start_roles(&searches),
            Request::Reload => self.reload(),
        };
        self.dirty = true;
        match answer {
            Ok(text) => Answer::Ok(text),
            Err(text) => Answer::Error(text),
        }
    }

    /// The roles of the composite `searches` match (each must match one).
    fn chosen(&self, searches: &[String]) -> Result<Vec<usize>, String> {
        let mut chosen = Vec::new();
        for text in searches {
            let search = Search::new(text).map_err(|e| e.to_string())?;
            let found: Vec<usize> = (0..self.roles.len())
                .filter(|&i| !self.roles[i].removed && search.matches(&self.roles[i].name))
                .collect();
            if found.is_empty() {
                return Err(format!("no role of the composite matches {text:?}"));
            }
            chosen.extend(found);
        }
        chosen.sort_unstable();
        chosen.dedup();
        Ok(chosen)
    }

    fn names(&self, roles: &[usize]) -> String {
        roles
            .iter()
            .map(|&i| self.roles[i].name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Stops role `i` (SIGTERM, then SIGKILL after the grace period), then does `then`. A role
    /// not running now (ended, or waiting to restart) has `then` done at once.
    pub(crate) fn stop_role(&mut self, i: usize, then: Then) {
        let grace = self.grace;
        let role = &mut self.roles[i];
        role.next_start = None;
        role.status.next_start = None;
        match &role.running {
            Some(running) => {
                info!(role = %role.name, ?then, "stopping the role, as asked");
                running.signal(Signal::SIGTERM);
                // (A second request while it stops: the later one says what follows.)
                role.stopping = Some((role.stopping.map_or(Instant::now() + grace, |(at, _)| at), then));
            }
            None => self.after_requested_stop(i, then),
        }
    }

    /// Role `i`, stopped as asked, is done with: `then`.
    pub(crate) fn after_requested_stop(&mut self, i: usize, then: Then) {
        let role = &mut self.roles[i];
        role.stopping = None;
        match then {
            Then::Stay => {
                role.status.state = RoleState::Stopped;
                role.status.waiting_for.clear();
            }
            Then::Remove => {
                role.status.state = RoleState::Stopped;
                role.status.waiting_for.clear();
                role.removed = true;
            }
            // Started again with its settings as the home has them now (and the restart
            // policy's count begun again).
            Then::Restart | Then::Replace => {
                let name = role.name.clone();
                if let Err(e) = self.add_role(&name) {
                    warn!(role = %name, error = %e, "cannot start the role with its new settings");
                    self.roles[i].status.state = RoleState::Ended;
                }
            }
        }
        self.dirty = true;
    }

    /// SIGKILL to the roles asked to stop that are still running after the grace period.
    pub(crate) fn kill_due(&mut self) {
        let now = Instant::now();
        for role in &mut self.roles {
            if let (Some((at, then)), Some(running)) = (role.stopping, &role.running) {
                if at <= now {
                    warn!(role = %role.name, "still running after the grace period: killing it");
                    running.signal(Signal::SIGKILL);
                    // (Its end is waited for as any other; no second kill.)
                    role.stopping = Some((now + std::time::Duration::from_secs(3600), then));
                }
            }
        }
    }

    /// Starts the roles `searches` match that are not running: roles of the composite that
    /// were stopped or ended, or roles of the home not in it yet.
    fn start_roles(&mut self, searches: &[String]) -> Result<String, String> {
        let home_roles = self.home.select(searches).map_err(|e| e.to_string())?;
        if home_roles.is_empty() {
            return Err(format!("no role of the home matches {}", searches.join(" ")));
        }
        let mut started = Vec::new();
        let mut already = Vec::new();
        for name in home_roles {
            match self.roles.iter().position(|r| r.name == name && !r.removed) {
                Some(i)
                    if self.roles[i].running.is_some()
                        || self.roles[i].stopping.is_some()
                        || self.roles[i].status.state == RoleState::Waiting =>
                {
                    already.push(name)
                }
                Some(i) => {
                    self.launch(i);
                    started.push(name);
                }
                None => {
                    self.add_role(&name)?;
                    started.push(name);
                }
            }
        }
        Ok(match (started.is_empty(), already.is_empty()) {
            (false, true) => format!("starting {}", started.join(", ")),
            (false, false) => format!(
                "starting {}; already running: {}",
                started.join(", "),
                already.join(", ")
            ),
            (true, _) => format!("already running: {}", already.join(", ")),
        })
    }

    /// Adds role `name` of the home to the composite, and starts it.
    fn add_role(&mut self, name: &str) -> Result<(), String> {
        let role = new_role(&self.home, name, &self.group_settings, self.foreground)
            .map_err(|e| format!("{e:#}"))?;
        // A role removed earlier and now back takes its old place.
        let i = match self.roles.iter().position(|r| r.name == name) {
            Some(i) => {
                // (Its count of restarts goes on: a restart asked for is not one of them.)
                let (generation, restarts) = (self.roles[i].generation, self.roles[i].status.restarts);
                self.roles[i] = role;
                self.roles[i].generation = generation;
                self.roles[i].status.restarts = restarts;
                i
            }
            None => {
                self.roles.push(role);
                self.roles.len() - 1
            }
        };
        self.launch(i);
        Ok(())
    }

    /// Takes the group's main role if it changed (unless the command line gave one); what it
    /// did, if anything.
    fn reload_main_role(&mut self, old: &layer_cake::home::GroupSettings) -> Option<String> {
        let now = self.group_settings.main_role.clone();
        if self.main_role_fixed || now == old.main_role {
            return None;
        }
        let Some(name) = now else {
            self.main_role = None;
            self.status.main_role = None;
            return Some("no main role now".to_string());
        };
        match self.roles.iter().position(|r| r.name == name && !r.removed) {
            Some(i) => {
                self.main_role = Some(i);
                self.status.main_role = Some(name.clone());
                Some(format!("main role now {name}"))
            }
            None => Some(format!(
                "the main role {name:?} is not among the roles run: it takes effect at the next start"
            )),
        }
    }

    /// The group's directories and secret are the directory's own, set at its start: says so
    /// if they changed.
    fn reload_directories(&self, old: &layer_cake::home::GroupSettings) -> Option<String> {
        let now = &self.group_settings;
        (now.directory_at_host != old.directory_at_host
            || now.directory_at_lan != old.directory_at_lan
            || now.secret_file != old.secret_file)
            .then(|| "the group's directory and secret take effect at the next start".to_string())
    }

    /// Reads the home again: added roles (matching the composite's searches) are started,
    /// removed ones stopped, ones whose settings changed restarted with them, and the group's
    /// restart policy and log sizes taken for roles without their own; the rest left alone.
    fn reload(&mut self) -> Result<String, String> {
        let group = self.home.group().map_err(|e| e.to_string())?;
        let wanted = self.home.select(&self.searches).map_err(|e| e.to_string())?;
        let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..self.roles.len() {
            if self.roles[i].removed {
                continue;
            }
            let name = self.roles[i].name.clone();
            if !wanted.contains(&name) {
                self.stop_role(i, Then::Remove);
                removed.push(name);
                continue;
            }
            let settings = self.home.role(&name).map_err(|e| e.to_string())?;
            let policy = settings.retry.clone().or_else(|| group.retry.clone());
            let old_policy = self.roles[i].restarts.as_ref().map(|r| r.policy().clone());
            if settings != self.roles[i].settings
                || (settings.log.is_none() && group.log != self.group_settings.log)
            {
                // Restarted with the new settings, in its place, once it has stopped.
                self.stop_role(i, Then::Replace);
                changed.push(name);
            } else if policy != old_policy {
                self.roles[i].restarts = policy.map(crate::retry::Restarts::new);
            }
        }
        let old = std::mem::replace(&mut self.group_settings, group);
        for name in &wanted {
            if !changed.contains(name) && !self.roles.iter().any(|r| &r.name == name && !r.removed) {
                self.add_role(name)?;
                added.push(name.clone());
            }
        }
        let list = |what: &str, names: &[String]| {
            (!names.is_empty()).then(|| format!("{what} {}", names.join(", ")))
        };
        let parts: Vec<String> = [
            list("started", &added),
            list("stopped", &removed),
            list("restarting", &changed),
            self.reload_main_role(&old),
            self.reload_directories(&old),
        ]
        .into_iter()
        .flatten()
        .collect();
        Ok(if parts.is_empty() {
            "nothing changed".to_string()
        } else {
            parts.join("; ")
        })
    }
}
