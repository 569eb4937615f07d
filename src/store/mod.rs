//! Ollama's on-disk model store, and the invariants of docs/design.md §4.
//!
//! Layout under the root (Ollama's own, so Ollama sees what olreg pulls):
//!
//! ```text
//! blobs/sha256-<hex>                          complete, verified blobs only
//! manifests/<host>/<namespace>/<model>/<tag>  linked after all their blobs
//! .olreg/partial/sha256-<hex>.part            partial download data
//! .olreg/partial/sha256-<hex>.state           which byte ranges of it are written
//! .olreg/staged/sha256-<hex>                  complete, verified blobs of pulls not yet linked
//! .olreg/locks/                               advisory locks (per blob, gc)
//! .olreg/pins/                                blobs that running operations need
//! .olreg/tmp/                                 files on their way to a final name
//! .olreg/blob-sources                         repositories known to hold each blob (mount hints)
//! ```
//!
//! olreg's scratch files live under `.olreg/`, never in `blobs/` or
//! `manifests/`, so neither Ollama nor olreg can mistake them for blobs or
//! tags, and Ollama's own pruning of unreferenced blobs cannot touch a pull
//! in progress. Every path is built from a [`Digest`] or a validated
//! [`Name`], never from raw input, and reached without following symbolic
//! links (see `dir`), so nothing is read, written or deleted outside the root.

mod dir;
mod file_names;
pub(crate) mod fsutil;
mod lock;
mod manifests;
mod partial;
mod pins;
mod prune;
mod ranges;
mod sources;
mod staged;
mod sys;
mod verify;

use std::path::{Path, PathBuf};

pub(crate) use partial::Partial;
pub use pins::Pin;
pub use prune::PruneReport;
pub use ranges::RangeSet;
pub use verify::{BlobProblem, VerifyIssue, VerifyTarget};

pub(crate) use fsutil::available_space;
pub(crate) use lock::{FileLock, Mode as LockMode};

use crate::digest::Digest;
use crate::error::{Error, Result};
use dir::{Dir, Kind, Meta};

/// The environment variable naming the store root, as Ollama reads it.
pub const MODELS_ENV: &str = "OLLAMA_MODELS";

/// Where each kind of file lives, as path components below the root.
const BLOBS: &[&str] = &["blobs"];
const MANIFESTS: &[&str] = &["manifests"];
const SCRATCH: &[&str] = &[".olreg"];
const PARTIAL: &[&str] = &[".olreg", "partial"];
const STAGED: &[&str] = &[".olreg", "staged"];
const LOCKS: &[&str] = &[".olreg", "locks"];
const PINS: &[&str] = &[".olreg", "pins"];
const TMP: &[&str] = &[".olreg", "tmp"];

