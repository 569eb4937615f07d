//! Export: a local model written as an OCI image layout — a directory, or a
//! tar archive of one — with the store's manifest and blob bytes unchanged.
//!
//! Exporting into an existing layout adds to it: blobs it already holds
//! (checked by hash) are kept, its index keeps its other entries. A
//! directory gains each blob by an atomic rename and its `index.json` last;
//! a tar is written whole to a temporary file beside it and renamed over the
//! old one. Either way a reader sees the old layout or the new one.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::index::{self, Entry, Index, MAX_LAYOUT_FILE};
use super::source::{self, blob_path, invalid, Source};
use crate::context::{blocking, Op};
use crate::digest::{Digest, Hasher};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Layer, Manifest};
use crate::name::Name;
use crate::progress::{LogLevel, ProgressEvent};
use crate::store::fsutil;

/// Writes the local model `name` into the layout at `dest` (a tar archive
/// when its name ends in `.tar`).
pub(crate) async fn export(op: Arc<Op>, name: Name, dest: PathBuf) -> Result<Manifest> {
    let link_name = name.clone();
    blocking(move || {
        let limits = op.settings.limits;
        let manifest = crate::push::check_local(&op.store, &name, &limits)?;
        let digests: Vec<Digest> = manifest.blobs().iter().map(|l| l.digest).collect();
        let _pin = op.store.pin(&digests)?;
        let blobs = manifest.blobs();
        op.reporter.resolved_with(&blobs, &[]);
        let entry = Entry {
            media_type: manifest.media_type().to_owned(),
            digest: manifest.digest(),
            size: manifest.bytes().len() as u64,
            ref_name: Some(name.tag().to_owned()),
            full_name: Some(name.to_string()),
        };
        let job = Export {
            op: &op,
            blobs: &blobs,
            manifest: &manifest,
            entry,
        };
        if dest.extension().is_some_and(|e| e == "tar") {
            job.write_tar(&dest)?;
        } else {
            job.write_dir(&dest)?;
        }
        op.log(LogLevel::Info, || {
            format!("{name}: exported to {}", dest.display())
        });
        op.reporter.operation(ProgressEvent::Finished);
        Ok(manifest)
    })
    .await
    .map_err(|e| e.with_model(&link_name))
}

struct Export<'a> {
    op: &'a Op,
    blobs: &'a [Layer],
    manifest: &'a Manifest,
    entry: Entry,
}

