//! Pins: the blobs a running pull or push needs, which `prune` must keep.
//!
//! A pin is a file in `.olreg/pins/` listing digests, locked by its owner for
//! as long as it lives. `prune` treats the digests of locked pins as
//! referenced and deletes pins whose owner died. Pins are written under the
//! shared gc lock and `prune` decides under the exclusive one, so a pull
//! that checks for a blob after pinning it cannot have it deleted under it.

use std::io::Write;

use super::dir::Kind;
use super::{fsutil, FileLock, LockMode, Store, PINS};
use crate::digest::Digest;
use crate::error::{Error, Result};

/// The largest pin file read: a digest line per blob of a manifest, with
/// room to spare.
const MAX_PIN_BYTES: usize = 16 << 20;

/// A live pin; the blobs stay protected until it is dropped.
#[derive(Debug)]
pub struct Pin {
    /// Removes the pin file, then unlocks it, when dropped.
    _lock: FileLock,
}

impl Store {
    /// Pins `digests` against `prune`. Waits (briefly, in practice) while a
    /// prune is deciding.
    pub fn pin(&self, digests: &[Digest]) -> Result<Pin> {
        let gc = loop {
            if let Some(gc) = self.try_lock_gc(LockMode::Shared)? {
                break gc;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let name = format!("{}.pin", fsutil::random_token());
        let lock = FileLock::try_acquire(self.create_dir(PINS)?, &name, LockMode::Exclusive)?
            .ok_or_else(|| {
                Error::invalid_argument("a fresh pin file is locked by another process")
            })?
            .remove_on_release();
        let mut text = String::with_capacity(digests.len() * 72);
        for d in digests {
            text.push_str(&d.to_string());
            text.push('\n');
        }
        let mut file = lock.file();
        file.write_all(text.as_bytes())
            .map_err(|e| Error::io("write", &lock.path(), e))?;
        drop(gc);
        Ok(Pin { _lock: lock })
    }

    /// Digests pinned by live pins; removes the pins of dead owners. Called
    /// by `prune` under the exclusive gc lock.
    pub(crate) fn pinned_blobs(&self) -> Result<Vec<Digest>> {
        let dir = self.create_dir(PINS)?;
        let mut out = Vec::new();
        for entry in dir.entries()? {
            if !entry.name.ends_with(".pin") {
                continue;
            }
            let path = dir.join(&entry.name);
            if entry.kind != Kind::File {
                return Err(Error::io("read", &path, entry.kind.refusal(Kind::File)));
            }
            match FileLock::try_acquire(dir.try_clone()?, &entry.name, LockMode::Exclusive)? {
                // Lockable means its owner is gone.
                Some(stale) => drop(stale.remove_on_release()),
                None => {
                    let Some(file) = dir.open_read(&entry.name)? else {
                        continue;
                    };
                    let text =
                        fsutil::read_bounded(file, &path, MAX_PIN_BYTES)?.ok_or_else(|| {
                            Error::io(
                                "read",
                                &path,
                                std::io::Error::other("larger than any pin olreg writes"),
                            )
                        })?;
                    let text = String::from_utf8_lossy(&text);
                    out.extend(text.lines().filter_map(|l| Digest::parse(l).ok()));
                }
            }
        }
        Ok(out)
    }
}
