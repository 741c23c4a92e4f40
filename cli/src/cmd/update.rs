//! `layer-cake update`: change the settings of roles, or of the group.

use super::GroupFlags;
use anyhow::{bail, Result};
use clap::Args;
use layer_cake::home::{resolve_executable, Home, GROUP_ROLE};
use std::path::Path;

/// Change roles' settings, or the group's (`layer-cake update group --retry='{"regular_steps": 30.0}'`).
///
/// For roles: arguments after `--` replace the ones they start with; --executable and --retry
/// replace theirs. For the group: --retry, --main-role, --directory-at-host, --directory-at-lan.
/// A running composite takes the change at `layer-cake reload` (a role's restart uses its own
/// settings then too; the directories and the main role, at the next start).
#[derive(Args)]
pub struct Update {
    /// The roles to change (regular expressions matching whole role names), or `group`.
    #[arg(required = true)]
    search: Vec<String>,
    /// A new executable for the roles.
    #[arg(long, value_name = "PATH")]
    executable: Option<String>,
    #[command(flatten)]
    group: GroupFlags,
    #[command(flatten)]
    launch: super::LaunchFlags,
    #[command(flatten)]
    ready: super::ReadyFlags,
    /// New arguments for the roles' processes.
    #[arg(last = true, value_name = "ARGS")]
    args: Option<Vec<String>>,
}

impl Update {
    pub fn run(self, home_path: &Path) -> Result<()> {
        let home = Home::open(home_path)?;
        let l = &self.launch;
        let launch_given = !l.env.is_empty()
            || !l.unset_env.is_empty()
            || l.env_file.is_some()
            || l.cwd.is_some()
            || l.user.is_some()
            || self.ready.given();
        if self.search == [GROUP_ROLE] {
            if launch_given {
                bail!("--env, --env-file, --cwd, --user, --after and the readiness flags are a role's: use `layer-cake update ROLE ...`");
            }
            if self.executable.is_some() || self.args.is_some() {
                bail!("the group has no executable or arguments; give --retry, --main-role or a directory");
            }
            if let Some(main) = &self.group.main_role {
                let roles = home.roles()?;
                if !roles.contains(main) {
                    bail!(
                        "no role {main:?} to be the main role (roles: {})",
                        roles.join(", ")
                    );
                }
            }
            let mut group = home.group()?;
            if !self.group.apply(&mut group) {
                bail!(
                    "nothing to update: give --retry, --main-role, --no-main-role, --directory-at-host, --directory-at-lan or --secret-file"
                );
            }
            home.save_group(&group)?;
            println!("updated {GROUP_ROLE}");
            note_running(&home)?;
            return Ok(());
        }
        let g = &self.group;
        if g.main_role.is_some()
            || g.no_main_role
            || g.directory_at_host.is_some()
            || g.directory_at_lan.is_some()
            || g.secret_file.is_some()
        {
            bail!(
                "--main-role, --no-main-role, --secret-file and the directory flags are the group's: use `layer-cake update group ...`"
            );
        }
        let roles = home.select(&self.search)?;
        if roles.is_empty() {
            bail!("no role matches {}", self.search.join(" "));
        }
        if self.executable.is_none()
            && self.args.is_none()
            && g.retry.is_none()
            && g.log.log_size.is_none()
            && g.log.log_files.is_none()
            && !launch_given
        {
            bail!("nothing to update: give --executable, --retry, --log-size, --log-files, --env, --env-file, --cwd, --user, --after, --ready-when-published, --ready-probe or arguments after --");
        }
        let executable = self.executable.as_deref().map(resolve_executable).transpose()?;
        for role in roles {
            let mut settings = home.role(&role)?;
            if let Some(executable) = &executable {
                settings.executable = executable.clone();
            }
            if let Some(args) = &self.args {
                settings.args = args.clone();
            }
            if let Some(retry) = &g.retry {
                settings.retry = retry.policy();
            }
            g.log.apply(&mut settings.log);
            self.launch.apply(&mut settings)?;
            self.ready.apply(&mut settings);
            home.save_role(&role, &settings)?;
            println!("updated {role}");
        }
        note_running(&home)?;
        Ok(())
    }
}

/// A running composite takes changed settings when it reloads the home: says so.
fn note_running(home: &Home) -> Result<()> {
    if home.is_running()? {
        println!("the running composite takes it with `layer-cake reload` (or at a role's restart)");
    }
    Ok(())
}
