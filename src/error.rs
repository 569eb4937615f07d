//! The one error type of the library, and the stable status numbers the C ABI
//! returns for it.
//!
//! An [`Error`] carries what went wrong ([`ErrorKind`], with the cause's own
//! data: HTTP status, registry code, path, digests) plus where: the model and
//! the blob it was about, so a message reads
//! `127.0.0.1:5000/library/m:latest: blob sha256:0a1b2c3d4e5f: digest mismatch: …`.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::digest::Digest;

/// Expands the status table (`src/status_table.rs`) into [`Status`].
macro_rules! statuses {
    ($( $(#[doc = $doc:literal])* $variant:ident = $code:literal, $c_name:ident, $text:literal; )*) => {
        /// Stable status numbers, shared by the Rust and C APIs: what kind of
        /// failure an [`Error`] is ([`Error::status`]). Numbers are never
        /// reused; new ones are appended. `Ok` and `NullArgument` only occur
        /// in the C ABI.
        #[repr(i32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Status {
            $( $(#[doc = $doc])* $variant = $code, )*
        }

        impl Status {
            /// Every status, in number order.
            pub const ALL: &'static [Status] = &[$(Status::$variant),*];

            /// The status with this number, if any.
            pub fn from_code(code: i32) -> Option<Status> {
                match code {
                    $( $code => Some(Status::$variant), )*
                    _ => None,
                }
            }

            /// The C name, e.g. `OLREG_NOT_FOUND`.
            pub fn name(self) -> &'static str {
                match self {
                    $( Status::$variant => stringify!($c_name), )*
                }
            }

            /// A short, static English description, e.g. "not found".
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Status::$variant => $text, )*
                }
            }
        }
    };
}

include!("status_table.rs");

/// What went wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A model name that does not follow the grammar (docs/design.md §3).
    InvalidName { name: String, reason: String },
    /// A digest that is not `sha256:` and 64 lowercase hex digits.
    InvalidDigest {
        digest: String,
        reason: &'static str,
    },
    /// An option or argument out of range.
    InvalidArgument { reason: String },
    /// Something local does not exist: a model in the store, a blob it needs.
    NotFound { what: String },
    /// A manifest that cannot be used, and why.
    InvalidManifest { reason: String },
    /// The registry (or a host it sent us to) answered with an error.
    Registry {
        status: u16,
        code: Option<String>,
        message: String,
        url: String,
        retry_after: Option<Duration>,
    },
    /// The connection failed, stalled or ended early.
    Network { url: String, message: String },
    /// TLS failed: an untrusted or invalid certificate, or a failed handshake.
    Tls { url: String, message: String },
    /// A bug: a panic inside the library, caught before it reached the caller.
    Panic { message: String },
    /// A bug that is not a panic: a task lost, an operation without a result.
    Internal { message: String },
    /// The peer broke the protocol (bad redirect, wrong range, oversize body).
    Protocol { url: String, reason: String },
    /// Bytes that do not hash to the digest they were fetched or stored as.
    DigestMismatch { expected: Digest, actual: Digest },
    /// A blob whose length is not the one its manifest states.
    SizeMismatch { expected: u64, actual: u64 },
    /// A file-system operation failed.
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// The store's file system lacks room for what is left to download.
    NoSpace {
        path: PathBuf,
        needed: u64,
        available: u64,
    },
    /// The caller cancelled the operation.
    Cancelled,
    /// The client was closed: its operations are refused.
    Closed,
    /// A blocking call was made from inside one of this library's callbacks.
    Reentrant,
}

/// The library's error: what went wrong, and the model and blob it concerns.
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    option: Option<&'static str>,
    model: Option<String>,
    blob: Option<Digest>,
}

impl Error {
    /// An error of this kind, with no model or blob attached yet.
    pub fn new(kind: ErrorKind) -> Error {
        Error(Box::new(Inner {
            kind,
            option: None,
            model: None,
            blob: None,
        }))
    }

