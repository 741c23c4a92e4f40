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
/// Where an archive holds the roles' own folders (`export --with-model`): `model/<role>/...`.
const MODEL_DIR: &str = "model";

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
/// history, and the roles' own folders unless --with-model. An executable is packed alone: a
/// script's neighbours (the modules it imports) are not.
#[derive(Args)]
pub struct Export {
    /// The archive to write.
    file: PathBuf,
    /// Replace the archive if it exists.
    #[arg(long)]
    force: bool,
    /// Pack each role's own folder too (`LC_MODEL`: what it keeps from run to run), its files
    /// and folders (links are left out). Best taken while the composite is stopped.
    #[arg(long)]
    with_model: bool,
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
        let models: Vec<(String, PathBuf)> = if self.with_model {
            manifest
                .roles
                .keys()
                .map(|name| (name.clone(), home.model_dir(name)))
                .filter(|(_, dir)| dir.is_dir())
                .collect()
        } else {
            Vec::new()
        };
        let tmp = self.file.with_extension("partial");
        let written = write_archive(&tmp, &manifest, &packed, &env_files, &models);
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
    models: &[(String, PathBuf)],
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
    for (role, dir) in models {
        pack_folder(&mut tar, dir, &Path::new(MODEL_DIR).join(role))?;
    }
    tar.into_inner()?.finish()?.sync_all()?;
    Ok(())
}

/// An archive entry's path without `./` parts (as `tar -C DIR .` writes them).
fn plain_path(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

/// Packs the files and folders under `dir` as `inside/...` (links left out: unpacked
/// elsewhere, they could point anywhere).
fn pack_folder<W: std::io::Write>(tar: &mut tar::Builder<W>, dir: &Path, inside: &Path) -> Result<()> {
    tar.append_dir(inside, dir)
        .with_context(|| format!("cannot pack {}", dir.display()))?;
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| dir.display().to_string())?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let (path, kind) = (entry.path(), entry.file_type()?);
        let name = inside.join(entry.file_name());
        if kind.is_dir() {
            pack_folder(tar, &path, &name)?;
        } else if kind.is_file() {
            tar.append_path_with_name(&path, &name)
                .with_context(|| format!("cannot pack {}", path.display()))?;
        } else {
            eprintln!(
                "layer-cake: {} is not a file or folder: not packed",
                path.display()
            );
        }
    }
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
        if plain_path(&entry.path()?) == Path::new(MANIFEST) {
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
        let path = plain_path(&entry.path()?);
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
    // The roles' own folders, each into its role's (only files and folders, only for roles
    // the archive has, and only by plain names: nothing lands outside them).
    let roles = home.roles()?;
    for entry in open()?.entries()? {
        let mut entry = entry?;
        let path = plain_path(&entry.path()?);
        let mut parts = path.components();
        if parts.next() != Some(std::path::Component::Normal(MODEL_DIR.as_ref())) {
            continue;
        }
        let Some(std::path::Component::Normal(role)) = parts.next() else {
            continue;
        };
        let role = role.to_string_lossy().into_owned();
        let rest = parts.as_path();
        let plain = rest
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        let kind = entry.header().entry_type();
        // (A file must be inside the folder: one named as the folder would take its place.)
        let in_folder = kind.is_dir() || rest.components().next().is_some();
        if !plain || !in_folder || !roles.contains(&role) || !(kind.is_file() || kind.is_dir()) {
            bail!(
                "the archive holds an entry that is not a role's file: {}",
                path.display()
            );
        }
        let to = home.model_dir(&role).join(rest);
        if kind.is_dir() {
            std::fs::create_dir_all(&to).with_context(|| to.display().to_string())?;
        } else {
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
            }
            entry.unpack(&to).with_context(|| to.display().to_string())?;
        }
    }
    Ok(roles.len())
}
