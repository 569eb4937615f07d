//! Direct I/O for partial downloads: each connection's bytes are gathered
//! into block-aligned buffers and written with `O_DIRECT`, so they never pass
//! through the page cache, and the hasher takes the same buffers from memory
//! instead of reading the file back.
//!
//! On the machines olreg is measured on, a buffered write costs the CPU
//! about twice what hashing the same bytes does (the kernel copies every
//! byte into freshly allocated page-cache pages); a direct write costs a
//! tenth of it. See docs/performance.md.
//!
//! A file system that refuses `O_DIRECT` (tmpfs, some FUSE and network file
//! systems) gets the ordinary buffered writes.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Offsets, lengths and addresses of direct writes are multiples of this
/// (the largest logical block size in common use).
pub(crate) const ALIGN: u64 = 4096;
/// The size of one staging buffer: a connection's bytes are written in
/// pieces of this size.
pub(crate) const STAGE: usize = 256 << 10;
/// How far ahead of the hash a connection may run while the hasher is busy;
/// beyond it, it waits, and the bytes it holds stay in memory until hashed.
pub(crate) const AHEAD: u64 = 4 << 20;
/// How far ahead of the hash a new chunk may start while hashing is the
/// limit.
pub(crate) const START_AHEAD: u64 = 16 << 20;
/// The most bytes kept in memory for the hasher; pieces past it are read
/// back from the file.
const WINDOW: usize = 6 << 20;
/// The most staging buffers one download maps: the window, and a few
/// connections' worth besides. Past it, a connection's bytes go through
/// the page cache until a buffer is free again.
const MAX_BUFFERS: usize = WINDOW / STAGE + 8;
/// How often the hasher is judged (see [`Direct::hash_bound`]).
const JUDGE_EVERY: Duration = Duration::from_millis(100);

/// A buffer of [`STAGE`] bytes aligned to [`ALIGN`], filled from the start.
/// Mapped on its own rather than taken from the allocator: buffers are made
/// on one thread and freed on another, which makes malloc's per-thread
/// arenas grow far past what is live.
pub(crate) struct AlignedBuf {
    ptr: NonNull<u8>,
    filled: usize,
}

// SAFETY: the buffer owns its allocation; nothing else points into it.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only reads.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    fn new() -> std::io::Result<AlignedBuf> {
        // SAFETY: a fresh private anonymous mapping; page-aligned, so
        // aligned to ALIGN.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                STAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let ptr = NonNull::new(raw.cast::<u8>()).ok_or_else(std::io::Error::last_os_error)?;
        Ok(AlignedBuf { ptr, filled: 0 })
    }

    /// Appends as much of `bytes` as fits; returns how much did.
    fn push(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(STAGE - self.filled);
        // SAFETY: `filled + n <= STAGE`, inside the allocation; the source
        // cannot overlap a buffer we own exclusively.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.as_ptr().add(self.filled), n);
        }
        self.filled += n;
        n
    }

    fn is_full(&self) -> bool {
        self.filled == STAGE
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: the first `filled` bytes were written by `push`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.filled) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: mapped in `new` with this size, and no longer used.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), STAGE) };
    }
}

/// Bytes of one connection gathered from `start`, not yet written.
pub(crate) struct Staged {
    pub start: u64,
    pub buf: AlignedBuf,
}

impl Staged {
    fn end(&self) -> u64 {
        self.start + self.buf.filled as u64
    }
}

/// A piece written and kept for the hasher.
pub(crate) struct Piece {
    pub start: u64,
    pub buf: Arc<AlignedBuf>,
}

/// The direct-I/O side of a partial download.
pub(crate) struct Direct {
    /// The data file opened again with `O_DIRECT`.
    file: File,
    /// Set once the file system refuses a direct write: from then on every
    /// write is buffered.
    refused: AtomicBool,
    /// Each connection's buffer, by the offset its next byte belongs at.
    staged: Mutex<HashMap<u64, Staged>>,
    /// Written pieces the hasher has not reached yet, by offset.
    window: Mutex<(BTreeMap<u64, Arc<AlignedBuf>>, usize)>,
    spare: Mutex<Vec<AlignedBuf>>,
    /// Buffers mapped so far (in use or spare).
    mapped: AtomicUsize,
    /// Told whenever the hasher moves on, for connections waiting for room.
    pub room: tokio::sync::Notify,
    /// Time the hasher spent waiting for bytes, and the last judgement of
    /// whether it is the bottleneck (see [`Direct::hash_bound`]).
    idle_nanos: AtomicU64,
    judged: Mutex<Judgement>,
}

/// Whether the hasher was busy enough to be the bottleneck, as of `at`.
struct Judgement {
    at: Instant,
    idle_nanos: u64,
    hash_bound: bool,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Direct {
    /// Opens `file` again with `O_DIRECT`, or `None` where that is refused.
    pub(crate) fn open(file: &File) -> Option<Direct> {
        // The same open file, reached through this process's own descriptor
        // table: no name in the store is looked up again.
        let direct = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT | libc::O_CLOEXEC)
            .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .ok()?;
        Some(Direct {
            file: direct,
            refused: AtomicBool::new(false),
            staged: Mutex::default(),
            window: Mutex::default(),
            spare: Mutex::default(),
            mapped: AtomicUsize::new(0),
            room: tokio::sync::Notify::new(),
            idle_nanos: AtomicU64::new(0),
            judged: Mutex::new(Judgement {
                at: Instant::now(),
                idle_nanos: 0,
                hash_bound: false,
            }),
        })
    }

