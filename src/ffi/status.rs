//! Status codes, event kinds and log levels as C constants.

use std::ffi::c_char;

use crate::error::Status;

/// A status code. 0 is success; every other value is one of the
/// `OLREG_*` constants below, whose numbers never change.
pub type olreg_status = i32;

/// Success.
pub const OLREG_OK: olreg_status = 0;
/// A required pointer argument was NULL.
pub const OLREG_NULL_ARGUMENT: olreg_status = 1;
/// An argument or option is out of range or malformed (including a non-UTF-8 string).
pub const OLREG_INVALID_ARGUMENT: olreg_status = 2;
/// A model name does not follow `[scheme://][host/][namespace/]model[:tag][@digest]`.
pub const OLREG_INVALID_NAME: olreg_status = 3;
/// A digest is not `sha256:` followed by 64 lowercase hex digits.
pub const OLREG_INVALID_DIGEST: olreg_status = 4;
/// The model, manifest or blob does not exist (locally, or on the registry:
/// 404, MANIFEST_UNKNOWN, BLOB_UNKNOWN).
pub const OLREG_NOT_FOUND: olreg_status = 5;
/// The registry refused the credentials, or asked for some and none are
/// configured (401, 403, UNAUTHORIZED, DENIED).
pub const OLREG_UNAUTHORIZED: olreg_status = 6;
/// A manifest cannot be used (not JSON, no layers, a null layer, a bad
/// digest, a size over the limits).
pub const OLREG_INVALID_MANIFEST: olreg_status = 7;
/// Any other error answer from a registry; see olreg_error_http_status().
pub const OLREG_HTTP: olreg_status = 8;
/// The connection failed, stalled, broke, or TLS verification failed, after
/// every retry.
pub const OLREG_NETWORK: olreg_status = 9;
/// A peer broke the protocol: a refused redirect, a wrong Content-Range, a
/// body longer than announced, an invalid upload Location.
pub const OLREG_PROTOCOL: olreg_status = 10;
/// Bytes do not hash to the digest they were fetched as.
pub const OLREG_DIGEST_MISMATCH: olreg_status = 11;
/// A local blob's size differs from its manifest's.
pub const OLREG_SIZE_MISMATCH: olreg_status = 12;
/// A file-system operation failed; the message names the path.
pub const OLREG_IO: olreg_status = 13;
/// The store's file system is full or too small for the download.
pub const OLREG_NO_SPACE: olreg_status = 14;
/// Cancelled by a cancel token or by a non-zero return from a progress callback.
pub const OLREG_CANCELLED: olreg_status = 15;
/// A blocking olreg function was called from inside one of olreg's callbacks.
pub const OLREG_REENTRANT: olreg_status = 16;
/// A bug inside olreg (a caught panic). Please report it.
pub const OLREG_PANIC: olreg_status = 17;

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

/// A static, NUL-terminated English description of `status`.
///
/// Ownership: the string is static; never free it.
/// Threading: callable from any thread.
/// Returns "unknown status" for numbers that are not statuses.
#[no_mangle]
pub extern "C" fn olreg_status_str(status: olreg_status) -> *const c_char {
    match Status::from_code(status) {
        Some(s) => s.as_c_str().as_ptr(),
        None => c"unknown status".as_ptr(),
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
    use std::ffi::CStr;

    #[test]
    fn constants_match_the_rust_statuses() {
        let constants = [
            OLREG_OK,
            OLREG_NULL_ARGUMENT,
            OLREG_INVALID_ARGUMENT,
            OLREG_INVALID_NAME,
            OLREG_INVALID_DIGEST,
            OLREG_NOT_FOUND,
            OLREG_UNAUTHORIZED,
            OLREG_INVALID_MANIFEST,
            OLREG_HTTP,
            OLREG_NETWORK,
            OLREG_PROTOCOL,
            OLREG_DIGEST_MISMATCH,
            OLREG_SIZE_MISMATCH,
            OLREG_IO,
            OLREG_NO_SPACE,
            OLREG_CANCELLED,
            OLREG_REENTRANT,
            OLREG_PANIC,
        ];
        for (c, s) in constants.iter().zip(Status::ALL) {
            assert_eq!(*c, s as i32);
            let text = unsafe { CStr::from_ptr(olreg_status_str(*c)) };
            assert_eq!(text.to_str().unwrap(), s.as_str());
        }
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
