//! Partial downloads: a pre-allocated data file written at offsets, and a
//! state file recording which byte ranges of it are known to be written.
//!
//! Completeness is never inferred from the data file's size (it is
//! pre-allocated, and bytes land out of order): only ranges recorded in the
//! state file count, and the state is written after the data it describes
//! has been synced. A blob reaches its final name only after its bytes hash
//! to its digest and are synced (invariant 1). Killed at any moment, a pull
//! leaves a data file and a state file that a later pull resumes from.

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::dir::{Dir, Kind};
use super::{fsutil, FileLock, RangeSet, Store, PARTIAL};
use crate::digest::{Digest, Hasher};
use crate::error::{Error, ErrorKind, Result};

const STATE_VERSION: u32 = 1;
/// The hasher reads the file back in pieces of this size.
const HASH_BUFFER: usize = 256 << 10;
/// The hasher is woken when at least this much new prefix is ready.
const HASH_WAKE: u64 = 1 << 20;
/// The largest state file read: far more ranges than any download makes.
const MAX_STATE_BYTES: usize = 16 << 20;

/// The name of the partial data file of `digest` in `.olreg/partial/`.
pub(crate) fn data_name(digest: &Digest) -> String {
    format!("{}.part", digest.file_name())
}

/// The name of its state file.
pub(crate) fn state_name(digest: &Digest) -> String {
    format!("{}.state", digest.file_name())
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    digest: String,
    size: u64,
    done: RangeSet,
}

/// A blob being downloaded. Holds the blob's lock for its whole life.
#[derive(Debug)]
pub struct Partial {
    digest: Digest,
    size: u64,
    /// `.olreg/partial/`, and the names of the data and state files in it.
    dir: Dir,
    data_name: String,
    state_name: String,
    /// The data file's path, for messages.
    data_path: PathBuf,
    store: Store,
    file: File,
    state: Mutex<Progress>,
    grew: Condvar,
    /// The running hash of the completed prefix. Bytes written right at its
    /// end are hashed from memory by the writer; the rest are read back by
    /// [`Partial::hash_when_complete`]. Either way each byte once, in order.
    hash: Mutex<HashState>,
    abandoned: AtomicBool,
    /// One writer at a time: file systems serialise writes to one file on
    /// the inode lock anyway, and spinning on it in the kernel burns CPU the
    /// hasher needs; a user-space lock sleeps instead.
    writing: Mutex<()>,
    resumed_bytes: u64,
    _lock: FileLock,
}

struct HashState {
    hasher: Hasher,
    hashed: u64,
    /// Bytes hashed after reading them back from the file.
    read_back: u64,
}

impl std::fmt::Debug for HashState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashState")
            .field("hashed", &self.hashed)
            .finish()
    }
}

#[derive(Debug)]
struct Progress {
    done: RangeSet,
    dirty: bool,
}

impl Partial {
    /// Opens (resuming) or creates the partial download of `digest`. The
    /// caller holds the blob's lock and passes it in.
    pub(crate) fn open(
        store: &Store,
        digest: Digest,
        size: u64,
        lock: FileLock,
    ) -> Result<Partial> {
        let dir = store.create_dir(PARTIAL)?;
        let data_name = data_name(&digest);
        let state_name = state_name(&digest);
        let data_path = dir.join(&data_name);
        let done = load_state(&dir, &state_name, &data_name, &digest, size).unwrap_or_default();
        let file = dir.open_write(&data_name)?;
        if done.covered() == 0 {
            // Nothing worth keeping: start from an empty file of the right size.
            file.set_len(0)
                .map_err(|e| Error::io("truncate", &data_path, e))?;
        }
        fsutil::allocate(&file, &data_path, size)?;
        if size > 0 && file.metadata().map(|m| m.len()).unwrap_or(0) != size {
            file.set_len(size)
                .map_err(|e| Error::io("set the length of", &data_path, e))?;
        }
        let resumed_bytes = done.covered();
        Ok(Partial {
            digest,
            size,
            dir,
            data_name,
            state_name,
            data_path,
            store: store.clone(),
            file,
            state: Mutex::new(Progress { done, dirty: false }),
            grew: Condvar::new(),
            hash: Mutex::new(HashState {
                hasher: Hasher::new(),
                hashed: 0,
                read_back: 0,
            }),
            abandoned: AtomicBool::new(false),
            writing: Mutex::new(()),
            resumed_bytes,
            _lock: lock,
        })
    }

