//! Small file-system primitives the store's invariants rest on: durable
//! atomic replacement, directory syncs, space queries and pre-allocation.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

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
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(tmp)
            .map_err(|e| Error::io("create", tmp, e))?;
        write(&mut file)?;
        file.sync_all().map_err(|e| Error::io("sync", tmp, e))?;
        fs::rename(tmp, dest).map_err(|e| Error::io("rename into place", dest, e))?;
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
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync directory", dir, e))
}

/// Bytes available to an unprivileged writer on the file system of `path`.
pub(crate) fn available_space(path: &Path) -> Result<u64> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::invalid_argument(format!("path {} contains NUL", path.display())))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(Error::io(
            "query free space of",
            path,
            io::Error::last_os_error(),
        ));
    }
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Reserves `size` bytes for `file`, so that a full disk is found at the
/// start of a download rather than in the middle of it. File systems that
/// cannot pre-allocate just get the length set.
pub(crate) fn allocate(file: &File, path: &Path, size: u64) -> Result<()> {
    if size == 0 {
        return Ok(());
    }
    // SAFETY: the descriptor is open for writing for the duration of the call.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, size as libc::off_t) };
    match rc {
        0 => Ok(()),
        libc::EOPNOTSUPP | libc::EINVAL => {
            if file.metadata().map(|m| m.len()).unwrap_or(0) < size {
                file.set_len(size)
                    .map_err(|e| Error::io("set the length of", path, e))?;
            }
            Ok(())
        }
        errno => Err(Error::io(
            "reserve space for",
            path,
            io::Error::from_raw_os_error(errno),
        )),
    }
}

/// Bytes actually allocated on disk for the file at `path` (0 if absent).
pub(crate) fn allocated_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).map(|m| m.blocks() * 512).unwrap_or(0)
}

/// Creates `dir` and its parents.
pub(crate) fn create_dir_all(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))
}
