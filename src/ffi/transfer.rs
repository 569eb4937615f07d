//! Moving models beyond pull and push: registry to registry
//! (olreg_copy), and to and from OCI image layouts (olreg_export,
//! olreg_import).

use std::ffi::{c_char, c_void};

use super::cancel::olreg_cancel;
use super::client::{client_ref, olreg_client, with_watch};
use super::error::olreg_error;
use super::manifest::olreg_manifest;
use super::progress::olreg_progress_cb;
use super::status::olreg_status;
use super::strings::{arg, opt_arg, path_arg};

/// Copies the model `src` from its registry to `dst` on another (or the
/// same) registry, without touching the store. Each blob streams from one
/// registry to the other (memory stays bounded whatever its size) and is
/// checked against its digest on the way: the piece that completes a blob
/// is sent only once the blob hashes right. Blobs `dst` already has are
/// skipped; on the same registry they are mounted, not sent. The
/// manifest's exact bytes are put last, so a failed copy leaves no manifest
/// at `dst`, and a second copy sends nothing. Credentials for both
/// registries come from the client's options.
///
/// `cb` (may be NULL) receives progress with `user_data` as for
/// olreg_pull() (bytes count what has been sent); a non-zero return
/// cancels. `cancel` (may be NULL) cancels from another thread. On success,
/// `*manifest` (if `manifest` is not NULL) receives the copied manifest,
/// which the caller frees with olreg_manifest_free().
/// Threading: blocks; `cb` and the log callback run on the calling thread.
/// Returns OLREG_OK, OLREG_NULL_ARGUMENT, OLREG_INVALID_NAME (also for a
/// `dst` with @digest), OLREG_NOT_FOUND, OLREG_UNAUTHORIZED,
/// OLREG_INVALID_MANIFEST, OLREG_HTTP, OLREG_NETWORK, OLREG_PROTOCOL,
/// OLREG_DIGEST_MISMATCH (the source sent wrong bytes), OLREG_CANCELLED,
/// OLREG_REENTRANT, OLREG_PANIC or OLREG_INTERNAL.
#[no_mangle]
pub unsafe extern "C" fn olreg_copy(
    client: *const olreg_client,
    src: *const c_char,
    dst: *const c_char,
    cb: olreg_progress_cb,
    user_data: *mut c_void,
    cancel: *const olreg_cancel,
    manifest: *mut *mut olreg_manifest,
    err: *mut *mut olreg_error,
) -> olreg_status {
    super::fence(err, || {
        let client = unsafe { client_ref(client)? };
        let src = unsafe { arg(src, "src")? };
        let dst = unsafe { arg(dst, "dst")? };
        let copied = unsafe { with_watch(cb, user_data, cancel, |w| client.copy(src, dst, w))? };
        unsafe { olreg_manifest::give(manifest, copied) };
        Ok(())
    })
}

/// Writes the local model `name` as an OCI image layout (image-spec v1.1)
/// at `dest`: a directory, or a tar archive of one when `dest` ends in
/// `.tar`. The layout's `index.json` entry for it carries
/// `org.opencontainers.image.ref.name` = the tag (and
/// `io.containerd.image.name` = the full name); manifest and blobs are the
/// store's bytes. An existing layout is added to: its other entries stay,
/// blobs it holds with the right bytes are kept (a damaged one is
/// rewritten). A directory gains each blob by an atomic rename and its
/// index last; a tar archive is rewritten beside `dest` and renamed over it.
/// Store blobs are hashed as they are written, and a damaged one fails the
/// export before the index names it.
///
/// Progress and cancellation as for olreg_pull() (`dest` is a path; any
/// bytes but NUL). Threading: blocks; callbacks run on the calling thread.
/// Returns OLREG_OK, OLREG_NULL_ARGUMENT, OLREG_INVALID_NAME, OLREG_NOT_FOUND
/// (no such local model or blob), OLREG_SIZE_MISMATCH,
/// OLREG_DIGEST_MISMATCH (a damaged store blob), OLREG_INVALID_MANIFEST,
/// OLREG_INVALID_ARGUMENT (`dest` is neither a layout nor empty, or holds a
/// damaged layout), OLREG_IO, OLREG_NO_SPACE, OLREG_CANCELLED,
/// OLREG_REENTRANT, OLREG_PANIC or OLREG_INTERNAL.
#[no_mangle]
pub unsafe extern "C" fn olreg_export(
    client: *const olreg_client,
    name: *const c_char,
    dest: *const c_char,
    cb: olreg_progress_cb,
    user_data: *mut c_void,
    cancel: *const olreg_cancel,
    err: *mut *mut olreg_error,
) -> olreg_status {
    super::fence(err, || {
        let client = unsafe { client_ref(client)? };
        let name = unsafe { arg(name, "name")? };
        let dest = unsafe { path_arg(dest, "dest")? };
        unsafe { with_watch(cb, user_data, cancel, |w| client.export(name, dest, w))? };
        Ok(())
    })
}

/// Reads an image from the OCI image layout `src` (a directory, or a tar
/// archive of one, e.g. written by olreg_export() or `oras copy
/// --to-oci-layout`) into the store as `name`. `reference` (may be NULL)
/// picks the index entry by its ref name (the tag) or full name; NULL takes
/// the only entry, and a layout with several fails with OLREG_INVALID_ARGUMENT
/// and a message listing them.
///
/// The layout is treated as hostile: only regular files are read, never
/// through a symbolic link; a tar entry that is a link, device or FIFO, or
/// whose path is absolute or holds `..`, fails the import before anything
/// is read. Every blob is hashed before it appears in the store, blobs
/// appear only once all of them hashed right, and the manifest is linked
/// last: a damaged or truncated layout fails (OLREG_DIGEST_MISMATCH,
/// OLREG_SIZE_MISMATCH or OLREG_NOT_FOUND, naming the blob's digest) and
/// leaves `blobs/` and `manifests/` as they were.
///
/// On success `*manifest` (if `manifest` is not NULL) receives the imported
/// manifest (free with olreg_manifest_free()). Progress and cancellation as
/// for olreg_pull(). Threading: blocks; callbacks run on the calling thread.
/// Returns OLREG_OK, OLREG_NULL_ARGUMENT, OLREG_INVALID_NAME,
/// OLREG_INVALID_ARGUMENT (not a usable layout, or an ambiguous choice),
/// OLREG_NOT_FOUND, OLREG_INVALID_MANIFEST, OLREG_DIGEST_MISMATCH,
/// OLREG_SIZE_MISMATCH, OLREG_IO, OLREG_NO_SPACE, OLREG_CANCELLED,
/// OLREG_REENTRANT, OLREG_PANIC or OLREG_INTERNAL.
#[no_mangle]
pub unsafe extern "C" fn olreg_import(
    client: *const olreg_client,
    src: *const c_char,
    name: *const c_char,
    reference: *const c_char,
    cb: olreg_progress_cb,
    user_data: *mut c_void,
    cancel: *const olreg_cancel,
    manifest: *mut *mut olreg_manifest,
    err: *mut *mut olreg_error,
) -> olreg_status {
    super::fence(err, || {
        let client = unsafe { client_ref(client)? };
        let src = unsafe { path_arg(src, "src")? };
        let name = unsafe { arg(name, "name")? };
        let reference = unsafe { opt_arg(reference, "reference")? };
        let imported = unsafe {
            with_watch(cb, user_data, cancel, |w| {
                client.import(src, name, reference, w)
            })?
        };
        unsafe { olreg_manifest::give(manifest, imported) };
        Ok(())
    })
}
