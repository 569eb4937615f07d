//! The C ABI (DESIGN.md §6). Only conversions live here: C strings to Rust
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

use crate::error::{Error, ErrorKind};

/// Runs `f`, turning a panic into `OLREG_PANIC` (and an error object).
fn fence(err: *mut *mut olreg_error, f: impl FnOnce() -> Result<(), Error>) -> olreg_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => OLREG_OK,
        Ok(Err(e)) => {
            let status = e.status() as olreg_status;
            error::store(err, e);
            status
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            error::store(err, Error::new(ErrorKind::Internal { message }));
            OLREG_PANIC
        }
    }
}

/// The error for a NULL required argument.
fn null_argument(what: &str) -> Error {
    Error::new(ErrorKind::NullArgument {
        what: what.to_owned(),
    })
}
