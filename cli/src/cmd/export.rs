//! `layer-cake export` and `layer-cake import`: a home and its executables as one archive, to
//! be unpacked on another machine, ready to `start`.

use anyhow::{bail, Context, Result};
use clap::Args;
use layer_cake::home::{GroupSettings, Home, RoleSettings};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const FORMAT: &str = "layer-cake-export";
const VERSION: u32 = 1;
const MANIFEST: &str = "manifest.json";

/// What an archive holds besides its files.
#[derive(Serialize, Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    group: GroupSettings,
    /// Each role's settings, its executable (and env file) named by their place in the
    /// archive.
    roles: BTreeMap<String, RoleSettings>,
}

/// Pack the home, with the executables its roles run and their env files, into one archive
/// (a .tar.gz) that `layer-cake import` unpacks on another machine, ready to start.
///
/// Not packed: the LAN's secret (give it there with `update group --secret-file`), logs,
/// history and the roles' folders. An executable is packed alone: a script's neighbours (the
/// modules it imports) are not.
#[derive(Args)]
pub struct Export {
    /// The archive to write.
    file: PathBuf,
    /// Replace the archive if it exists.
    #[arg(long)]
    force: bool,
}

impl Export {
    pub fn run(self, home_path: &Path) -> Result<()> {
        let home = Home::open(home_path)?;
        if self.file.exists() && !self.force {
            bail!("{} exists; give --force to replace it", self.file.display());
        }
        let mut group = home.group()?;
        if group.secret_file.take().is_some() {
            eprintln!("layer-cake: the LAN's secret is not packed: give it after import with `update group --secret-file`");
        }
        // Each executable once, under a name of its own.
        let mut packed: BTreeMap<PathBuf, String> = BTreeMap::new();
        let mut roles = BTreeMap::new();
        let mut env_files = Vec::new();
        for name in home.roles()? {
            let mut settings = home.role(&name)?;
            let inside = match packed.get(&settings.executable) {
                Some(inside) => inside.clone(),
                None => {
                    let base = settings
                        .executable
                        .file_name()
                        .map_or("program".into(), |n| n.to_string_lossy().into_owned());
                    let mut inside = format!("bin/{base}");
                    let mut k = 2;
                    while packed.values().any(|v| *v == inside) {
                        inside = format!("bin/{base}-{k}");
                        k += 1;
                    }
                    packed.insert(settings.executable.clone(), inside.clone());
                    inside
                }
            };
            settings.executable = PathBuf::from(inside);
            if let Some(file) = settings.env_file.take() {
                let inside = format!("env/{name}.env");
                env_files.push((file, inside.clone()));
                settings.env_file = Some(PathBuf::from(inside));
            }
            roles.insert(name, settings);
        }
        let manifest = Manifest {
            format: FORMAT.into(),
            version: VERSION,
            group,
            roles,
        };
        let tmp = self.file.with_extension("partial");
        let written = write_archive(&tmp, &manifest, &packed, &env_files);
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, &self.file).with_context(|| self.file.display().to_string())?;
        println!(
            "exported {} role{} and {} executable{} to {}",
            manifest.roles.len(),
            if manifest.roles.len() == 1 { "" } else { "s" },
            packed.len(),
            if packed.len() == 1 { "" } else { "s" },
            self.file.display()
        );
        Ok(())
    }
}

fn write_archive(
    path: &Path,
    manifest: &Manifest,
    packed: &BTreeMap<PathBuf, String>,
    env_files: &[(PathBuf, String)],
) -> Result<()> {
    let file = std::fs::File::create(path).with_context(|| path.display().to_string())?;
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::default(),
    ));
    let text = serde_json::to_vec_pretty(manifest)?;
    let mut header = tar::Header::new_gnu();
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, MANIFEST, text.as_slice())?;
    for (from, inside) in packed
        .iter()
        .map(|(f, i)| (f, i.as_str()))
        .chain(env_files.iter().map(|(f, i)| (f, i.as_str())))
    {
        tar.append_path_with_name(from, inside)
            .with_context(|| format!("cannot pack {}", from.display()))?;
    }
    tar.into_inner()?.finish()?.sync_all()?;
    Ok(())
}

/// Unpack an archive made by `layer-cake export` into a new home (the second argument, or
/// --home-path): its executables and env files go into the home's `bin/` and `env/`, and its
/// roles are set to run them, ready to `start`.
#[derive(Args)]
pub struct Import {
    /// The archive.
    file: PathBuf,
    /// The home to make (instead of --home-path); it must not exist.
    home: Option<PathBuf>,
}

impl Import {
    pub fn run(self, home_path: &Path) -> Result<()> {
        let target = self.home.as_deref().unwrap_or(home_path);
        if target.exists() {
            bail!("{} exists: import makes a new home", target.display());
        }
        let made = import(&self.file, target);
        if made.is_err() {
            // All or nothing.
            let _ = std::fs::remove_dir_all(target);
        }
        let roles = made?;
        println!(
            "imported {roles} role{} into {}",
            if roles == 1 { "" } else { "s" },
            target.display()
        );
        Ok(())
    }
}

fn import(archive: &Path, target: &Path) -> Result<usize> {
    let open = || -> Result<tar::Archive<flate2::read::GzDecoder<std::fs::File>>> {
        let file = std::fs::File::open(archive).with_context(|| archive.display().to_string())?;
        Ok(tar::Archive::new(flate2::read::GzDecoder::new(file)))
    };
    // The manifest first.
    let mut manifest = None;
    let not_ours = || format!("{} is not an archive layer-cake export made", archive.display());
    for entry in open()?.entries().with_context(not_ours)? {
        let mut entry = entry.with_context(not_ours)?;
        if entry.path()?.as_os_str() == MANIFEST {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text)?;
            manifest = Some(
                serde_json::from_str::<Manifest>(&text).context("the archive's manifest does not decode")?,
            );
        }
    }
    let Some(manifest) = manifest.filter(|m| m.format == FORMAT) else {
        bail!("{} (no manifest)", not_ours());
    };
    if manifest.version != VERSION {
        bail!(
            "archive version {} (this layer-cake reads {VERSION})",
            manifest.version
        );
    }
    let home = Home::create(target, &manifest.group)?;
    let root = std::path::absolute(home.path())?;
    // The files, into the home (`unpack_in` refuses any path that would leave it).
    for entry in open()?.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        if (path.starts_with("bin") || path.starts_with("env")) && !entry.unpack_in(&root)? {
            bail!("the archive holds a path outside the home: {}", path.display());
        }
    }
    for (name, mut settings) in manifest.roles {
        settings.executable = root.join(&settings.executable);
        settings.env_file = settings.env_file.map(|f| root.join(f));
        if let Some(dir) = settings.cwd.as_ref().filter(|d| !d.is_dir()) {
            eprintln!(
                "layer-cake: {name}: its folder {} is not here; it starts in the default",
                dir.display()
            );
            settings.cwd = None;
        }
        if let Some(user) = settings
            .user
            .as_deref()
            .filter(|u| layer_cake::home::launch::user_ids(u).is_err())
        {
            eprintln!("layer-cake: {name}: no user {user:?} here; it runs as group-cake does");
            settings.user = None;
        }
        home.add(std::slice::from_ref(&name), &settings)?;
    }
    Ok(home.roles()?.len())
}