    /// Bytes already present when this download was opened.
    pub fn resumed_bytes(&self) -> u64 {
        self.resumed_bytes
    }

    /// Bytes recorded as written so far.
    pub fn covered(&self) -> u64 {
        self.lock_state().done.covered()
    }

    /// The ranges still to fetch.
    pub fn missing(&self) -> Vec<(u64, u64)> {
        self.lock_state().done.missing(self.size)
    }

    fn lock_state(&self) -> MutexGuard<'_, Progress> {
        // A panic while holding this lock leaves consistent data (a RangeSet
        // is updated in one call), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `bytes` at `offset` and records them as present.
    pub fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<()> {
        let end = offset + bytes.len() as u64;
        if end > self.size {
            return Err(Error::invalid_argument(format!(
                "write past the end of {} ({end} > {})",
                self.digest, self.size
            )));
        }
        {
            let _one_writer = self.writing.lock().unwrap_or_else(|p| p.into_inner());
            fsutil::write_all_at(&self.file, bytes, offset)
                .map_err(|e| Error::io("write", &self.data_path, e))?;
        }
        let prefix = {
            let mut state = self.lock_state();
            state.done.insert(offset, end);
            state.dirty = true;
            state.done.prefix()
        };
        // At the hash's frontier (always, for a blob fetched in one stream):
        // hash from memory instead of reading the bytes back later. If the
        // read-back thread holds the hash, it will take these bytes too.
        let hashed = match self.hash.try_lock() {
            Ok(mut h) => {
                if h.hashed == offset {
                    h.hasher.update(bytes);
                    h.hashed = end;
                }
                h.hashed
            }
            Err(_) => 0,
        };
        if hashed == self.size || prefix >= hashed + HASH_WAKE {
            self.grew.notify_all();
        }
        Ok(())
    }

    /// Starts writing `[start, end)` back to disk without waiting, so that
    /// the sync before the final rename finds little left to do.
    pub fn start_writeback(&self, start: u64, end: u64) {
        fsutil::start_writeback(&self.file, start, end);
    }

    /// Saves which ranges are written. With `sync`, the data is synced first
    /// so the state never claims bytes a power cut could lose; without it (on
    /// cancellation, where promptness matters) a later mismatch is caught by
    /// the final hash and the blob is fetched again.
    pub fn persist(&self, sync: bool) -> Result<()> {
        let done = {
            let state = self.lock_state();
            if !state.dirty {
                return Ok(());
            }
            state.done.clone()
        };
        if sync {
            self.file
                .sync_data()
                .map_err(|e| Error::io("sync", &self.data_path, e))?;
        }
        let state = StateFile {
            version: STATE_VERSION,
            digest: self.digest.to_string(),
            size: self.size,
            done: done.clone(),
        };
        let bytes = serde_json::to_vec(&state).expect("state serialises");
        fsutil::replace_in(self.store.tmp_dir()?, &self.dir, &self.state_name, &bytes)?;
        let mut current = self.lock_state();
        if current.done == done {
            current.dirty = false;
        }
        Ok(())
    }