    /// The buffer of the connection whose next byte belongs at `offset`:
    /// its own, or a new one if `offset` is aligned; `None` otherwise (or
    /// when no memory can be mapped: the bytes then go through the page
    /// cache).
    pub(crate) fn take_staged(&self, offset: u64) -> Option<Staged> {
        if let Some(s) = lock(&self.staged).remove(&offset) {
            return Some(s);
        }
        if offset % ALIGN != 0 {
            return None;
        }
        let spare = lock(&self.spare).pop();
        let buf = match spare {
            Some(buf) => buf,
            None if self.mapped.load(Ordering::Relaxed) < MAX_BUFFERS => {
                let buf = AlignedBuf::new().ok()?;
                self.mapped.fetch_add(1, Ordering::Relaxed);
                buf
            }
            None => return None,
        };
        Some(Staged { start: offset, buf })
    }

    /// The buffer of the connection whose next byte belongs at `offset`,
    /// if it has one.
    pub(crate) fn remove_staged(&self, offset: u64) -> Option<Staged> {
        lock(&self.staged).remove(&offset)
    }

    /// Counts time the hasher waited for bytes.
    pub(crate) fn hasher_waited(&self, waited: Duration) {
        self.idle_nanos
            .fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Whether hashing is what limits the download: the hasher waited for
    /// bytes less than a quarter of the last tenth of a second or so. Only
    /// then do connections far ahead wait for it; otherwise the network is
    /// the limit, and holding connections back would only slow it.
    pub(crate) fn hash_bound(&self) -> bool {
        let mut j = lock(&self.judged);
        let now = Instant::now();
        let span = now.duration_since(j.at);
        if span >= JUDGE_EVERY {
            let idle = self.idle_nanos.load(Ordering::Relaxed);
            let waited = Duration::from_nanos(idle.saturating_sub(j.idle_nanos));
            j.hash_bound = waited.as_secs_f64() < 0.25 * span.as_secs_f64();
            j.at = now;
            j.idle_nanos = idle;
        }
        j.hash_bound
    }

    /// Keeps a connection's partly filled buffer until its next bytes.
    pub(crate) fn put_staged(&self, s: Staged) {
        lock(&self.staged).insert(s.end(), s);
    }

    /// Appends to `s`; returns how much of `bytes` fit and whether `s` is
    /// now full.
    pub(crate) fn fill(s: &mut Staged, bytes: &[u8]) -> (usize, bool) {
        let n = s.buf.push(bytes);
        (n, s.buf.is_full())
    }

    /// Writes the block-aligned part of `bytes` at `offset` (aligned)
    /// directly; returns how many bytes it wrote (the unaligned tail is
    /// left to the caller). Falls back to 0 once the file system refuses.
    pub(crate) fn write_aligned(&self, offset: u64, bytes: &[u8]) -> std::io::Result<usize> {
        let aligned = bytes.len() / ALIGN as usize * ALIGN as usize;
        if aligned == 0 || self.refused.load(Ordering::Relaxed) {
            return Ok(0);
        }
        match self.file.write_all_at(&bytes[..aligned], offset) {
            Ok(()) => Ok(aligned),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                self.refused.store(true, Ordering::Relaxed);
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// Keeps a written piece for the hasher, unless the window is full and
    /// the piece is not the one the hasher needs next (then it is read back).
    pub(crate) fn offer(&self, start: u64, buf: AlignedBuf, hashed: u64) {
        let mut w = lock(&self.window);
        let len = buf.filled;
        if start >= hashed && (w.1 + len <= WINDOW || start == hashed) {
            w.1 += len;
            w.0.insert(start, Arc::new(buf));
        } else {
            drop(w);
            self.recycle(buf);
        }
    }

    /// The kept piece that starts at `hashed`, if any, forgetting pieces
    /// the hasher has passed; and where the next kept piece starts.
    pub(crate) fn take_piece(&self, hashed: u64) -> (Option<Piece>, Option<u64>) {
        let mut w = lock(&self.window);
        while let Some((&start, _)) = w.0.first_key_value() {
            if start >= hashed {
                break;
            }
            if let Some((_, stale)) = w.0.pop_first() {
                w.1 -= stale.filled;
            }
        }
        match w.0.first_key_value().map(|(&s, _)| s) {
            Some(start) if start == hashed => {
                let (_, buf) = w.0.pop_first().expect("just seen");
                w.1 -= buf.filled;
                let next = w.0.first_key_value().map(|(&s, _)| s);
                (Some(Piece { start, buf }), next)
            }
            next => (None, next),
        }
    }

    /// Returns a hashed piece's buffer for reuse.
    pub(crate) fn done_with(&self, piece: Piece) {
        if let Ok(buf) = Arc::try_unwrap(piece.buf) {
            self.recycle(buf);
        }
    }

    /// Keeps a buffer for reuse: a fresh one costs page faults. How many
    /// there are is bounded by how many are ever in use at once (the window
    /// and one per connection); they go when the download does.
    fn recycle(&self, mut buf: AlignedBuf) {
        buf.filled = 0;
        lock(&self.spare).push(buf);
    }
}
