//! A role's output, kept in its home, capped in size.
//!
//! group-cake writes every line a role prints (stdout and stderr) to
//! `roles/<role>/log/current.log`, with lines of its own when the role starts and ends. When
//! the file passes the cap it becomes `previous.log` (replacing the one before), so a role's
//! log never takes more than about twice the cap. Each line is
//!
//! ```text
//! 2026-11-22T21:00:00.123456Z 4242 the text the process printed
//! ```
//!
//! (UTC time it was read, process id, text), which `layer-cake log` filters by time and run.

use super::{io_error, Home, HomeError};
use jiff::Timestamp;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

/// The default size (bytes) at which a role's log moves to `previous.log`.
pub const LOG_CAP: u64 = 1 << 20;

const LOG_DIR: &str = "log";
const CURRENT: &str = "current.log";
const PREVIOUS: &str = "previous.log";

/// One line of a role's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When group-cake read it.
    pub at: Timestamp,
    /// The process that printed it.
    pub pid: u32,
    /// What it printed (no line end).
    pub text: String,
}

impl LogLine {
    /// Parses a stored line; `None` for anything else.
    pub fn parse(line: &str) -> Option<LogLine> {
        let (at, rest) = line.split_once(' ')?;
        let (pid, text) = rest.split_once(' ').unwrap_or((rest, ""));
        Some(LogLine {
            at: at.parse().ok()?,
            pid: pid.parse().ok()?,
            text: text.to_string(),
        })
    }
}

/// Appends to one role's log.
#[derive(Debug)]
pub struct LogWriter {
    dir: PathBuf,
    file: File,
    len: u64,
    cap: u64,
    buf: Vec<u8>,
    /// Lines in `buf`.
    pending: u64,
    /// Lines that could not be written (a full disk) since the last write that worked.
    lost: u64,
}

impl LogWriter {
    /// Opens (creating) the log of `role`, moving it aside at `cap` bytes.
    pub fn open(home: &Home, role: &str, cap: u64) -> Result<LogWriter, HomeError> {
        let dir = home.log_dir(role);
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let path = dir.join(CURRENT);
        let file = open_append(&path).map_err(io_error(&path))?;
        let len = file.metadata().map_err(io_error(&path))?.len();
        Ok(LogWriter {
            dir,
            file,
            len,
            cap: cap.max(1),
            buf: Vec::with_capacity(4096),
            pending: 0,
            lost: 0,
        })
    }

    /// Adds a line (written at the next [`flush`](Self::flush)). Invalid UTF-8 is replaced; a
    /// line end in `text` is written as a space.
    pub fn push(&mut self, at: Timestamp, pid: u32, text: &[u8]) {
        let text = String::from_utf8_lossy(text);
        let text = text.trim_end_matches(['\r', '\n']);
        let _ = write!(self.buf, "{at} {pid} ");
        self.buf
            .extend(text.bytes().map(|b| if b == b'\n' { b' ' } else { b }));
        self.buf.push(b'\n');
        self.pending += 1;
    }

    /// Lines that could not be written since the last write that worked.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Writes what was pushed in one write, then moves the file aside if it passed the cap.
    ///
    /// Lines that cannot be written (a full disk) are dropped, not kept: they are counted
    /// ([`lost`](Self::lost)), and the first write that works again begins with a line that
    /// says how many were lost.
    pub fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if self.lost > 0 {
            // (On a line of its own: the failed write may have left half a line.)
            let note = format!(
                "\n{} 0 --- {} lines of output were lost: they could not be written (the disk was full?)\n",
                Timestamp::now(),
                self.lost
            );
            self.buf.splice(0..0, note.into_bytes());
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            self.lost += self.pending;
            self.pending = 0;
            self.buf.clear();
            return Err(e);
        }
        self.lost = 0;
        self.pending = 0;
        self.len += self.buf.len() as u64;
        self.buf.clear();
        if self.len >= self.cap {
            let current = self.dir.join(CURRENT);
            std::fs::rename(&current, self.dir.join(PREVIOUS))?;
            self.file = open_append(&current)?;
            self.len = 0;
        }
        Ok(())
    }
}

fn open_append(path: &std::path::Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new().create(true).append(true).open(path)
}

impl Home {
    /// The folder of a role's log.
    pub fn log_dir(&self, role: &str) -> PathBuf {
        self.role_dir(role).join(LOG_DIR)
    }

    /// The file a role's log is being written to.
    pub fn current_log(&self, role: &str) -> PathBuf {
        self.log_dir(role).join(CURRENT)
    }

    /// Every stored line of a role's log, oldest first.
    pub fn log_lines(&self, role: &str) -> Result<Vec<LogLine>, HomeError> {
        let dir = self.log_dir(role);
        let mut lines = Vec::new();
        for name in [PREVIOUS, CURRENT] {
            let path = dir.join(name);
            match std::fs::read(&path) {
                Ok(bytes) => lines.extend(String::from_utf8_lossy(&bytes).lines().filter_map(LogLine::parse)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&path)(e)),
            }
        }
        Ok(lines)
    }
}
