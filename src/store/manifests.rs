//! Manifest links: `manifests/<host>/<namespace>/<model>/<tag>`.
//!
//! Names compare case-insensitively but keep their case on disk: a lookup
//! matches each path component ignoring case (preferring an exact match), and
//! a link reuses the spelling already on disk so that `Llama` and `llama`
//! never become two models, on case-sensitive file systems and on the
//! case-insensitive ones of macOS and Windows alike. Manifest files are
//! read only up to the manifest size limit, and only when they are regular
//! files reached through real directories. Each part's file name follows
//! the platform's rules (`file_names`).

use std::path::PathBuf;

use super::dir::{Dir, Kind};
use super::{file_names, fsutil};
use super::{Store, MANIFESTS};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{Limits, Manifest};
use crate::name::Name;

/// A manifest file as found on disk: host, namespace, model and tag as
/// spelled there.
pub(crate) type StoredParts = [String; 4];

/// A manifest file reached from `manifests/`: the directories down to the
/// model's, and the name of each step as spelled on disk.
struct Located {
    /// `manifests/`, then host, namespace and model directories.
    dirs: Vec<Dir>,
    /// Host, namespace, model and tag.
    names: Vec<String>,
}

impl Located {
    fn model_dir(&self) -> &Dir {
        self.dirs.last().expect("manifests/ is always there")
    }

    fn tag(&self) -> &str {
        self.names.last().expect("four names")
    }

    fn path(&self) -> PathBuf {
        self.model_dir().join(self.tag())
    }
}

impl Store {
    /// The path of `name`'s manifest if it exists, matching case-insensitively.
    pub fn find_manifest(&self, name: &Name) -> Result<Option<PathBuf>> {
        Ok(self.locate_manifest(name)?.map(|l| l.path()))
    }

    /// Follows `name`'s parts down `manifests/`, each matched ignoring case,
    /// never through a link; the tag must be a regular file.
    fn locate_manifest(&self, name: &Name) -> Result<Option<Located>> {
        let Some(top) = self.open_dir(MANIFESTS)? else {
            return Ok(None);
        };
        let mut located = Located {
            dirs: vec![top],
            names: Vec::with_capacity(4),
        };
        let parts = file_names_of(name)?;
        for (i, part) in parts.iter().enumerate() {
            let dir = located.model_dir();
            let Some(entry) = find_entry(dir, part)? else {
                return Ok(None);
            };
            if i + 1 < parts.len() {
                let Some(next) = dir.open_dir(&entry)? else {
                    return Ok(None);
                };
                located.dirs.push(next);
            } else {
                match dir.metadata(&entry)? {
                    Some(meta) if meta.kind == Kind::File => {}
                    Some(meta) => {
                        return Err(Error::io(
                            "read",
                            &dir.join(&entry),
                            meta.kind.refusal(Kind::File),
                        ))
                    }
                    None => return Ok(None),
                }
            }
            located.names.push(entry);
        }
        Ok(Some(located))
    }

    /// The exact stored bytes of `name`'s manifest, refused when larger than
    /// the manifest limit.
    pub fn read_manifest(&self, name: &Name, limits: &Limits) -> Result<Vec<u8>> {
        let located = self
            .locate_manifest(name)?
            .ok_or_else(|| Error::not_found("model").with_model(name))?;
        read_bounded(located.model_dir(), located.tag(), limits)
    }

    /// `name`'s manifest, parsed.
    pub fn load_manifest(&self, name: &Name, limits: &Limits) -> Result<Manifest> {
        let bytes = self.read_manifest(name, limits)?;
        Manifest::parse(bytes, limits).map_err(|e| e.with_model(name))
    }

    /// The bytes of a manifest found by [`Store::walk_manifests`].
    pub(crate) fn read_stored_manifest(
        &self,
        parts: &StoredParts,
        limits: &Limits,
    ) -> Result<Vec<u8>> {
        let (dir, tag) = self.stored_manifest_dir(parts)?;
        read_bounded(&dir, tag, limits)
    }

    /// Every `sha256:<hex>` in a manifest found by [`Store::walk_manifests`],
    /// however large it is, in bounded memory.
    pub(crate) fn digests_in_stored_manifest(&self, parts: &StoredParts) -> Result<Vec<Digest>> {
        let (dir, tag) = self.stored_manifest_dir(parts)?;
        let path = dir.join(tag);
        let file = dir
            .open_read(tag)?
            .ok_or_else(|| Error::not_found(format!("manifest {}", path.display())))?;
        digests_in(file).map_err(|e| Error::io("read", &path, e))
    }

