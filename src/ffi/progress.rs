//! `olreg_progress` and the progress callback trampoline.

use std::ffi::{c_char, c_int, c_void, CString};
use std::ptr;

use super::status::olreg_event;
use crate::progress::Progress;

/// One progress event, borrowed by the callback for the duration of the
/// call (copy what you keep). Fields may be appended in later versions;
/// `struct_size` is the size of the struct the library filled in.
#[repr(C)]
pub struct olreg_progress {
    /// sizeof(olreg_progress) as the library knows it.
    pub struct_size: usize,
    /// What happened: an OLREG_EVENT_* value.
    pub event: olreg_event,
    /// The blob's position among the operation's blobs (0 for
    /// whole-operation events).
    pub index: u32,
    /// The blob's digest `sha256:<hex>`, or NULL for whole-operation events.
    pub digest: *const c_char,
    /// The blob's media type ("" when unknown or not about a blob).
    pub media_type: *const c_char,
    /// Why, for OLREG_EVENT_FAILED and OLREG_EVENT_RETRYING; otherwise NULL.
    pub message: *const c_char,
    /// Bytes of this blob done, and its size (0 when not about a blob).
    pub layer_completed: u64,
    pub layer_total: u64,
    /// Bytes of the whole operation done (blobs already present included),
    /// and its total, known from the first event (OLREG_EVENT_RESOLVED) on.
    pub completed: u64,
    pub total: u64,
    /// Blobs finished (done or cached), and how many there are.
    pub layers_done: u32,
    pub layers_total: u32,
}

/// Receives progress. Return 0 to continue, anything else to cancel the call
/// (which then returns OLREG_CANCELLED; once OLREG_EVENT_FINISHED is sent
/// the work is done and a non-zero return changes nothing). Runs on the
/// thread that made the call; must not call blocking olreg functions
/// (they return OLREG_REENTRANT).
pub type olreg_progress_cb =
    Option<unsafe extern "C" fn(user_data: *mut c_void, progress: *const olreg_progress) -> c_int>;

/// Calls a C progress callback with a borrowed snapshot; `true` = go on.
pub(crate) fn deliver(
    cb: unsafe extern "C" fn(*mut c_void, *const olreg_progress) -> c_int,
    user_data: *mut c_void,
    p: &Progress,
) -> bool {
    let text = |s: &str| CString::new(s.replace('\0', " ")).expect("NULs replaced");
    let digest = p.digest.map(|d| text(&d.to_string()));
    let media_type = text(&p.media_type);
    let message = p.message.as_deref().map(text);
    let c = olreg_progress {
        struct_size: std::mem::size_of::<olreg_progress>(),
        event: p.event as olreg_event,
        index: p.index as u32,
        digest: digest.as_ref().map_or(ptr::null(), |d| d.as_ptr()),
        media_type: media_type.as_ptr(),
        message: message.as_ref().map_or(ptr::null(), |m| m.as_ptr()),
        layer_completed: p.layer_completed,
        layer_total: p.layer_total,
        completed: p.completed,
        total: p.total,
        layers_done: p.layers_done as u32,
        layers_total: p.layers_total as u32,
    };
    // SAFETY: the caller registered a valid callback; `c` and its strings
    // outlive the call.
    unsafe { cb(user_data, &c) == 0 }
}
