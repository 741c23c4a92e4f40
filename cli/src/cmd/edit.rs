//! `layer-cake edit`: change a role's (or the group's) settings in an editor.

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use layer_cake::home::{check_executable, GroupSettings, Home, RoleSettings, GROUP_ROLE};
use std::path::Path;

/// Edit a role's settings file (or the group's, with the role `group`) in $LC_EDITOR or
/// $EDITOR. The edited file is checked before it replaces the old one: settings that do not
/// decode, a restart policy that makes no sense or an executable that cannot be run leave the
/// old settings in place.
#[derive(Args)]
pub struct Edit {
    /// The role, or `group`.
    role: String,
}

impl Edit {
    pub fn run(self, home_path: &Path) -> Result<()> {
        let home = Home::open(home_path)?;
        let editor = std::env::var("LC_EDITOR")
            .or_else(|_| std::env::var("EDITOR"))
            .map_err(|_| anyhow!("set $LC_EDITOR or $EDITOR to the editor to use"))?;
        let (original, draft) = if self.role == GROUP_ROLE {
            let text = serde_json::to_string_pretty(&home.group()?)?;
            (text, home.path().join(".group.json.edit"))
        } else {
            let settings = home.role(&self.role)?;
            let text = serde_json::to_string_pretty(&settings)?;
            (text, home.role_dir(&self.role).join(".role.json.edit"))
        };
        std::fs::write(&draft, format!("{original}\n")).with_context(|| draft.display().to_string())?;
        let outcome = self.edit_and_save(&home, &editor, &draft, &original);
        let _ = std::fs::remove_file(&draft);
        outcome
    }

    fn edit_and_save(&self, home: &Home, editor: &str, draft: &Path, original: &str) -> Result<()> {
        // Through the shell, so an editor given with arguments ("code --wait") works.
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{editor} \"$1\""))
            .arg("sh")
            .arg(draft)
            .status()
            .with_context(|| format!("cannot run the editor {editor:?}"))?;
        if !status.success() {
            bail!("the editor {editor:?} failed ({status}); nothing changed");
        }
        let text = std::fs::read_to_string(draft)?;
        if text.trim() == original.trim() {
            println!("{} unchanged", self.role);
            return Ok(());
        }
        let invalid = |e: String| anyhow!("not saved, the edited settings are invalid: {e}");
        if self.role == GROUP_ROLE {
            let group: GroupSettings = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
            if let Some(retry) = &group.retry {
                retry.validate().map_err(|e| invalid(e.to_string()))?;
            }
            home.save_group(&group)?;
        } else {
            let settings: RoleSettings = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
            if let Some(retry) = &settings.retry {
                retry.validate().map_err(|e| invalid(e.to_string()))?;
            }
            check_executable(&settings.executable).map_err(|e| invalid(e.to_string()))?;
            for search in settings.after.iter().chain(&settings.ready_when_published) {
                layer_cake::Search::new(search).map_err(|e| invalid(e.to_string()))?;
            }
            home.save_role(&self.role, &settings)?;
        }
        println!("updated {}", self.role);
        Ok(())
    }
}
