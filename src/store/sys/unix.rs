//! The store's file-system calls on Linux, macOS and the other Unix systems:
//! `openat` and friends with `O_NOFOLLOW`, `flock`, and what each system
//! has for pre-allocation, write-back and durable syncs.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::super::dir::{Kind, Meta};
use super::Access;

/// An open directory.
pub(crate) type DirHandle = OwnedFd;

/// What identifies a file on its system: device and inode.
pub(crate) type FileId = (u64, u64);

/// Permissions of created files and directories (before the umask).
const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o777;

fn kind_of(file_type: FileType) -> Kind {
    match file_type {
        FileType::RegularFile => Kind::File,
        FileType::Directory => Kind::Dir,
        FileType::Symlink => Kind::Symlink,
        _ => Kind::Other,
    }
}

// The field types of `struct stat` differ between platforms.
#[allow(clippy::unnecessary_cast)]
fn meta_of(st: &rfs::Stat) -> Meta {
    let mtime = Duration::new(
        (st.st_mtime as i64).max(0) as u64,
        (st.st_mtime_nsec as u32).min(999_999_999),
    );
    Meta {
        kind: kind_of(FileType::from_raw_mode(st.st_mode as _)),
        len: (st.st_size as i64).max(0) as u64,
        allocated: (st.st_blocks as u64).saturating_mul(512),
        modified: SystemTime::UNIX_EPOCH + mtime,
        id: (st.st_dev as u64, st.st_ino as u64),
    }
}

/// Opens a directory by path, following links in it (the store root is
/// the user's choice).
pub(crate) fn open_root(path: &Path) -> io::Result<DirHandle> {
    Ok(rfs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// The subdirectory `name` of `dir`; a link there is an error, not followed.
pub(crate) fn open_dir_at(dir: &DirHandle, name: &str) -> io::Result<DirHandle> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rfs::openat(dir, name, flags, Mode::empty())?)
}

/// Creates the subdirectory `name`; `AlreadyExists` if anything has that name.
pub(crate) fn create_dir_at(dir: &DirHandle, name: &str) -> io::Result<()> {
    Ok(rfs::mkdirat(dir, name, Mode::from_raw_mode(DIR_MODE as _))?)
}

/// The file `name` in `dir`, with what it is: a link there is an error,
/// not followed, and a FIFO cannot hang the open (it is opened
/// non-blocking; the caller refuses anything but a regular file).
pub(crate) fn open_file_at(
    dir: &DirHandle,
    name: &str,
    access: Access,
) -> io::Result<(File, Meta)> {
    let access = match access {
        Access::Read => OFlags::RDONLY,
        Access::Write => OFlags::RDWR | OFlags::CREATE,
        Access::CreateNew => OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL,
    };
    let flags = access | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    let file = File::from(rfs::openat(
        dir,
        name,
        flags,
        Mode::from_raw_mode(FILE_MODE as _),
    )?);
    let meta = stat(&file)?;
    if meta.kind == Kind::File {
        let flags = rfs::fcntl_getfl(&file)?;
        rfs::fcntl_setfl(&file, flags - OFlags::NONBLOCK)?;
    }
    Ok((file, meta))
}

/// What `name` in `dir` is, without following it.
pub(crate) fn stat_at(dir: &DirHandle, name: &str) -> io::Result<Meta> {
    Ok(meta_of(&rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?))
}

/// Type, size, allocation, time and identity of an open file.
pub(crate) fn stat(file: &File) -> io::Result<Meta> {
    Ok(meta_of(&rfs::fstat(file)?))
}

/// Removes `name` from `dir`: a file, or a link itself; not a directory.
pub(crate) fn remove_file_at(dir: &DirHandle, name: &str) -> io::Result<()> {
    Ok(rfs::unlinkat(dir, name, AtFlags::empty())?)
}

