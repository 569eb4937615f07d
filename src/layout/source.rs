//! Reading an OCI image layout that may be hostile: a directory, or a tar
//! archive of one.
//!
//! Only three kinds of path are ever read — `oci-layout`, `index.json` and
//! `blobs/sha256/<64 hex>` (formed from a parsed digest) — so nothing in
//! `index.json` can point elsewhere. In a directory no component is followed
//! through a symbolic link and only regular files are opened. A tar is
//! checked whole before anything is read from it: every entry must be a
//! regular file or a directory (no links, devices or FIFOs) with a relative
//! path free of `..`, no path may appear twice, and every file must lie
//! inside the archive. Files are then read in place at their offsets, never
//! extracted.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::store::fsutil;

/// The path of a blob inside a layout.
pub(crate) fn blob_path(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// The error for a layout that cannot be used.
pub(crate) fn invalid(layout: &Path, reason: impl std::fmt::Display) -> Error {
    Error::invalid_argument(format!("OCI layout {}: {reason}", layout.display()))
}

/// A file of the layout, read in place.
pub(crate) struct Member {
    file: File,
    offset: u64,
    size: u64,
}

impl Member {
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Fills `buf` with the bytes at `at` (relative to the member).
    pub(crate) fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        if at + buf.len() as u64 > self.size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the file",
            ));
        }
        fsutil::read_exact_at(&self.file, buf, self.offset + at)
    }

    /// The whole member, when it is at most `cap` bytes.
    pub(crate) fn read_all(&self, cap: usize) -> io::Result<Option<Vec<u8>>> {
        if self.size > cap as u64 {
            return Ok(None);
        }
        let mut out = vec![0u8; self.size as usize];
        self.read_exact_at(&mut out, 0)?;
        Ok(Some(out))
    }
}

/// Where a tar member's bytes are.
#[derive(Clone, Copy)]
struct Span {
    offset: u64,
    size: u64,
}

/// An opened layout.
pub(crate) struct Source {
    path: PathBuf,
    kind: Kind,
}

enum Kind {
    Dir,
    Tar {
        file: File,
        members: HashMap<String, Span>,
    },
}

impl Source {
    /// Opens `path`: a directory, or a file taken as a tar archive.
    pub(crate) fn open(path: &Path) -> Result<Source> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io("open", path, e))?;
        if meta.is_dir() {
            return Ok(Source::dir(path));
        }
        let file = open_regular(path)?;
        let members = scan_tar(&file, path)?;
        Ok(Source {
            path: path.to_owned(),
            kind: Kind::Tar { file, members },
        })
    }

    /// The layout in the directory `path` (which may not exist yet).
    pub(crate) fn dir(path: &Path) -> Source {
        Source {
            path: path.to_owned(),
            kind: Kind::Dir,
        }
    }

    /// The layout's path, for messages.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file at `rel` (one of the three kinds of layout path), if present.
    pub(crate) fn member(&self, rel: &str) -> Result<Option<Member>> {
        match &self.kind {
            Kind::Dir => dir_member(&self.path, rel),
            Kind::Tar { file, members } => match members.get(rel) {
                None => Ok(None),
                Some(span) => Ok(Some(Member {
                    file: file
                        .try_clone()
                        .map_err(|e| Error::io("open", &self.path, e))?,
                    offset: span.offset,
                    size: span.size,
                })),
            },
        }
    }

    /// A small file (`oci-layout`, `index.json`) whole; an error when it is
    /// absent or larger than `cap`.
    pub(crate) fn read_small(&self, rel: &str, cap: usize) -> Result<Vec<u8>> {
        let member = self
            .member(rel)?
            .ok_or_else(|| invalid(self.path(), format!("{rel} is missing")))?;
        member
            .read_all(cap)
            .map_err(|e| Error::io("read", &self.path().join(rel), e))?
            .ok_or_else(|| {
                invalid(
                    self.path(),
                    format!(
                        "{rel} is {} bytes, over the {cap} byte limit",
                        member.size()
                    ),
                )
            })
    }

    /// The blobs a tar layout holds, sorted (a directory's are not listed).
    pub(crate) fn tar_blobs(&self) -> Vec<Digest> {
        let Kind::Tar { members, .. } = &self.kind else {
            return Vec::new();
        };
        let mut out: Vec<Digest> = members
            .keys()
            .filter_map(|k| k.strip_prefix("blobs/sha256/"))
            .filter_map(|hex| Digest::parse(&format!("sha256:{hex}")).ok())
            .collect();
        out.sort();
        out
    }

    /// The blob `digest`, if the layout has it.
    pub(crate) fn blob(&self, digest: &Digest) -> Result<Option<Member>> {
        self.member(&blob_path(digest))
    }
}

