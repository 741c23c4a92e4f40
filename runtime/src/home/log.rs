//! A role's output, kept in its home, capped in size.
//!
//! group-cake writes every line a role prints (stdout and stderr) to
//! `roles/<role>/log/current.log`, with lines of its own when the role starts and ends. When
//! the file passes its size ([`LogLimits::size`]) it is moved aside: it becomes `previous.log`,
//! the one before becomes `previous-2.log`, and so on; [`LogLimits::files`] are kept, the
//! current one included. Each line is
//!
//! ```text
//! 2026-11-22T21:00:00.123456Z 4242 the text the process printed
//! ```
//!
//! (UTC time it was read, process id, text), which `layer-cake log` filters by time and run.
//! Each file begins with a line of its own, `... 0 --- log file N`, numbering the files in
//! the order they were begun: a reader following the log ([`LogFollower`]) can tell a file
//! it missed (moved away faster than it read) and say so, instead of losing lines unseen.

use super::{io_error, Home, HomeError, LogLimits};
use jiff::Timestamp;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const LOG_DIR: &str = "log";
const CURRENT: &str = "current.log";
const MARKER: &str = "--- log file ";

/// The name of the `k`-th file of a log: 0 is the current one, 1 `previous.log`, then
/// `previous-2.log` and on.
fn file_name(k: u32) -> String {
    match k {
        0 => CURRENT.to_string(),
        1 => "previous.log".to_string(),
        k => format!("previous-{k}.log"),
    }
}

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

    /// The number of the file this line begins, when it is a file's first line of its own.
    fn file_number(&self) -> Option<u64> {
        (self.pid == 0).then(|| self.text.strip_prefix(MARKER)?.parse().ok())?
    }
}

/// Appends to one role's log.
#[derive(Debug)]
pub struct LogWriter {
    dir: PathBuf,
    file: File,
    len: u64,
    limits: LogLimits,
    /// The number of the current file.
    number: u64,
    buf: Vec<u8>,
    /// Lines in `buf`.
    pending: u64,
    /// Lines that could not be written (a full disk) since the last write that worked.
    lost: u64,
}

impl LogWriter {
    /// Opens (creating) the log of `role`, kept within `limits`.
    pub fn open(home: &Home, role: &str, limits: LogLimits) -> Result<LogWriter, HomeError> {
        let dir = home.log_dir(role);
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let path = dir.join(CURRENT);
        let file = open_append(&path).map_err(io_error(&path))?;
        let len = file.metadata().map_err(io_error(&path))?.len();
        let mut writer = LogWriter {
            dir,
            file,
            len,
            limits: LogLimits {
                size: limits.size.max(1),
                files: limits.files.max(1),
            },
            number: 0,
            buf: Vec::with_capacity(4096),
            pending: 0,
            lost: 0,
        };
        match first_number(&path) {
            Some(n) => writer.number = n,
            None if len == 0 => {
                writer.number = first_number(&writer.dir.join(file_name(1))).map_or(0, |n| n + 1);
                writer.begin_file();
            }
            // (A file from before files were numbered: it keeps number 0.)
            None => {}
        }
        Ok(writer)
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

    /// Writes what was pushed in one write, then moves the file aside if it passed its size.
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
        if self.len >= self.limits.size {
            self.move_aside()?;
        }
        Ok(())
    }

    /// The current file becomes `previous.log`, each older one moves one place on, the
    /// oldest goes; a new current file is begun.
    fn move_aside(&mut self) -> std::io::Result<()> {
        shift_files(&self.dir, file_name, self.limits.files)?;
        self.file = open_append(&self.dir.join(CURRENT))?;
        self.len = 0;
        self.number += 1;
        self.begin_file();
        Ok(())
    }

    /// The current (empty) file's first line: its number.
    fn begin_file(&mut self) {
        let line = format!("{} 0 {MARKER}{}\n", Timestamp::now(), self.number);
        if self.file.write_all(line.as_bytes()).is_ok() {
            self.len += line.len() as u64;
        }
    }
}

