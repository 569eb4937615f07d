//! Advisory file locks (`flock`; `LockFileEx` on Windows, see `sys`) that
//! coordinate processes and threads sharing one store.
//!
//! Locks belong to an open file, so two opens in one process exclude each
//! other just as two processes do. A lock file may be
//! deleted by its last exclusive holder (see [`FileLock::remove_on_release`])
//! or by `prune`, always while locked; so after locking, a locker checks that
//! the name still leads to the file it locked, and starts again if not. A
//! locker that opened the file just before it was deleted thus never holds
//! a lock on a file nobody else can find.

use std::fs::File;
use std::path::PathBuf;

use super::dir::{Dir, Meta};
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
    dir: Dir,
    name: String,
    remove: bool,
}

impl FileLock {
    /// Takes the lock on `name` in `dir` (created if needed) without
    /// waiting. `Ok(None)` means someone else holds it.
    pub(crate) fn try_acquire(dir: Dir, name: &str, mode: Mode) -> Result<Option<FileLock>> {
        let path = dir.join(name);
        loop {
            let file = dir.open_write(name)?;
            let locked = super::fsutil::try_lock(&file, mode == Mode::Exclusive)
                .map_err(|e| Error::io("lock", &path, e))?;
            if !locked {
                return Ok(None);
            }
            // The file may have been removed between open and lock.
            let ours = Meta::of_file(&file, &path)?;
            match dir.metadata(name)? {
                Some(current) if current.same_file(&ours) => {
                    return Ok(Some(FileLock {
                        file,
                        dir,
                        name: name.to_owned(),
                        remove: false,
                    }))
                }
                _ => continue,
            }
        }
    }

    /// Removes the lock file when the lock is released, so that files for
    /// locks nobody holds do not pile up. Only for exclusive locks: the
    /// removal happens while the lock is still held.
    pub(crate) fn remove_on_release(mut self) -> FileLock {
        self.remove = true;
        self
    }

    /// The locked file, for holders that keep data in it.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// The path of the lock file, for messages.
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Before the descriptor (and with it the lock) goes: whoever opened
        // the file meanwhile finds, once it gets the lock, that the name no
        // longer leads to it, and starts again.
        if self.remove {
            let _ = self.dir.remove_file(&self.name);
        }
        // Now rather than when the file closes, which on Windows may be later.
        super::fsutil::unlock(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    fn locks_dir(root: &std::path::Path) -> Dir {
        Dir::root(root, true).unwrap().unwrap()
    }

    #[test]
    fn a_removed_lock_file_never_lets_two_holders_in() {
        // Eight threads take, hold and release one lock that removes its
        // file on release, thousands of times: never two at once.
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_owned();
        let held = Arc::new(AtomicBool::new(false));
        let acquired = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (root, held, acquired) = (root.clone(), held.clone(), acquired.clone());
                std::thread::spawn(move || {
                    for _ in 0..400 {
                        let lock =
                            FileLock::try_acquire(locks_dir(&root), "x.lock", Mode::Exclusive)
                                .unwrap();
                        if let Some(lock) = lock {
                            let lock = lock.remove_on_release();
                            assert!(!held.swap(true, Ordering::SeqCst), "two holders at once");
                            acquired.fetch_add(1, Ordering::Relaxed);
                            std::thread::yield_now();
                            held.store(false, Ordering::SeqCst);
                            drop(lock);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(acquired.load(Ordering::Relaxed) > 0);
        assert!(!root.join("x.lock").exists(), "the last holder removed it");
    }

    #[cfg(unix)]
    #[test]
    fn a_linked_lock_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        let root = tmp.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("gc.lock")).unwrap();
        let err = FileLock::try_acquire(locks_dir(&root), "gc.lock", Mode::Shared).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(!outside.exists(), "nothing was created through the link");
    }
}