    pub(crate) fn invalid_name(name: &str, reason: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidName {
            name: name.to_owned(),
            reason: reason.into(),
        })
    }

    pub(crate) fn invalid_digest(digest: &str, reason: &'static str) -> Error {
        Error::new(ErrorKind::InvalidDigest {
            digest: digest.to_owned(),
            reason,
        })
    }

    pub(crate) fn invalid_argument(reason: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidArgument {
            reason: reason.into(),
        })
    }

    pub(crate) fn invalid_manifest(reason: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidManifest {
            reason: reason.into(),
        })
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotFound { what: what.into() })
    }

    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Error {
        // ENOSPC and EDQUOT on Unix, ERROR_DISK_FULL and ERROR_HANDLE_DISK_FULL on Windows.
        if matches!(
            source.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        ) {
            return Error::new(ErrorKind::NoSpace {
                path: path.to_owned(),
                needed: 0,
                available: 0,
            });
        }
        Error::new(ErrorKind::Io {
            op,
            path: path.to_owned(),
            source,
        })
    }

    pub(crate) fn network(url: &str, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Network {
            url: url.to_owned(),
            message: message.into(),
        })
    }

    pub(crate) fn protocol(url: &str, reason: impl Into<String>) -> Error {
        Error::new(ErrorKind::Protocol {
            url: url.to_owned(),
            reason: reason.into(),
        })
    }

    pub(crate) fn cancelled() -> Error {
        Error::new(ErrorKind::Cancelled)
    }

    /// A caught panic, with its message when it carries one.
    pub(crate) fn panic(payload: Box<dyn std::any::Any + Send>) -> Error {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_owned());
        Error::new(ErrorKind::Panic { message })
    }

    pub(crate) fn internal(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Internal {
            message: message.into(),
        })
    }

    /// Attaches the client option this error is about (a
    /// [`ClientBuilder`](crate::ClientBuilder) setting, named as its setter),
    /// unless one is already set.
    pub fn with_option(mut self, option: &'static str) -> Error {
        if self.0.option.is_none() {
            self.0.option = Some(option);
        }
        self
    }

    /// Attaches the model this error is about, unless one is already set.
    pub fn with_model(mut self, model: impl fmt::Display) -> Error {
        if self.0.model.is_none() {
            self.0.model = Some(model.to_string());
        }
        self
    }

    /// Attaches the blob this error is about, unless one is already set.
    pub fn with_blob(mut self, blob: Digest) -> Error {
        if self.0.blob.is_none() {
            self.0.blob = Some(blob);
        }
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// The client option the error concerns, if it is about one.
    pub fn option(&self) -> Option<&str> {
        self.0.option
    }

    /// The model (fully qualified name) the error concerns, if known.
    pub fn model(&self) -> Option<&str> {
        self.0.model.as_deref()
    }

    /// The blob the error concerns, if any.
    pub fn blob(&self) -> Option<Digest> {
        self.0.blob
    }

    /// The HTTP status of a registry error, if the error is one.
    pub fn http_status(&self) -> Option<u16> {
        match &self.0.kind {
            ErrorKind::Registry { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The registry's error code (`MANIFEST_UNKNOWN`, …), if it sent one.
    pub fn registry_code(&self) -> Option<&str> {
        match &self.0.kind {
            ErrorKind::Registry { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The stable status number for this error.
    pub fn status(&self) -> Status {
        match &self.0.kind {
            ErrorKind::InvalidName { .. } => Status::InvalidName,
            ErrorKind::InvalidDigest { .. } => Status::InvalidDigest,
            ErrorKind::InvalidArgument { .. } => Status::InvalidArgument,
            ErrorKind::NotFound { .. } => Status::NotFound,
            ErrorKind::InvalidManifest { .. } => Status::InvalidManifest,
            ErrorKind::Registry { status, code, .. } => registry_status(*status, code.as_deref()),
            ErrorKind::Network { .. } => Status::Network,
            ErrorKind::Protocol { .. } => Status::Protocol,
            ErrorKind::Tls { .. } => Status::Network,
            ErrorKind::Panic { .. } => Status::Panic,
            ErrorKind::Internal { .. } => Status::Internal,
            ErrorKind::DigestMismatch { .. } => Status::DigestMismatch,
            ErrorKind::SizeMismatch { .. } => Status::SizeMismatch,
            ErrorKind::Io { .. } => Status::Io,
            ErrorKind::NoSpace { .. } => Status::NoSpace,
            ErrorKind::Cancelled | ErrorKind::Closed => Status::Cancelled,
            ErrorKind::Reentrant => Status::Reentrant,
        }
    }

    /// Whether trying the same request again may succeed: network faults,
    /// 429 and 5xx answers.
    pub fn is_retryable(&self) -> bool {
        match &self.0.kind {
            ErrorKind::Network { .. } => true,
            ErrorKind::Registry { status, .. } => *status == 429 || (500..600).contains(status),
            _ => false,
        }
    }

    /// How long the registry asked us to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match &self.0.kind {
            ErrorKind::Registry { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        matches!(self.0.kind, ErrorKind::Cancelled)
    }
}

/// Registry answers that mean "no such thing" or "not allowed" map to their
/// own statuses so callers can branch on them without parsing codes.
fn registry_status(status: u16, code: Option<&str>) -> Status {
    match code {
        Some("MANIFEST_UNKNOWN" | "BLOB_UNKNOWN" | "NAME_UNKNOWN") => return Status::NotFound,
        Some("UNAUTHORIZED" | "DENIED") => return Status::Unauthorized,
        _ => {}
    }
    match status {
        401 | 403 => Status::Unauthorized,
        404 => Status::NotFound,
        _ => Status::Http,
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::InvalidName { name, reason } => {
                write!(f, "invalid model name {name:?}: {reason}")
            }
            ErrorKind::InvalidDigest { digest, reason } => {
                write!(f, "invalid digest {digest:?}: {reason}")
            }
            ErrorKind::InvalidArgument { reason } => write!(f, "invalid argument: {reason}"),
            ErrorKind::NotFound { what } => write!(f, "{what} not found"),
            ErrorKind::InvalidManifest { reason } => write!(f, "invalid manifest: {reason}"),
            ErrorKind::Registry {
                status,
                code,
                message,
                url,
                ..
            } => {
                write!(f, "registry answered HTTP {status}")?;
                if let Some(code) = code {
                    write!(f, " {code}")?;
                }
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                write!(f, " ({url})")
            }
            ErrorKind::Network { url, message } => write!(f, "network error: {message} ({url})"),
            ErrorKind::Protocol { url, reason } => write!(f, "{reason} ({url})"),
            ErrorKind::Tls { url, message } => write!(f, "TLS failed: {message} ({url})"),
            ErrorKind::Panic { message } => write!(f, "internal error (panic): {message}"),
            ErrorKind::Internal { message } => write!(f, "internal error: {message}"),
            ErrorKind::DigestMismatch { expected, actual } => write!(
                f,
                "digest mismatch: the bytes hash to {actual}, expected {expected}"
            ),
            ErrorKind::SizeMismatch { expected, actual } => {
                write!(f, "size mismatch: {actual} bytes, expected {expected}")
            }
            ErrorKind::Io { op, path, source } => {
                write!(f, "cannot {op} {}: {source}", path.display())
            }
            ErrorKind::NoSpace {
                path,
                needed,
                available,
            } => {
                write!(f, "no space left on the device holding {}", path.display())?;
                if *needed > 0 {
                    write!(f, ": {} more bytes needed, {} available", needed, available)?;
                }
                Ok(())
            }
            ErrorKind::Cancelled => write!(f, "cancelled"),
            ErrorKind::Closed => write!(f, "cancelled: the client is closed"),
            ErrorKind::Reentrant => write!(
                f,
                "a blocking olreg call was made from inside one of olreg's callbacks"
            ),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(option) = self.0.option {
            write!(f, "option {option}: ")?;
        }
        if let Some(model) = &self.0.model {
            write!(f, "{model}: ")?;
        }
        if let Some(blob) = &self.0.blob {
            write!(f, "blob {}: ", blob.short())?;
        }
        fmt::Display::fmt(&self.0.kind, f)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("option", &self.0.option)
            .field("model", &self.0.model)
            .field("blob", &self.0.blob)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0.kind {
            ErrorKind::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(status: u16, code: Option<&str>) -> Error {
        Error::new(ErrorKind::Registry {
            status,
            code: code.map(str::to_owned),
            message: "m".into(),
            url: "http://h/v2/".into(),
            retry_after: None,
        })
    }

    #[test]
    fn registry_codes_map_to_statuses() {
        assert_eq!(
            registry(404, Some("MANIFEST_UNKNOWN")).status(),
            Status::NotFound
        );
        assert_eq!(
            registry(400, Some("BLOB_UNKNOWN")).status(),
            Status::NotFound
        );
        assert_eq!(registry(401, None).status(), Status::Unauthorized);
        assert_eq!(registry(403, Some("DENIED")).status(), Status::Unauthorized);
        assert_eq!(registry(500, Some("INTERNAL")).status(), Status::Http);
    }

    #[test]
    fn only_transient_failures_are_retryable() {
        assert!(registry(500, None).is_retryable());
        assert!(registry(503, None).is_retryable());
        assert!(registry(429, None).is_retryable());
        assert!(!registry(404, None).is_retryable());
        assert!(!registry(400, None).is_retryable());
        assert!(Error::network("u", "reset").is_retryable());
        assert!(!Error::cancelled().is_retryable());
    }

    #[test]
    fn message_names_model_blob_and_cause() {
        let err = registry(500, Some("INTERNAL"))
            .with_blob(Digest::empty())
            .with_model("h/ns/m:t");
        let text = err.to_string();
        assert!(text.starts_with(
            "h/ns/m:t: blob sha256:e3b0c44298fc: registry answered HTTP 500 INTERNAL: m"
        ));
    }

    #[test]
    fn status_numbers_are_stable_and_distinct() {
        for (i, s) in Status::ALL.iter().enumerate() {
            assert_eq!(*s as i32, i as i32);
            assert_eq!(Status::from_code(i as i32), Some(*s));
        }
        assert_eq!(Status::from_code(-1), None);
    }

    #[test]
    fn a_full_disk_becomes_no_space() {
        #[cfg(unix)]
        let codes = [libc::ENOSPC, libc::EDQUOT];
        // ERROR_HANDLE_DISK_FULL, ERROR_DISK_FULL
        #[cfg(windows)]
        let codes = [39, 112];
        for code in codes {
            let err = Error::io("write", Path::new("/x"), io::Error::from_raw_os_error(code));
            assert_eq!(err.status(), Status::NoSpace, "os error {code}");
        }
    }
}
