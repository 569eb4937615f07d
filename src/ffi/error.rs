//! `olreg_error`: what a failed call reports beyond its status.

use std::ffi::{c_char, CString};
use std::ptr;

use super::status::olreg_status;
use crate::error::{Error, Status};

/// Why a C call failed: an error of the library, or a NULL required
/// argument, the one failure only the C ABI has.
pub(crate) enum CallError {
    Library(Error),
    /// The required pointer argument of this name was NULL.
    NullArgument(&'static str),
}

impl From<Error> for CallError {
    fn from(e: Error) -> CallError {
        CallError::Library(e)
    }
}

impl CallError {
    pub(crate) fn status(&self) -> Status {
        match self {
            CallError::Library(e) => e.status(),
            CallError::NullArgument(_) => Status::NullArgument,
        }
    }
}

/// An error object: status, message, HTTP status and registry code.
/// Created by a failing call when its `err` argument is not NULL; freed by
/// the caller with olreg_error_free().
pub struct olreg_error {
    status: olreg_status,
    message: CString,
    http_status: u16,
    registry_code: Option<CString>,
}

/// Text for C: interior NULs (which no message should have) become spaces.
pub(crate) fn c_text(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).expect("NULs were replaced")
}

/// Writes a new error object to `*err` when `err` is not NULL.
pub(crate) fn store(err: *mut *mut olreg_error, e: &CallError) {
    if err.is_null() {
        return;
    }
    let object = Box::new(match e {
        CallError::Library(e) => olreg_error {
            status: e.status() as olreg_status,
            message: c_text(&e.to_string()),
            http_status: e.http_status().unwrap_or(0),
            registry_code: e.registry_code().map(c_text),
        },
        CallError::NullArgument(what) => olreg_error {
            status: Status::NullArgument as olreg_status,
            message: c_text(&format!("{what} is NULL")),
            http_status: 0,
            registry_code: None,
        },
    });
    // SAFETY: the caller passed a writable `olreg_error **`.
    unsafe { *err = Box::into_raw(object) };
}

/// The status of the failed call.
///
/// Ownership: `err` stays the caller's. Threading: any thread.
/// Returns OLREG_NULL_ARGUMENT when `err` is NULL.
#[no_mangle]
pub unsafe extern "C" fn olreg_error_status(err: *const olreg_error) -> olreg_status {
    match unsafe { err.as_ref() } {
        Some(e) => e.status,
        None => super::status::OLREG_NULL_ARGUMENT,
    }
}

/// The full message: the model, the blob and the cause, for example
/// `127.0.0.1:5000/library/m:latest: blob sha256:0a1b2c3d4e5f: digest mismatch: …`.
///
/// Ownership: the string belongs to `err` and lives until olreg_error_free().
/// Threading: any thread. Returns "" when `err` is NULL.
#[no_mangle]
pub unsafe extern "C" fn olreg_error_message(err: *const olreg_error) -> *const c_char {
    match unsafe { err.as_ref() } {
        Some(e) => e.message.as_ptr(),
        None => c"".as_ptr(),
    }
}

/// The HTTP status of the registry answer that caused the error, or 0 when
/// the error did not come from an HTTP answer (or `err` is NULL).
///
/// Threading: any thread.
#[no_mangle]
pub unsafe extern "C" fn olreg_error_http_status(err: *const olreg_error) -> u16 {
    unsafe { err.as_ref() }.map_or(0, |e| e.http_status)
}

/// The registry's error code (`MANIFEST_UNKNOWN`, `UNAUTHORIZED`, …), or
/// NULL when it sent none (or `err` is NULL).
///
/// Ownership: the string belongs to `err`. Threading: any thread.
#[no_mangle]
pub unsafe extern "C" fn olreg_error_registry_code(err: *const olreg_error) -> *const c_char {
    match unsafe { err.as_ref() }.and_then(|e| e.registry_code.as_ref()) {
        Some(code) => code.as_ptr(),
        None => ptr::null(),
    }
}

/// Frees an error object. NULL is ignored.
///
/// Threading: any thread, once per object.
#[no_mangle]
pub unsafe extern "C" fn olreg_error_free(err: *mut olreg_error) {
    if !err.is_null() {
        // SAFETY: `err` came from Box::into_raw in `store` and is freed once.
        drop(unsafe { Box::from_raw(err) });
    }
}
