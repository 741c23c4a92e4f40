//! `layer-cake run`: the composite process in the foreground.

use super::{check_main_role, group_cake_command, select_existing};
use anyhow::{anyhow, Result};
use clap::Args;
use layer_cake::home::Home;
use std::os::unix::process::CommandExt;
use std::path::Path;

/// Run roles as one composite process, in the foreground.
///
/// group-cake (the group's directory and supervisor) starts every selected role at once, with
/// the group's directory in LC_DIRECTORY so they find each other at GROUP scope. Each line a
/// role prints comes out tagged `role[pid]`, on stdout if the role wrote it to its stdout and
/// on stderr if to its stderr (and goes to the role's log); group-cake's own lines show from
/// warnings up (-v for all). Ctrl-C stops
/// every role in order: SIGTERM, a grace period, then SIGKILL; it returns once all are gone.
/// With a main role, the composite ends when that role ends, with its exit status; otherwise
/// it runs while any role runs, then reports how each ended.
#[derive(Args)]
pub struct Run {
    /// Only the roles matching these regular expressions (whole names); all when none.
    search: Vec<String>,
    /// End when this role ends, with its exit status (over the group's setting).
    #[arg(long, value_name = "ROLE")]
    main_role: Option<String>,
    /// How long roles get to end after SIGTERM before they are killed, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    grace_ms: u64,
    /// Show group-cake's own informational lines too.
    #[arg(short, long)]
    verbose: bool,
}

impl Run {
    pub fn run(self, home_path: &Path) -> Result<()> {
        let home = Home::open(home_path)?;
        let roles = select_existing(&home, &self.search)?;
        check_main_role(self.main_role.as_deref(), &roles)?;
        // Held from here on, and handed over: this process becomes group-cake.
        let lock = home.lock()?;
        home.check_room()?;
        lock.set_holder(std::process::id())?;
        // Only the roles' output by default: group-cake's own lines from warnings up, unless
        // asked for (-v) or set in LC_DEBUG_LEVEL / RUST_LOG. (A flag, not the variable: the
        // roles' own logging is theirs.)
        let chosen = std::env::var_os("LC_DEBUG_LEVEL").is_some() || std::env::var_os("RUST_LOG").is_some();
        let level = (!chosen).then_some(if self.verbose { "info" } else { "warn" });
        // group-cake takes over this process: signals, exit status and all.
        let error = group_cake_command(
            home.path(),
            &lock,
            &self.search,
            self.main_role.as_deref(),
            self.grace_ms,
            true,
            level,
        )?
        .exec();
        Err(anyhow!("cannot run {}: {error}", super::group_cake().display()))
    }
}
