//! Small file-system primitives the store's invariants rest on: durable
//! atomic replacement, positioned I/O, advisory locks, space queries and
//! pre-allocation, over the platform's calls in `sys` (which, with `dir`,
//! is the only place that knows the platform).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

use super::dir::Dir;
use super::sys;
use crate::error::{Error, Result};

/// A random suffix for temporary file names, unique across processes.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 8];
    // A failure of the OS random source is not worth failing a write over:
    // the pid and clock still make a collision practically impossible.
    let _ = getrandom::getrandom(&mut bytes);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{:x}-{:016x}",
        std::process::id(),
        nanos,
        u64::from_le_bytes(bytes)
    )
}

/// New contents for a store file, written and synced under a temporary name
/// in `.olreg/tmp/` (same file system), waiting to be renamed over the final
/// name. Dropped before [`PendingWrite::commit`], the temporary file goes.
pub(crate) struct PendingWrite {
    tmp: Dir,
    name: String,
    committed: bool,
}

impl PendingWrite {
    /// Writes and syncs `bytes` under a fresh name in `tmp` (the store's
    /// `.olreg/tmp/`).
    pub(crate) fn new(tmp: Dir, bytes: &[u8]) -> Result<PendingWrite> {
        let pending = PendingWrite {
            tmp,
            name: format!("{}.tmp", random_token()),
            committed: false,
        };
        let path = pending.tmp.join(&pending.name);
        let mut file = pending.tmp.create_new(&pending.name)?;
        file.write_all(bytes)
            .map_err(|e| Error::io("write", &path, e))?;
        file.sync_all().map_err(|e| Error::io("sync", &path, e))?;
        Ok(pending)
    }

    /// Renames the file to `name` in `dir` and makes that durable. Readers
    /// see the old content or the new, never a mix.
    pub(crate) fn commit(mut self, dir: &Dir, name: &str) -> Result<()> {
        if !self.tmp.rename(&self.name, dir, name)? {
            return Err(Error::io(
                "rename into place",
                &dir.join(name),
                io::Error::from(io::ErrorKind::NotFound),
            ));
        }
        self.committed = true;
        dir.sync()
    }
}

impl Drop for PendingWrite {
    fn drop(&mut self) {
        if !self.committed {
            let _ = self.tmp.remove_file(&self.name);
        }
    }
}

/// Writes `bytes` to `name` in the store directory `dir` atomically and
/// durably, through `tmp`.
pub(crate) fn replace_in(tmp: Dir, dir: &Dir, name: &str, bytes: &[u8]) -> Result<()> {
    PendingWrite::new(tmp, bytes)?.commit(dir, name)
}

// Outside the store (an export's destination), paths are used as the user
// gave them, links included.

/// Writes `bytes` to `dest` atomically and durably: a temporary file in
/// `tmp_dir` (same file system), synced, renamed over `dest`, then the
/// directory synced. Readers see the old content or the new, never a mix.
pub(crate) fn atomic_write(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_dir.join(format!("{}.tmp", random_token()));
    write_durably(&tmp, dest, |file| {
        file.write_all(bytes)
            .map_err(|e| Error::io("write", &tmp, e))
    })
}

/// Creates `tmp` (which must not exist), lets `write` fill it, syncs it,
/// renames it over `dest` and syncs the directory; on any failure `tmp` is
/// removed and `dest` is untouched.
pub(crate) fn write_durably(
    tmp: &Path,
    dest: &Path,
    write: impl FnOnce(&mut File) -> Result<()>,
) -> Result<()> {
    let result = (|| {
        let mut file = sys::new_file_options()
            .write(true)
            .create_new(true)
            .open(tmp)
            .map_err(|e| Error::io("create", tmp, e))?;
        write(&mut file)?;
        file.sync_all().map_err(|e| Error::io("sync", tmp, e))?;
        sys::rename_path(tmp, dest).map_err(|e| Error::io("rename into place", dest, e))?;
        match dest.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
            // A bare file name lives in the working directory.
            _ => sync_dir(Path::new(".")),
        }
    })();
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result
}

/// Makes a rename or unlink inside `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    sys::sync_dir_path(dir).map_err(|e| Error::io("sync directory", dir, e))
}

/// Creates `dir` and its parents.
pub(crate) fn create_dir_all(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))
}

/// Reads all of `file` if it holds at most `limit` bytes; `Ok(None)` if it
/// holds more. Never reads more than `limit + 1` bytes, whatever the file.
pub(crate) fn read_bounded(file: File, path: &Path, limit: usize) -> Result<Option<Vec<u8>>> {
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > limit as u64 {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("read", path, e))?;
    Ok((bytes.len() <= limit).then_some(bytes))
}

pub(crate) use sys::{
    read_exact_at, regular_file_options, start_writeback, try_lock, unlock, user_file_options,
    write_all_at,
};

/// Bytes available to an unprivileged writer on the file system of `path`.
pub(crate) fn available_space(path: &Path) -> Result<u64> {
    sys::available_space(path).map_err(|e| Error::io("query free space of", path, e))
}

/// Reserves `size` bytes for `file`, so that a full disk is found at the
/// start of a download rather than in the middle of it. File systems that
/// cannot pre-allocate just get the length set.
pub(crate) fn allocate(file: &File, path: &Path, size: u64) -> Result<()> {
    if size == 0 {
        return Ok(());
    }
    sys::allocate(file, size).map_err(|e| Error::io("reserve space for", path, e))
}
