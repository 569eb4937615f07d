//! Directories and files inside the store, reached one name at a time
//! without following symbolic links.
//!
//! A store directory may be hostile: a link planted at
//! `.olreg/partial/sha256-….part`, `manifests/<host>` or `blobs/sha256-…`
//! must not make olreg read, write or delete anything outside the root. So
//! every path below the root is resolved from an open directory handle, one
//! component at a time, with `O_NOFOLLOW`, and only real directories and
//! regular files are accepted: anything else is an error naming the path.
//! The root itself is the user's choice and may be reached through links.
//!
//! This module and `fsutil` hold the store's platform-specific calls.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};

/// Permissions of created files and directories (before the umask).
const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o777;

/// An open directory of the store. Operations take a single name in it.
#[derive(Debug)]
pub(crate) struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// What a directory entry is, seen without following it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

impl Kind {
    fn of(file_type: FileType) -> Kind {
        match file_type {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        }
    }

    /// Why an entry of this kind is refused where `wanted` was expected.
    pub(crate) fn refusal(self, wanted: Kind) -> io::Error {
        let what = match self {
            Kind::Symlink => "is a symbolic link (olreg follows no links inside the store)",
            Kind::Dir => "is a directory, not a regular file",
            Kind::File => "is a file, not a directory",
            Kind::Other if wanted == Kind::Dir => "is not a directory",
            Kind::Other => "is not a regular file (a device, FIFO or socket)",
        };
        io::Error::other(what)
    }
}

/// An entry's type, size and identity, read without following links.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Meta {
    pub kind: Kind,
    pub len: u64,
    /// Bytes actually allocated on disk.
    pub allocated: u64,
    pub modified: SystemTime,
    id: (u64, u64),
}

impl Meta {
    // The field types of `struct stat` differ between platforms.
    #[allow(clippy::unnecessary_cast)]
    fn of(st: &rfs::Stat) -> Meta {
        let mtime = Duration::new(
            (st.st_mtime as i64).max(0) as u64,
            (st.st_mtime_nsec as u32).min(999_999_999),
        );
        Meta {
            kind: Kind::of(FileType::from_raw_mode(st.st_mode as _)),
            len: (st.st_size as i64).max(0) as u64,
            allocated: (st.st_blocks as u64).saturating_mul(512),
            modified: SystemTime::UNIX_EPOCH + mtime,
            id: (st.st_dev as u64, st.st_ino as u64),
        }
    }

    /// The metadata of an open file.
    pub(crate) fn of_file(file: &File, path: &Path) -> Result<Meta> {
        let st = rfs::fstat(file).map_err(|e| Error::io("stat", path, e.into()))?;
        Ok(Meta::of(&st))
    }

    /// Whether both describe the same file (device and inode).
    pub(crate) fn same_file(&self, other: &Meta) -> bool {
        self.id == other.id
    }
}

/// One entry of a directory listing.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub name: String,
    pub kind: Kind,
}

impl Dir {
    /// Opens the store root (following links in its own path), creating it
    /// first when `create` is set. `Ok(None)`: it does not exist.
    pub(crate) fn root(path: &Path, create: bool) -> Result<Option<Dir>> {
        if create {
            std::fs::create_dir_all(path).map_err(|e| Error::io("create directory", path, e))?;
        }
        match rfs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => Ok(Some(Dir {
                fd,
                path: path.to_owned(),
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::io("open directory", path, e.into())),
        }
    }

    /// The path of `name` in this directory, for messages.
    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The subdirectory `name`; `Ok(None)` when nothing has that name, an
    /// error when something other than a real directory does.
    pub(crate) fn open_dir(&self, name: &str) -> Result<Option<Dir>> {
        let path = self.checked(name)?;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rfs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => Ok(Some(Dir { fd, path })),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(self.refused("open directory", name, path, Kind::Dir, e)),
        }
    }

    /// The subdirectory `name`, created if missing.
    pub(crate) fn create_dir(&self, name: &str) -> Result<Dir> {
        let path = self.checked(name)?;
        match rfs::mkdirat(&self.fd, name, Mode::from_raw_mode(DIR_MODE as _)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(Error::io("create directory", &path, e.into())),
        }
        self.open_dir(name)?.ok_or_else(|| self.vanished(name))
    }

    /// The directory at `names` below this one, if every part exists.
    pub(crate) fn open_dirs(&self, names: &[&str]) -> Result<Option<Dir>> {
        let mut dir: Option<Dir> = None;
        for name in names {
            let parent = dir.as_ref().unwrap_or(self);
            match parent.open_dir(name)? {
                Some(next) => dir = Some(next),
                None => return Ok(None),
            }
        }
        match dir {
            Some(dir) => Ok(Some(dir)),
            None => self.try_clone().map(Some),
        }
    }

    /// The directory at `names` below this one, created as needed.
    pub(crate) fn create_dirs(&self, names: &[&str]) -> Result<Dir> {
        let mut dir = self.try_clone()?;
        for name in names {
            dir = dir.create_dir(name)?;
        }
        Ok(dir)
    }

