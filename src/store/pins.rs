//! Pins: the blobs a running pull or push needs, which `prune` must keep.
//!
//! A pin is a file in `.olreg/pins/` listing digests, locked by its owner for
//! as long as it lives. `prune` treats the digests of locked pins as
//! referenced and deletes pins whose owner died. Pins are written under the
//! shared gc lock and `prune` decides under the exclusive one, so a pull
//! that checks for a blob after pinning it cannot have it deleted under it.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use super::{fsutil, FileLock, LockMode, Store};
use crate::digest::Digest;
use crate::error::{Error, Result};

/// A live pin; the blobs stay protected until it is dropped.
#[derive(Debug)]
pub struct Pin {
    lock: Option<FileLock>,
    path: PathBuf,
}

impl Store {
    fn pins_dir(&self) -> Result<PathBuf> {
        let dir = self.olreg_dir("pins");
        fsutil::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Pins `digests` against `prune`. Waits (briefly, in practice) while a
    /// prune is deciding.
    pub fn pin(&self, digests: &[Digest]) -> Result<Pin> {
        let gc = loop {
            if let Some(gc) = self.try_lock_gc(LockMode::Shared)? {
                break gc;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let path = self
            .pins_dir()?
            .join(format!("{}.pin", fsutil::random_token()));
        let lock = FileLock::try_acquire(&path, LockMode::Exclusive)?.ok_or_else(|| {
            Error::invalid_argument("a fresh pin file is locked by another process")
        })?;
        let mut text = String::with_capacity(digests.len() * 72);
        for d in digests {
            text.push_str(&d.to_string());
            text.push('\n');
        }
        let mut file = lock.file();
        file.write_all(text.as_bytes())
            .map_err(|e| Error::io("write", &path, e))?;
        drop(gc);
        Ok(Pin {
            lock: Some(lock),
            path,
        })
    }

    /// Digests pinned by live pins; removes the pins of dead owners. Called
    /// by `prune` under the exclusive gc lock.
    pub(crate) fn pinned_blobs(&self) -> Result<Vec<Digest>> {
        let dir = self.pins_dir()?;
        let mut out = Vec::new();
        let entries = fs::read_dir(&dir).map_err(|e| Error::io("read directory", &dir, e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("pin") {
                continue;
            }
            match FileLock::try_acquire(&path, LockMode::Exclusive)? {
                // Lockable means its owner is gone.
                Some(_stale) => {
                    let _ = fs::remove_file(&path);
                }
                None => {
                    let text = fs::read_to_string(&path).unwrap_or_default();
                    out.extend(text.lines().filter_map(|l| Digest::parse(l).ok()));
                }
            }
        }
        Ok(out)
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        self.lock.take();
    }
}
