//! The store's file-system calls on Windows.
//!
//! Windows has no `openat`, but NT does: `NtCreateFile` opens a name
//! relative to an open directory handle (`OBJECT_ATTRIBUTES.RootDirectory`),
//! and `FILE_OPEN_REPARSE_POINT` opens a symbolic link or junction itself
//! instead of what it points to. Every name below the store root goes
//! through that, one component at a time, and a reparse point found there
//! is refused, as `O_NOFOLLOW` refuses a link on Unix. Renames, hard links
//! and deletions act on handles opened that way.
//!
//! Differences from Unix the rest of the store relies on:
//! - Names match whatever their case, as in every Windows program.
//! - Every handle shares read, write and delete, so olreg's open files can
//!   be renamed and deleted as on Unix. Other programs (Ollama among them)
//!   may not share delete; a rename over a file they hold open is retried
//!   for a while ([`RENAME_PATIENCE`]).
//! - Deletion uses POSIX semantics where the file system has them (NTFS
//!   since Windows 10 1709: the name goes at once). Elsewhere (and in Wine)
//!   the name stays, "delete pending", until its last handle closes;
//!   opening it then fails, and creating opens wait for it to go.
//! - Locks (`LockFileEx`) are mandatory: a locked byte cannot be read or
//!   written through another handle. So a lock covers one byte far past any
//!   data ([`LOCK_OFFSET`]), and a lock file can hold data others read (pins).
//! - No `sync_file_range`: the full sync before a rename writes everything.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io;
use std::mem::{offset_of, size_of, zeroed};
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::os::windows::fs::{FileExt, OpenOptionsExt};
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use windows_sys::Wdk::Foundation::OBJECT_ATTRIBUTES;
use windows_sys::Wdk::Storage::FileSystem::{
    FileDispositionInformation, FileDispositionInformationEx, FileLinkInformation,
    FileRenameInformation, FileRenameInformationEx, NtCreateFile, NtSetInformationFile,
    FILE_CREATE, FILE_DIRECTORY_FILE, FILE_DISPOSITION_INFORMATION,
    FILE_DISPOSITION_INFORMATION_EX, FILE_NON_DIRECTORY_FILE, FILE_OPEN, FILE_OPEN_IF,
    FILE_OPEN_REPARSE_POINT, FILE_RENAME_INFORMATION, FILE_SYNCHRONOUS_IO_NONALERT,
    NTCREATEFILE_CREATE_DISPOSITION, NTCREATEFILE_CREATE_OPTIONS,
};
use windows_sys::Win32::Foundation::{
    RtlNtStatusToDosError, ERROR_ACCESS_DENIED, ERROR_ALREADY_EXISTS, ERROR_CALL_NOT_IMPLEMENTED,
    ERROR_FILE_EXISTS, ERROR_FILE_NOT_FOUND, ERROR_HANDLE_EOF, ERROR_INVALID_FUNCTION,
    ERROR_INVALID_PARAMETER, ERROR_LOCK_VIOLATION, ERROR_NOT_SAME_DEVICE, ERROR_NOT_SUPPORTED,
    ERROR_NO_MORE_FILES, ERROR_SHARING_VIOLATION, ERROR_TOO_MANY_LINKS, HANDLE, NTSTATUS,
    OBJ_CASE_INSENSITIVE, STATUS_DELETE_PENDING, STATUS_DIRECTORY_NOT_EMPTY,
    STATUS_FILE_IS_A_DIRECTORY, STATUS_INVALID_INFO_CLASS, STATUS_INVALID_PARAMETER,
    STATUS_NOT_IMPLEMENTED, STATUS_NOT_SUPPORTED, UNICODE_STRING,
};
use windows_sys::Win32::Storage::FileSystem::{
    FileAllocationInfo, FileAttributeTagInfo, FileBasicInfo, FileFullDirectoryInfo,
    FileFullDirectoryRestartInfo, FileIdInfo, FileStandardInfo, FlushFileBuffers,
    GetDiskFreeSpaceExW, GetFileInformationByHandle, GetFileInformationByHandleEx, LockFileEx,
    SetFileInformationByHandle, UnlockFileEx, BY_HANDLE_FILE_INFORMATION, DELETE, FILE_ADD_FILE,
    FILE_ADD_SUBDIRECTORY, FILE_ALLOCATION_INFO, FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_NORMAL,
    FILE_ATTRIBUTE_REPARSE_POINT, FILE_ATTRIBUTE_TAG_INFO, FILE_BASIC_INFO,
    FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT, FILE_FULL_DIR_INFO,
    FILE_GENERIC_READ, FILE_GENERIC_WRITE, FILE_ID_INFO, FILE_LIST_DIRECTORY, FILE_READ_ATTRIBUTES,
    FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE, FILE_STANDARD_INFO, FILE_TRAVERSE,
    LOCKFILE_EXCLUSIVE_LOCK, LOCKFILE_FAIL_IMMEDIATELY, SYNCHRONIZE,
};
use windows_sys::Win32::System::IO::{IO_STATUS_BLOCK, OVERLAPPED};

