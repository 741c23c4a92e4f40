//! `layer-cake service`: systemd units for host-cake, lan-cake, or a home's composite.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};

/// Run host-cake, lan-cake or a home's composite as a systemd service, started at boot.
///
/// `install` writes a unit file (Type=notify: the daemon tells systemd once it listens, and
/// group-cake once every role is ready; restarted on failure) and prints the systemctl
/// commands that enable it. `uninstall` removes the file. Neither runs systemctl itself.
#[derive(Args)]
pub struct Service {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Write the unit file for WHAT.
    Install(Install),
    /// Remove the unit file for WHAT.
    Uninstall(Uninstall),
}

/// What a unit runs.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum What {
    /// The host's directory (`host-cake.service`).
    HostCake,
    /// The LAN's directory, on the LAN's .195 host (`lan-cake.service`).
    LanCake,
    /// The composite of the home at --home-path (`layer-cake-<NAME>.service`), as
    /// `layer-cake run` runs it.
    Home,
}

#[derive(Args)]
struct Install {
    /// What the unit runs.
    what: What,
    /// Where unit files go.
    #[arg(long, value_name = "DIR", default_value = "/etc/systemd/system")]
    unit_dir: PathBuf,
    /// The program to run (default: the one beside this `layer-cake`, else on PATH).
    #[arg(long, value_name = "PATH")]
    executable: Option<PathBuf>,
    /// For `home`: the unit's name, `layer-cake-NAME.service` (default: the name of the
    /// folder holding the home).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Replace a unit file that is there already.
    #[arg(long)]
    force: bool,
    /// Arguments for the daemon (host-cake or lan-cake), e.g. `-- --directory-at-lan 10.1.0.195:54195`.
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

#[derive(Args)]
struct Uninstall {
    /// What the unit runs.
    what: What,
    /// Where unit files go.
    #[arg(long, value_name = "DIR", default_value = "/etc/systemd/system")]
    unit_dir: PathBuf,
    /// For `home`: the unit's name, as given to `install`.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

impl Service {
    pub fn run(self, home_path: &Path) -> Result<()> {
        match self.action {
            Action::Install(i) => i.run(home_path),
            Action::Uninstall(u) => u.run(home_path),
        }
    }
}

/// The unit's file name.
fn unit_name(what: What, name: Option<&str>, home_path: &Path) -> Result<String> {
    Ok(match what {
        What::HostCake => "host-cake.service".into(),
        What::LanCake => "lan-cake.service".into(),
        What::Home => {
            let name = match name {
                Some(n) => n.to_string(),
                None => {
                    let home = std::path::absolute(home_path)?;
                    home.parent()
                        .and_then(|p| p.file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "home".into())
                }
            };
            let clean: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            format!("layer-cake-{clean}.service")
        }
    })
}

/// A program beside this `layer-cake`, else `name` found on PATH, as an absolute path.
fn sibling(name: &str) -> Result<PathBuf> {
    if let Some(p) = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name(name))
        .filter(|p| p.is_file())
    {
        return Ok(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .with_context(|| format!("cannot find {name} beside layer-cake or on PATH; give --executable"))
}

/// One word of an `ExecStart=` line, quoted when it needs to be. systemd expands `$` and `%`
/// even inside quotes, so they are doubled.
fn word(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-_.:=,@+".contains(c))
    {
        text.to_string()
    } else {
        format!(
            "\"{}\"",
            text.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('%', "%%")
                .replace('$', "$$")
        )
    }
}

/// How long systemd lets a composite stop: 30 s, and a grace period (5 s) more for each role
/// that waits for others (`--after`), as each level of waits is stopped in turn.
fn stop_seconds(home: &layer_cake::home::Home) -> Result<u64> {
    let mut ordered = 0;
    for role in home.roles()? {
        ordered += u64::from(!home.role(&role)?.after.is_empty());
    }
    Ok(30 + 5 * ordered)
}

impl Install {
    fn run(self, home_path: &Path) -> Result<()> {
        let unit = unit_name(self.what, self.name.as_deref(), home_path)?;
        let path = self.unit_dir.join(&unit);
        if path.exists() && !self.force {
            bail!("{} exists; give --force to replace it", path.display());
        }
        let (description, program, args, stop): (String, &str, Vec<String>, String) = match self.what {
            What::HostCake => (
                "layer-cake host directory (host-cake)".into(),
                "host-cake",
                self.args.clone(),
                String::new(),
            ),
            What::LanCake => (
                "layer-cake LAN directory (lan-cake)".into(),
                "lan-cake",
                self.args.clone(),
                String::new(),
            ),
            What::Home => {
                if !self.args.is_empty() {
                    bail!("arguments after -- are for host-cake and lan-cake; a home's roles take theirs from the home");
                }
                let opened = layer_cake::home::Home::open(home_path)?;
                let home = std::path::absolute(opened.path())?;
                (
                    format!("layer-cake composite of {}", home.display()),
                    "layer-cake",
                    vec!["run".into(), "--home-path".into(), home.display().to_string()],
                    // group-cake stops its roles itself on SIGTERM, the roles that waited for
                    // others first: each level gets its grace period (5 s), then SIGKILL.
                    format!("KillMode=mixed\nTimeoutStopSec={}s\n", stop_seconds(&opened)?),
                )
            }
        };
        let executable = match &self.executable {
            Some(p) => std::path::absolute(p)?,
            None => sibling(program)?,
        };
        let exec: Vec<String> = std::iter::once(executable.display().to_string())
            .chain(args)
            .map(|w| word(&w))
            .collect();
        let what = match self.what {
            What::HostCake => "host-cake",
            What::LanCake => "lan-cake",
            What::Home => "home",
        };
        let text = format!(
            "# Written by `layer-cake service install {what}`; remove it with `layer-cake service uninstall {what}`.\n\
             [Unit]\n\
             Description={description}\n\
             Wants=network-online.target\n\
             After=network-online.target\n\
             \n\
             [Service]\n\
             Type=notify\n\
             NotifyAccess=main\n\
             ExecStart={}\n\
             Restart=on-failure\n\
             RestartSec=1s\n\
             {stop}\
             NoNewPrivileges=yes\n\
             \n\
             [Install]\n\
             WantedBy=multi-user.target\n",
            exec.join(" ")
        );
        std::fs::create_dir_all(&self.unit_dir)
            .with_context(|| format!("cannot create {}", self.unit_dir.display()))?;
        layer_cake::fsutil::write_atomic(&path, text.as_bytes(), true)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
        println!("enable and start it with:");
        println!("  systemctl daemon-reload");
        println!("  systemctl enable --now {unit}");
        Ok(())
    }
}

impl Uninstall {
    fn run(self, home_path: &Path) -> Result<()> {
        let unit = unit_name(self.what, self.name.as_deref(), home_path)?;
        let path = self.unit_dir.join(&unit);
        if !path.exists() {
            bail!("{} is not there (nothing to uninstall)", path.display());
        }
        std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        println!("removed {}", path.display());
        println!("if it was enabled, stop and forget it with:");
        println!("  systemctl disable --now {unit}");
        println!("  systemctl daemon-reload");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::word;

    #[test]
    fn words_that_systemd_would_expand_or_split_are_quoted_and_escaped() {
        assert_eq!(word("/usr/bin/host-cake"), "/usr/bin/host-cake");
        assert_eq!(word("a b"), "\"a b\"");
        assert_eq!(word("$HOME"), "\"$$HOME\"");
        assert_eq!(word("100%"), "\"100%%\"");
        assert_eq!(word("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(word(""), "\"\"");
    }
}