/// Opens `root/rel` without following a symbolic link anywhere below
/// `root`, and only if it is a regular file.
fn dir_member(root: &Path, rel: &str) -> Result<Option<Member>> {
    let mut path = root.to_owned();
    let parts: Vec<&str> = rel.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        path.push(part);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("inspect", &path, e)),
        };
        let last = i + 1 == parts.len();
        let fits = if last { meta.is_file() } else { meta.is_dir() };
        if !fits {
            let what = if meta.file_type().is_symlink() {
                "a symbolic link"
            } else if last {
                "not a regular file"
            } else {
                "not a directory"
            };
            return Err(invalid(
                root,
                format!("{} is {what}", parts[..=i].join("/")),
            ));
        }
    }
    let file = open_regular(&path)?;
    let size = file
        .metadata()
        .map_err(|e| Error::io("inspect", &path, e))?
        .len();
    Ok(Some(Member {
        file,
        offset: 0,
        size,
    }))
}

/// Opens a regular file for reading: never through a final symbolic link,
/// never blocking on a FIFO, and checked after opening (the path may have
/// changed since it was inspected).
fn open_regular(path: &Path) -> Result<File> {
    let file = fsutil::regular_file_options()
        .open(path)
        .map_err(|e| Error::io("open", path, e))?;
    let meta = file.metadata().map_err(|e| Error::io("inspect", path, e))?;
    if !meta.is_file() {
        return Err(Error::invalid_argument(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    Ok(file)
}

/// Indexes every regular file of a tar archive by its normalised path,
/// refusing anything that is not a regular file or directory, any path that
/// could escape, duplicates, and files that run past the archive's end.
fn scan_tar(file: &File, path: &Path) -> Result<HashMap<String, Span>> {
    let archive_len = file
        .metadata()
        .map_err(|e| Error::io("inspect", path, e))?
        .len();
    let bad = |why: String| invalid(path, why);
    let mut archive = tar::Archive::new(file);
    let mut members = HashMap::new();
    let entries = archive
        .entries_with_seek()
        .map_err(|e| bad(format!("not a tar archive: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| bad(format!("a damaged tar archive: {e}")))?;
        let raw = entry.path_bytes();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            continue;
        }
        let normal = normalise(&raw).map_err(|why| bad(format!("entry {name:?} {why}")))?;
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(bad(format!(
                "entry {name:?} is a {} (only regular files and directories are allowed)",
                kind_name(kind)
            )));
        }
        let size = entry.size();
        let offset = entry.raw_file_position();
        if offset.checked_add(size).is_none_or(|end| end > archive_len) {
            return Err(bad(format!(
                "entry {name:?} runs past the end of the archive (truncated)"
            )));
        }
        if members.insert(normal, Span { offset, size }).is_some() {
            return Err(bad(format!("entry {name:?} appears twice")));
        }
    }
    Ok(members)
}

/// `a/./b/` → `a/b`; refuses absolute paths, `..`, NUL and non-UTF-8.
fn normalise(raw: &[u8]) -> std::result::Result<String, &'static str> {
    let text = std::str::from_utf8(raw).map_err(|_| "is not UTF-8")?;
    if text.starts_with('/') {
        return Err("has an absolute path");
    }
    if text.contains('\0') {
        return Err("has a NUL in its path");
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("has a path with '..'"),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Ok(String::new());
    }
    Ok(parts.join("/"))
}

fn kind_name(kind: tar::EntryType) -> &'static str {
    use tar::EntryType::*;
    match kind {
        Symlink => "symbolic link",
        Link => "hard link",
        Char => "character device",
        Block => "block device",
        Fifo => "FIFO",
        GNUSparse => "sparse file",
        _ => "special entry",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_and_escapes_refused() {
        assert_eq!(normalise(b"./blobs/sha256/").unwrap(), "blobs/sha256");
        assert_eq!(normalise(b"index.json").unwrap(), "index.json");
        assert!(normalise(b"/etc/passwd").is_err());
        assert!(normalise(b"blobs/../../x").is_err());
        assert!(normalise(b"..").is_err());
        assert!(normalise(b"\xff").is_err());
    }
}
