//! `layer-cake add`: add one role, or a numbered set of them, to a home.

use anyhow::Result;
use clap::Args;
use layer_cake::home::{resolve_executable, role_names, Home, RoleSettings};
use std::path::{Path, PathBuf};

/// Add a role: a name, an executable, and the arguments it is started with.
///
/// The executable must exist and be executable now. Arguments after `--` are passed to the
/// role's process each time it starts: `layer-cake add ./worker worker --role-count=8 -- --size=4`.
/// The home is `.layer-cake` here, or --home-path, or the third argument.
///
/// Each process starts the same way wherever `start` is run from: in the folder the home is in
/// (or --cwd), with a fixed environment: PATH, HOME, USER, LOGNAME, LANG, LC_ALL, TZ, TERM and
/// NO_COLOR from group-cake's, then --env-file, then --env, then what group-cake tells every
/// role (LC_DIRECTORY, LC_ROLE, LC_HOME, LC_RETURNED, LC_GROUP_PID, LC_MODEL: the role's own
/// folder, kept; LC_TMP: its scratch folder, emptied before each start).
///
/// Ordering and readiness: `--after 'db:.*'` starts the role only once a process of the
/// composite has published a matching name; `--ready-when-published NAME` or `--ready-probe
/// CMD` say when it is ready (`status` shows it; `start --wait` waits for every role ready).
#[derive(Args)]
pub struct Add {
    /// The program: a path, or a name found on PATH.
    executable: String,
    /// The role's name (default: the executable's name).
    role: Option<String>,
    /// The home to add it to (instead of --home-path).
    home: Option<PathBuf>,
    /// Add this many roles, named ROLE-START ... ROLE-(START+N-1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    role_count: Option<u32>,
    /// The first number, with --role-count.
    #[arg(long, value_name = "START", default_value_t = 0, requires = "role_count")]
    role_start: u32,
    /// A restart policy for these roles alone, over the group's: `always`, `on-failure`,
    /// `never`, or JSON (as for `create --retry`).
    #[arg(long, value_name = "POLICY", value_parser = super::parse_retry)]
    retry: Option<super::RetryChange>,
    #[command(flatten)]
    log: super::LogFlags,
    #[command(flatten)]
    launch: super::LaunchFlags,
    #[command(flatten)]
    ready: super::ReadyFlags,
    /// Arguments for the role's process.
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

impl Add {
    pub fn run(self, home_path: &Path) -> Result<()> {
        let home = Home::open(self.home.as_deref().unwrap_or(home_path))?;
        let executable = resolve_executable(&self.executable)?;
        let role = match self.role {
            Some(role) => role,
            None => default_role(&executable),
        };
        let names = role_names(&role, self.role_count, self.role_start);
        let mut settings = RoleSettings {
            args: self.args,
            retry: self.retry.and_then(|r| r.policy()),
            ..RoleSettings::new(executable)
        };
        self.log.apply(&mut settings.log);
        self.launch.apply(&mut settings)?;
        self.ready.apply(&mut settings);
        home.add(&names, &settings)?;
        for name in names {
            println!("added {name}");
        }
        Ok(())
    }
}

/// The executable's file name without its extension (`pub.py` gives `pub`).
fn default_role(executable: &Path) -> String {
    executable
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| PathBuf::from(executable).display().to_string())
}
