// The one table of statuses: number, C name, short English text and
// meaning of every status the library returns. Numbers never change and are
// never reused; a new status is appended with the next number.
//
// This file is a bare `statuses!` invocation, expanded three times with
// three definitions of the macro: `src/error.rs` makes the Rust `Status`
// enum, `src/ffi/status.rs` the C strings and Rust `OLREG_*` constants, and
// `build.rs` the `OLREG_*` constants of `include/olreg.h`.
statuses! {
    /// Success.
    Ok = 0, OLREG_OK, "ok";
    /// A required pointer argument was NULL (C ABI only).
    NullArgument = 1, OLREG_NULL_ARGUMENT, "a required argument was NULL";
    /// An argument or option is out of range or malformed (including a
    /// non-UTF-8 string); for an option, the message names it.
    InvalidArgument = 2, OLREG_INVALID_ARGUMENT, "invalid argument";
    /// A model name does not follow
    /// `[scheme://][host/][namespace/]model[:tag][@digest]`.
    InvalidName = 3, OLREG_INVALID_NAME, "invalid model name";
    /// A digest is not `sha256:` followed by 64 lowercase hex digits.
    InvalidDigest = 4, OLREG_INVALID_DIGEST, "invalid digest";
    /// The model, manifest or blob does not exist (locally, or on the
    /// registry: 404, MANIFEST_UNKNOWN, BLOB_UNKNOWN).
    NotFound = 5, OLREG_NOT_FOUND, "not found";
    /// The registry refused the credentials, or asked for some and none are
    /// configured (401, 403, UNAUTHORIZED, DENIED).
    Unauthorized = 6, OLREG_UNAUTHORIZED, "unauthorized";
    /// A manifest cannot be used (not JSON, no layers, a null layer, a bad
    /// digest, a size over the limits).
    InvalidManifest = 7, OLREG_INVALID_MANIFEST, "invalid manifest";
    /// Any other error answer from a registry; see olreg_error_http_status().
    Http = 8, OLREG_HTTP, "registry error";
    /// The connection failed, stalled, broke, or TLS verification failed,
    /// after every retry.
    Network = 9, OLREG_NETWORK, "network error";
    /// A peer broke the protocol: a refused redirect, a wrong Content-Range,
    /// a body longer than announced, an invalid upload Location.
    Protocol = 10, OLREG_PROTOCOL, "registry protocol violation";
    /// Bytes do not hash to the digest they were fetched as.
    DigestMismatch = 11, OLREG_DIGEST_MISMATCH, "digest mismatch";
    /// A local blob's size differs from its manifest's.
    SizeMismatch = 12, OLREG_SIZE_MISMATCH, "size mismatch";
    /// A file-system operation failed; the message names the path.
    Io = 13, OLREG_IO, "I/O error";
    /// The store's file system is full or too small for the download.
    NoSpace = 14, OLREG_NO_SPACE, "not enough disk space";
    /// Cancelled by a cancel token, by a non-zero return from a progress
    /// callback, or by closing (or freeing) the client.
    Cancelled = 15, OLREG_CANCELLED, "cancelled";
    /// A blocking olreg function was called from inside one of olreg's
    /// callbacks.
    Reentrant = 16, OLREG_REENTRANT, "called from inside a callback of the same client";
    /// A bug inside olreg: a panic, caught before it reached the caller.
    /// Please report it.
    Panic = 17, OLREG_PANIC, "internal error (panic)";
    /// A bug inside olreg that is not a panic (a background task was lost,
    /// an operation ended without a result). Please report it.
    Internal = 18, OLREG_INTERNAL, "internal error";
}
