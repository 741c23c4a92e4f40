//! How a role's process is started: its environment, its working folder, its own folders and
//! its user. The same wherever `start` is run from (a shell, cron, systemd).
//!
//! The environment is fixed: a few standard variables from group-cake's own (`PATH`, `HOME`,
//! `USER`, `LOGNAME`, `LANG`, `LC_ALL`, `TZ`, `TERM`, `NO_COLOR`), then the role's `env_file`,
//! then its `env`, then the variables group-cake tells every role (`LC_DIRECTORY`, `LC_ROLE`,
//! ... [`crate::role`]). Nothing else of the shell that ran `start` reaches a role.

use super::{io_error, Home, HomeError, RoleSettings};
use std::path::PathBuf;

/// The variables of group-cake's own environment a role starts with.
pub const PASSED_ON: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TERM", "NO_COLOR",
];

const MODEL_DIR: &str = "model";
const TMP_DIR: &str = "tmp";

/// What a role's process starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// Its whole environment.
    pub env: Vec<(String, String)>,
    /// The folder it starts in.
    pub cwd: PathBuf,
    /// The user and group ids it runs as, when not group-cake's.
    pub ids: Option<(u32, u32)>,
}

impl Home {
    /// The role's own folder, kept from run to run.
    pub fn model_dir(&self, role: &str) -> PathBuf {
        self.role_dir(role).join(MODEL_DIR)
    }

    /// The role's scratch folder, emptied before each start.
    pub fn tmp_dir(&self, role: &str) -> PathBuf {
        self.role_dir(role).join(TMP_DIR)
    }

    /// Makes ready to start `role`'s process: its folders (the scratch one emptied), and
    /// what it starts with, with group-cake's variables `told` laid over everything else.
    pub fn launch(
        &self,
        role: &str,
        settings: &RoleSettings,
        told: &[(&str, String)],
    ) -> Result<Launch, HomeError> {
        let model = self.model_dir(role);
        let tmp = self.tmp_dir(role);
        std::fs::create_dir_all(&model).map_err(io_error(&model))?;
        match std::fs::remove_dir_all(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_error(&tmp)(e)),
            _ => {}
        }
        std::fs::create_dir_all(&tmp).map_err(io_error(&tmp))?;
        let mut env: Vec<(String, String)> = PASSED_ON
            .iter()
            .filter_map(|k| Some((k.to_string(), std::env::var(k).ok()?)))
            .collect();
        let mut set = |k: String, v: String| {
            env.retain(|(key, _)| *key != k);
            env.push((k, v));
        };
        if let Some(file) = &settings.env_file {
            let text = std::fs::read_to_string(file).map_err(io_error(file))?;
            for (k, v) in parse_env_file(&text).map_err(|reason| HomeError::BadFile {
                path: file.clone(),
                reason,
            })? {
                set(k, v);
            }
        }
        for (k, v) in &settings.env {
            set(k.clone(), v.clone());
        }
        for (k, v) in told {
            set(k.to_string(), v.clone());
        }
        set(crate::role::MODEL_ENV.to_string(), model.display().to_string());
        set(crate::role::TMP_ENV.to_string(), tmp.display().to_string());
        let cwd = match &settings.cwd {
            Some(dir) => dir.clone(),
            None => self
                .path()
                .parent()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/")),
        };
        let ids = settings.user.as_deref().map(user_ids).transpose()?;
        if let Some((uid, gid)) = ids {
            // The role's own folders are its user's.
            for dir in [&model, &tmp] {
                nix::unistd::chown(dir.as_path(), Some(uid.into()), Some(gid.into()))
                    .map_err(|e| io_error(dir)(e.into()))?;
            }
        }
        Ok(Launch { env, cwd, ids })
    }
}

/// The user and group ids of user `name` (or a number).
pub fn user_ids(name: &str) -> Result<(u32, u32), HomeError> {
    let user = match name.parse::<u32>() {
        Ok(uid) => nix::unistd::User::from_uid(uid.into()),
        Err(_) => nix::unistd::User::from_name(name),
    };
    match user {
        Ok(Some(u)) => Ok((u.uid.as_raw(), u.gid.as_raw())),
        Ok(None) => Err(HomeError::BadFile {
            path: PathBuf::from("/etc/passwd"),
            reason: format!("no user {name:?}"),
        }),
        Err(e) => Err(HomeError::BadFile {
            path: PathBuf::from("/etc/passwd"),
            reason: format!("cannot look up user {name:?}: {e}"),
        }),
    }
}

/// The variables of an env file: `KEY=VALUE` lines (`export ` before the key allowed), blank
/// lines and `#` comments ignored, a value in single or double quotes taken as it is inside.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut vars = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {}: not KEY=VALUE: {line:?}", n + 1));
        };
        let key = key.trim();
        if !valid_key(key) {
            return Err(format!("line {}: {key:?} is not a variable name", n + 1));
        }
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)));
        vars.push((key.to_string(), unquoted.unwrap_or(value).to_string()));
    }
    Ok(vars)
}

/// A variable name: letters, digits and `_`, not starting with a digit.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_are_read_as_a_shell_user_writes_them() {
        let text = "# comment\n\nA=1\nexport B = two words \nC=\"quoted # not a comment\"\nD='single'\nE=\n";
        assert_eq!(
            parse_env_file(text).unwrap(),
            [
                ("A", "1"),
                ("B", "two words"),
                ("C", "quoted # not a comment"),
                ("D", "single"),
                ("E", "")
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert!(parse_env_file("no equals sign").unwrap_err().contains("line 1"));
        assert!(parse_env_file("1X=y")
            .unwrap_err()
            .contains("not a variable name"));
    }
}
