//! `olreg_manifest`: a manifest returned by a pull, push or resolve.

use std::ffi::{c_char, CString};
use std::ptr;

use super::error::c_text;
use crate::manifest::Manifest;

/// A manifest: its exact bytes, its digest and its blobs.
pub struct olreg_manifest {
    manifest: Manifest,
    digest: CString,
    layers: Vec<(CString, CString)>,
    config: Option<(CString, CString)>,
}

impl olreg_manifest {
    /// Hands `manifest` to the caller through `out`, an optional
    /// out-parameter (NULL: the caller does not want it).
    ///
    /// # Safety
    /// `out` is NULL or valid for a write.
    pub(crate) unsafe fn give(out: *mut *mut olreg_manifest, manifest: Manifest) {
        if !out.is_null() {
            // SAFETY: checked non-NULL; valid per the caller.
            unsafe { *out = olreg_manifest::boxed(manifest) };
        }
    }

    pub(crate) fn boxed(manifest: Manifest) -> *mut olreg_manifest {
        let digest = c_text(&manifest.digest().to_string());
        let layers = manifest
            .layers()
            .iter()
            .map(|l| (c_text(&l.digest.to_string()), c_text(&l.media_type)))
            .collect();
        let config = manifest
            .config()
            .map(|c| (c_text(&c.digest.to_string()), c_text(&c.media_type)));
        Box::into_raw(Box::new(olreg_manifest {
            manifest,
            digest,
            layers,
            config,
        }))
    }
}

/// The manifest's digest, `sha256:<hex>` (NULL when `m` is NULL).
///
/// Ownership: belongs to `m`. Threading: any thread.
#[no_mangle]
pub unsafe extern "C" fn olreg_manifest_digest(m: *const olreg_manifest) -> *const c_char {
    unsafe { m.as_ref() }.map_or(ptr::null(), |m| m.digest.as_ptr())
}

/// The manifest's exact bytes, and their length in `*len` (if `len` is not
/// NULL). NULL when `m` is NULL. The bytes are not NUL-terminated.
///
/// Ownership: belongs to `m`. Threading: any thread.
#[no_mangle]
pub unsafe extern "C" fn olreg_manifest_bytes(
    m: *const olreg_manifest,
    len: *mut usize,
) -> *const c_char {
    let Some(m) = (unsafe { m.as_ref() }) else {
        return ptr::null();
    };
    if !len.is_null() {
        // SAFETY: the caller passed a writable size_t.
        unsafe { *len = m.manifest.bytes().len() };
    }
    m.manifest.bytes().as_ptr().cast()
}

/// The number of layers (the config blob not counted); 0 for NULL.
/// Threading: any thread.
#[no_mangle]
pub unsafe extern "C" fn olreg_manifest_layer_count(m: *const olreg_manifest) -> usize {
    unsafe { m.as_ref() }.map_or(0, |m| m.layers.len())
}

/// Layer `index`'s digest, or NULL when out of range.
///
/// Ownership: belongs to `m`. Threading: any thread.
#[no_mangle]
pub unsafe extern "C" fn olreg_manifest_layer_digest(
    m: *const olreg_manifest,
    index: usize,
) -> *const c_char {
    match unsafe { m.as_ref() }.and_then(|m| m.layers.get(index)) {
        Some((digest, _)) => digest.as_ptr(),
        None => ptr::null(),
    }
}

/// Layer `index`'s media type ("" when the manifest gives none), or NULL
/// when out of range.
///
/// Ownership: belongs to `m`. Threading: any thread.
#[no_mangle]
pub unsafe extern "C" fn olreg_manifest_layer_media_type(
    m: *const olreg_manifest,
    index: usize,
) -> *const c_char {
    match unsafe { m.as_ref() }.and_then(|m| m.layers.get(index)) {
        Some((_, media_type)) => media_type.as_ptr(),
        None => ptr::null(),
    }
}

/// Layer `index`'s size in bytes, or 0 when out of range.
/// Threading: any thread.
#[no_mangle]
pub unsafe extern "C" fn olreg_manifest_layer_size(m: *const olreg_manifest, index: usize) -> u64 {
    unsafe { m.as_ref() }
        .and_then(|m| m.manifest.layers().get(index))
        .map_or(0, |l| l.size)
}

/// The config blob's digest, or NULL when the manifest has no config (or
/// `m` is NULL).
///
/// Ownership: belongs to `m`. Threading: any thread.
#[no_mangle]
pub unsafe extern "C" fn olreg_manifest_config_digest(m: *const olreg_manifest) -> *const c_char {
    match unsafe { m.as_ref() }.and_then(|m| m.config.as_ref()) {
        Some((digest, _)) => digest.as_ptr(),
        None => ptr::null(),
    }
}

/// The config blob's media type ("" when the manifest gives none), or NULL
/// when the manifest has no config.
///
/// Ownership: belongs to `m`. Threading: any thread.
#[no_mangle]
pub unsafe extern "C" fn olreg_manifest_config_media_type(
    m: *const olreg_manifest,
) -> *const c_char {
    match unsafe { m.as_ref() }.and_then(|m| m.config.as_ref()) {
        Some((_, media_type)) => media_type.as_ptr(),
        None => ptr::null(),
    }
}

/// The config blob's size, or 0 when there is none.
/// Threading: any thread.
#[no_mangle]
pub unsafe extern "C" fn olreg_manifest_config_size(m: *const olreg_manifest) -> u64 {
    unsafe { m.as_ref() }
        .and_then(|m| m.manifest.config())
        .map_or(0, |c| c.size)
}

/// The total size of every distinct blob, config included; 0 for NULL.
/// Threading: any thread.
#[no_mangle]
pub unsafe extern "C" fn olreg_manifest_total_size(m: *const olreg_manifest) -> u64 {
    unsafe { m.as_ref() }.map_or(0, |m| m.manifest.total_size())
}

/// Frees a manifest. NULL is ignored.
///
/// Threading: any thread, once per manifest.
#[no_mangle]
pub unsafe extern "C" fn olreg_manifest_free(m: *mut olreg_manifest) {
    if !m.is_null() {
        // SAFETY: created by Box::into_raw in `boxed`, freed once.
        drop(unsafe { Box::from_raw(m) });
    }
}
