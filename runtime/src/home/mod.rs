//! The home: a folder holding a composite process's roles and its group settings.
//!
//! One model, shared by the `layer-cake` CLI and group-cake, so nothing parses a home twice.
//! Everything in a home is plain, pretty-printed JSON a person may read and edit:
//!
//! ```text
//! .layer-cake/
//!   group.json              the group's settings (restart policy, main role, directory above)
//!   roles/<role>/role.json  a role: its executable and the arguments it is started with
//! ```
//!
//! A running composite adds its own files ([`run`], [`log`]).
//!
//! Every write goes to a temporary file in the same folder and is renamed over the old one,
//! so a crash never leaves a half-written settings file.

pub mod control;
mod files;
pub mod launch;
pub mod log;
pub mod run;
mod settings;

pub use files::write_atomic;
pub use settings::{BadRetryPolicy, GroupSettings, LogLimits, RestartMode, RetryPolicy, RoleSettings};

use crate::directory::Search;
use std::path::{Path, PathBuf};

/// The default home folder, in the current folder.
pub const DEFAULT_HOME: &str = ".layer-cake";

/// The reserved role name that stands for the group itself (`update group ...`).
pub const GROUP_ROLE: &str = "group";

const GROUP_FILE: &str = "group.json";
const ROLES_DIR: &str = "roles";
const ROLE_FILE: &str = "role.json";

/// What went wrong with a home.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    /// `create` on a path that exists.
    #[error("{0} already exists")]
    Exists(PathBuf),
    /// The folder is not a home.
    #[error("{0} is not a layer-cake home (no {GROUP_FILE}); create one with `layer-cake create`")]
    NotAHome(PathBuf),
    /// `add` of a role that exists.
    #[error("role {0:?} already exists")]
    RoleExists(String),
    /// A role that does not exist.
    #[error("no role {0:?}")]
    NoRole(String),
    /// A role name that cannot be used.
    #[error("invalid role name {0:?}: use letters, digits, '-', '_' and '.', not starting with '.', and not \"{GROUP_ROLE}\"")]
    BadRoleName(String),
    /// An executable that is missing or cannot be run.
    #[error("{path}: {reason}")]
    BadExecutable {
        /// What was given.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// A search that is not a valid regular expression.
    #[error(transparent)]
    BadSearch(#[from] crate::directory::SearchError),
    /// A settings file that does not decode.
    #[error("{path}: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// The decoder's explanation.
        reason: String,
    },
    /// The home is being run by a group-cake.
    #[error("{} is running ({}); stop it first with `layer-cake stop`", home.display(), pid.map_or("starting now".to_string(), |p| format!("group-cake pid {p}")))]
    Running {
        /// The home.
        home: PathBuf,
        /// The group-cake running it, if known.
        pid: Option<u32>,
    },
    /// The home's composite is starting (its status is not written yet).
    #[error("{} is starting (group-cake pid {pid}); try again in a moment, or stop it with `layer-cake stop`", home.display())]
    Starting {
        /// The home.
        home: PathBuf,
        /// The process starting it.
        pid: u32,
    },
    /// Roles that a command would change are running.
    #[error("{} running: stop {} first", match .0.len() { 1 => format!("role {} is", .0[0]), _ => format!("roles {} are", .0.join(", ")) }, if .0.len() == 1 { "it" } else { "them" })]
    RolesRunning(Vec<String>),
    /// The file system refused.
    #[error("{path}: {error}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error (in the message, so not also given as its source).
        error: std::io::Error,
    },
    /// The disk holding the home is full.
    #[error("the disk is full: cannot write {path}; free some space, then try again")]
    DiskFull {
        /// What could not be written.
        path: PathBuf,
    },
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> HomeError + '_ {
    move |error| match error.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => HomeError::DiskFull {
            path: path.to_path_buf(),
        },
        _ => HomeError::Io {
            path: path.to_path_buf(),
            error,
        },
    }
}

/// A home folder. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Home {
    path: PathBuf,
}

impl Home {
    /// Creates a home at `path` with `group` settings; fails if anything exists there.
    pub fn create(path: &Path, group: &GroupSettings) -> Result<Home, HomeError> {
        if path.exists() {
            return Err(HomeError::Exists(path.to_path_buf()));
        }
        std::fs::create_dir_all(path.join(ROLES_DIR)).map_err(io_error(path))?;
        let home = Home {
            path: absolute(path)?,
        };
        home.save_group(group)?;
        Ok(home)
    }

    /// Opens the home at `path`.
    pub fn open(path: &Path) -> Result<Home, HomeError> {
        if !path.join(GROUP_FILE).is_file() {
            return Err(HomeError::NotAHome(path.to_path_buf()));
        }
        Ok(Home {
            path: absolute(path)?,
        })
    }

    /// The home's folder (absolute).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the whole home.
    pub fn destroy(self) -> Result<(), HomeError> {
        std::fs::remove_dir_all(&self.path).map_err(io_error(&self.path))
    }

    /// The group's settings.
    pub fn group(&self) -> Result<GroupSettings, HomeError> {
        files::read_json(&self.path.join(GROUP_FILE))
    }

    /// Replaces the group's settings.
    pub fn save_group(&self, group: &GroupSettings) -> Result<(), HomeError> {
        files::write_json(&self.path.join(GROUP_FILE), group)
    }

    /// The folder of one role.
    pub fn role_dir(&self, role: &str) -> PathBuf {
        self.path.join(ROLES_DIR).join(role)
    }

