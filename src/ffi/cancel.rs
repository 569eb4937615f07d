//! `olreg_cancel`: cancel running calls from another thread.

use super::error::olreg_error;
use super::status::{olreg_status, OLREG_OK};
use crate::cancel::CancelToken;

/// A cancel token. Pass it to any number of calls; olreg_cancel_cancel()
/// from any thread makes them return OLREG_CANCELLED promptly.
pub struct olreg_cancel {
    pub(crate) token: CancelToken,
}

/// Creates a cancel token in `*out`.
///
/// Ownership: the caller frees it with olreg_cancel_free() once no call uses
/// it any more. Threading: any thread.
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_cancel_new(out: *mut *mut olreg_cancel) -> olreg_status {
    super::fence(std::ptr::null_mut::<*mut olreg_error>(), || {
        if out.is_null() {
            return Err(super::null_argument("out"));
        }
        let token = Box::new(olreg_cancel {
            token: CancelToken::new(),
        });
        // SAFETY: `out` is writable (checked non-NULL above).
        unsafe { *out = Box::into_raw(token) };
        Ok(())
    })
}

/// Cancels every call running (or later started) with `cancel`. Safe to call
/// from any thread, including from inside a callback, any number of times.
///
/// Returns OLREG_OK, or OLREG_NULL_ARGUMENT when `cancel` is NULL.
#[no_mangle]
pub unsafe extern "C" fn olreg_cancel_cancel(cancel: *const olreg_cancel) -> olreg_status {
    match unsafe { cancel.as_ref() } {
        Some(c) => {
            c.token.cancel();
            OLREG_OK
        }
        None => super::status::OLREG_NULL_ARGUMENT,
    }
}

/// Whether olreg_cancel_cancel() was called on `cancel` (false for NULL).
///
/// Threading: any thread.
#[no_mangle]
pub unsafe extern "C" fn olreg_cancel_is_cancelled(cancel: *const olreg_cancel) -> bool {
    unsafe { cancel.as_ref() }.is_some_and(|c| c.token.is_cancelled())
}

/// Frees a cancel token. NULL is ignored.
///
/// Threading: any thread, once no running call uses the token.
#[no_mangle]
pub unsafe extern "C" fn olreg_cancel_free(cancel: *mut olreg_cancel) {
    if !cancel.is_null() {
        // SAFETY: created by Box::into_raw in olreg_cancel_new, freed once.
        drop(unsafe { Box::from_raw(cancel) });
    }
}
