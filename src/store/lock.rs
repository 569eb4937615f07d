//! Advisory file locks (`flock`) that coordinate processes and threads
//! sharing one store.
//!
//! `flock` locks belong to an open file description, so two opens in one
//! process exclude each other just as two processes do. A lock file may be
//! deleted by `prune` while unlocked; after locking, the holder checks that
//! the path still names the file it locked, and retries if not.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Shared or exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Shared,
    Exclusive,
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub(crate) struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Takes the lock on `path` (created if needed) without waiting.
    /// `Ok(None)` means someone else holds it.
    pub(crate) fn try_acquire(path: &Path, mode: Mode) -> Result<Option<FileLock>> {
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(path)
                .map_err(|e| Error::io("open lock file", path, e))?;
            let op = match mode {
                Mode::Shared => libc::LOCK_SH,
                Mode::Exclusive => libc::LOCK_EX,
            } | libc::LOCK_NB;
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(file.as_raw_fd(), op) } != 0 {
                let err = io::Error::last_os_error();
                if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                    return Ok(None);
                }
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Error::io("lock", path, err));
            }
            // The file may have been unlinked between open and flock.
            let locked = file.metadata().map_err(|e| Error::io("stat", path, e))?;
            match std::fs::metadata(path) {
                Ok(current) if current.ino() == locked.ino() && current.dev() == locked.dev() => {
                    return Ok(Some(FileLock {
                        file,
                        path: path.to_owned(),
                    }))
                }
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("stat", path, e)),
            }
        }
    }

    /// The locked file, for holders that keep data in it.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// The path of the lock file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
