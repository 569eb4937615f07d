//! `olreg_client` and the operations.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use super::cancel::olreg_cancel;
use super::error::{olreg_error, CallError};
use super::manifest::olreg_manifest;
use super::options::olreg_options;
use super::progress::{deliver, olreg_progress_cb};
use super::status::olreg_status;
use super::strings::{arg, malloc_bytes, olreg_string_list, opt_arg};
use crate::client::{Client, ClientBuilder, Watch};
use crate::progress::Progress;

/// A client bound to one store. Thread-safe: any number of threads may run
/// calls on one client at the same time, and olreg_client_close() or
/// olreg_client_free() may run while they do.
pub struct olreg_client {
    /// Each call holds a reference while it runs, so the client outlives
    /// a free made from inside one of its callbacks.
    client: Arc<Client>,
}

/// Creates a client from `opts` (NULL for the defaults) in `*out`. Checks
/// every option, loads the key, CA files and credentials they name, starts
/// olreg's worker threads.
///
/// Ownership: `opts` is only read (and may be freed right after); the caller
/// frees `*out` with olreg_client_free().
/// Threading: any thread. The log callback, if set, may run during this call.
/// Returns OLREG_OK, OLREG_NULL_ARGUMENT, OLREG_INVALID_ARGUMENT (a bad
/// option value, or a key or file that cannot be used), OLREG_INVALID_NAME
/// (a bad mask) or OLREG_IO (an unreadable file). For a bad option the
/// message names it, e.g. `option chunk_size: invalid argument: …`.
#[no_mangle]
pub unsafe extern "C" fn olreg_client_new(
    opts: *const olreg_options,
    out: *mut *mut olreg_client,
    err: *mut *mut olreg_error,
) -> olreg_status {
    super::fence(err, || {
        if out.is_null() {
            return Err(super::null_argument("out"));
        }
        let builder = match unsafe { opts.as_ref() } {
            Some(o) => o.builder()?,
            None => ClientBuilder::new(),
        };
        let client = Box::new(olreg_client {
            client: Arc::new(builder.build()?),
        });
        // SAFETY: checked non-NULL above.
        unsafe { *out = Box::into_raw(client) };
        Ok(())
    })
}

/// Closes a client: cancels every call running on it in other threads
/// (they return OLREG_CANCELLED) and waits for them to return, then stops
/// its worker threads and waits (up to 5 s) for them to end, so that none
/// runs library code once it returns. Later calls on `client` return OLREG_CANCELLED at
/// once ("the client is closed"). Closing again does nothing.
///
/// Ownership: the handle stays valid until olreg_client_free(). This is
/// how bindings close a client whose calls may still be starting on other
/// threads: close when the user asks, free when nothing can use the handle
/// any more (a finalizer), so no call can race with the free.
/// Threading: any thread, while calls run on the client. From inside one
/// of olreg's callbacks it cannot wait (a call is running on that thread):
/// the calls are cancelled and it returns OLREG_REENTRANT.
/// Returns OLREG_OK, OLREG_NULL_ARGUMENT or OLREG_REENTRANT.
#[no_mangle]
pub unsafe extern "C" fn olreg_client_close(client: *const olreg_client) -> olreg_status {
    super::fence(std::ptr::null_mut(), || {
        let client = unsafe { client_ref(client)? };
        Ok(client.close()?)
    })
}

/// Frees a client. NULL is ignored. It first closes the client as
/// olreg_client_close() does: calls still running on other threads are
/// cancelled (they return OLREG_CANCELLED) and olreg_client_free() waits
/// for them to return, so their callbacks and `user_data` are done with
/// when it returns, and so are olreg's threads (the library may then be
/// unloaded).
///
/// Threading: any thread, once per client, while calls run on it; but no
/// call may *start* on the client once olreg_client_free() has begun (use
/// olreg_client_close() where that cannot be ruled out). From inside one of
/// olreg's callbacks it cannot wait: the calls are cancelled and the client
/// is freed when the last one returns.
#[no_mangle]
pub unsafe extern "C" fn olreg_client_free(client: *mut olreg_client) {
    if !client.is_null() {
        // Unlike the other frees, this one runs real code (the close and the
        // runtime's shutdown): fence it too. There is no status to report a
        // panic in.
        let _ = super::fence(std::ptr::null_mut(), || {
            // SAFETY: created by Box::into_raw in olreg_client_new, freed once.
            let handle = unsafe { Box::from_raw(client) };
            // Reentrant (from a callback) still cancelled everything; the
            // calls in progress hold the client until they return.
            let _ = handle.client.close();
            drop(handle);
            Ok(())
        });
    }
}

/// The client behind a handle, held for the duration of a call.
pub(super) unsafe fn client_ref(client: *const olreg_client) -> Result<Arc<Client>, CallError> {
    unsafe { client.as_ref() }
        .map(|c| c.client.clone())
        .ok_or_else(|| super::null_argument("client"))
}