/// Moves a log's files one place on in `dir` (file 0, the current one, becomes file 1, and so
/// on), keeping `keep` of them: the oldest goes (with `keep` 1, the current one itself).
/// `name(k)` names the `k`-th. Then file 0 is free for a new current file.
pub fn shift_files(dir: &Path, name: impl Fn(u32) -> String, keep: u32) -> std::io::Result<()> {
    if keep <= 1 {
        return match std::fs::remove_file(dir.join(name(0))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    for k in (1..keep).rev() {
        match std::fs::rename(dir.join(name(k - 1)), dir.join(name(k))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

pub(crate) fn open_append(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new().create(true).append(true).open(path)
}

/// The number a log file gives itself on its first line (read without moving its position).
fn number_of(file: &File) -> Option<u64> {
    use std::os::unix::fs::FileExt;
    let mut head = [0u8; 128];
    let n = file.read_at(&mut head, 0).ok()?;
    let text = String::from_utf8_lossy(&head[..n]);
    LogLine::parse(text.lines().next()?)?.file_number()
}

fn first_number(path: &Path) -> Option<u64> {
    number_of(&File::open(path).ok()?)
}

/// The log's files that exist now, newest first (stopping at the first missing one).
fn open_files(dir: &Path) -> impl Iterator<Item = File> + '_ {
    (0..MAX_FILES).map_while(move |k| File::open(dir.join(file_name(k))).ok())
}

/// What a [`LogFollower`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// A line, in order.
    Line(LogLine),
    /// Files of the log were moved away (past the number kept) before they could be read:
    /// their lines are missing here. How many files.
    Gap(u64),
}

/// Reads the lines added to a role's log from a point on, following it as its files are
/// moved aside: every line, in order, or a [`Followed::Gap`] where some could not be read.
#[derive(Debug)]
pub struct LogFollower {
    dir: PathBuf,
    file: File,
    /// The number of the file being read (`None`: a file from before files were numbered).
    number: Option<u64>,
    offset: u64,
    pending: Vec<u8>,
}

impl LogFollower {
    /// Follows `role`'s log from its current end.
    pub fn from_end(home: &Home, role: &str) -> Result<LogFollower, HomeError> {
        let dir = home.log_dir(role);
        let path = dir.join(CURRENT);
        let file = File::open(&path).map_err(io_error(&path))?;
        let offset = file.metadata().map_err(io_error(&path))?.len();
        Ok(LogFollower {
            number: number_of(&file),
            dir,
            file,
            offset,
            pending: Vec::new(),
        })
    }

    /// The lines from before the point it follows from (oldest first): those a reader shows
    /// before what [`next_lines`](Self::next_lines) brings, with none missing or twice.
    pub fn history(&self) -> Result<Vec<LogLine>, HomeError> {
        use std::os::unix::fs::FileExt;
        let mut files = Vec::new();
        for file in open_files(&self.dir) {
            if same_open_file(&file, &self.file) {
                let mut bytes = vec![0u8; self.offset as usize];
                let n = self.file.read_at(&mut bytes, 0).map_err(io_error(&self.dir))?;
                bytes.truncate(n);
                files.push(bytes);
                continue;
            }
            if number_of(&file)
                .zip(self.number)
                .is_some_and(|(n, ours)| n > ours)
            {
                continue; // (begun after the point it follows from)
            }
            let mut bytes = Vec::new();
            (&file).read_to_end(&mut bytes).map_err(io_error(&self.dir))?;
            files.push(bytes);
        }
        Ok(lines_of(&files))
    }

    /// What has been added since the last call (nothing, when nothing has).
    pub fn next_lines(&mut self) -> Result<Vec<Followed>, HomeError> {
        let path = self.dir.join(CURRENT);
        let mut out = Vec::new();
        let moved = same_file(&self.file, &path).is_some_and(|same| !same);
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if !moved && len >= self.offset {
            self.read_to(len, &mut out)?;
            return Ok(out);
        }
        // The rest of the file it was reading, then every file begun since, in order.
        self.read_to(u64::MAX, &mut out)?;
        let ours = self.number;
        let mut later: Vec<(u64, File)> = open_files(&self.dir)
            .filter_map(|f| {
                let n = number_of(&f)?;
                ours.is_none_or(|ours| n > ours).then_some((n, f))
            })
            .collect();
        later.sort_by_key(|(n, _)| *n);
        let Some((newest, _)) = later.last().map(|(n, _)| (*n, ())) else {
            // (Nothing numbered to go on: start over on the current file.)
            self.reopen(File::open(&path).map_err(io_error(&path))?, None);
            return Ok(out);
        };
        let mut expected = self.number.map_or(later[0].0, |n| n + 1);
        for (n, file) in later {
            if n > expected {
                out.push(Followed::Gap(n - expected));
            }
            expected = n + 1;
            self.reopen(file, Some(n));
            if n < newest {
                self.read_to(u64::MAX, &mut out)?;
            }
        }
        self.read_to(std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0), &mut out)?;
        Ok(out)
    }

    fn reopen(&mut self, file: File, number: Option<u64>) {
        self.file = file;
        self.number = number;
        self.offset = 0;
        self.pending.clear();
    }

    /// Reads the file being followed up to `len` (or its end), adding its complete lines.
    fn read_to(&mut self, len: u64, out: &mut Vec<Followed>) -> Result<(), HomeError> {
        let mut chunk = Vec::new();
        self.file
            .seek(SeekFrom::Start(self.offset))
            .and_then(|_| {
                (&mut self.file)
                    .take(len.saturating_sub(self.offset))
                    .read_to_end(&mut chunk)
            })
            .map_err(io_error(&self.dir))?;
        self.offset += chunk.len() as u64;
        self.pending.extend_from_slice(&chunk);
        if let Some(end) = self.pending.iter().rposition(|b| *b == b'\n') {
            for text in String::from_utf8_lossy(&self.pending[..end]).lines() {
                if let Some(line) = LogLine::parse(text).filter(|l| l.file_number().is_none()) {
                    out.push(Followed::Line(line));
                }
            }
            self.pending.drain(..=end);
        }
        Ok(())
    }
}

/// The most files of one log a reader looks for.
const MAX_FILES: u32 = 1000;

fn same_open_file(a: &File, b: &File) -> bool {
    matches!((a.metadata(), b.metadata()), (Ok(a), Ok(b)) if crate::fsutil::same_file(&a, &b))
}

/// The lines of a log's files (newest first, as [`open_files`] gives them), oldest first,
/// the files' own first lines left out.
fn lines_of(files: &[Vec<u8>]) -> Vec<LogLine> {
    let mut lines = Vec::new();
    for bytes in files.iter().rev() {
        lines.extend(
            String::from_utf8_lossy(bytes)
                .lines()
                .filter_map(LogLine::parse)
                .filter(|l| l.file_number().is_none()),
        );
    }
    lines
}

fn same_file(file: &File, path: &Path) -> Option<bool> {
    Some(crate::fsutil::same_file(
        &file.metadata().ok()?,
        &std::fs::metadata(path).ok()?,
    ))
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

    /// Every stored line of a role's log, oldest first (the files' own first lines left out).
    pub fn log_lines(&self, role: &str) -> Result<Vec<LogLine>, HomeError> {
        let dir = self.log_dir(role);
        let mut files = Vec::new();
        for mut file in open_files(&dir) {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).map_err(io_error(&dir))?;
            files.push(bytes);
        }
        Ok(lines_of(&files))
    }
}
