//! The composite process: group-cake starting a home's roles, restarting them by their policy,
//! and stopping them in order.
//!
//! One task owns every role's state. Each role process has a small task of its own (see
//! [`crate::child`]) that reads its output and reports its end; restarts are timers in the
//! owner's loop. The home's `run/status.json` is rewritten after every change, and each role's
//! history on every start and end, so the CLI can show them.

use crate::child::{self, Exited, Start};
use crate::readiness::{probe_channel, Probed};
use crate::retry::Next;
pub(crate) use crate::role::{new_role, Role};
use crate::sentinel::Sentinel;
use jiff::Timestamp;
use layer_cake::daemon::Published;
use layer_cake::home::run::{CompositeState, Outcome, RoleState, Run, RunLock, Status};
use layer_cake::home::Home;
use layer_cake::node::{DIRECTORY_ENV, SECRET_ENV};
use layer_cake::role::{GROUP_PID_ENV, HOME_ENV, RETURNED_ENV, ROLE_ENV};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{error, info, warn};

/// How long roles get after SIGKILL before group-cake stops waiting for them.
pub(crate) const KILL_WAIT: Duration = Duration::from_secs(5);

/// What to run, and how.
pub struct Options {
    /// The home.
    pub home: Home,
    /// The roles to run (already selected and checked).
    pub roles: Vec<String>,
    /// The searches that selected them (empty: every role), for `reload`.
    pub searches: Vec<String>,
    /// The role whose end ends the composite.
    pub main_role: Option<String>,
    /// The main role was given on the command line (a reload keeps it, whatever the home says).
    pub main_role_fixed: bool,
    /// Copy the roles' output to stderr (`layer-cake run`).
    pub foreground: bool,
    /// How long roles get to end after SIGTERM.
    pub grace: Duration,
    /// The group's directory, which roles join.
    pub directory: SocketAddr,
    /// The LAN's secret, given to every role (as `LC_SECRET_FILE`) when set.
    pub secret_file: Option<std::path::PathBuf>,
    /// What the group's directory holds published, kept up to date by it.
    pub published: watch::Receiver<Published>,
}

