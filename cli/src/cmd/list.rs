//! `layer-cake list`: show a home's roles.

use anyhow::Result;
use clap::Args;
use layer_cake::home::Home;
use serde::Serialize;
use std::path::Path;

/// List roles: names, or with --long-listing their executable, stored folders/files/bytes and
/// arguments; --json for scripts.
#[derive(Args)]
pub struct List {
    /// Only roles matching these regular expressions (whole names).
    search: Vec<String>,
    /// Executable, storage use and arguments too.
    #[arg(short = 'l', long)]
    long_listing: bool,
    /// One JSON document (an array of roles), for scripts.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Row {
    role: String,
    executable: String,
    args: Vec<String>,
    folders: u64,
    files: u64,
    bytes: u64,
}

impl List {
    pub fn run(self, home_path: &Path) -> Result<()> {
        let home = Home::open(home_path)?;
        let mut rows = Vec::new();
        for role in home.select(&self.search)? {
            let settings = home.role(&role)?;
            let usage = home.role_usage(&role)?;
            rows.push(Row {
                role,
                executable: settings.executable.display().to_string(),
                args: settings.args,
                folders: usage.folders,
                files: usage.files,
                bytes: usage.bytes,
            });
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(&rows)?);
        } else if self.long_listing {
            for r in rows {
                let usage = format!("{}/{}/{}", r.folders, r.files, r.bytes);
                // Quoted as a shell would need them, so `a b` and `a` `b` read apart.
                let args: Vec<String> = r.args.iter().map(|a| shell_word(a)).collect();
                let line = format!(
                    "{:<24} {} {} {}",
                    r.role,
                    shell_word(&r.executable),
                    usage,
                    args.join(" ")
                );
                println!("{}", line.trim_end());
            }
        } else {
            for r in rows {
                println!("{}", r.role);
            }
        }
        Ok(())
    }
}

/// `text` as one shell word (quoted when it needs to be).
fn shell_word(text: &str) -> String {
    shlex::try_quote(text).map_or_else(|_| format!("{text:?}"), |q| q.into_owned())
}