/// A model store rooted at one directory.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// A store at `root`. Nothing is created until something is written.
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    /// The store Ollama would use: `$OLLAMA_MODELS`, else `~/.ollama/models`.
    pub fn default_root() -> Result<PathBuf> {
        if let Some(dir) = std::env::var_os(MODELS_ENV).filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
        home_dir()
            .map(|h| h.join(".ollama").join("models"))
            .ok_or_else(|| {
                Error::invalid_argument("cannot find the home directory: set OLLAMA_MODELS")
            })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `blobs/`.
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    /// `manifests/`.
    pub fn manifests_dir(&self) -> PathBuf {
        self.root.join("manifests")
    }

    /// The final path of a blob.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.file_name())
    }

    /// The directory at `parts` below the root, if it exists; an error if
    /// any part is a link or not a directory.
    fn open_dir(&self, parts: &[&str]) -> Result<Option<Dir>> {
        match Dir::root(&self.root, false)? {
            Some(root) => root.open_dirs(parts),
            None => Ok(None),
        }
    }

    /// The directory at `parts` below the root, created as needed.
    fn create_dir(&self, parts: &[&str]) -> Result<Dir> {
        let root = Dir::root(&self.root, true)?.ok_or_else(|| {
            Error::io(
                "open directory",
                &self.root,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        })?;
        root.create_dirs(parts)
    }

    /// What `name` in the directory at `parts` is, if it exists.
    fn entry_meta(&self, parts: &[&str], name: &str) -> Result<Option<Meta>> {
        match self.open_dir(parts)? {
            Some(dir) => dir.metadata(name),
            None => Ok(None),
        }
    }

    /// The length of the regular file `name` in `parts`; `Ok(None)` when
    /// absent, an error naming it when it is a link or anything else.
    fn file_len(&self, parts: &[&str], name: &str) -> Result<Option<u64>> {
        match self.entry_meta(parts, name)? {
            Some(meta) if meta.kind == Kind::File => Ok(Some(meta.len)),
            Some(meta) => {
                let path = self.path_of(parts).join(name);
                Err(Error::io("use", &path, meta.kind.refusal(Kind::File)))
            }
            None => Ok(None),
        }
    }

    fn path_of(&self, parts: &[&str]) -> PathBuf {
        parts.iter().fold(self.root.clone(), |p, part| p.join(part))
    }

    /// Whether the blob is in place with the expected size. Blobs exist only
    /// complete and verified (invariant 1), so the size check only catches
    /// damage done by something other than olreg. A link is not a blob.
    pub fn has_blob(&self, digest: &Digest, size: u64) -> bool {
        matches!(self.file_len(BLOBS, &digest.file_name()), Ok(Some(len)) if len == size)
    }

    /// The size of a blob in place, if it is (a link is not).
    pub fn blob_size(&self, digest: &Digest) -> Option<u64> {
        self.file_len(BLOBS, &digest.file_name()).ok().flatten()
    }

    /// The size of a blob in place; `Ok(None)` when it is absent, an error
    /// naming the path when something other than a regular file has its name.
    pub(crate) fn checked_blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        self.file_len(BLOBS, &digest.file_name())
    }

    /// Opens a blob in place for reading (never through a link).
    pub(crate) fn open_blob(&self, digest: &Digest) -> Result<std::fs::File> {
        let name = digest.file_name();
        self.open_dir(BLOBS)?
            .and_then(|dir| dir.open_read(&name).transpose())
            .transpose()?
            .ok_or_else(|| Error::not_found(format!("blob {digest}")).with_blob(*digest))
    }

    fn tmp_dir(&self) -> Result<Dir> {
        self.create_dir(TMP)
    }

    /// The lock that makes one writer per blob across processes and threads.
    /// Its file goes when it is released.
    pub(crate) fn try_lock_blob(&self, digest: &Digest) -> Result<Option<FileLock>> {
        let name = format!("{}.lock", digest.file_name());
        Ok(
            FileLock::try_acquire(self.create_dir(LOCKS)?, &name, LockMode::Exclusive)?
                .map(FileLock::remove_on_release),
        )
    }

    /// The store-wide lock that `prune` holds exclusively while it decides
    /// what to delete, and pin writers hold shared while they pin.
    pub(crate) fn try_lock_gc(&self, mode: LockMode) -> Result<Option<FileLock>> {
        FileLock::try_acquire(self.create_dir(LOCKS)?, "gc.lock", mode)
    }

    /// Bytes a pull of `blobs` still has to put on disk: their sizes, less
    /// what ready blobs and already-allocated partial files hold.
    pub fn bytes_to_allocate(&self, blobs: &[(Digest, u64)]) -> u64 {
        blobs
            .iter()
            .filter(|(d, size)| !self.blob_ready(d, *size))
            .map(|(d, size)| {
                let allocated = self
                    .entry_meta(PARTIAL, &partial::data_name(d))
                    .ok()
                    .flatten()
                    .filter(|m| m.kind == Kind::File)
                    .map_or(0, |m| m.allocated);
                size.saturating_sub(allocated)
            })
            .sum()
    }

    /// Creates `blobs/` and `manifests/` so that Ollama recognises the root.
    pub(crate) fn ensure_layout(&self) -> Result<()> {
        self.create_dir(BLOBS)?;
        self.create_dir(MANIFESTS)?;
        Ok(())
    }
}

/// The home directory, where Ollama keeps its key and Docker its config:
/// `$HOME`, or on Windows `%USERPROFILE%` (where Ollama and Docker look,
/// whatever `HOME` a Unix-like shell sets).
pub(crate) fn home_dir() -> Option<PathBuf> {
    const VAR: &str = if cfg!(windows) { "USERPROFILE" } else { "HOME" };
    std::env::var_os(VAR)
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}
