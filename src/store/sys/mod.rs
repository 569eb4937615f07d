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