/// Removes the empty directory `name`; `DirectoryNotEmpty` if it is not.
pub(crate) fn remove_dir_at(dir: &DirHandle, name: &str) -> io::Result<()> {
    match rfs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        // Some systems say EEXIST for a directory that is not empty.
        Err(Errno::NOTEMPTY | Errno::EXIST) => Err(io::ErrorKind::DirectoryNotEmpty.into()),
        r => Ok(r?),
    }
}

/// Renames `name` in `dir` to `to_name` in `to`, replacing what is there
/// (a link there is replaced, not followed).
pub(crate) fn rename_at(
    dir: &DirHandle,
    name: &str,
    to: &DirHandle,
    to_name: &str,
) -> io::Result<()> {
    Ok(rfs::renameat(dir, name, to, to_name)?)
}

/// Makes `to_name` in `to` a second name of `name` in `dir` (a link is
/// linked as itself). `Ok(false)` when that cannot be done: `name` is gone,
/// `to_name` is taken, or the file system has no hard links.
pub(crate) fn hard_link_at(
    dir: &DirHandle,
    name: &str,
    to: &DirHandle,
    to_name: &str,
) -> io::Result<bool> {
    const CANNOT: [Errno; 7] = [
        Errno::NOENT,
        Errno::EXIST,
        Errno::PERM,
        Errno::NOTSUP,
        Errno::OPNOTSUPP,
        Errno::MLINK,
        Errno::XDEV,
    ];
    match rfs::linkat(dir, name, to, to_name, AtFlags::empty()) {
        Ok(()) => Ok(true),
        Err(e) if CANNOT.contains(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The entries of `dir` whose names are UTF-8, with their kinds.
pub(crate) fn read_dir(dir: &DirHandle) -> io::Result<Vec<(String, Kind)>> {
    let mut listing = rfs::Dir::read_from(dir)?;
    let mut out = Vec::new();
    while let Some(entry) = listing.read() {
        let entry = entry?;
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        if name == "." || name == ".." {
            continue;
        }
        let kind = match entry.file_type() {
            FileType::Unknown => match stat_at(dir, name) {
                Ok(meta) => meta.kind,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            },
            known => kind_of(known),
        };
        out.push((name.to_owned(), kind));
    }
    Ok(out)
}

/// Another handle to the same directory.
pub(crate) fn try_clone(dir: &DirHandle) -> io::Result<DirHandle> {
    dir.try_clone()
}

/// Makes renames and removals in `dir` durable. On macOS with
/// `F_FULLFSYNC`, as the standard library's `sync_all` does for files: a
/// plain `fsync` there hands the data to the drive, whose cache can still
/// lose it on power loss.
pub(crate) fn sync_dir(dir: &DirHandle) -> io::Result<()> {
    full_sync(dir.as_fd())
}

/// Makes a rename or removal inside the directory at `path` durable
/// (outside the store, where paths are followed).
pub(crate) fn sync_dir_path(path: &Path) -> io::Result<()> {
    sync_dir(&open_root(path)?)
}

#[cfg(target_vendor = "apple")]
fn full_sync(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    match rfs::fcntl_fullfsync(fd) {
        // File systems without it (some network shares) have fsync only.
        Err(Errno::INVAL | Errno::NOTSUP | Errno::NOTTY) => Ok(rfs::fsync(fd)?),
        r => Ok(r?),
    }
}

#[cfg(not(target_vendor = "apple"))]
fn full_sync(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    Ok(rfs::fsync(fd)?)
}

/// Takes an advisory lock on `file` without waiting: shared or exclusive.
/// `Ok(false)`: another open file holds a conflicting one. `flock` locks
/// belong to the open file, so two opens in one process exclude each other
/// as two processes do.
pub(crate) fn try_lock(file: &File, exclusive: bool) -> io::Result<bool> {
    use rfs::FlockOperation;
    let op = if exclusive {
        FlockOperation::NonBlockingLockExclusive
    } else {
        FlockOperation::NonBlockingLockShared
    };
    loop {
        match rfs::flock(file, op) {
            Ok(()) => return Ok(true),
            Err(Errno::WOULDBLOCK) => return Ok(false),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Releases the lock of `file` before it closes.
pub(crate) fn unlock(file: &File) {
    // Failing (nothing was locked) is harmless: closing releases it anyway.
    let _ = rfs::flock(file, rfs::FlockOperation::Unlock);
}

/// Writes all of `bytes` at `offset`.
pub(crate) fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    file.write_all_at(bytes, offset)
}

/// Fills `buf` from `offset`.
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    file.read_exact_at(buf, offset)
}

/// Reserves `size` bytes of disk for `file` and gives it that length, so
/// that a full disk shows at once (`ENOSPC`). File systems that cannot
/// reserve space just get the length.
pub(crate) fn allocate(file: &File, size: u64) -> io::Result<()> {
    match reserve(file, size) {
        Err(e) if e.kind() != io::ErrorKind::StorageFull => {
            if file.metadata()?.len() < size {
                file.set_len(size)?;
            }
            Ok(())
        }
        r => r,
    }
}

/// `fallocate`: blocks reserved, length set.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn reserve(file: &File, size: u64) -> io::Result<()> {
    Ok(rfs::fallocate(file, rfs::FallocateFlags::empty(), 0, size)?)
}

/// macOS has no `fallocate`: `F_PREALLOCATE` reserves blocks past the
/// file's physical end (contiguous if it can, anywhere if not), so only
/// what is missing is asked for (a resumed file has some already), and
/// `ftruncate` sets the length.
#[cfg(target_vendor = "apple")]
fn reserve(file: &File, size: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let allocated = stat(file)?.allocated;
    if allocated < size {
        let missing = libc::off_t::try_from(size - allocated).map_err(|_| Errno::FBIG)?;
        let mut store = libc::fstore_t {
            fst_flags: libc::F_ALLOCATECONTIG,
            fst_posmode: libc::F_PEOFPOSMODE,
            fst_offset: 0,
            fst_length: missing,
            fst_bytesalloc: 0,
        };
        // SAFETY: fcntl on a descriptor the caller keeps open, with an
        // fstore_t that outlives the call.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_PREALLOCATE, &mut store) } == -1 {
            store.fst_flags = libc::F_ALLOCATEALL;
            // SAFETY: as above.
            if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_PREALLOCATE, &mut store) } == -1 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    if file.metadata()?.len() < size {
        file.set_len(size)?;
    }
    Ok(())
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_vendor = "apple"
)))]
fn reserve(_file: &File, _size: u64) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Starts writing `[start, end)` of `file` back to disk without waiting, so
/// that the sync before the final rename finds little left to do. Linux
/// only (`sync_file_range`): other systems have no such call, and there the
/// final sync writes everything. Advisory: failure is harmless.
pub(crate) fn start_writeback(file: &File, start: u64, end: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: an advisory call on a descriptor the caller keeps open.
        unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                start as libc::off64_t,
                end.saturating_sub(start) as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, start, end);
}

/// Bytes available to an unprivileged writer on the file system of `path`.
pub(crate) fn available_space(path: &Path) -> io::Result<u64> {
    let st = rfs::statvfs(path)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Options for files created outside the store (an export's destination):
/// readable by all, as the store's files are.
pub(crate) fn new_file_options() -> std::fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.mode(FILE_MODE);
    options
}

/// Options to read a file outside the store that must be a regular file:
/// a final link is not followed, and a FIFO does not block the open.
pub(crate) fn regular_file_options() -> std::fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    options
}

/// Options to read a file the user named (the signing key, Docker's
/// config), links followed: a FIFO does not block the open, and the
/// caller's fstat decides what the file is.
pub(crate) fn user_file_options() -> std::fs::OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.read(true).custom_flags(libc::O_NONBLOCK);
    options
}

/// Renames `from` to `to` (paths outside the store), replacing `to`
/// atomically.
pub(crate) fn rename_path(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)
}