/// Runs `f` with a Watch built from a C callback and cancel token.
pub(super) unsafe fn with_watch<T>(
    cb: olreg_progress_cb,
    user_data: *mut c_void,
    cancel: *const olreg_cancel,
    f: impl FnOnce(Watch<'_>) -> T,
) -> T {
    let token = unsafe { cancel.as_ref() }.map(|c| &c.token);
    match cb {
        Some(cb) => {
            let mut progress = |p: &Progress| deliver(cb, user_data, p);
            f(Watch {
                progress: Some(&mut progress),
                cancel: token,
            })
        }
        None => f(Watch {
            progress: None,
            cancel: token,
        }),
    }
}

/// Downloads `name`'s manifest and every blob it lacks into the store, then
/// links the manifest. Blocks until done, failed or cancelled.
///
/// `cb` (may be NULL) receives progress with `user_data`; a non-zero return
/// cancels. `cancel` (may be NULL) cancels from another thread. On success,
/// `*manifest` (if `manifest` is not NULL) receives the pulled manifest,
/// which the caller frees with olreg_manifest_free().
/// Threading: `cb` and the log callback run on the calling thread.
/// Returns OLREG_OK, OLREG_NULL_ARGUMENT, OLREG_INVALID_NAME, OLREG_NOT_FOUND,
/// OLREG_UNAUTHORIZED, OLREG_INVALID_MANIFEST, OLREG_HTTP, OLREG_NETWORK,
/// OLREG_PROTOCOL, OLREG_DIGEST_MISMATCH, OLREG_IO, OLREG_NO_SPACE,
/// OLREG_CANCELLED, OLREG_REENTRANT, OLREG_PANIC or OLREG_INTERNAL. Whatever
/// the outcome, the store holds only complete blobs and manifests whose
/// blobs are present; bytes already downloaded are kept for the next pull.
#[no_mangle]
pub unsafe extern "C" fn olreg_pull(
    client: *const olreg_client,
    name: *const c_char,
    cb: olreg_progress_cb,
    user_data: *mut c_void,
    cancel: *const olreg_cancel,
    manifest: *mut *mut olreg_manifest,
    err: *mut *mut olreg_error,
) -> olreg_status {
    super::fence(err, || {
        let client = unsafe { client_ref(client)? };
        let name = unsafe { arg(name, "name")? };
        let pulled = unsafe { with_watch(cb, user_data, cancel, |w| client.pull(name, w))? };
        unsafe { olreg_manifest::give(manifest, pulled) };
        Ok(())
    })
}

/// Uploads the local model `from` (NULL: `name` itself) as `name`: checks
/// that every blob is present with its size first (no request is made
/// otherwise), uploads what the registry lacks, then puts the manifest's
/// exact bytes. Blocks like olreg_pull(), with the same callback rules.
///
/// Returns OLREG_OK, OLREG_NULL_ARGUMENT, OLREG_INVALID_NAME, OLREG_NOT_FOUND
/// (no such local model or blob), OLREG_SIZE_MISMATCH, OLREG_INVALID_MANIFEST,
/// OLREG_UNAUTHORIZED, OLREG_HTTP, OLREG_NETWORK, OLREG_PROTOCOL,
/// OLREG_CANCELLED, OLREG_REENTRANT, OLREG_PANIC or OLREG_INTERNAL.
#[no_mangle]
pub unsafe extern "C" fn olreg_push(
    client: *const olreg_client,
    name: *const c_char,
    from: *const c_char,
    cb: olreg_progress_cb,
    user_data: *mut c_void,
    cancel: *const olreg_cancel,
    err: *mut *mut olreg_error,
) -> olreg_status {
    super::fence(err, || {
        let client = unsafe { client_ref(client)? };
        let name = unsafe { arg(name, "name")? };
        let from = unsafe { opt_arg(from, "from")? };
        unsafe { with_watch(cb, user_data, cancel, |w| client.push(name, from, w))? };
        Ok(())
    })
}

/// Fetches `name`'s manifest from its registry (or mirror) without storing
/// anything, into `*manifest` (freed with olreg_manifest_free()).
///
/// Threading: any thread; blocks. Returns the statuses of olreg_pull()
/// except the store's.
#[no_mangle]
pub unsafe extern "C" fn olreg_resolve(
    client: *const olreg_client,
    name: *const c_char,
    cancel: *const olreg_cancel,
    manifest: *mut *mut olreg_manifest,
    err: *mut *mut olreg_error,
) -> olreg_status {
    super::fence(err, || {
        let client = unsafe { client_ref(client)? };
        let name = unsafe { arg(name, "name")? };
        if manifest.is_null() {
            return Err(super::null_argument("manifest"));
        }
        let resolved = unsafe {
            with_watch(None, std::ptr::null_mut(), cancel, |w| {
                client.resolve(name, w)
            })?
        };
        // SAFETY: checked non-NULL.
        unsafe { *manifest = olreg_manifest::boxed(resolved) };
        Ok(())
    })
}

/// Lists the local models, one fully qualified `host/namespace/model:tag`
/// per item, sorted, into `*list` (freed with olreg_string_list_free()).
///
/// Threading: any thread. Returns OLREG_OK, OLREG_NULL_ARGUMENT, OLREG_IO,
/// OLREG_CANCELLED (a closed client) or OLREG_REENTRANT.
#[no_mangle]
pub unsafe extern "C" fn olreg_list(
    client: *const olreg_client,
    list: *mut *mut olreg_string_list,
    err: *mut *mut olreg_error,
) -> olreg_status {
    super::fence(err, || {
        let client = unsafe { client_ref(client)? };
        if list.is_null() {
            return Err(super::null_argument("list"));
        }
        let names = client.list()?;
        // SAFETY: checked non-NULL.
        unsafe { *list = olreg_string_list::from_strings(names.iter().map(|n| n.to_string())) };
        Ok(())
    })
}

/// The local manifest of `name`, byte for byte as stored: `*bytes` receives a
/// buffer of `*len` bytes (plus a NUL after them), freed with
/// olreg_string_free().
///
/// Threading: any thread. Returns OLREG_OK, OLREG_NULL_ARGUMENT,
/// OLREG_INVALID_NAME, OLREG_NOT_FOUND, OLREG_IO, OLREG_CANCELLED (a closed
/// client) or OLREG_REENTRANT.
#[no_mangle]
pub unsafe extern "C" fn olreg_show(
    client: *const olreg_client,
    name: *const c_char,
    bytes: *mut *mut c_char,
    len: *mut usize,
    err: *mut *mut olreg_error,
) -> olreg_status {
    super::fence(err, || {
        let client = unsafe { client_ref(client)? };
        let name = unsafe { arg(name, "name")? };
        if bytes.is_null() || len.is_null() {
            return Err(super::null_argument("bytes or len"));
        }
        let data = client.show(name)?;
        let buffer = malloc_bytes(&data)?;
        // SAFETY: both checked non-NULL.
        unsafe {
            *bytes = buffer;
            *len = data.len();
        }
        Ok(())
    })
}

/// Removes `name` from the store. Its blobs stay until olreg_prune().
///
/// Threading: any thread. Returns OLREG_OK, OLREG_NULL_ARGUMENT,
/// OLREG_INVALID_NAME, OLREG_NOT_FOUND, OLREG_IO, OLREG_CANCELLED (a closed
/// client) or OLREG_REENTRANT.
#[no_mangle]
pub unsafe extern "C" fn olreg_remove(
    client: *const olreg_client,
    name: *const c_char,
    err: *mut *mut olreg_error,
) -> olreg_status {
    super::fence(err, || {
        let client = unsafe { client_ref(client)? };
        let name = unsafe { arg(name, "name")? };
        Ok(client.remove(name)?)
    })
}

/// Deletes blobs that no manifest and no running pull or push needs, and
/// abandoned partial downloads. Files olreg does not recognise are left
/// alone. `blobs_removed` and `bytes_freed` may be NULL.
///
/// Threading: any thread; safe while other processes pull into the store.
/// Returns OLREG_OK, OLREG_NULL_ARGUMENT, OLREG_IO, OLREG_CANCELLED (a closed
/// client) or OLREG_REENTRANT.
#[no_mangle]
pub unsafe extern "C" fn olreg_prune(
    client: *const olreg_client,
    blobs_removed: *mut u64,
    bytes_freed: *mut u64,
    err: *mut *mut olreg_error,
) -> olreg_status {
    super::fence(err, || {
        let client = unsafe { client_ref(client)? };
        let report = client.prune()?;
        // SAFETY: each written only when non-NULL.
        unsafe {
            if !blobs_removed.is_null() {
                *blobs_removed = report.blobs_removed;
            }
            if !bytes_freed.is_null() {
                *bytes_freed = report.bytes_freed;
            }
        }
        Ok(())
    })
}

/// Re-hashes every blob in the store, or `name`'s (config included) when
/// `name` is not NULL. `*problems` receives one line per bad blob
/// (`sha256:<hex>: corrupt: …`, `… missing`, `… wrong size: …`), empty when
/// all is well; free it with olreg_string_list_free(). Progress and
/// cancellation work as for olreg_pull().
///
/// Returns OLREG_OK (even when problems were found), OLREG_NULL_ARGUMENT,
/// OLREG_INVALID_NAME, OLREG_NOT_FOUND, OLREG_INVALID_MANIFEST, OLREG_IO,
/// OLREG_CANCELLED, OLREG_REENTRANT, OLREG_PANIC or OLREG_INTERNAL.
#[no_mangle]
pub unsafe extern "C" fn olreg_verify(
    client: *const olreg_client,
    name: *const c_char,
    cb: olreg_progress_cb,
    user_data: *mut c_void,
    cancel: *const olreg_cancel,
    problems: *mut *mut olreg_string_list,
    err: *mut *mut olreg_error,
) -> olreg_status {
    super::fence(err, || {
        let client = unsafe { client_ref(client)? };
        let name = unsafe { opt_arg(name, "name")? };
        if problems.is_null() {
            return Err(super::null_argument("problems"));
        }
        let issues = unsafe { with_watch(cb, user_data, cancel, |w| client.verify(name, w))? };
        // SAFETY: checked non-NULL.
        unsafe {
            *problems = olreg_string_list::from_strings(issues.iter().map(|i| i.to_string()))
        };
        Ok(())
    })
}
