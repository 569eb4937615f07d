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
//! On Windows the same holds with NT's handle-relative opens, reparse
//! points (symbolic links, junctions) counting as links (see `sys`).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::sys::{self, Access, DirHandle, FileId};
use crate::error::{Error, Result};

/// An open directory of the store. Operations take a single name in it.
#[derive(Debug)]
pub(crate) struct Dir {
    handle: DirHandle,
    path: PathBuf,
}

/// What a directory entry is, seen without following it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    /// A device, FIFO or socket (Unix only).
    #[cfg_attr(windows, allow(dead_code))]
    Other,
}

impl Kind {
    /// Why an entry of this kind is refused where `wanted` was expected.
    pub(crate) fn refusal(self, wanted: Kind) -> io::Error {
        let what = match self {
            Kind::Symlink if cfg!(windows) => {
                "is a symbolic link, junction or other reparse point \
                 (olreg follows no links inside the store)"
            }
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
    /// Device and inode; volume and file ID on Windows.
    pub(super) id: FileId,
}

impl Meta {
    /// The metadata of an open file.
    pub(crate) fn of_file(file: &File, path: &Path) -> Result<Meta> {
        sys::stat(file).map_err(|e| Error::io("stat", path, e))
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
        match sys::open_root(path) {
            Ok(handle) => Ok(Some(Dir {
                handle,
                path: path.to_owned(),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("open directory", path, e)),
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
        match sys::open_dir_at(&self.handle, name) {
            Ok(handle) => Ok(Some(Dir { handle, path })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.refused("open directory", name, path, Kind::Dir, e)),
        }
    }

    /// The subdirectory `name`, created if missing.
    pub(crate) fn create_dir(&self, name: &str) -> Result<Dir> {
        let path = self.checked(name)?;
        match sys::create_dir_at(&self.handle, name) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("create directory", &path, e)),
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
        let handle =
            sys::try_clone(&self.handle).map_err(|e| Error::io("open directory", &self.path, e))?;
        Ok(Dir {
            handle,
            path: self.path.clone(),
        })
    }

    /// The regular file `name`, for reading; `Ok(None)` when absent.
    pub(crate) fn open_read(&self, name: &str) -> Result<Option<File>> {
        self.open_file(name, Access::Read)
    }

    /// The regular file `name`, for reading and writing, created if absent.
    pub(crate) fn open_write(&self, name: &str) -> Result<File> {
        self.open_file(name, Access::Write)?
            .ok_or_else(|| self.vanished(name))
    }

    /// A new regular file `name`; fails if anything has that name.
    pub(crate) fn create_new(&self, name: &str) -> Result<File> {
        self.open_file(name, Access::CreateNew)?
            .ok_or_else(|| self.vanished(name))
    }

    fn open_file(&self, name: &str, access: Access) -> Result<Option<File>> {
        let path = self.checked(name)?;
        let (file, meta) = match sys::open_file_at(&self.handle, name, access) {
            Ok(opened) => opened,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.refused("open", name, path, Kind::File, e)),
        };
        if meta.kind != Kind::File {
            return Err(Error::io("open", &path, meta.kind.refusal(Kind::File)));
        }
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
        match sys::stat_at(&self.handle, name) {
            Ok(meta) => Ok(Some(meta)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("stat", &path, e)),
        }
    }

    /// Removes the entry `name` (a link is removed, not followed). Returns
    /// whether there was one.
    pub(crate) fn remove_file(&self, name: &str) -> Result<bool> {
        let path = self.checked(name)?;
        match sys::remove_file_at(&self.handle, name) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("remove", &path, e)),
        }
    }

    /// Removes the subdirectory `name` if it is empty. Returns whether it did.
    pub(crate) fn remove_empty_dir(&self, name: &str) -> Result<bool> {
        let path = self.checked(name)?;
        match sys::remove_dir_at(&self.handle, name) {
            Ok(()) => Ok(true),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::DirectoryNotEmpty
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(Error::io("remove directory", &path, e)),
        }
    }

    /// Renames `name` here to `to_name` in `to`, replacing what is there
    /// (a link there is replaced, not followed). Returns `false` when there
    /// is no `name` to move.
    pub(crate) fn rename(&self, name: &str, to: &Dir, to_name: &str) -> Result<bool> {
        self.checked(name)?;
        let dest = to.checked(to_name)?;
        match sys::rename_at(&self.handle, name, &to.handle, to_name) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("rename into place", &dest, e)),
        }
    }

    /// Makes `to_name` in `to` a second name of the file `name` here (a link
    /// is linked as itself, never followed). Returns `false` when that cannot
    /// be done: `name` is gone, `to_name` is taken, or the file system has
    /// no hard links.
    pub(crate) fn hard_link(&self, name: &str, to: &Dir, to_name: &str) -> Result<bool> {
        self.checked(name)?;
        let dest = to.checked(to_name)?;
        sys::hard_link_at(&self.handle, name, &to.handle, to_name)
            .map_err(|e| Error::io("link into place", &dest, e))
    }

    /// The entries whose names are UTF-8 (the only ones olreg names files
    /// with), sorted by name.
    pub(crate) fn entries(&self) -> Result<Vec<Entry>> {
        let mut out: Vec<Entry> = sys::read_dir(&self.handle)
            .map_err(|e| Error::io("read directory", &self.path, e))?
            .into_iter()
            .map(|(name, kind)| Entry { name, kind })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Makes renames and removals in this directory durable.
    pub(crate) fn sync(&self) -> Result<()> {
        sys::sync_dir(&self.handle).map_err(|e| Error::io("sync directory", &self.path, e))
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
        e: io::Error,
    ) -> Error {
        if e.kind() != io::ErrorKind::NotFound {
            if let Ok(Some(meta)) = self.metadata(name) {
                if meta.kind != wanted {
                    return Error::io(op, &path, meta.kind.refusal(wanted));
                }
            }
        }
        Error::io(op, &path, e)
    }
}