    /// Every role's name, sorted.
    pub fn roles(&self) -> Result<Vec<String>, HomeError> {
        let dir = self.path.join(ROLES_DIR);
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io_error(&dir))? {
            let entry = entry.map_err(io_error(&dir))?;
            // (A name starting with '.' is no role's: `add`'s scratch folder, say.)
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if !hidden && entry.path().join(ROLE_FILE).is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// The roles any of `searches` matches (each a regular expression matched against the
    /// whole role name); every role when `searches` is empty. Sorted.
    pub fn select(&self, searches: &[String]) -> Result<Vec<String>, HomeError> {
        let searches = searches
            .iter()
            .map(|s| Search::new(s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self
            .roles()?
            .into_iter()
            .filter(|r| searches.is_empty() || searches.iter().any(|s| s.matches(r)))
            .collect())
    }

    /// One role's settings.
    pub fn role(&self, role: &str) -> Result<RoleSettings, HomeError> {
        let file = self.role_dir(role).join(ROLE_FILE);
        if !file.is_file() {
            return Err(HomeError::NoRole(role.to_string()));
        }
        files::read_json(&file)
    }

    /// Adds roles, all or none: fails if any name is invalid or taken, or the executable
    /// cannot be run.
    pub fn add(&self, names: &[String], settings: &RoleSettings) -> Result<(), HomeError> {
        check_executable(&settings.executable)?;
        for name in names {
            check_role_name(name)?;
            if self.role_dir(name).exists() {
                return Err(HomeError::RoleExists(name.clone()));
            }
        }
        for (made, name) in names.iter().enumerate() {
            if let Err(e) = self.add_one(name, settings) {
                // All or nothing: no folder is left behind that `add` would call taken and
                // `list` would not show.
                for done in &names[..=made] {
                    let _ = std::fs::remove_dir_all(self.role_dir(done));
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// One role's folder and settings, made in a scratch folder and renamed into place, so a
    /// role folder exists only with its settings in it.
    fn add_one(&self, name: &str, settings: &RoleSettings) -> Result<(), HomeError> {
        let dir = self.role_dir(name);
        let parent = dir.parent().expect("a role folder has a parent");
        std::fs::create_dir_all(parent).map_err(io_error(parent))?;
        let scratch = parent.join(format!(".adding-{name}-{}", std::process::id()));
        let made = std::fs::create_dir(&scratch)
            .map_err(io_error(&scratch))
            .and_then(|()| files::write_json(&scratch.join(ROLE_FILE), settings))
            .and_then(|()| std::fs::rename(&scratch, &dir).map_err(io_error(&dir)));
        if made.is_err() {
            let _ = std::fs::remove_dir_all(&scratch);
        }
        // (Named as the user knows it, not the scratch folder.)
        made.map_err(|e| match e {
            HomeError::DiskFull { .. } => HomeError::DiskFull {
                path: dir.join(ROLE_FILE),
            },
            e => e,
        })
    }

    /// Replaces one role's settings.
    pub fn save_role(&self, role: &str, settings: &RoleSettings) -> Result<(), HomeError> {
        check_executable(&settings.executable)?;
        let file = self.role_dir(role).join(ROLE_FILE);
        if !file.is_file() {
            return Err(HomeError::NoRole(role.to_string()));
        }
        files::write_json(&file, settings)
    }

    /// Removes one role and everything in its folder.
    pub fn delete(&self, role: &str) -> Result<(), HomeError> {
        let dir = self.role_dir(role);
        if !dir.join(ROLE_FILE).is_file() {
            return Err(HomeError::NoRole(role.to_string()));
        }
        std::fs::remove_dir_all(&dir).map_err(io_error(&dir))
    }

    /// Folders, files and bytes under a role's folder.
    pub fn role_usage(&self, role: &str) -> Result<files::Usage, HomeError> {
        files::usage(&self.role_dir(role))
    }
}

/// The names `add` gives: `role`, or `role-START` … `role-(START+COUNT-1)`.
pub fn role_names(role: &str, count: Option<u32>, start: u32) -> Vec<String> {
    match count {
        None => vec![role.to_string()],
        Some(n) => (start..start + n).map(|i| format!("{role}-{i}")).collect(),
    }
}

/// Is `name` usable as a role name?
pub fn check_role_name(name: &str) -> Result<(), HomeError> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name != GROUP_ROLE
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if valid {
        Ok(())
    } else {
        Err(HomeError::BadRoleName(name.to_string()))
    }
}

/// Checks that `path` is an executable file (at `add` time, not at run time).
pub fn check_executable(path: &Path) -> Result<(), HomeError> {
    use std::os::unix::fs::PermissionsExt;
    let bad = |reason: &str| HomeError::BadExecutable {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(&e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("not a file"));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(bad("not executable (no x permission)"));
    }
    Ok(())
}

/// Finds an executable the way a shell would: a path with a `/` as given, else on `PATH`.
/// The answer is absolute, so the home works from any folder.
pub fn resolve_executable(given: &str) -> Result<PathBuf, HomeError> {
    let path = Path::new(given);
    if given.contains('/') {
        check_executable(path)?;
        return absolute(path);
    }
    let search = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&search) {
        let candidate = dir.join(given);
        if check_executable(&candidate).is_ok() {
            return absolute(&candidate);
        }
    }
    Err(HomeError::BadExecutable {
        path: path.to_path_buf(),
        reason: "not found (give a path, or put it on PATH)".into(),
    })
}

fn absolute(path: &Path) -> Result<PathBuf, HomeError> {
    std::path::absolute(path).map_err(io_error(path))
}

#[cfg(test)]
mod tests;