/// Why the composite is ending.
enum End {
    /// Asked to stop (a signal).
    Stopped(&'static str),
    /// The main role ended, with this status.
    MainEnded(i32),
    /// No role is left running or restarting.
    AllEnded,
}

pub(crate) struct Supervisor {
    pub(crate) home: Home,
    pub(crate) roles: Vec<Role>,
    pub(crate) status: Status,
    pub(crate) main_role: Option<usize>,
    /// The main role was given on the command line.
    pub(crate) main_role_fixed: bool,
    group: Option<i32>,
    exits_tx: mpsc::Sender<Exited>,
    pub(crate) stopping: bool,
    main_ended: Option<i32>,
    pub(crate) dirty: bool,
    /// Roles whose history needs the start of their current run recorded.
    to_record: Vec<usize>,
    /// The LAN's secret file, for the roles.
    secret_file: Option<std::path::PathBuf>,
    /// How long a role gets to end after SIGTERM.
    pub(crate) grace: Duration,
    /// The searches that chose the roles (for `reload`).
    pub(crate) searches: Vec<String>,
    /// The group's settings, as last read.
    pub(crate) group_settings: layer_cake::home::GroupSettings,
    /// Copy the roles' output to this process's (`run`).
    pub(crate) foreground: bool,
    /// What the composite's processes publish, kept up to date by the directory.
    pub(crate) published: watch::Receiver<Published>,
    /// Where readiness probes report.
    pub(crate) probes: mpsc::Sender<Probed>,
    /// Roles wait for names and no role runs that could publish them: said once per spell.
    pub(crate) stalled: bool,
    /// systemd has been told the composite is ready.
    pub(crate) told_ready: bool,
}

/// Runs the composite until it ends; returns the exit status for group-cake.
pub async fn run(options: Options, _lock: RunLock) -> anyhow::Result<i32> {
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    // A closed terminal must not end a composite started in the background (SIGHUP reloads).
    let mut sighup = signal(SignalKind::hangup())?;

    let sentinel = match Sentinel::start(options.grace) {
        Ok(s) => Some(s),
        Err(e) => {
            warn!(error = %e, "cannot start the sentinel: roles may outlive group-cake if it is killed");
            None
        }
    };
    let (exits_tx, mut exits) = mpsc::channel::<Exited>(1024);
    let (probes, mut probed) = probe_channel();
    let mut published = options.published;
    let now = Timestamp::now();
    let group = options.home.group()?;
    let mut roles = Vec::with_capacity(options.roles.len());
    for name in &options.roles {
        roles.push(new_role(&options.home, name, &group, options.foreground)?);
    }
    let main_role = match &options.main_role {
        Some(main) => Some(
            roles
                .iter()
                .position(|r| &r.name == main)
                .ok_or_else(|| anyhow::anyhow!("the main role {main:?} is not among the roles run"))?,
        ),
        None => None,
    };
    let mut sup = Supervisor {
        status: Status {
            pid: std::process::id(),
            directory: options.directory,
            started: now,
            foreground: options.foreground,
            state: CompositeState::Starting,
            main_role: options.main_role.clone(),
            roles: BTreeMap::new(),
        },
        home: options.home,
        roles,
        main_role,
        main_role_fixed: options.main_role_fixed,
        group: sentinel.as_ref().map(Sentinel::group),
        exits_tx,
        stopping: false,
        main_ended: None,
        dirty: true,
        to_record: Vec::new(),
        secret_file: options.secret_file,
        grace: options.grace,
        searches: options.searches.clone(),
        group_settings: group,
        foreground: options.foreground,
        published: published.clone(),
        probes,
        stalled: false,
        told_ready: false,
    };
    // Requests from the CLI (restart, start or stop of some roles, reload).
    let (mut requests, _control) = match crate::control::listen(&sup.home.control_socket()) {
        Ok((rx, removed)) => (Some(rx), Some(removed)),
        Err(e) => {
            warn!(error = %e, "no control socket: restart, reload and stopping single roles will not work");
            (None, None)
        }
    };

    // Every role at once (no waiting for one before starting the next), but those that wait
    // for names to be published.
    for i in 0..sup.roles.len() {
        sup.launch(i);
    }
    sup.status.state = CompositeState::Running;
    sup.warn_if_stalled();
    sup.save();
    info!(roles = sup.roles.len(), directory = %options.directory, "composite running");
    sup.notify_when_ready();

    let end = loop {
        if let Some(code) = sup.main_ended {
            break End::MainEnded(code);
        }
        // (A role stopped by request keeps the composite up: it may be started again.)
        let held = sup
            .roles
            .iter()
            .any(|r| !r.removed && r.status.state == RoleState::Stopped);
        if !held
            && !sup
                .roles
                .iter()
                .any(|r| r.status.state.is_active() || r.stopping.is_some())
        {
            break End::AllEnded;
        }
        let next_start = sup.roles.iter().filter_map(|r| r.next_start).min();
        let next_probe = sup.next_probe();
        let next_kill = sup
            .roles
            .iter()
            .filter_map(|r| r.stopping.map(|(at, _)| at))
            .min();
        tokio::select! {
            Some(exit) = exits.recv() => sup.on_exit(exit),
            _ = tokio::time::sleep_until(next_start.unwrap_or_else(Instant::now)), if next_start.is_some() => {
                sup.start_due();
            }
            _ = tokio::time::sleep_until(next_kill.unwrap_or_else(Instant::now)), if next_kill.is_some() => {
                sup.kill_due();
            }
            _ = tokio::time::sleep_until(next_probe.unwrap_or_else(Instant::now)), if next_probe.is_some() => {
                sup.probe_due();
            }
            Some(result) = probed.recv() => sup.on_probe(result),
            // (`changed` marks what it saw as seen; the supervisor reads its own receiver.)
            Ok(()) = published.changed() => sup.on_published(),
            Some(asked) = async { requests.as_mut()?.recv().await }, if requests.is_some() => {
                let answer = sup.on_request(asked.request);
                let _ = asked.answer.send(answer);
            }
            _ = sigint.recv() => break End::Stopped("interrupted"),
            _ = sigterm.recv() => break End::Stopped("asked to stop"),
            // The hang-up of a closed terminal does not end a composite: it reloads the home.
            _ = sighup.recv() => {
                let answer = sup.on_request(layer_cake::home::control::Request::Reload);
                info!(?answer, "hang-up: home reloaded");
            }
        }
        sup.warn_if_stalled();
        sup.notify_when_ready();
        sup.save();
    };

    match &end {
        End::Stopped(why) => info!("{why}: stopping every role"),
        End::MainEnded(code) => info!(code, "the main role ended: stopping the others"),
        End::AllEnded => info!("every role has ended"),
    }
    sup.stop(&mut exits, options.grace).await;
    if let Some(sentinel) = sentinel {
        sentinel.finish(options.grace + Duration::from_secs(1)).await;
    }
    sup.report();
    Ok(match end {
        End::MainEnded(code) => code,
        End::Stopped(_) => 0,
        End::AllEnded => {
            let all_ok = sup
                .roles
                .iter()
                .all(|r| r.status.last.as_ref().is_some_and(Outcome::is_success));
            if all_ok {
                0
            } else {
                1
            }
        }
    })
}

impl Supervisor {
    /// Starts one process of role `i`.
    pub(crate) fn start(&mut self, i: usize) {
        self.before_start(i);
        let home = self.home.path().display().to_string();
        let returned = self.home.returned_file(&self.roles[i].name);
        let _ = std::fs::remove_file(&returned);
        let role = &mut self.roles[i];
        role.generation += 1;
        role.next_start = None;
        role.status.next_start = None;
        let mut told = vec![
            (DIRECTORY_ENV, self.status.directory.to_string()),
            (ROLE_ENV, role.name.clone()),
            (HOME_ENV, home),
            (RETURNED_ENV, returned.display().to_string()),
            (GROUP_PID_ENV, std::process::id().to_string()),
        ];
        if let Some(file) = &self.secret_file {
            told.push((SECRET_ENV, file.display().to_string()));
        }
        let launch = self.home.launch(&role.name, &role.settings, &told);
        let start = launch.as_ref().map(|launch| Start {
            executable: &role.settings.executable,
            args: &role.settings.args,
            launch,
            group: self.group,
        });
        let now = Timestamp::now();
        let spawned = start
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|start| {
                child::spawn(
                    start,
                    i,
                    role.generation,
                    role.output.clone(),
                    self.exits_tx.clone(),
                )
            });
        match spawned {
            Ok(running) => {
                role.status.state = RoleState::Running;
                role.status.pid = Some(running.pid);
                role.status.since = now;
                role.started_at = Instant::now();
                role.run_start = now;
                role.running = Some(running);
                self.to_record.push(i);
                let kept = launch.ok().filter(|_| role.ready.has_probe());
                self.on_started(i, kept);
            }
            Err(e) => {
                let reason = format!("{}: {e}", role.settings.executable.display());
                error!(role = %role.name, %reason, "cannot start the role");
                role.started_at = Instant::now();
                role.run_start = now;
                let generation = role.generation;
                self.on_exit(Exited {
                    role: i,
                    generation,
                    outcome: Outcome::NotStarted { reason },
                });
            }
        }
        self.dirty = true;
    }