impl Export<'_> {
    /// Into a directory: blobs first, each by an atomic rename, then
    /// `oci-layout`, then `index.json`.
    fn write_dir(&self, dest: &Path) -> Result<()> {
        // The destination itself may be a link the user made; what is
        // below it is checked without following links.
        let index = match fs::metadata(dest) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fsutil::create_dir_all(dest)?;
                Index::default()
            }
            Err(e) => return Err(Error::io("inspect", dest, e)),
            Ok(m) if !m.is_dir() => {
                return Err(Error::invalid_argument(format!(
                    "{} is not a directory (a tar archive's name ends in .tar)",
                    dest.display()
                )))
            }
            Ok(_) => existing_index(dest)?,
        };
        let mut index = index;
        let blob_dir = dest.join("blobs").join("sha256");
        for dir in [dest.join("blobs"), blob_dir.clone()] {
            match fs::symlink_metadata(&dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(invalid(
                        dest,
                        format!("{} is not a directory", dir.display()),
                    ))
                }
                Err(_) => fsutil::create_dir_all(&dir)?,
            }
        }
        let src = Source::dir(dest);
        for (i, layer) in self.blobs.iter().enumerate() {
            if self.dir_has(&src, &layer.digest, layer.size, Some(i))? {
                self.op.reporter.blob(i, ProgressEvent::Cached, None);
                continue;
            }
            self.op.reporter.blob(i, ProgressEvent::Started, None);
            let from = self.op.store.open_blob(&layer.digest)?;
            write_blob_file(
                &blob_dir,
                layer.digest,
                self.reader(from, layer.digest, Some(i)),
            )?;
            self.op.reporter.blob(i, ProgressEvent::Done, None);
        }
        let manifest_digest = self.manifest.digest();
        if !self.dir_has(&src, &manifest_digest, self.entry.size, None)? {
            let bytes = io::Cursor::new(self.manifest.bytes().to_vec());
            write_blob_file(
                &blob_dir,
                manifest_digest,
                self.reader(bytes, manifest_digest, None),
            )?;
        }
        if src.member("oci-layout")?.is_none() {
            fsutil::atomic_write(dest, &dest.join("oci-layout"), &index::layout_file())?;
        }
        index.add(self.entry.clone());
        fsutil::atomic_write(dest, &dest.join("index.json"), &index.to_bytes())
    }

    /// Whether the directory layout holds `digest` with the right bytes
    /// (hashed: a blob of the right size but other bytes is replaced).
    fn dir_has(
        &self,
        src: &Source,
        digest: &Digest,
        size: u64,
        index: Option<usize>,
    ) -> Result<bool> {
        let Some(member) = src.member(&blob_path(digest))? else {
            return Ok(false);
        };
        if member.size() != size {
            return Ok(false);
        }
        let mut hasher = Hasher::new();
        let mut buf = vec![0u8; COPY_BUFFER.min(size as usize).max(1)];
        let mut at = 0;
        while at < size {
            self.check_cancel()?;
            let n = (size - at).min(buf.len() as u64) as usize;
            member
                .read_exact_at(&mut buf[..n], at)
                .map_err(|e| Error::io("read", &src.path().join(blob_path(digest)), e))?;
            hasher.update(&buf[..n]);
            at += n as u64;
            if let Some(i) = index {
                self.op.reporter.add_bytes(i, n as u64);
            }
        }
        let same = hasher.finish() == *digest;
        if !same {
            if let Some(i) = index {
                self.op.reporter.set_bytes(i, 0);
            }
            self.op.log(LogLevel::Warn, || {
                format!(
                    "{}: the layout's copy is damaged; writing it again",
                    digest.short()
                )
            });
        }
        Ok(same)
    }

    /// Into a tar archive: a new archive beside `dest` holding the old one's
    /// blobs, this model's, `oci-layout` and the merged `index.json`,
    /// renamed over `dest` once complete.
    fn write_tar(&self, dest: &Path) -> Result<()> {
        let old = match fs::symlink_metadata(dest) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("inspect", dest, e)),
            Ok(m) if !m.is_file() => {
                return Err(Error::invalid_argument(format!(
                    "{} exists and is not a regular file",
                    dest.display()
                )))
            }
            Ok(_) => Some(Source::open(dest)?),
        };
        let mut index = match &old {
            Some(src) => read_index(src)?,
            None => Index::default(),
        };
        index.add(self.entry.clone());

        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let file_name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = parent.join(format!(".{file_name}.{}.tmp", fsutil::random_token()));
        fsutil::write_durably(&tmp, dest, |file| {
            let mut tar = tar::Builder::new(io::BufWriter::with_capacity(COPY_BUFFER, file));
            let io_err = |e: io::Error| self.io_or_cancel("write", &tmp, e);
            append(&mut tar, "oci-layout", &index::layout_file()[..]).map_err(io_err)?;
            append(&mut tar, "index.json", &index.to_bytes()[..]).map_err(io_err)?;
            append_dir(&mut tar, "blobs/").map_err(io_err)?;
            append_dir(&mut tar, "blobs/sha256/").map_err(io_err)?;
            let ours: Vec<Digest> = self
                .blobs
                .iter()
                .map(|l| l.digest)
                .chain([self.manifest.digest()])
                .collect();
            // Moved in, so the old archive is closed before the rename over
            // it: Windows without POSIX renames (before 10 1809, Wine)
            // cannot replace a file that is open.
            if let Some(src) = old {
                self.carry_over(&mut tar, &src, &ours, &tmp)?;
            }
            for (i, layer) in self.blobs.iter().enumerate() {
                self.op.reporter.blob(i, ProgressEvent::Started, None);
                let from = self.op.store.open_blob(&layer.digest)?;
                let mut reader = self.reader(from, layer.digest, Some(i));
                append_sized(&mut tar, &blob_path(&layer.digest), layer.size, &mut reader)
                    .map_err(io_err)?;
                self.op.reporter.blob(i, ProgressEvent::Done, None);
            }
            let digest = self.manifest.digest();
            let mut reader = self.reader(self.manifest.bytes(), digest, None);
            append_sized(&mut tar, &blob_path(&digest), self.entry.size, &mut reader)
                .map_err(io_err)?;
            let writer = tar.into_inner().map_err(io_err)?;
            writer
                .into_inner()
                .map(drop)
                .map_err(|e| Error::io("write", &tmp, e.into_error()))
        })
    }

    /// Copies the old archive's blobs that this model does not bring.
    fn carry_over<W: Write>(
        &self,
        tar: &mut tar::Builder<W>,
        old: &Source,
        ours: &[Digest],
        tmp: &Path,
    ) -> Result<()> {
        for digest in old.tar_blobs() {
            if ours.contains(&digest) {
                continue;
            }
            let name = blob_path(&digest);
            let member = old.member(&name)?.expect("listed by tar_blobs");
            let mut reader = MemberReader {
                member: &member,
                at: 0,
            };
            append_sized(tar, &name, member.size(), &mut reader)
                .map_err(|e| self.io_or_cancel("write", tmp, e))?;
        }
        Ok(())
    }

    fn reader<R: Read>(
        &self,
        inner: R,
        digest: Digest,
        index: Option<usize>,
    ) -> CheckedReader<'_, R> {
        CheckedReader {
            inner,
            digest,
            hasher: Some(Hasher::new()),
            op: self.op,
            index,
        }
    }

    fn check_cancel(&self) -> Result<()> {
        if self.op.cancel.is_cancelled() {
            return Err(Error::cancelled());
        }
        Ok(())
    }

    fn io_or_cancel(&self, op: &'static str, path: &Path, e: io::Error) -> Error {
        io_error(self.op, op, path, e)
    }
}

