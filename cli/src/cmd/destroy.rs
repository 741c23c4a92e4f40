//! `layer-cake destroy`: remove a whole home.

use anyhow::Result;
use clap::Args;
use layer_cake::home::Home;
use std::path::{Path, PathBuf};

/// Remove a home and everything in it.
#[derive(Args)]
pub struct Destroy {
    /// Which (instead of --home-path).
    home: Option<PathBuf>,
}

impl Destroy {
    pub fn run(self, home_path: &Path) -> Result<()> {
        let home = Home::open(self.home.as_deref().unwrap_or(home_path))?;
        home.lock()?;
        let shown = home.path().display().to_string();
        home.destroy()?;
        println!("destroyed {shown}");
        Ok(())
    }
}