use super::super::dir::{Kind, Meta};
use super::Access;

/// An open directory.
pub(crate) type DirHandle = File;

/// What identifies a file on its system: the volume's serial number and
/// the file's ID (128 bits on ReFS, 64 on NTFS).
pub(crate) type FileId = (u64, u128);

/// Where the lock byte sits: far past the end of any file the store
/// writes, and below `i64::MAX`, where some file systems (and Wine) stop.
const LOCK_OFFSET: u64 = 1 << 62;
/// How long a rename waits for another program to close the file it
/// replaces (a reader, a virus scanner: such opens are brief).
const RENAME_PATIENCE: Duration = Duration::from_secs(2);
/// How long a create waits for a deleted file's name to go.
const DELETE_PENDING_PATIENCE: Duration = Duration::from_secs(2);

const SHARE_ALL: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
const DIR_ACCESS: u32 = FILE_LIST_DIRECTORY | FILE_TRAVERSE | FILE_READ_ATTRIBUTES | SYNCHRONIZE;

/// Opens a directory by path, following links in it (the store root is
/// the user's choice).
pub(crate) fn open_root(path: &Path) -> io::Result<DirHandle> {
    let dir = OpenOptions::new()
        .access_mode(DIR_ACCESS)
        .share_mode(SHARE_ALL)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
        .open(path)?;
    if stat(&dir)?.kind != Kind::Dir {
        return Err(io::ErrorKind::NotADirectory.into());
    }
    Ok(dir)
}

/// The subdirectory `name` of `dir`; a reparse point there is an error,
/// not followed.
pub(crate) fn open_dir_at(dir: &DirHandle, name: &str) -> io::Result<DirHandle> {
    let handle = nt_open(
        dir,
        name,
        DIR_ACCESS,
        FILE_OPEN,
        FILE_DIRECTORY_FILE | FILE_OPEN_REPARSE_POINT,
    )
    .map_err(pending_is_absent)?;
    if attributes(&handle)? & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        return Err(io::Error::other("a reparse point"));
    }
    Ok(handle)
}

/// Creates the subdirectory `name`; `AlreadyExists` if anything has that name.
pub(crate) fn create_dir_at(dir: &DirHandle, name: &str) -> io::Result<()> {
    nt_open(
        dir,
        name,
        FILE_LIST_DIRECTORY | SYNCHRONIZE,
        FILE_CREATE,
        FILE_DIRECTORY_FILE,
    )
    .map(drop)
}

/// The file `name` in `dir`, with what it is; a reparse point there is
/// opened as itself (never followed) for the caller to refuse.
pub(crate) fn open_file_at(
    dir: &DirHandle,
    name: &str,
    access: Access,
) -> io::Result<(File, Meta)> {
    let (rights, disposition) = match access {
        Access::Read => (FILE_GENERIC_READ, FILE_OPEN),
        Access::Write => (FILE_GENERIC_READ | FILE_GENERIC_WRITE, FILE_OPEN_IF),
        Access::CreateNew => (FILE_GENERIC_WRITE, FILE_CREATE),
    };
    let options = FILE_NON_DIRECTORY_FILE | FILE_OPEN_REPARSE_POINT;
    let deadline = Instant::now() + DELETE_PENDING_PATIENCE;
    let file = loop {
        match nt_open(dir, name, rights, disposition, options) {
            // The name goes when its last handle closes: soon.
            Err(e)
                if access != Access::Read && is_delete_pending(&e) && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            r => break r.map_err(pending_is_absent)?,
        }
    };
    let meta = stat(&file)?;
    Ok((file, meta))
}

