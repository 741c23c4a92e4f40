//! Operating a running composite: the requests `layer-cake restart`, `start ROLE`, `stop ROLE`
//! and `reload` send group-cake, over a Unix socket in the home (`run/control.sock`), one
//! JSON line each way.

use super::{Home, HomeError};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::time::Duration;

const SOCKET: &str = "control.sock";
/// How long a request may take to be answered (it is answered once acted on, before the roles
/// it concerns have finished starting or stopping).
pub const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// The longest request line group-cake reads.
pub const MAX_REQUEST: usize = 64 * 1024;

/// What a running composite is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Request {
    /// Start these roles (those of the home not running now).
    Start(Vec<String>),
    /// Stop these roles, leaving the rest running.
    Stop(Vec<String>),
    /// Stop these roles and start them again.
    Restart(Vec<String>),
    /// Read the home again: start added roles, stop removed ones, restart changed ones, take
    /// the group's new policies; leave the rest alone.
    Reload,
}

/// group-cake's answer: what it did, or why it could not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer {
    /// Done (or under way): what.
    Ok(String),
    /// Refused: why.
    Error(String),
}

impl Home {
    /// Where group-cake takes requests while it runs the home.
    pub fn control_socket(&self) -> PathBuf {
        self.run_dir().join(SOCKET)
    }

    /// Asks the running composite to do `request`; its answer.
    pub fn ask(&self, request: &Request) -> Result<Answer, HomeError> {
        let path = self.control_socket();
        let io = |e: std::io::Error| HomeError::Io {
            path: path.clone(),
            error: std::io::Error::new(e.kind(), format!("cannot reach group-cake: {e}")),
        };
        let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(io)?;
        stream.set_read_timeout(Some(ANSWER_WITHIN)).map_err(io)?;
        stream.set_write_timeout(Some(ANSWER_WITHIN)).map_err(io)?;
        let mut line = serde_json::to_vec(request).expect("requests encode");
        line.push(b'\n');
        stream.write_all(&line).map_err(io)?;
        let mut answer = String::new();
        BufReader::new(stream).read_line(&mut answer).map_err(io)?;
        serde_json::from_str(&answer).map_err(|e| HomeError::BadFile {
            path: path.clone(),
            reason: format!("group-cake's answer does not decode: {e}"),
        })
    }
}
