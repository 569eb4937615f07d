//! Status codes, event kinds and log levels as C constants.

use std::ffi::{c_char, CStr};

use crate::error::Status;

/// A status code. 0 is success; every other value is one of the
/// `OLREG_*` status constants, whose numbers never change
/// (olreg_status_name() gives a number's name, olreg_status_str() its
/// meaning).
pub type olreg_status = i32;

/// Expands the status table (`src/status_table.rs`) into the `OLREG_*`
/// constants for Rust (the header's come from `build.rs`, which expands the
/// same table: cbindgen does not expand macros) and the C strings of each
/// status.
macro_rules! statuses {
    ($( $(#[doc = $doc:literal])* $variant:ident = $code:literal, $c_name:ident, $text:literal; )*) => {
        $( $(#[doc = $doc])* pub const $c_name: olreg_status = $code; )*

        /// `status`'s C name and text, NUL-terminated.
        fn c_strings(status: Status) -> (&'static CStr, &'static CStr) {
            match status {
                $( Status::$variant => (
                    const { c_str(concat!(stringify!($c_name), "\0")) },
                    const { c_str(concat!($text, "\0")) },
                ), )*
            }
        }
    };
}

include!("../status_table.rs");

/// A NUL-terminated literal as a `CStr`.
const fn c_str(s: &'static str) -> &'static CStr {
    match CStr::from_bytes_with_nul(s.as_bytes()) {
        Ok(c) => c,
        Err(_) => panic!("a status string has an interior NUL"),
    }
}

/// The kind of a progress event (olreg_progress.event).
pub type olreg_event = i32;
/// The manifest is known; totals are set. Sent once, before any transfer.
pub const OLREG_EVENT_RESOLVED: olreg_event = 1;
/// A blob will be transferred.
pub const OLREG_EVENT_QUEUED: olreg_event = 2;
/// A blob's transfer began (layer_completed counts bytes resumed from before).
pub const OLREG_EVENT_STARTED: olreg_event = 3;
/// More bytes moved (at most about ten of these a second per blob).
pub const OLREG_EVENT_BYTES: olreg_event = 4;
/// A blob needed no transfer: present locally (pull) or on the registry (push).
pub const OLREG_EVENT_CACHED: olreg_event = 5;
/// All bytes of a blob arrived; its hash check is finishing.
pub const OLREG_EVENT_VERIFYING: olreg_event = 6;
/// A blob is complete.
pub const OLREG_EVENT_DONE: olreg_event = 7;
/// A blob failed; `message` says why.
pub const OLREG_EVENT_FAILED: olreg_event = 8;
/// A request failed and will be tried again; `message` says why.
pub const OLREG_EVENT_RETRYING: olreg_event = 9;
/// Another process or thread is downloading this blob; waiting for it.
pub const OLREG_EVENT_WAITING: olreg_event = 10;
/// The operation finished: the manifest is linked (pull) or pushed (push).
pub const OLREG_EVENT_FINISHED: olreg_event = 11;

/// The severity of a log line.
pub type olreg_log_level = i32;
pub const OLREG_LOG_ERROR: olreg_log_level = 1;
pub const OLREG_LOG_WARN: olreg_log_level = 2;
pub const OLREG_LOG_INFO: olreg_log_level = 3;
pub const OLREG_LOG_DEBUG: olreg_log_level = 4;

/// A static, NUL-terminated English description of `status`, e.g.
/// "not found".
///
/// Ownership: the string is static; never free it.
/// Threading: callable from any thread.
/// Returns "unknown status" for numbers that are not statuses.
#[no_mangle]
pub extern "C" fn olreg_status_str(status: olreg_status) -> *const c_char {
    match Status::from_code(status) {
        Some(s) => c_strings(s).1.as_ptr(),
        None => c"unknown status".as_ptr(),
    }
}

/// The static, NUL-terminated C name of `status`, e.g. "OLREG_NOT_FOUND":
/// for bindings that mirror the statuses, and for logs.
///
/// Ownership: the string is static; never free it.
/// Threading: callable from any thread.
/// Returns NULL for numbers that are not statuses (so the statuses of this
/// library are the numbers from 0 up to the first NULL).
#[no_mangle]
pub extern "C" fn olreg_status_name(status: olreg_status) -> *const c_char {
    match Status::from_code(status) {
        Some(s) => c_strings(s).0.as_ptr(),
        None => std::ptr::null(),
    }
}

/// The library's version, "MAJOR.MINOR.PATCH" (the same as OLREG_VERSION
/// in the header the program was compiled with, unless the shared library
/// was replaced).
///
/// Ownership: static; never free it. Threading: any thread.
#[no_mangle]
pub extern "C" fn olreg_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_texts_come_from_the_table() {
        for s in Status::ALL {
            let code = *s as olreg_status;
            let name = unsafe { CStr::from_ptr(olreg_status_name(code)) };
            assert_eq!(name.to_str().unwrap(), s.name());
            let text = unsafe { CStr::from_ptr(olreg_status_str(code)) };
            assert_eq!(text.to_str().unwrap(), s.as_str());
        }
        assert_eq!(OLREG_NOT_FOUND, Status::NotFound as i32);
        assert_eq!(Status::NotFound.name(), "OLREG_NOT_FOUND");
        // Numbers are dense: 0 up to the first unknown one.
        let count = Status::ALL.len() as olreg_status;
        assert!(olreg_status_name(count).is_null());
        assert!(olreg_status_name(-1).is_null());
        let unknown = unsafe { CStr::from_ptr(olreg_status_str(999)) };
        assert_eq!(unknown.to_str().unwrap(), "unknown status");
    }

    #[test]
    fn event_and_level_numbers_match() {
        use crate::progress::{LogLevel, ProgressEvent as E};
        let pairs = [
            (OLREG_EVENT_RESOLVED, E::Resolved),
            (OLREG_EVENT_QUEUED, E::Queued),
            (OLREG_EVENT_STARTED, E::Started),
            (OLREG_EVENT_BYTES, E::Bytes),
            (OLREG_EVENT_CACHED, E::Cached),
            (OLREG_EVENT_VERIFYING, E::Verifying),
            (OLREG_EVENT_DONE, E::Done),
            (OLREG_EVENT_FAILED, E::Failed),
            (OLREG_EVENT_RETRYING, E::Retrying),
            (OLREG_EVENT_WAITING, E::Waiting),
            (OLREG_EVENT_FINISHED, E::Finished),
        ];
        for (c, e) in pairs {
            assert_eq!(c, e as i32);
        }
        assert_eq!(OLREG_LOG_ERROR, LogLevel::Error as i32);
        assert_eq!(OLREG_LOG_DEBUG, LogLevel::Debug as i32);
    }
}
