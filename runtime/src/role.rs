//! What a process started as a role of a composite is told, and how it reports a result.
//!
//! group-cake starts each role with these environment variables (documented in the README):
//!
//! | variable | value |
//! |---|---|
//! | `LC_DIRECTORY` | the group's directory (`127.0.0.1:<port>`): a [`Node`](crate::Node) joins it with no configuration |
//! | `LC_ROLE` | the role's name (`worker-3`) |
//! | `LC_HOME` | the home folder (absolute) |
//! | `LC_RETURNED` | a file where the process may leave its result; see [`set_returned`] |
//! | `LC_GROUP_PID` | group-cake's process id |
//! | `LC_MODEL` | the role's own folder, kept from run to run (`roles/<role>/model`) |
//! | `LC_TMP` | the role's scratch folder, emptied before each start (`roles/<role>/tmp`) |

use serde::Serialize;

/// The variable holding the role's name.
pub const ROLE_ENV: &str = "LC_ROLE";
/// The variable holding the home folder.
pub const HOME_ENV: &str = "LC_HOME";
/// The variable naming the file for the role's result.
pub const RETURNED_ENV: &str = "LC_RETURNED";
/// The variable holding group-cake's process id.
pub const GROUP_PID_ENV: &str = "LC_GROUP_PID";
/// The variable naming the role's own folder, kept from run to run.
pub const MODEL_ENV: &str = "LC_MODEL";
/// The variable naming the role's scratch folder, emptied before each start.
pub const TMP_ENV: &str = "LC_TMP";

/// This process's role name, when it was started as a role of a composite.
pub fn role_name() -> Option<String> {
    std::env::var(ROLE_ENV).ok().filter(|r| !r.is_empty())
}

/// Leaves `value` (as JSON) as this run's result: `layer-cake history` and `layer-cake
/// returned` show it once the process has ended. Returns `false` (and does nothing) when the
/// process is not a role of a composite. The last call before the process ends wins.
pub fn set_returned<T: Serialize + ?Sized>(value: &T) -> std::io::Result<bool> {
    let Some(path) = std::env::var_os(RETURNED_ENV) else {
        return Ok(false);
    };
    let text = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    crate::fsutil::write_atomic(std::path::Path::new(&path), &text, true)?;
    Ok(true)
}