/// What `name` in `dir` is, without following it.
pub(crate) fn stat_at(dir: &DirHandle, name: &str) -> io::Result<Meta> {
    let handle = nt_open(
        dir,
        name,
        FILE_READ_ATTRIBUTES | SYNCHRONIZE,
        FILE_OPEN,
        FILE_OPEN_REPARSE_POINT,
    )
    .map_err(pending_is_absent)?;
    stat(&handle)
}

/// Type, size, allocation, time and identity of an open file.
pub(crate) fn stat(file: &File) -> io::Result<Meta> {
    let standard: FILE_STANDARD_INFO = file_info(file, FileStandardInfo)?;
    let basic: FILE_BASIC_INFO = file_info(file, FileBasicInfo)?;
    let attributes = attributes(file)?;
    let kind = if attributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        Kind::Symlink
    } else if attributes & FILE_ATTRIBUTE_DIRECTORY != 0 {
        Kind::Dir
    } else {
        Kind::File
    };
    Ok(Meta {
        kind,
        len: standard.EndOfFile.max(0) as u64,
        allocated: standard.AllocationSize.max(0) as u64,
        modified: system_time(basic.LastWriteTime),
        id: file_id(file)?,
    })
}

/// Removes `name` from `dir`: a file, or a link itself; not a directory.
pub(crate) fn remove_file_at(dir: &DirHandle, name: &str) -> io::Result<()> {
    let handle = nt_open(
        dir,
        name,
        DELETE | FILE_READ_ATTRIBUTES | SYNCHRONIZE,
        FILE_OPEN,
        FILE_OPEN_REPARSE_POINT,
    )
    .map_err(pending_is_absent)?;
    if stat(&handle)?.kind == Kind::Dir {
        return Err(io::ErrorKind::IsADirectory.into());
    }
    delete(&handle)
}

/// Removes the empty directory `name`; `DirectoryNotEmpty` if it is not.
pub(crate) fn remove_dir_at(dir: &DirHandle, name: &str) -> io::Result<()> {
    let handle = nt_open(
        dir,
        name,
        DELETE | FILE_READ_ATTRIBUTES | SYNCHRONIZE,
        FILE_OPEN,
        FILE_DIRECTORY_FILE | FILE_OPEN_REPARSE_POINT,
    )
    .map_err(pending_is_absent)?;
    if stat(&handle)?.kind != Kind::Dir {
        return Err(io::ErrorKind::NotADirectory.into());
    }
    delete(&handle)
}