    pub(crate) fn try_clone(&self) -> Result<Dir> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| Error::io("open directory", &self.path, e))?;
        Ok(Dir {
            fd,
            path: self.path.clone(),
        })
    }

    /// The regular file `name`, for reading; `Ok(None)` when absent.
    pub(crate) fn open_read(&self, name: &str) -> Result<Option<File>> {
        self.open_file(name, OFlags::RDONLY)
    }

    /// The regular file `name`, for reading and writing, created if absent.
    pub(crate) fn open_write(&self, name: &str) -> Result<File> {
        self.open_file(name, OFlags::RDWR | OFlags::CREATE)?
            .ok_or_else(|| self.vanished(name))
    }

    /// A new regular file `name`; fails if anything has that name.
    pub(crate) fn create_new(&self, name: &str) -> Result<File> {
        self.open_file(name, OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL)?
            .ok_or_else(|| self.vanished(name))
    }

    fn open_file(&self, name: &str, access: OFlags) -> Result<Option<File>> {
        let path = self.checked(name)?;
        // Non-blocking, so that a FIFO cannot hang the open; cleared below.
        let flags = access | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
        let fd = match rfs::openat(&self.fd, name, flags, Mode::from_raw_mode(FILE_MODE as _)) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(self.refused("open", name, path, Kind::File, e)),
        };
        let file = File::from(fd);
        let meta = Meta::of_file(&file, &path)?;
        if meta.kind != Kind::File {
            return Err(Error::io("open", &path, meta.kind.refusal(Kind::File)));
        }
        let flags = rfs::fcntl_getfl(&file).map_err(|e| Error::io("open", &path, e.into()))?;
        rfs::fcntl_setfl(&file, flags - OFlags::NONBLOCK)
            .map_err(|e| Error::io("open", &path, e.into()))?;
        Ok(Some(file))
    }

    /// The error for a file that disappeared while it was being created
    /// (its directory was removed meanwhile).
    fn vanished(&self, name: &str) -> Error {
        Error::io(
            "create",
            &self.join(name),
            io::Error::from(io::ErrorKind::NotFound),
        )
    }

    /// What `name` is, without following it; `Ok(None)` when absent.
    pub(crate) fn metadata(&self, name: &str) -> Result<Option<Meta>> {
        let path = self.checked(name)?;
        match rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(Meta::of(&st))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::io("stat", &path, e.into())),
        }
    }

    /// Removes the entry `name` (a link is removed, not followed). Returns
    /// whether there was one.
    pub(crate) fn remove_file(&self, name: &str) -> Result<bool> {
        let path = self.checked(name)?;
        match rfs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(Error::io("remove", &path, e.into())),
        }
    }

    /// Removes the subdirectory `name` if it is empty. Returns whether it did.
    pub(crate) fn remove_empty_dir(&self, name: &str) -> Result<bool> {
        let path = self.checked(name)?;
        match rfs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT | Errno::NOTEMPTY | Errno::EXIST) => Ok(false),
            Err(e) => Err(Error::io("remove directory", &path, e.into())),
        }
    }

    /// Renames `name` here to `to_name` in `to`, replacing what is there
    /// (a link there is replaced, not followed). Returns `false` when there
    /// is no `name` to move.
    pub(crate) fn rename(&self, name: &str, to: &Dir, to_name: &str) -> Result<bool> {
        self.checked(name)?;
        let dest = to.checked(to_name)?;
        match rfs::renameat(&self.fd, name, &to.fd, to_name) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(Error::io("rename into place", &dest, e.into())),
        }
    }

    /// Makes `to_name` in `to` a second name of the file `name` here (a link
    /// is linked as itself, never followed). Returns `false` when that cannot
    /// be done: `name` is gone, `to_name` is taken, or the file system has
    /// no hard links.
    pub(crate) fn hard_link(&self, name: &str, to: &Dir, to_name: &str) -> Result<bool> {
        self.checked(name)?;
        let dest = to.checked(to_name)?;
        const CANNOT: [Errno; 7] = [
            Errno::NOENT,
            Errno::EXIST,
            Errno::PERM,
            Errno::NOTSUP,
            Errno::OPNOTSUPP,
            Errno::MLINK,
            Errno::XDEV,
        ];
        match rfs::linkat(&self.fd, name, &to.fd, to_name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(e) if CANNOT.contains(&e) => Ok(false),
            Err(e) => Err(Error::io("link into place", &dest, e.into())),
        }
    }

    /// The entries whose names are UTF-8 (the only ones olreg names files
    /// with), sorted by name.
    pub(crate) fn entries(&self) -> Result<Vec<Entry>> {
        let mut listing = rfs::Dir::read_from(&self.fd)
            .map_err(|e| Error::io("read directory", &self.path, e.into()))?;
        let mut out = Vec::new();
        while let Some(entry) = listing.read() {
            let entry = entry.map_err(|e| Error::io("read directory", &self.path, e.into()))?;
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            let kind = match entry.file_type() {
                FileType::Unknown => match self.metadata(name)? {
                    Some(meta) => meta.kind,
                    None => continue,
                },
                known => Kind::of(known),
            };
            out.push(Entry {
                name: name.to_owned(),
                kind,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Makes renames and removals in this directory durable.
    pub(crate) fn sync(&self) -> Result<()> {
        rfs::fsync(&self.fd).map_err(|e| Error::io("sync directory", &self.path, e.into()))
    }

    /// `name` joined to this directory's path, once it is known to be a
    /// single plain component (names come from digests and validated model
    /// names; this is the last line of defence).
    fn checked(&self, name: &str) -> Result<PathBuf> {
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
            return Err(Error::invalid_argument(format!(
                "{name:?} is not a file name inside {}",
                self.path.display()
            )));
        }
        Ok(self.path.join(name))
    }

    /// The error for a failed open of `name`: what is there when it is not
    /// what was wanted, else the system's reason.
    fn refused(
        &self,
        op: &'static str,
        name: &str,
        path: PathBuf,
        wanted: Kind,
        e: Errno,
    ) -> Error {
        if e != Errno::NOENT {
            if let Ok(Some(meta)) = self.metadata(name) {
                if meta.kind != wanted {
                    return Error::io(op, &path, meta.kind.refusal(wanted));
                }
            }
        }
        Error::io(op, &path, e.into())
    }
}