    /// Hashes the file in order as its prefix completes, returning when every
    /// byte is hashed. Blocks: run it on a blocking thread. Returns
    /// `Cancelled` once [`Partial::abandon`] is called.
    pub fn hash_when_complete(&self) -> Result<Digest> {
        // Allocated on first use: a blob fetched in order is hashed as it
        // arrives and never read back.
        let mut buf = Vec::new();
        loop {
            let (at, ready) = {
                let mut state = self.lock_state();
                loop {
                    if self.abandoned.load(Ordering::Acquire) {
                        return Err(Error::cancelled());
                    }
                    let hashed = self.hash_state().hashed;
                    if hashed == self.size {
                        let mut h = self.hash_state();
                        return Ok(std::mem::take(&mut h.hasher).finish());
                    }
                    let prefix = state.done.prefix();
                    if prefix > hashed {
                        break (hashed, prefix);
                    }
                    state = self
                        .grew
                        .wait_timeout(state, Duration::from_millis(100))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            };
            // Read back what writers could not hash in passing, one piece at
            // a time, holding the hash only while hashing a piece.
            let mut at = at;
            while at < ready {
                if self.abandoned.load(Ordering::Acquire) {
                    return Err(Error::cancelled());
                }
                if buf.is_empty() {
                    buf = vec![0u8; HASH_BUFFER.min(self.size as usize)];
                }
                let n = (ready - at).min(buf.len() as u64) as usize;
                fsutil::read_exact_at(&self.file, &mut buf[..n], at)
                    .map_err(|e| Error::io("read", &self.data_path, e))?;
                let mut h = self.hash_state();
                if h.hashed != at {
                    // A writer hashed ahead meanwhile; look again.
                    break;
                }
                h.hasher.update(&buf[..n]);
                h.hashed = at + n as u64;
                h.read_back += n as u64;
                at = h.hashed;
            }
        }
    }

    /// Bytes the hasher had to read back from the file (the rest were
    /// hashed as they arrived).
    pub(crate) fn read_back(&self) -> u64 {
        self.hash_state().read_back
    }

    fn hash_state(&self) -> MutexGuard<'_, HashState> {
        self.hash.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops a waiting [`Partial::hash_when_complete`].
    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::Release);
        self.grew.notify_all();
    }

    /// Moves the verified data to `.olreg/staged/` (see `staged`): sync,
    /// rename, sync the directory, then drop the state file. `actual` is the
    /// digest the hasher computed; anything but the expected digest discards
    /// the data.
    pub fn finish(self, actual: Digest) -> Result<()> {
        if actual != self.digest {
            let expected = self.digest;
            self.discard();
            return Err(
                Error::new(ErrorKind::DigestMismatch { expected, actual }).with_blob(expected)
            );
        }
        self.file
            .sync_all()
            .map_err(|e| Error::io("sync", &self.data_path, e))?;
        let staged = self.store.staged_dir()?;
        let dest = self.digest.file_name();
        if !self.dir.rename(&self.data_name, &staged, &dest)? {
            return Err(Error::io(
                "rename into place",
                &staged.join(&dest),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        staged.sync()?;
        let _ = self.dir.remove_file(&self.state_name);
        Ok(())
    }

    /// Deletes the partial data and its state: they cannot be trusted.
    pub fn discard(self) {
        let _ = self.dir.remove_file(&self.state_name);
        let _ = self.dir.remove_file(&self.data_name);
    }
}

/// Reads the recorded ranges, or `None` when the state is missing, from an
/// older format, about another blob, or inconsistent with the data file.
fn load_state(
    dir: &Dir,
    state_name: &str,
    data_name: &str,
    digest: &Digest,
    size: u64,
) -> Option<RangeSet> {
    let file = dir.open_read(state_name).ok()??;
    let bytes = fsutil::read_bounded(file, &dir.join(state_name), MAX_STATE_BYTES).ok()??;
    let state: StateFile = serde_json::from_slice(&bytes).ok()?;
    let data = dir.metadata(data_name).ok()??;
    let valid = state.version == STATE_VERSION
        && state.digest == digest.to_string()
        && state.size == size
        && data.kind == Kind::File
        && data.len == size
        && state.done.fits(size);
    valid.then_some(state.done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn open(store: &Store, data: &[u8]) -> Partial {
        let digest = Digest::of(data);
        let lock = store.try_lock_blob(&digest).unwrap().unwrap();
        Partial::open(store, digest, data.len() as u64, lock).unwrap()
    }

    #[test]
    fn bytes_in_any_order_hash_to_the_digest_and_resume() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let partial = Arc::new(open(&store, &data));
        let hasher = {
            let p = partial.clone();
            std::thread::spawn(move || p.hash_when_complete())
        };
        // Pieces arrive out of order, some at the hash's frontier, some not.
        let piece = 100_000;
        let mut order: Vec<usize> = (0..data.len().div_ceil(piece)).collect();
        order.swap(0, 5);
        order.swap(3, 17);
        order.reverse();
        for i in order {
            let end = ((i + 1) * piece).min(data.len());
            partial
                .write_at((i * piece) as u64, &data[i * piece..end])
                .unwrap();
        }
        assert_eq!(hasher.join().unwrap().unwrap(), Digest::of(&data));
        assert!(partial.missing().is_empty());
    }

    #[test]
    fn recorded_ranges_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let data = vec![9u8; 1000];
        let partial = open(&store, &data);
        partial.write_at(500, &data[500..800]).unwrap();
        partial.persist(true).unwrap();
        drop(partial);
        let again = open(&store, &data);
        assert_eq!(again.resumed_bytes(), 300);
        assert_eq!(again.missing(), vec![(0, 500), (800, 1000)]);
        // Writes past the end are refused.
        assert!(again.write_at(900, &data[..200]).is_err());
    }
}