/// Renames `name` in `dir` to `to_name` in `to`, replacing what is there
/// (a link there is replaced, not followed), waiting a while for another
/// program to close a file being replaced.
pub(crate) fn rename_at(
    dir: &DirHandle,
    name: &str,
    to: &DirHandle,
    to_name: &str,
) -> io::Result<()> {
    let handle = nt_open(
        dir,
        name,
        DELETE | SYNCHRONIZE,
        FILE_OPEN,
        FILE_OPEN_REPARSE_POINT,
    )
    .map_err(pending_is_absent)?;
    let mut info = NameInformation::new(to, to_name)?;
    info.set_flags(FILE_RENAME_REPLACE_IF_EXISTS | FILE_RENAME_POSIX_SEMANTICS);
    let deadline = Instant::now() + RENAME_PATIENCE;
    let mut class = FileRenameInformationEx;
    loop {
        match info.apply(&handle, class) {
            Ok(()) => return Ok(()),
            Err(status) if class == FileRenameInformationEx && unsupported(status) => {
                // Before Windows 10 1809, on file systems without POSIX
                // renames, and in Wine: the classic rename, which replaces too.
                class = FileRenameInformation;
                info.set_replace_if_exists();
            }
            Err(status) => {
                let e = error_of(status);
                if !is_busy(&e) || Instant::now() >= deadline {
                    return Err(e);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Makes `to_name` in `to` a second name of `name` in `dir` (a link is
/// linked as itself). `Ok(false)` when that cannot be done: `name` is gone,
/// `to_name` is taken, or the file system has no hard links (FAT).
pub(crate) fn hard_link_at(
    dir: &DirHandle,
    name: &str,
    to: &DirHandle,
    to_name: &str,
) -> io::Result<bool> {
    let handle = match nt_open(
        dir,
        name,
        FILE_READ_ATTRIBUTES | SYNCHRONIZE,
        FILE_OPEN,
        FILE_NON_DIRECTORY_FILE | FILE_OPEN_REPARSE_POINT,
    ) {
        Err(e) if e.kind() == io::ErrorKind::NotFound || is_delete_pending(&e) => return Ok(false),
        r => r?,
    };
    let info = NameInformation::new(to, to_name)?;
    match info.apply(&handle, FileLinkInformation) {
        Ok(()) => Ok(true),
        Err(status) => {
            let e = error_of(status);
            let cannot = matches!(
                e.raw_os_error().map(|c| c as u32),
                Some(
                    ERROR_ALREADY_EXISTS
                        | ERROR_FILE_EXISTS
                        | ERROR_FILE_NOT_FOUND
                        | ERROR_NOT_SUPPORTED
                        | ERROR_INVALID_FUNCTION
                        | ERROR_CALL_NOT_IMPLEMENTED
                        | ERROR_TOO_MANY_LINKS
                        | ERROR_NOT_SAME_DEVICE
                )
            );
            if cannot || unsupported(status) {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

/// The entries of `dir` whose names are valid Unicode, with their kinds.
pub(crate) fn read_dir(dir: &DirHandle) -> io::Result<Vec<(String, Kind)>> {
    let mut out = Vec::new();
    let mut buf = vec![0u64; 8192];
    let mut class = FileFullDirectoryRestartInfo;
    loop {
        // SAFETY: `buf` is writable for its whole length.
        let ok = unsafe {
            GetFileInformationByHandleEx(
                handle(dir),
                class,
                buf.as_mut_ptr().cast(),
                (buf.len() * 8) as u32,
            )
        };
        if ok == 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(ERROR_NO_MORE_FILES as i32) {
                return Ok(out);
            }
            return Err(e);
        }
        class = FileFullDirectoryInfo;
        let mut at = 0usize;
        loop {
            // SAFETY: the call wrote a chain of FILE_FULL_DIR_INFO records
            // into `buf`, each at an 8-byte aligned offset inside it, each
            // followed by its name of FileNameLength bytes.
            let (attributes, name, next) = unsafe {
                let entry = buf
                    .as_ptr()
                    .cast::<u8>()
                    .add(at)
                    .cast::<FILE_FULL_DIR_INFO>();
                let name = std::slice::from_raw_parts(
                    std::ptr::addr_of!((*entry).FileName).cast::<u16>(),
                    (*entry).FileNameLength as usize / 2,
                );
                ((*entry).FileAttributes, name, (*entry).NextEntryOffset)
            };
            if let Ok(name) = OsString::from_wide(name).into_string() {
                if name != "." && name != ".." {
                    out.push((name, kind_of(attributes)));
                }
            }
            if next == 0 {
                break;
            }
            at += next as usize;
        }
    }
}

/// Another handle to the same directory.
pub(crate) fn try_clone(dir: &DirHandle) -> io::Result<DirHandle> {
    dir.try_clone()
}

/// Makes renames and removals in `dir` durable: flushes the directory
/// through a handle with write access (which flushing needs), opened
/// relative to it. File systems that cannot flush a directory (FAT) make
/// each change durable on its own.
pub(crate) fn sync_dir(dir: &DirHandle) -> io::Result<()> {
    // An empty name relative to a directory handle opens that directory.
    let writable = nt_open_wide(
        dir,
        &[],
        FILE_ADD_FILE | FILE_ADD_SUBDIRECTORY | SYNCHRONIZE,
        FILE_OPEN,
        FILE_DIRECTORY_FILE,
    )?;
    flush(&writable)
}

/// Makes a rename or removal inside the directory at `path` durable
/// (outside the store, where paths are followed).
pub(crate) fn sync_dir_path(path: &Path) -> io::Result<()> {
    let writable = OpenOptions::new()
        .access_mode(FILE_ADD_FILE | FILE_ADD_SUBDIRECTORY | SYNCHRONIZE)
        .share_mode(SHARE_ALL)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
        .open(path)?;
    flush(&writable)
}

fn flush(dir: &File) -> io::Result<()> {
    // SAFETY: a handle the caller keeps open.
    if unsafe { FlushFileBuffers(handle(dir)) } == 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(ERROR_INVALID_FUNCTION as i32) {
            return Err(e);
        }
    }
    Ok(())
}

/// Takes the lock of `file` without waiting: shared or exclusive.
/// `Ok(false)`: another handle holds a conflicting one. Like `flock`, two
/// handles in one process exclude each other as two processes do.
pub(crate) fn try_lock(file: &File, exclusive: bool) -> io::Result<bool> {
    let mut flags = LOCKFILE_FAIL_IMMEDIATELY;
    if exclusive {
        flags |= LOCKFILE_EXCLUSIVE_LOCK;
    }
    let mut overlapped = lock_position();
    // SAFETY: a synchronous handle the caller keeps open, and an OVERLAPPED
    // that outlives the call (which completes before it returns).
    if unsafe { LockFileEx(handle(file), flags, 0, 1, 0, &mut overlapped) } != 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(ERROR_LOCK_VIOLATION as i32) {
        return Ok(false);
    }
    Err(e)
}

/// Releases the lock of `file` now: Windows may take a while after the
/// handle closes.
pub(crate) fn unlock(file: &File) {
    let mut overlapped = lock_position();
    // SAFETY: as in try_lock; failing (nothing was locked) is harmless.
    unsafe { UnlockFileEx(handle(file), 0, 1, 0, &mut overlapped) };
}

fn lock_position() -> OVERLAPPED {
    // SAFETY: plain data, for which zero is the initial state.
    let mut o: OVERLAPPED = unsafe { zeroed() };
    o.Anonymous.Anonymous.Offset = LOCK_OFFSET as u32;
    o.Anonymous.Anonymous.OffsetHigh = (LOCK_OFFSET >> 32) as u32;
    o
}

/// Writes all of `bytes` at `offset` (the handle's position moves too;
/// the store keeps none).
pub(crate) fn write_all_at(file: &File, mut bytes: &[u8], mut offset: u64) -> io::Result<()> {
    while !bytes.is_empty() {
        match file.seek_write(bytes, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                bytes = &bytes[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Fills `buf` from `offset`.
pub(crate) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.raw_os_error() == Some(ERROR_HANDLE_EOF as i32) => {
                return Err(io::ErrorKind::UnexpectedEof.into())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reserves `size` bytes of disk for `file` (its allocation size) and gives
/// it that length, so that a full disk shows at once (`ERROR_DISK_FULL`).
/// File systems that cannot (and Wine) just get the length.
///
/// NTFS zero-fills the unwritten part of a file before a write beyond it,
/// so a chunk written far into a fresh file first costs that much writing;
/// only an administrator's `SetFileValidData` avoids it, which olreg does
/// not use.
pub(crate) fn allocate(file: &File, size: u64) -> io::Result<()> {
    let info = FILE_ALLOCATION_INFO {
        AllocationSize: i64::try_from(size).map_err(|_| io::ErrorKind::InvalidInput)?,
    };
    // SAFETY: a handle the caller keeps open and a FILE_ALLOCATION_INFO of
    // the size given.
    let ok = unsafe {
        SetFileInformationByHandle(
            handle(file),
            FileAllocationInfo,
            std::ptr::addr_of!(info).cast(),
            size_of::<FILE_ALLOCATION_INFO>() as u32,
        )
    };
    if ok == 0 {
        let e = io::Error::last_os_error();
        let unsupported = matches!(
            e.raw_os_error().map(|c| c as u32),
            Some(
                ERROR_INVALID_FUNCTION
                    | ERROR_NOT_SUPPORTED
                    | ERROR_CALL_NOT_IMPLEMENTED
                    | ERROR_INVALID_PARAMETER
            )
        );
        if !unsupported {
            return Err(e);
        }
    }
    if file.metadata()?.len() < size {
        file.set_len(size)?;
    }
    Ok(())
}

/// Windows cannot start writing a range back without waiting
/// (`FlushFileBuffers` is synchronous and whole-file): the full sync
/// before the final rename writes everything.
pub(crate) fn start_writeback(_file: &File, _start: u64, _end: u64) {}

/// Bytes available to this user (quotas included) on the volume of `path`.
pub(crate) fn available_space(path: &Path) -> io::Result<u64> {
    let wide: Vec<u16> = path.as_os_str().encode_wide().chain(Some(0)).collect();
    let mut available = 0u64;
    // SAFETY: a NUL-terminated path and a writable counter; the other
    // counters are optional.
    let ok = unsafe {
        GetDiskFreeSpaceExW(
            wide.as_ptr(),
            &mut available,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(available)
}

/// Options for files created outside the store (an export's destination).
/// The standard library shares read, write and delete.
pub(crate) fn new_file_options() -> OpenOptions {
    OpenOptions::new()
}

/// Options to read a file outside the store that must be a regular file:
/// a final link is opened as itself, and a directory opens too (without
/// `FILE_FLAG_BACKUP_SEMANTICS` it is "access denied"), for the caller to
/// refuse.
pub(crate) fn regular_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS);
    options
}

/// Options to read a file the user named (the signing key, Docker's
/// config), links followed: a directory opens too, so that the caller's
/// check of what the file is gives the reason, not "access denied".
pub(crate) fn user_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.read(true).custom_flags(FILE_FLAG_BACKUP_SEMANTICS);
    options
}

/// Renames `from` to `to` (paths outside the store), replacing `to`
/// atomically, waiting a while for another program to close `to`.
pub(crate) fn rename_path(from: &Path, to: &Path) -> io::Result<()> {
    let deadline = Instant::now() + RENAME_PATIENCE;
    loop {
        match std::fs::rename(from, to) {
            Err(e) if is_busy(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            r => return r,
        }
    }
}

fn is_busy(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(|c| c as u32),
        Some(ERROR_ACCESS_DENIED | ERROR_SHARING_VIOLATION)
    )
}

// FILE_RENAME_INFORMATION_EX and FILE_DISPOSITION_INFORMATION_EX flags (ntifs.h).
const FILE_RENAME_REPLACE_IF_EXISTS: u32 = 0x1;
const FILE_RENAME_POSIX_SEMANTICS: u32 = 0x2;
const FILE_DISPOSITION_DELETE: u32 = 0x1;
const FILE_DISPOSITION_POSIX_SEMANTICS: u32 = 0x2;
const FILE_DISPOSITION_IGNORE_READONLY_ATTRIBUTE: u32 = 0x10;

/// A FILE_RENAME_INFORMATION or FILE_LINK_INFORMATION (the same layout): a
/// header naming the target directory, then the new name, in one buffer
/// of u64s for the header's alignment.
struct NameInformation {
    buf: Vec<u64>,
    len: usize,
}

impl NameInformation {
    fn new(to: &DirHandle, to_name: &str) -> io::Result<NameInformation> {
        let name = wide_name(to_name)?;
        // At least the structure's size, which counts one character of the
        // name: Windows and Wine refuse less, however short the name.
        let len = (offset_of!(FILE_RENAME_INFORMATION, FileName) + name.len() * 2)
            .max(size_of::<FILE_RENAME_INFORMATION>());
        let mut info = NameInformation {
            buf: vec![0u64; len.div_ceil(8)],
            len,
        };
        let header = info.header();
        // SAFETY: `buf` is zeroed, aligned and holds the header and the
        // name after it.
        unsafe {
            (*header).RootDirectory = handle(to);
            (*header).FileNameLength = (name.len() * 2) as u32;
            std::ptr::copy_nonoverlapping(
                name.as_ptr(),
                std::ptr::addr_of_mut!((*header).FileName).cast::<u16>(),
                name.len(),
            );
        }
        Ok(info)
    }

    fn header(&mut self) -> *mut FILE_RENAME_INFORMATION {
        self.buf.as_mut_ptr().cast()
    }

    /// The flags of the `…InformationEx` classes.
    fn set_flags(&mut self, flags: u32) {
        // SAFETY: the header is initialised; the union's field is plain data.
        unsafe { (*self.header()).Anonymous.Flags = flags };
    }

    /// The first field of the classic classes: a BOOLEAN.
    fn set_replace_if_exists(&mut self) {
        // SAFETY: as above; a union member of the same place.
        unsafe {
            (*self.header()).Anonymous.Flags = 0;
            (*self.header()).Anonymous.ReplaceIfExists = true;
        }
    }

    fn apply(&self, file: &File, class: i32) -> Result<(), NTSTATUS> {
        // SAFETY: `buf` holds `len` bytes laid out as the rename and link
        // classes expect; the handles in it and `file` are open.
        unsafe { set_information(file, self.buf.as_ptr().cast(), self.len as u32, class) }
    }
}

/// Marks an open file or directory for deletion: at once with POSIX
/// semantics, else when its last handle closes.
fn delete(handle: &File) -> io::Result<()> {
    let ex = FILE_DISPOSITION_INFORMATION_EX {
        Flags: FILE_DISPOSITION_DELETE
            | FILE_DISPOSITION_POSIX_SEMANTICS
            | FILE_DISPOSITION_IGNORE_READONLY_ATTRIBUTE,
    };
    // SAFETY: a handle opened with DELETE access and a structure of the
    // size given.
    let status = unsafe {
        set_information(
            handle,
            std::ptr::addr_of!(ex).cast(),
            size_of::<FILE_DISPOSITION_INFORMATION_EX>() as u32,
            FileDispositionInformationEx,
        )
    };
    match status {
        Ok(()) => Ok(()),
        Err(s) if unsupported(s) => {
            let classic = FILE_DISPOSITION_INFORMATION { DeleteFile: true };
            // SAFETY: as above.
            unsafe {
                set_information(
                    handle,
                    std::ptr::addr_of!(classic).cast(),
                    size_of::<FILE_DISPOSITION_INFORMATION>() as u32,
                    FileDispositionInformation,
                )
            }
            .map_err(error_of)
        }
        Err(s) => Err(error_of(s)),
    }
}

/// `NtSetInformationFile`, returning the failing status.
///
/// # Safety
/// `info` must point at `len` readable bytes laid out as `class` expects.
unsafe fn set_information(
    file: &File,
    info: *const std::ffi::c_void,
    len: u32,
    class: i32,
) -> Result<(), NTSTATUS> {
    // SAFETY: the caller's promise, and a status block on our stack.
    let status = unsafe {
        let mut io_status: IO_STATUS_BLOCK = zeroed();
        NtSetInformationFile(handle(file), &mut io_status, info, len, class)
    };
    if status >= 0 {
        Ok(())
    } else {
        Err(status)
    }
}

/// Whether a status says an information class or its flags are unknown
/// (an older Windows, another file system, Wine).
fn unsupported(status: NTSTATUS) -> bool {
    matches!(
        status,
        STATUS_INVALID_INFO_CLASS
            | STATUS_INVALID_PARAMETER
            | STATUS_NOT_IMPLEMENTED
            | STATUS_NOT_SUPPORTED
    )
}

/// Opens `name` relative to `dir` with `NtCreateFile`.
fn nt_open(
    dir: &DirHandle,
    name: &str,
    access: u32,
    disposition: NTCREATEFILE_CREATE_DISPOSITION,
    options: NTCREATEFILE_CREATE_OPTIONS,
) -> io::Result<File> {
    nt_open_wide(dir, &wide_name(name)?, access, disposition, options)
}

fn nt_open_wide(
    dir: &DirHandle,
    wide: &[u16],
    access: u32,
    disposition: NTCREATEFILE_CREATE_DISPOSITION,
    options: NTCREATEFILE_CREATE_OPTIONS,
) -> io::Result<File> {
    let len = u16::try_from(wide.len() * 2).map_err(|_| io::ErrorKind::InvalidInput)?;
    let name = UNICODE_STRING {
        Length: len,
        MaximumLength: len,
        Buffer: wide.as_ptr().cast_mut(),
    };
    let attributes = OBJECT_ATTRIBUTES {
        Length: size_of::<OBJECT_ATTRIBUTES>() as u32,
        RootDirectory: handle(dir),
        ObjectName: &name,
        // As every Win32 open does: names match whatever their case.
        Attributes: OBJ_CASE_INSENSITIVE,
        SecurityDescriptor: std::ptr::null(),
        SecurityQualityOfService: std::ptr::null(),
    };
    let mut raw: HANDLE = std::ptr::null_mut();
    // SAFETY: every pointer refers to a live local for the whole call.
    let status = unsafe {
        let mut io_status: IO_STATUS_BLOCK = zeroed();
        NtCreateFile(
            &mut raw,
            access | SYNCHRONIZE,
            &attributes,
            &mut io_status,
            std::ptr::null(),
            FILE_ATTRIBUTE_NORMAL,
            SHARE_ALL,
            disposition,
            options | FILE_SYNCHRONOUS_IO_NONALERT,
            std::ptr::null(),
            0,
        )
    };
    if status < 0 {
        return Err(error_of(status));
    }
    // SAFETY: NtCreateFile succeeded: `raw` is a new handle we now own.
    Ok(File::from(unsafe {
        OwnedHandle::from_raw_handle(raw as _)
    }))
}

/// `name` in UTF-16, once it is a single name Windows stores as given.
fn wide_name(name: &str) -> io::Result<Vec<u16>> {
    if !is_plain_name(name) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a file name Windows can store"),
        ));
    }
    Ok(std::ffi::OsStr::new(name).encode_wide().collect())
}

/// Whether Windows stores `name` under exactly that name: no separator,
/// stream (`:`) or wildcard characters, no control characters, and no
/// trailing dot or space (which Win32 strips).
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.ends_with(['.', ' '])
        && !name
            .chars()
            .any(|c| c < ' ' || matches!(c, '\\' | '/' | ':' | '*' | '?' | '"' | '<' | '>' | '|'))
}

/// STATUS_DELETE_PENDING, which Win32 folds into ERROR_ACCESS_DENIED, as a
/// code of its own: the customer bit (29) keeps it apart from every system code.
const DELETE_PENDING_CODE: i32 = 0x2000_0000 | 0x56;

fn is_delete_pending(e: &io::Error) -> bool {
    e.raw_os_error() == Some(DELETE_PENDING_CODE)
}

/// A name being deleted is as good as gone.
fn pending_is_absent(e: io::Error) -> io::Error {
    if is_delete_pending(&e) {
        io::ErrorKind::NotFound.into()
    } else {
        e
    }
}

fn error_of(status: NTSTATUS) -> io::Error {
    match status {
        STATUS_DELETE_PENDING => io::Error::from_raw_os_error(DELETE_PENDING_CODE),
        STATUS_FILE_IS_A_DIRECTORY => io::ErrorKind::IsADirectory.into(),
        STATUS_DIRECTORY_NOT_EMPTY => io::ErrorKind::DirectoryNotEmpty.into(),
        // SAFETY: a pure function of its argument.
        _ => io::Error::from_raw_os_error(unsafe { RtlNtStatusToDosError(status) } as i32),
    }
}

fn kind_of(attributes: u32) -> Kind {
    if attributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        Kind::Symlink
    } else if attributes & FILE_ATTRIBUTE_DIRECTORY != 0 {
        Kind::Dir
    } else {
        Kind::File
    }
}

fn attributes(file: &File) -> io::Result<u32> {
    let tag: FILE_ATTRIBUTE_TAG_INFO = file_info(file, FileAttributeTagInfo)?;
    Ok(tag.FileAttributes)
}

/// `GetFileInformationByHandleEx` for a fixed-size class.
fn file_info<T>(file: &File, class: i32) -> io::Result<T> {
    // SAFETY: T is one of the plain-data FILE_*_INFO structures, valid as
    // all zeroes, and the call writes at most its size.
    unsafe {
        let mut info: T = zeroed();
        if GetFileInformationByHandleEx(
            handle(file),
            class,
            std::ptr::addr_of_mut!(info).cast(),
            size_of::<T>() as u32,
        ) == 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(info)
    }
}

/// The volume and file ID: 128 bits where the file system has them (ReFS),
/// else the classic 64-bit index.
fn file_id(file: &File) -> io::Result<FileId> {
    if let Ok(info) = file_info::<FILE_ID_INFO>(file, FileIdInfo) {
        return Ok((
            info.VolumeSerialNumber,
            u128::from_le_bytes(info.FileId.Identifier),
        ));
    }
    // SAFETY: plain data, filled in by the call.
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { zeroed() };
    // SAFETY: a handle the caller keeps open and a writable structure.
    if unsafe { GetFileInformationByHandle(handle(file), &mut info) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let index = (u64::from(info.nFileIndexHigh) << 32) | u64::from(info.nFileIndexLow);
    Ok((u64::from(info.dwVolumeSerialNumber), u128::from(index)))
}

/// A FILETIME (100 ns ticks since 1601) as a SystemTime.
fn system_time(ticks: i64) -> SystemTime {
    const UNIX_EPOCH_TICKS: i64 = 116_444_736_000_000_000;
    let since_unix = ticks.saturating_sub(UNIX_EPOCH_TICKS).max(0) as u64;
    SystemTime::UNIX_EPOCH + Duration::from_nanos(since_unix.saturating_mul(100))
}

fn handle(file: &File) -> HANDLE {
    file.as_raw_handle() as HANDLE
}
