//! A LAN's secret: 32 bytes, kept in a file of 64 hex digits readable by its owner only.

use std::io;
use std::path::{Path, PathBuf};

/// A LAN's pre-shared secret: 32 bytes. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; 32]);

/// The secret file a user named, or `None` when none was (an empty value, as
/// `LC_SECRET_FILE=` leaves, names none).
pub fn named(path: Option<&Path>) -> Option<&Path> {
    path.filter(|p| !p.as_os_str().is_empty())
}

impl Secret {
    /// The secret in the file `path` names ([`named`]), or `None` when it names none. A bad
    /// file is an error: never run in the clear by mistake.
    pub fn from_optional_file(path: Option<&Path>) -> Result<Option<Secret>, SecretError> {
        named(path).map(Secret::from_file).transpose()
    }

    /// The 32 bytes, for the Noise handshake.
    pub(super) fn key(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why a secret file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// It could not be read (or written).
    #[error("secret file {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        error: io::Error,
    },
    /// Others than its owner may read or write it.
    #[error("secret file {path} is open to others (mode {mode:o}): make it readable by its owner only (chmod 600)")]
    Open {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// It does not hold 64 hex digits.
    #[error(
        "secret file {path} must hold 64 hex digits (32 bytes; `layer-cake secret FILE` makes one): {why}"
    )]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        why: HexError,
    },
}

/// Why text is not a secret's 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// Not 64 characters.
    #[error("found {0} characters")]
    Length(usize),
    /// A character that is not a hex digit.
    #[error("{0:?} is not a hex digit")]
    NotHex(char),
}

impl Secret {
    /// Reads a secret from `path`: 64 hex digits (surrounding whitespace allowed), in a file
    /// that only its owner may read or write.
    pub fn from_file(path: &Path) -> Result<Secret, SecretError> {
        use std::os::unix::fs::PermissionsExt;
        let io_err = |error| SecretError::Io {
            path: path.to_path_buf(),
            error,
        };
        let mode = std::fs::metadata(path).map_err(io_err)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(SecretError::Open {
                path: path.to_path_buf(),
                mode: mode & 0o777,
            });
        }
        let text = std::fs::read_to_string(path).map_err(io_err)?;
        Secret::from_hex(text.trim()).map_err(|why| SecretError::Format {
            path: path.to_path_buf(),
            why,
        })
    }

    /// Parses 64 hex digits.
    pub fn from_hex(hex: &str) -> Result<Secret, HexError> {
        if hex.chars().count() != 64 {
            return Err(HexError::Length(hex.chars().count()));
        }
        if let Some(c) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(HexError::NotHex(c));
        }
        // Only ASCII hex digits now: every pair is one byte.
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            let pair = &hex[2 * i..2 * i + 2];
            *byte = u8::from_str_radix(pair, 16).expect("two hex digits");
        }
        Ok(Secret(key))
    }

    /// A new random secret (from the operating system's generator).
    pub fn generate() -> io::Result<Secret> {
        let mut key = [0u8; 32];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut key)?;
        Ok(Secret(key))
    }

    /// Writes a new random secret to `path`, which must not exist yet, readable by its owner
    /// only.
    pub fn create_file(path: &Path) -> Result<Secret, SecretError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let io_err = |error| SecretError::Io {
            path: path.to_path_buf(),
            error,
        };
        let secret = Secret::generate().map_err(io_err)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io_err)?;
        let hex: String = secret.0.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(file, "{hex}").map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_files_are_64_hex_digits_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lan.key");
        let made = Secret::create_file(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(Secret::from_file(&path).unwrap(), made);
        assert!(Secret::create_file(&path).is_err(), "never overwrites");
        assert_eq!(format!("{made:?}"), "Secret(..)");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Secret::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("is open to others (mode 644)"), "{err}");

        let short = dir.path().join("short.key");
        std::fs::write(&short, "abcd\n").unwrap();
        std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = Secret::from_file(&short).unwrap_err().to_string();
        assert!(
            err.contains("must hold 64 hex digits") && err.contains("found 4 characters"),
            "{err}"
        );
        assert!(Secret::from_hex(&"zz".repeat(32)).is_err());
        // Neither a multi-byte character nor a sign gets through (or panics).
        assert!(Secret::from_hex(&"é".repeat(64)).is_err());
        assert!(Secret::from_hex(&format!("+f{}", "0".repeat(62))).is_err());
        assert!(Secret::from_hex(&"aB".repeat(32)).is_ok());
        assert!(Secret::from_file(&dir.path().join("missing")).is_err());
    }
}
