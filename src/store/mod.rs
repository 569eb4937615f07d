//! Ollama's on-disk model store, and the invariants of DESIGN.md §4.
//!
//! Layout under the root (Ollama's own, so Ollama sees what olreg pulls):
//!
//! ```text
//! blobs/sha256-<hex>                          complete, verified blobs only
//! manifests/<host>/<namespace>/<model>/<tag>  linked after all their blobs
//! .olreg/partial/sha256-<hex>.part            partial download data
//! .olreg/partial/sha256-<hex>.state           which byte ranges of it are written
//! .olreg/locks/                               advisory locks (per blob, gc)
//! .olreg/pins/                                blobs that running operations need
//! .olreg/tmp/                                 files on their way to a final name
//! ```
//!
//! olreg's scratch files live under `.olreg/`, never in `blobs/` or
//! `manifests/`, so neither Ollama nor olreg can mistake them for blobs or
//! tags. Every path is built from a [`Digest`] or a validated [`Name`], never
//! from raw input, so nothing is written outside the root.

pub(crate) mod fsutil;
mod lock;
mod manifests;
mod partial;
mod pins;
mod prune;
mod ranges;
mod verify;

use std::fs;
use std::io;
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

/// The environment variable naming the store root, as Ollama reads it.
pub const MODELS_ENV: &str = "OLLAMA_MODELS";

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

    fn olreg_dir(&self, sub: &str) -> PathBuf {
        self.root.join(".olreg").join(sub)
    }

    /// The final path of a blob.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.file_name())
    }

    fn tmp_dir(&self) -> Result<PathBuf> {
        let dir = self.olreg_dir("tmp");
        fsutil::create_dir_all(&dir)?;
        Ok(dir)
    }

    fn locks_dir(&self) -> Result<PathBuf> {
        let dir = self.olreg_dir("locks");
        fsutil::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Whether the blob is in place with the expected size. Blobs exist only
    /// complete and verified (invariant 1), so the size check only catches
    /// damage done by something other than olreg.
    pub fn has_blob(&self, digest: &Digest, size: u64) -> bool {
        fs::metadata(self.blob_path(digest))
            .map(|m| m.is_file() && m.len() == size)
            .unwrap_or(false)
    }

    /// The size of a blob in place, if it is.
    pub fn blob_size(&self, digest: &Digest) -> Option<u64> {
        fs::metadata(self.blob_path(digest))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    /// The lock that makes one writer per blob across processes and threads.
    pub(crate) fn try_lock_blob(&self, digest: &Digest) -> Result<Option<FileLock>> {
        let path = self
            .locks_dir()?
            .join(format!("{}.lock", digest.file_name()));
        FileLock::try_acquire(&path, LockMode::Exclusive)
    }

    /// The store-wide lock that `prune` holds exclusively while it decides
    /// what to delete, and pin writers hold shared while they pin.
    pub(crate) fn try_lock_gc(&self, mode: LockMode) -> Result<Option<FileLock>> {
        let path = self.locks_dir()?.join("gc.lock");
        FileLock::try_acquire(&path, mode)
    }

    /// Bytes a pull of `blobs` still has to put on disk: their sizes, less
    /// what present blobs and already-allocated partial files hold.
    pub fn bytes_to_allocate(&self, blobs: &[(Digest, u64)]) -> u64 {
        blobs
            .iter()
            .filter(|(d, size)| !self.has_blob(d, *size))
            .map(|(d, size)| {
                size.saturating_sub(fsutil::allocated_bytes(&partial::data_path(self, d)))
            })
            .sum()
    }

    /// Creates `blobs/` and `manifests/` so that Ollama recognises the root.
    pub(crate) fn ensure_layout(&self) -> Result<()> {
        fsutil::create_dir_all(&self.blobs_dir())?;
        fsutil::create_dir_all(&self.manifests_dir())
    }
}

/// `$HOME`, where Ollama keeps its key and Docker its config.
pub(crate) fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// Treats "not found" as absence rather than failure.
fn ignore_not_found<T>(r: io::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
