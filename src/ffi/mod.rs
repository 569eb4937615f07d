//! The C ABI (docs/design.md §8). Only conversions live here: C strings to Rust
//! strings, handles to references, results to status codes and error
//! objects, and the panic fence. Everything else is the Rust API's.
//!
//! Conventions every function follows, stated once here and in the header:
//! a status is returned (0 = `OLREG_OK`); out-parameters are written only on
//! success; a NULL required argument gives `OLREG_NULL_ARGUMENT`; a panic
//! gives `OLREG_PANIC` and never unwinds into the caller.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

mod cancel;
mod client;
mod error;
mod manifest;
mod options;
mod progress;
mod status;
mod strings;
mod transfer;

pub use cancel::*;
pub use client::*;
pub use error::*;
pub use manifest::*;
pub use options::*;
pub use progress::*;
pub use status::*;
pub use strings::*;
pub use transfer::*;

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::Error;
use error::CallError;

/// Runs `f`, turning its error into a status (and an error object), and a
/// panic into `OLREG_PANIC`: nothing unwinds into the caller.
fn fence(err: *mut *mut olreg_error, f: impl FnOnce() -> Result<(), CallError>) -> olreg_status {
    let failure = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => return OLREG_OK,
        Ok(Err(e)) => e,
        Err(panic) => CallError::Library(Error::panic(panic)),
    };
    error::store(err, &failure);
    failure.status() as olreg_status
}

/// The error for a NULL required argument.
fn null_argument(what: &'static str) -> CallError {
    CallError::NullArgument(what)
}
