//! `layer-cake completions` and `layer-cake man`: shell completions and manual pages, made
//! from the command-line definitions themselves (so they cannot drift from `--help`).

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

/// Print a shell's completions for layer-cake.
///
/// bash: `layer-cake completions bash > /etc/bash_completion.d/layer-cake` (or
/// `~/.local/share/bash-completion/completions/layer-cake`); zsh: into a folder on `$fpath` as
/// `_layer-cake`; fish: `~/.config/fish/completions/layer-cake.fish`.
#[derive(Args)]
pub struct Completions {
    /// The shell: bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

impl Completions {
    pub fn run(self, mut command: clap::Command) -> Result<()> {
        let name = command.get_name().to_string();
        clap_complete::generate(self.shell, &mut command, name, &mut std::io::stdout());
        Ok(())
    }
}

/// Write the manual pages: `layer-cake.1`, and `layer-cake-COMMAND.1` for each command.
///
/// Into FOLDER (made if missing), e.g. `layer-cake man /usr/local/share/man/man1`; or, with no
/// FOLDER, the main page to stdout (`layer-cake man | man -l -`).
#[derive(Args)]
pub struct Man {
    /// Where to write the pages.
    folder: Option<PathBuf>,
}

impl Man {
    pub fn run(self, command: clap::Command) -> Result<()> {
        let Some(folder) = self.folder else {
            clap_mangen::Man::new(command).render(&mut std::io::stdout())?;
            return Ok(());
        };
        std::fs::create_dir_all(&folder).with_context(|| folder.display().to_string())?;
        let mut written = Vec::new();
        let mut page = |command: clap::Command, name: String| -> Result<()> {
            let path = folder.join(format!("{name}.1"));
            let mut text = Vec::new();
            clap_mangen::Man::new(command.name(name.clone())).render(&mut text)?;
            layer_cake::home::write_atomic(&path, &text)?;
            written.push(path);
            Ok(())
        };
        let main = command.get_name().to_string();
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            let sub = sub.clone().bin_name(format!("{main} {}", sub.get_name()));
            let name = format!("{main}-{}", sub.get_name());
            page(sub, name)?;
        }
        page(command, main)?;
        for path in written {
            println!("wrote {}", path.display());
        }
        Ok(())
    }
}