/// Reads the index of an existing layout, after checking its `oci-layout`.
fn read_index(src: &Source) -> Result<Index> {
    let limits = crate::manifest::Limits::default();
    let layout = src.read_small("oci-layout", MAX_LAYOUT_FILE)?;
    index::check_layout_file(&layout).map_err(|why| invalid(src.path(), why))?;
    match src.member("index.json")? {
        None => Ok(Index::default()),
        Some(_) => {
            let bytes = src.read_small("index.json", limits.max_manifest_bytes)?;
            Index::parse(&bytes).map_err(|why| invalid(src.path(), why))
        }
    }
}

/// The index of an existing directory: a layout's, or a fresh one for an
/// empty directory. Any other directory is refused rather than mixed into.
fn existing_index(dest: &Path) -> Result<Index> {
    let src = Source::dir(dest);
    if src.member("oci-layout")?.is_some() {
        return read_index(&src);
    }
    let mut entries = fs::read_dir(dest).map_err(|e| Error::io("read directory", dest, e))?;
    if entries.next().is_some() {
        return Err(Error::invalid_argument(format!(
            "{} is neither an OCI layout (no oci-layout file) nor empty",
            dest.display()
        )));
    }
    Ok(Index::default())
}

/// Writes a blob into `blob_dir` under its digest: a hidden temporary file,
/// checked, synced, then renamed.
fn write_blob_file<R: Read>(
    blob_dir: &Path,
    digest: Digest,
    mut reader: CheckedReader<'_, R>,
) -> Result<()> {
    let dest = blob_dir.join(digest.hex());
    let tmp = blob_dir.join(format!(".{}.{}.tmp", digest.hex(), fsutil::random_token()));
    fsutil::write_durably(&tmp, &dest, |file| {
        io::copy(&mut reader, file)
            .map(drop)
            .map_err(|e| reader.error("write", &tmp, e))
    })
}

/// Pieces read and written at a time.
const COPY_BUFFER: usize = 1 << 20;

/// A reader that hashes what passes, reports it, stops on cancel, and fails
/// at its end when the bytes are not the digest's (a damaged store blob is
/// never exported).
struct CheckedReader<'a, R> {
    inner: R,
    digest: Digest,
    hasher: Option<Hasher>,
    op: &'a Op,
    index: Option<usize>,
}

/// The error a [`CheckedReader`] ends with, carried through `io::Error`.
#[derive(Debug)]
struct CheckFailed(Error);

impl std::fmt::Display for CheckFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for CheckFailed {}

impl<R> CheckedReader<'_, R> {
    /// Fails unless every byte was read and they hash to the digest.
    fn check(&mut self) -> Result<()> {
        match self.hasher.take() {
            Some(h) => {
                let actual = h.finish();
                if actual != self.digest {
                    return Err(Error::new(ErrorKind::DigestMismatch {
                        expected: self.digest,
                        actual,
                    })
                    .with_blob(self.digest));
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn error(&self, op: &'static str, path: &Path, e: io::Error) -> Error {
        io_error(self.op, op, path, e)
    }
}

/// The error behind a failed read or write: a cancel, a [`CheckFailed`]
/// carried through `io`, or the I/O error itself.
fn io_error(running: &Op, op: &'static str, path: &Path, e: io::Error) -> Error {
    if running.cancel.is_cancelled() {
        return Error::cancelled();
    }
    if e.get_ref().is_some_and(|inner| inner.is::<CheckFailed>()) {
        if let Some(Ok(failed)) = e.into_inner().map(|inner| inner.downcast::<CheckFailed>()) {
            return failed.0;
        }
        unreachable!("checked to be a CheckFailed above");
    }
    Error::io(op, path, e)
}

impl<R: Read> Read for CheckedReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.op.cancel.is_cancelled() {
            return Err(io::Error::other("cancelled"));
        }
        let n = self.inner.read(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        if n == 0 {
            // The end: a tar entry must not be closed over wrong bytes.
            self.check().map_err(|e| io::Error::other(CheckFailed(e)))?;
        }
        if let Some(i) = self.index {
            self.op.reporter.add_bytes(i, n as u64);
        }
        Ok(n)
    }
}

/// Reads a layout member from its start.
struct MemberReader<'a> {
    member: &'a source::Member,
    at: u64,
}

impl Read for MemberReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.member.size() - self.at).min(buf.len() as u64) as usize;
        self.member.read_exact_at(&mut buf[..n], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

fn header(path: &str, size: u64, kind: tar::EntryType, mode: u32) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path)?;
    h.set_size(size);
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_cksum();
    Ok(h)
}

fn append<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> io::Result<()> {
    let h = header(path, bytes.len() as u64, tar::EntryType::Regular, 0o644)?;
    tar.append(&h, bytes)
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> io::Result<()> {
    let h = header(path, 0, tar::EntryType::Directory, 0o755)?;
    tar.append(&h, io::empty())
}

/// Appends a file of `size` bytes read from `reader` to its end (a
/// [`CheckedReader`] fails there if its bytes are not the digest's).
fn append_sized<W: Write, R: Read>(
    tar: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    reader: &mut R,
) -> io::Result<()> {
    let h = header(path, size, tar::EntryType::Regular, 0o644)?;
    tar.append(&h, reader)
}