    /// Starts the roles whose restart is due.
    fn start_due(&mut self) {
        let now = Instant::now();
        let due: Vec<usize> = (0..self.roles.len())
            .filter(|i| self.roles[*i].next_start.is_some_and(|t| t <= now))
            .collect();
        for i in due {
            self.roles[i].status.restarts += 1;
            self.start(i);
        }
    }

    pub(crate) fn on_exit(&mut self, exit: Exited) {
        let role = &mut self.roles[exit.role];
        if exit.generation != role.generation {
            return;
        }
        let pid = role.running.take().map(|r| r.pid);
        self.on_ended(exit.role);
        let role = &mut self.roles[exit.role];
        let now = Timestamp::now();
        let returned = read_returned(&self.home.returned_file(&role.name));
        let run = Run {
            start: role.run_start,
            end: Some(now),
            pid,
            outcome: Some(exit.outcome.clone()),
            returned,
        };
        if let Err(e) = self.home.record_run(&role.name, &run) {
            warn!(role = %role.name, error = %e, "cannot record the run");
        }
        self.to_record.retain(|i| *i != exit.role);
        role.output.note(pid.unwrap_or(0), &exit.outcome.to_string());
        role.status.pid = None;
        role.status.since = now;
        role.status.last = Some(exit.outcome.clone());
        self.dirty = true;
        if self.stopping {
            role.status.state = RoleState::Stopped;
            return;
        }
        if let Some((_, then)) = role.stopping.take() {
            self.after_requested_stop(exit.role, then);
            return;
        }
        if Some(exit.role) == self.main_role {
            info!(role = %role.name, outcome = %exit.outcome, "main role ended");
            role.status.state = RoleState::Ended;
            self.main_ended = Some(exit.outcome.exit_code());
            return;
        }
        let ran = role.started_at.elapsed();
        match role
            .restarts
            .as_mut()
            .filter(|r| r.policy().restarts_after(&exit.outcome))
            .map(|r| r.on_exit(ran, std::time::Instant::now(), fastrand::f64()))
        {
            None => {
                info!(role = %role.name, outcome = %exit.outcome, "role ended");
                role.status.state = RoleState::Ended;
            }
            Some(Next::After(delay)) => {
                info!(role = %role.name, outcome = %exit.outcome, ?delay, "role ended; restarting");
                role.status.state = RoleState::Restarting;
                role.next_start = Some(Instant::now() + delay);
                role.status.next_start = Timestamp::now().checked_add(delay).ok();
            }
            Some(Next::Failed { intensity, period }) => {
                let text = format!(
                    "failed: more than {intensity} restarts within {}s; left stopped",
                    period.as_secs_f64()
                );
                error!(role = %role.name, "{text}");
                role.output.note(0, &text);
                role.status.state = RoleState::Failed;
            }
        }
    }

    /// Writes what changed: history entries of runs just started, then the status.
    pub(crate) fn save(&mut self) {
        for i in std::mem::take(&mut self.to_record) {
            let role = &self.roles[i];
            let run = Run {
                start: role.run_start,
                end: None,
                pid: role.status.pid,
                outcome: None,
                returned: None,
            };
            if let Err(e) = self.home.record_run(&role.name, &run) {
                warn!(role = %role.name, error = %e, "cannot record the run");
            }
        }
        if !self.dirty {
            return;
        }
        self.dirty = false;
        self.status.roles = self
            .roles
            .iter()
            .filter(|r| !r.removed)
            .map(|r| (r.name.clone(), r.status.clone()))
            .collect();
        if let Err(e) = self.home.save_status(&self.status) {
            warn!(error = %e, "cannot write the status");
        }
    }
}

/// The result a role left (JSON; anything else is kept as text).
fn read_returned(path: &std::path::Path) -> Option<serde_json::Value> {
    let bytes = std::fs::read(path).ok()?;
    Some(
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())),
    )
}
