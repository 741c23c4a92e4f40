//! `layer-cake delete`: remove roles from a home.

use anyhow::{bail, Result};
use clap::Args;
use layer_cake::home::Home;
use std::path::Path;

/// Remove roles (and everything stored for them).
#[derive(Args)]
pub struct Delete {
    /// The roles to remove: regular expressions matching whole role names.
    #[arg(required_unless_present = "all_roles", conflicts_with = "all_roles")]
    search: Vec<String>,
    /// Remove every role.
    #[arg(long)]
    all_roles: bool,
}

impl Delete {
    pub fn run(self, home_path: &Path) -> Result<()> {
        let home = Home::open(home_path)?;
        let roles = home.select(&self.search)?;
        if roles.is_empty() && !self.all_roles {
            bail!("no role matches {}", self.search.join(" "));
        }
        home.check_not_running(&roles)?;
        for role in roles {
            home.delete(&role)?;
            println!("deleted {role}");
        }
        Ok(())
    }
}
