//! `layer-cake secret`: a new LAN secret in a file.

use anyhow::Result;
use clap::Args;
use layer_cake::secure::Secret;
use std::path::{Path, PathBuf};

/// Make a new secret for an encrypted LAN: 32 random bytes, as 64 hex digits, in FILE (which
/// must not exist yet), readable by its owner only.
///
/// Copy the file to every host of the LAN (over a channel you trust) and give it to lan-cake
/// and every host-cake as `--secret-file FILE`, and to processes as `LC_SECRET_FILE=FILE`.
/// Connections between hosts are then encrypted and authenticated (Noise, with the secret as
/// a pre-shared key); a peer without it is refused. See docs/security.md.
#[derive(Args)]
pub struct SecretCmd {
    /// Where to write it.
    file: PathBuf,
}

impl SecretCmd {
    pub fn run(self, _home_path: &Path) -> Result<()> {
        Secret::create_file(&self.file)?;
        println!(
            "wrote a new LAN secret to {} (mode 600); give it to lan-cake and host-cake with --secret-file, \
             and to processes with LC_SECRET_FILE",
            self.file.display()
        );
        Ok(())
    }
}
