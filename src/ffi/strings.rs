//! Strings crossing the boundary: borrowed UTF-8 inputs, owned outputs
//! allocated with malloc (freed by olreg_string_free), and string lists.

use std::ffi::{c_char, CStr, CString};
use std::ptr;

use super::error::{c_text, CallError};
use crate::error::{Error, Result};

/// Reads a required NUL-terminated UTF-8 argument.
pub(crate) unsafe fn arg<'a>(p: *const c_char, what: &'static str) -> Result<&'a str, CallError> {
    if p.is_null() {
        return Err(super::null_argument(what));
    }
    // SAFETY: the caller passes a NUL-terminated string valid for the call.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| Error::invalid_argument(format!("{what} is not valid UTF-8")).into())
}

/// Reads an optional argument (NULL is `None`).
pub(crate) unsafe fn opt_arg<'a>(
    p: *const c_char,
    what: &'static str,
) -> Result<Option<&'a str>, CallError> {
    if p.is_null() {
        Ok(None)
    } else {
        unsafe { arg(p, what) }.map(Some)
    }
}

/// Reads a required file-system path, not empty: on Unix any bytes but NUL
/// (paths need not be UTF-8); on Windows UTF-8 (which reaches every path
/// the system's UTF-16 names can spell).
pub(crate) unsafe fn path_arg<'a>(
    p: *const c_char,
    what: &'static str,
) -> Result<&'a std::path::Path, CallError> {
    if p.is_null() {
        return Err(super::null_argument(what));
    }
    // SAFETY: the caller passes a NUL-terminated string valid for the call.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    if bytes.is_empty() {
        return Err(Error::invalid_argument(format!("{what} is empty")).into());
    }
    #[cfg(unix)]
    let path = {
        use std::os::unix::ffi::OsStrExt;
        std::ffi::OsStr::from_bytes(bytes)
    };
    #[cfg(not(unix))]
    let path = std::str::from_utf8(bytes)
        .map_err(|_| Error::invalid_argument(format!("{what} is not valid UTF-8")))?;
    Ok(std::path::Path::new(path))
}

/// Copies `bytes` into a malloc'd, NUL-terminated buffer.
pub(crate) fn malloc_bytes(bytes: &[u8]) -> Result<*mut c_char> {
    // SAFETY: malloc of len+1 bytes, fully written before it is returned.
    unsafe {
        let p = libc::malloc(bytes.len() + 1).cast::<u8>();
        if p.is_null() {
            return Err(Error::invalid_argument("out of memory"));
        }
        ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
        *p.add(bytes.len()) = 0;
        Ok(p.cast())
    }
}

/// Frees a string or buffer returned by olreg through a `char **`
/// out-parameter (olreg_show). NULL is ignored.
///
/// Ownership: takes the string. Never pass it to free(), nor pass strings
/// that other objects own (error messages, list items, manifest fields).
/// Threading: any thread.
#[no_mangle]
pub unsafe extern "C" fn olreg_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: allocated with malloc by `malloc_bytes`.
        unsafe { libc::free(s.cast()) };
    }
}

/// A list of strings (model names, verify problems).
pub struct olreg_string_list {
    items: Vec<CString>,
}

impl olreg_string_list {
    pub(crate) fn from_strings(items: impl IntoIterator<Item = String>) -> *mut olreg_string_list {
        let items = items.into_iter().map(|s| c_text(&s)).collect();
        Box::into_raw(Box::new(olreg_string_list { items }))
    }
}

/// The number of strings in `list` (0 when `list` is NULL).
///
/// Threading: any thread.
#[no_mangle]
pub unsafe extern "C" fn olreg_string_list_len(list: *const olreg_string_list) -> usize {
    unsafe { list.as_ref() }.map_or(0, |l| l.items.len())
}

/// String `index` of `list`, or NULL when out of range (or `list` is NULL).
///
/// Ownership: the string belongs to `list` and lives until
/// olreg_string_list_free(). Threading: any thread.
#[no_mangle]
pub unsafe extern "C" fn olreg_string_list_get(
    list: *const olreg_string_list,
    index: usize,
) -> *const c_char {
    match unsafe { list.as_ref() }.and_then(|l| l.items.get(index)) {
        Some(s) => s.as_ptr(),
        None => ptr::null(),
    }
}

/// Frees a list and its strings. NULL is ignored.
///
/// Threading: any thread, once per list.
#[no_mangle]
pub unsafe extern "C" fn olreg_string_list_free(list: *mut olreg_string_list) {
    if !list.is_null() {
        // SAFETY: created by Box::into_raw in `from_strings`, freed once.
        drop(unsafe { Box::from_raw(list) });
    }
}
