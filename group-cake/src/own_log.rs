//! group-cake's own log, `run/group-cake.log` (its stdout and stderr when `layer-cake start`
//! runs it in the background), kept within the group's log limits like a role's: past its
//! size it becomes `group-cake.previous.log` (and so on), and a new one is begun under the
//! same descriptors, so every later line, a panic's included, goes to the new file.

use layer_cake::home::log::shift_files;
use layer_cake::home::{Home, LogLimits};
use std::path::PathBuf;
use std::time::Duration;
use tracing::warn;

/// How often the log's size is looked at.
const EVERY: Duration = Duration::from_secs(2);

fn name(k: u32) -> String {
    match k {
        0 => "group-cake.log".into(),
        1 => "group-cake.previous.log".into(),
        k => format!("group-cake.previous-{k}.log"),
    }
}

/// Keeps group-cake's log within `limits`, if its stderr is the home's `run/group-cake.log`
/// (not in the foreground, where stderr is the terminal's).
pub fn keep_within(home: &Home, limits: LogLimits) {
    let dir = home.run_dir();
    let path = dir.join(name(0));
    if !is_stderr(&path) {
        return;
    }
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(EVERY).await;
            let size = std::fs::metadata("/proc/self/fd/2").map(|m| m.len()).unwrap_or(0);
            if size >= limits.size.max(1) && is_stderr(&path) {
                if let Err(e) = move_aside(&dir, &path, limits.files) {
                    warn!(error = %e, "cannot move group-cake's log aside");
                }
            }
        }
    });
}

/// Is `path` the file this process's stderr writes to?
fn is_stderr(path: &PathBuf) -> bool {
    match (std::fs::metadata("/proc/self/fd/2"), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => layer_cake::fsutil::same_file(&a, &b),
        _ => false,
    }
}

fn move_aside(dir: &std::path::Path, path: &PathBuf, keep: u32) -> std::io::Result<()> {
    shift_files(dir, name, keep)?;
    let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    nix::unistd::dup2_stdout(&file)?;
    nix::unistd::dup2_stderr(&file)?;
    Ok(())
}