    fn stored_manifest_dir<'a>(&self, parts: &'a StoredParts) -> Result<(Dir, &'a str)> {
        let [host, namespace, model, tag] = parts;
        let path = [MANIFESTS[0], host, namespace, model];
        let dir = self.open_dir(&path)?.ok_or_else(|| {
            Error::not_found(format!(
                "manifest {}",
                self.path_of(&path).join(tag).display()
            ))
        })?;
        Ok((dir, tag))
    }

    /// Links `manifest` under `name`, atomically and durably. The caller has
    /// checked that every blob it references is in place (invariant 2).
    pub fn link_manifest(&self, name: &Name, manifest: &Manifest) -> Result<()> {
        let (dir, file) = self.manifest_link_target(name)?;
        fsutil::replace_in(self.tmp_dir()?, &dir, &file, manifest.bytes())
    }

    /// The directory `name`'s manifest is linked in, created as needed, and
    /// the tag's file name there, reusing the spelling already on disk.
    pub(crate) fn manifest_link_target(&self, name: &Name) -> Result<(Dir, String)> {
        let mut dir = self.create_dir(MANIFESTS)?;
        let [host, namespace, model, tag] = file_names_of(name)?;
        for part in [host, namespace, model] {
            let entry = find_entry(&dir, &part)?.unwrap_or_else(|| part.into_owned());
            dir = dir.create_dir(&entry)?;
        }
        let file = find_entry(&dir, &tag)?.unwrap_or_else(|| tag.into_owned());
        Ok((dir, file))
    }

    /// Removes `name`'s manifest (its blobs stay) and the directories it
    /// leaves empty.
    pub fn remove_manifest(&self, name: &Name) -> Result<()> {
        let located = self
            .locate_manifest(name)?
            .ok_or_else(|| Error::not_found("model").with_model(name))?;
        let model_dir = located.model_dir();
        model_dir.remove_file(located.tag())?;
        // Stops at the first directory that still holds something.
        for depth in (0..located.dirs.len() - 1).rev() {
            if !located.dirs[depth].remove_empty_dir(&located.names[depth])? {
                break;
            }
        }
        let _ = model_dir.sync();
        Ok(())
    }

    /// Every linked model, sorted by name. Files whose path does not form a
    /// valid name are not olreg's to interpret and are skipped.
    pub fn list(&self) -> Result<Vec<Name>> {
        Ok(self.walk_manifests()?.into_iter().map(|(n, _)| n).collect())
    }

    /// Every linked model with where its manifest is. A link or a special
    /// file where a directory or manifest could be is an error naming it.
    pub(crate) fn walk_manifests(&self) -> Result<Vec<(Name, StoredParts)>> {
        let mut out = Vec::new();
        let Some(top) = self.open_dir(MANIFESTS)? else {
            return Ok(out);
        };
        for host in subdirs(&top)? {
            let host_dir = open_existing(&top, &host)?;
            for ns in subdirs(&host_dir)? {
                let ns_dir = open_existing(&host_dir, &ns)?;
                for model in subdirs(&ns_dir)? {
                    let model_dir = open_existing(&ns_dir, &model)?;
                    for entry in model_dir.entries()? {
                        let tag = entry.name;
                        match entry.kind {
                            Kind::File => {}
                            Kind::Dir => continue,
                            other => {
                                return Err(Error::io(
                                    "read",
                                    &model_dir.join(&tag),
                                    other.refusal(Kind::File),
                                ))
                            }
                        }
                        let name = Name::from_store_parts(
                            &file_names::part(&host),
                            &file_names::part(&ns),
                            &file_names::part(&model),
                            &file_names::part(&tag),
                        );
                        if let Some(name) = name {
                            out.push((name, [host.clone(), ns.clone(), model.clone(), tag]));
                        }
                    }
                }
            }
        }
        out.sort_by_key(|(name, _)| (name.to_string().to_ascii_lowercase(), name.to_string()));
        Ok(out)
    }

    /// Every blob digest referenced by a readable manifest, plus the
    /// manifests that could not be parsed (their blobs are unknown).
    pub(crate) fn referenced_blobs(&self) -> Result<(Vec<Digest>, Vec<StoredParts>)> {
        let mut digests = Vec::new();
        let mut unreadable = Vec::new();
        let limits = Limits::default();
        for (_, parts) in self.walk_manifests()? {
            let parsed = self
                .read_stored_manifest(&parts, &limits)
                .and_then(|bytes| Manifest::parse(bytes, &limits));
            match parsed {
                Ok(m) => digests.extend(m.blobs().iter().map(|l| l.digest)),
                Err(_) => unreadable.push(parts),
            }
        }
        digests.sort();
        digests.dedup();
        Ok((digests, unreadable))
    }
}

