//! Reading and writing a home's files: JSON, written atomically.

use super::{io_error, HomeError};
use serde::{de::DeserializeOwned, Serialize};
use std::path::Path;

/// Writes `bytes` to `path` atomically and durably (see [`crate::fsutil::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), HomeError> {
    crate::fsutil::write_atomic(path, bytes, true).map_err(io_error(path))
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), HomeError> {
    write_json_with(path, value, true)
}

/// Writes `value` as pretty JSON, atomically; flushed to disk first when `durable`.
pub(crate) fn write_json_with<T: Serialize>(path: &Path, value: &T, durable: bool) -> Result<(), HomeError> {
    let mut text = serde_json::to_vec_pretty(value).expect("home files encode");
    text.push(b'\n');
    crate::fsutil::write_atomic(path, &text, durable).map_err(io_error(path))
}

pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, HomeError> {
    let text = std::fs::read(path).map_err(io_error(path))?;
    serde_json::from_slice(&text).map_err(|e| HomeError::BadFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// How much a folder holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Folders below it (not counting itself).
    pub folders: u64,
    /// Files below it.
    pub files: u64,
    /// Bytes in those files.
    pub bytes: u64,
}

pub(crate) fn usage(dir: &Path) -> Result<Usage, HomeError> {
    let mut total = Usage::default();
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let meta = entry.metadata().map_err(io_error(&entry.path()))?;
        if meta.is_dir() {
            let inner = usage(&entry.path())?;
            total.folders += 1 + inner.folders;
            total.files += inner.files;
            total.bytes += inner.bytes;
        } else {
            total.files += 1;
            total.bytes += meta.len();
        }
    }
    Ok(total)
}
