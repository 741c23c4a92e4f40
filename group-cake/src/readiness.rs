//! What a role declares about its order and its readiness (`after`, `ready_when_published`,
//! `ready_probe`), where it stands, and the probe itself. The supervisor acts on them in
//! [`crate::ordering`].

use layer_cake::daemon::Published;
use layer_cake::home::launch::Launch;
use layer_cake::home::RoleSettings;
use layer_cake::Search;
use std::process::Stdio;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long after a failed probe the next is run.
pub(crate) const PROBE_EVERY: Duration = Duration::from_millis(250);
/// How long one probe may run before it is killed and counted as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A role's ordering and readiness, as its settings declare them, and where it stands.
pub(crate) struct Readiness {
    /// The names it starts after (text, and compiled).
    pub(crate) after: Vec<(String, Search)>,
    /// The names its process publishes once ready.
    pub(crate) names: Vec<(String, Search)>,
    /// The command whose success makes it ready.
    pub(crate) probe: Option<String>,
    /// The roles of the composite whose names it waited for, when it last started (the
    /// deepest roles stop first: [`crate::ordering`]).
    pub(crate) waited_for: Vec<String>,
    /// The probe has passed for the current process.
    pub(crate) probe_passed: bool,
    /// When the next probe runs (none while one runs, or once it passed).
    pub(crate) next_probe: Option<Instant>,
    /// The current process's environment and folder, which the probe runs with.
    pub(crate) launch: Option<Launch>,
    /// The processes that published for the role before its current process started (their
    /// names do not make this one ready).
    pub(crate) stale: std::collections::HashSet<layer_cake::ProcessId>,
}

/// A probe's result.
#[derive(Debug)]
pub(crate) struct Probed {
    /// The role's index.
    pub(crate) role: usize,
    /// Which start of the role it probed.
    pub(crate) generation: u64,
    /// It exited 0 in time.
    pub(crate) passed: bool,
}

impl Readiness {
    /// What `settings` declare (each search checked).
    pub(crate) fn new(settings: &RoleSettings) -> anyhow::Result<Readiness> {
        let compile = |texts: &[String]| -> anyhow::Result<Vec<(String, Search)>> {
            texts.iter().map(|t| Ok((t.clone(), Search::new(t)?))).collect()
        };
        Ok(Readiness {
            after: compile(&settings.after)?,
            names: compile(&settings.ready_when_published)?,
            probe: settings.ready_probe.clone(),
            waited_for: Vec::new(),
            probe_passed: false,
            next_probe: None,
            launch: None,
            stale: Default::default(),
        })
    }

    /// Whether the probe needs the start's environment and folder kept.
    pub(crate) fn has_probe(&self) -> bool {
        self.probe.is_some()
    }

    /// The `after` searches no published name matches.
    pub(crate) fn missing_after(&self, published: &Published) -> Vec<String> {
        self.after
            .iter()
            .filter(|(_, search)| published.matching(search).next().is_none())
            .map(|(text, _)| text.clone())
            .collect()
    }
}

/// The channel probes report on (bounded: one probe at most runs per role).
pub(crate) fn probe_channel() -> (mpsc::Sender<Probed>, mpsc::Receiver<Probed>) {
    mpsc::channel(1024)
}

/// Runs `command` with `sh -c`, in the role's folder and environment (and as its user), in a
/// process group of its own; whether it exited 0 within [`PROBE_TIMEOUT`]. One that does not
/// is killed, with everything it started.
pub(crate) async fn probe(command: &str, launch: &Launch) -> bool {
    let mut sh = tokio::process::Command::new("/bin/sh");
    sh.arg("-c")
        .arg(command)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(&launch.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    if let Some((uid, gid)) = launch.ids {
        sh.uid(uid).gid(gid);
    }
    let Ok(mut child) = sh.spawn() else { return false };
    match tokio::time::timeout(PROBE_TIMEOUT, child.wait()).await {
        Ok(status) => status.is_ok_and(|s| s.success()),
        Err(_) => {
            if let Some(pid) = child.id() {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.wait().await;
            false
        }
    }
}
