//! The store's platform-specific calls, one module per family, with the
//! same functions in each: advisory locks, positioned I/O, pre-allocation,
//! write-back hints, directory syncs, free space and file identity. The
//! rest of the store is written once, over these.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;

/// How `open_file_at` opens a regular file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    /// Read and write, created when absent.
    Write,
    /// Write a new file; fails when the name exists.
    CreateNew,
}
