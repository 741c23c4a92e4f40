//! `layer-cake create`: make a new, empty home.

use super::GroupFlags;
use anyhow::Result;
use clap::Args;
use layer_cake::home::{GroupSettings, Home};
use std::path::{Path, PathBuf};

/// Create a home: a folder for roles and the group's settings. Fails if the folder exists.
#[derive(Args)]
pub struct Create {
    /// Where (instead of --home-path).
    home: Option<PathBuf>,
    #[command(flatten)]
    group: GroupFlags,
}

impl Create {
    pub fn run(self, home_path: &Path) -> Result<()> {
        let path = self.home.as_deref().unwrap_or(home_path);
        let mut group = GroupSettings::default();
        self.group.apply(&mut group);
        let home = Home::create(path, &group)?;
        println!("created {}", home.path().display());
        Ok(())
    }
}
