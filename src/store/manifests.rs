//! Manifest links: `manifests/<host>/<namespace>/<model>/<tag>`.
//!
//! Names compare case-insensitively but keep their case on disk: a lookup
//! matches each path component ignoring case (preferring an exact match), and
//! a link reuses the spelling already on disk so that `Llama` and `llama`
//! never become two models.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{fsutil, ignore_not_found, Store};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{Limits, Manifest};
use crate::name::Name;

impl Store {
    /// The path of `name`'s manifest if it exists, matching case-insensitively.
    pub fn find_manifest(&self, name: &Name) -> Result<Option<PathBuf>> {
        let mut path = self.manifests_dir();
        for part in name.store_parts() {
            match find_entry(&path, part)? {
                Some(entry) => path.push(entry),
                None => return Ok(None),
            }
        }
        Ok(path.is_file().then_some(path))
    }

    /// The exact stored bytes of `name`'s manifest.
    pub fn read_manifest(&self, name: &Name) -> Result<Vec<u8>> {
        let path = self
            .find_manifest(name)?
            .ok_or_else(|| Error::not_found("model").with_model(name))?;
        fs::read(&path).map_err(|e| Error::io("read", &path, e))
    }

    /// `name`'s manifest, parsed.
    pub fn load_manifest(&self, name: &Name, limits: &Limits) -> Result<Manifest> {
        let bytes = self.read_manifest(name)?;
        Manifest::parse(bytes, limits).map_err(|e| e.with_model(name))
    }

    /// Links `manifest` under `name`, atomically and durably. The caller has
    /// checked that every blob it references is in place (invariant 2).
    pub fn link_manifest(&self, name: &Name, manifest: &Manifest) -> Result<()> {
        let mut path = self.manifests_dir();
        let parts = name.store_parts();
        for (i, part) in parts.iter().enumerate() {
            let existing = find_entry(&path, part)?;
            path.push(existing.as_deref().unwrap_or(part));
            if i + 1 < parts.len() {
                fsutil::create_dir_all(&path)?;
            }
        }
        fsutil::atomic_write(&self.tmp_dir()?, &path, manifest.bytes())
    }

    /// Removes `name`'s manifest (its blobs stay) and the directories it
    /// leaves empty.
    pub fn remove_manifest(&self, name: &Name) -> Result<()> {
        let path = self
            .find_manifest(name)?
            .ok_or_else(|| Error::not_found("model").with_model(name))?;
        fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        let top = self.manifests_dir();
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == top || !d.starts_with(&top) {
                break;
            }
            // Stops at the first directory that still holds something.
            if fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
        if let Some(parent) = path.parent() {
            let _ = fsutil::sync_dir(parent);
        }
        Ok(())
    }

    /// Every linked model, sorted by name. Files whose path does not form a
    /// valid name are not olreg's to interpret and are skipped.
    pub fn list(&self) -> Result<Vec<Name>> {
        Ok(self.walk_manifests()?.into_iter().map(|(n, _)| n).collect())
    }

    /// Every linked model with the path of its manifest.
    pub(crate) fn walk_manifests(&self) -> Result<Vec<(Name, PathBuf)>> {
        let mut out = Vec::new();
        let top = self.manifests_dir();
        for host in dir_entries(&top)? {
            for ns in dir_entries(&top.join(&host))? {
                for model in dir_entries(&top.join(&host).join(&ns))? {
                    let model_dir = top.join(&host).join(&ns).join(&model);
                    for tag in dir_entries(&model_dir)? {
                        let path = model_dir.join(&tag);
                        if !path.is_file() {
                            continue;
                        }
                        if let Some(name) = Name::from_store_parts(&host, &ns, &model, &tag) {
                            out.push((name, path));
                        }
                    }
                }
            }
        }
        out.sort_by_key(|(name, _)| (name.to_string().to_ascii_lowercase(), name.to_string()));
        Ok(out)
    }

    /// Every blob digest referenced by a readable manifest, plus the paths of
    /// manifests that could not be parsed (their blobs are unknown).
    pub(crate) fn referenced_blobs(&self) -> Result<(Vec<Digest>, Vec<PathBuf>)> {
        let mut digests = Vec::new();
        let mut unreadable = Vec::new();
        let limits = Limits::default();
        for (_, path) in self.walk_manifests()? {
            let parsed = fs::read(&path)
                .map_err(|e| Error::io("read", &path, e))
                .and_then(|bytes| Manifest::parse(bytes, &limits));
            match parsed {
                Ok(m) => digests.extend(m.blobs().iter().map(|l| l.digest)),
                Err(_) => unreadable.push(path),
            }
        }
        digests.sort();
        digests.dedup();
        Ok((digests, unreadable))
    }
}

/// The entry of `dir` equal to `part`, else one equal ignoring ASCII case.
fn find_entry(dir: &Path, part: &str) -> Result<Option<String>> {
    if dir.join(part).exists() {
        return Ok(Some(part.to_owned()));
    }
    Ok(dir_entries(dir)?
        .into_iter()
        .find(|e| e.eq_ignore_ascii_case(part)))
}

/// Names of the entries of `dir`, empty when it does not exist. Names that
/// are not UTF-8 cannot be model name parts and are left out.
fn dir_entries(dir: &Path) -> Result<Vec<String>> {
    let read = match ignore_not_found(fs::read_dir(dir)) {
        Ok(Some(read)) => read,
        Ok(None) => return Ok(Vec::new()),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read directory", dir, e)),
    };
    let mut out = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| Error::io("read directory", dir, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}
