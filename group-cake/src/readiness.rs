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
    /// 0 for a role that started without waiting; else one more than the deepest role whose
    /// names it waited for. The deepest stop first.
    pub(crate) depth: u32,
    /// The probe has passed for the current process.
    pub(crate) probe_passed: bool,
    /// When the next probe runs (none while one runs, or once it passed).
    pub(crate) next_probe: Option<Instant>,
    /// The current process's environment and folder, which the probe runs with.
    pub(crate) launch: Option<Launch>,
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
            depth: 0,
            probe_passed: false,
            next_probe: None,
            launch: None,
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

/// Runs `command` with `sh -c`, in the role's folder and environment (and as its user); whether
/// it exited 0 within [`PROBE_TIMEOUT`].
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
        // (Killed if it outlives its deadline.)
        .kill_on_drop(true);
    if let Some((uid, gid)) = launch.ids {
        sh.uid(uid).gid(gid);
    }
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, sh.status()).await,
        Ok(Ok(status)) if status.success()
    )
}