/// Reads the manifest file `name` in `dir`, refusing it when it is larger
/// than the limit (without reading more than the limit).
fn read_bounded(dir: &Dir, name: &str, limits: &Limits) -> Result<Vec<u8>> {
    let path = dir.join(name);
    let file = dir
        .open_read(name)?
        .ok_or_else(|| Error::not_found(format!("manifest {}", path.display())))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    fsutil::read_bounded(file, &path, limits.max_manifest_bytes)?
        .ok_or_else(|| Manifest::too_large(len.max(limits.max_manifest_bytes as u64 + 1), limits))
}

/// The subdirectories of `dir`; anything but a directory or a regular file
/// (which is not olreg's and is skipped) is an error naming it.
fn subdirs(dir: &Dir) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in dir.entries()? {
        match entry.kind {
            Kind::Dir => out.push(entry.name),
            Kind::File => {}
            other => {
                return Err(Error::io(
                    "read",
                    &dir.join(&entry.name),
                    other.refusal(Kind::Dir),
                ))
            }
        }
    }
    Ok(out)
}

/// A subdirectory just listed; one removed meanwhile is an error.
fn open_existing(dir: &Dir, name: &str) -> Result<Dir> {
    dir.open_dir(name)?.ok_or_else(|| {
        Error::io(
            "open directory",
            &dir.join(name),
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )
    })
}

/// The file names of `name`'s parts on this platform.
fn file_names_of(name: &Name) -> Result<[std::borrow::Cow<'_, str>; 4]> {
    let [host, namespace, model, tag] = name.store_parts();
    let file = |part| {
        file_names::file_name(part).map_err(|why| Error::invalid_name(&name.to_string(), why))
    };
    Ok([file(host)?, file(namespace)?, file(model)?, file(tag)?])
}

/// The entry of `dir` spelled `part`, else one equal ignoring ASCII case, as
/// spelled on disk. From the listing, not by opening `part`: a
/// case-insensitive file system (macOS, Windows) would find `Llama` under
/// `llama` and hide the spelling to keep.
fn find_entry(dir: &Dir, part: &str) -> Result<Option<String>> {
    let names: Vec<String> = dir.entries()?.into_iter().map(|e| e.name).collect();
    if names.iter().any(|n| n == part) {
        return Ok(Some(part.to_owned()));
    }
    Ok(names.into_iter().find(|n| n.eq_ignore_ascii_case(part)))
}

/// Every `sha256:<hex>` that appears in what `reader` yields, read a piece
/// at a time (a digest split between pieces is still found).
fn digests_in(mut reader: impl std::io::Read) -> std::io::Result<Vec<Digest>> {
    const PIECE: usize = 1 << 20;
    const TEXT: usize = "sha256:".len() + 64;
    let mut out = Vec::new();
    let mut buf = Vec::with_capacity(PIECE + TEXT);
    loop {
        let kept = buf.len();
        buf.resize(kept + PIECE, 0);
        let n = loop {
            match reader.read(&mut buf[kept..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        buf.truncate(kept + n);
        out.extend(digests_in_text(&buf));
        if n == 0 {
            break;
        }
        // The tail may hold the start of a digest the next piece completes.
        let tail = buf.len().saturating_sub(TEXT - 1);
        buf.drain(..tail);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Every `sha256:<hex>` that appears in `text`.
fn digests_in_text(text: &[u8]) -> Vec<Digest> {
    const PREFIX: &[u8] = b"sha256:";
    let mut out = Vec::new();
    let mut i = 0;
    while i + PREFIX.len() + 64 <= text.len() {
        if &text[i..i + PREFIX.len()] == PREFIX {
            let candidate = &text[i..i + PREFIX.len() + 64];
            if let Some(d) = std::str::from_utf8(candidate)
                .ok()
                .and_then(|s| Digest::parse(s).ok())
            {
                out.push(d);
                i += candidate.len();
                continue;
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_found_in_any_text() {
        let d = Digest::of(b"x");
        let text = format!("garbage {{ \"digest\": \"{d}\" ... sha256:nothex");
        assert_eq!(digests_in_text(text.as_bytes()), vec![d]);
    }

    #[test]
    fn digests_split_between_pieces_are_found() {
        let d = Digest::of(b"x");
        for pad in [
            (1 << 20) - 30,
            (1 << 20) - 71,
            (1 << 20) - 70,
            (1 << 20) + 5,
        ] {
            let text = format!("{}{d}tail", "x".repeat(pad));
            assert_eq!(digests_in(text.as_bytes()).unwrap(), vec![d], "pad {pad}");
        }
    }
}
