//! `olreg_options`: configuration for olreg_client_new(), set field by field
//! so that no struct layout has to be mirrored by Go or Python.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;
use std::time::Duration;

use super::error::{olreg_error, CallError};
use super::status::{olreg_log_level, olreg_status};
use super::strings::{arg, opt_arg};
use crate::client::ClientBuilder;
use crate::error::{Error, ErrorKind};
use crate::manifest::Limits;
use crate::progress::LogLevel;

/// Receives one log line. `level` is an OLREG_LOG_* value; `message` is
/// borrowed for the duration of the call.
pub type olreg_log_cb = Option<
    unsafe extern "C" fn(user_data: *mut c_void, level: olreg_log_level, message: *const c_char),
>;

/// Client options. Create with olreg_options_new(), set what differs from
/// the defaults, pass to olreg_client_new() (which copies them), free with
/// olreg_options_free().
pub struct olreg_options {
    builder: ClientBuilder,
    /// Values a setter could not convert, with their option's name: reported
    /// by olreg_client_new() like any other invalid setting.
    unconverted: Vec<(&'static str, String)>,
}

impl olreg_options {
    /// The builder these options describe, or the first value a setter
    /// could not convert.
    pub(crate) fn builder(&self) -> Result<ClientBuilder, Error> {
        match self.unconverted.first() {
            Some((option, reason)) => {
                Err(Error::invalid_argument(reason.clone()).with_option(option))
            }
            None => Ok(self.builder.clone()),
        }
    }
}

/// Creates options holding the defaults in `*out`: the store at
/// `$OLLAMA_MODELS` or `~/.ollama/models`, the key `~/.ollama/id_ed25519` if
/// present, the mask `registry.ollama.ai/library/_:latest`, streams from
/// `$OLLAMA_REGISTRY_MAXSTREAMS` or the CPU count, chunks of 8 MiB above
/// 128 MiB, 30 s connect and stall timeouts, 6 attempts per request, proxies
/// from `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`, credentials from
/// `~/.docker/config.json`, mirrors from `$OLREG_MIRRORS`, no bandwidth cap
/// unless `$OLREG_LIMIT_RATE` sets one.
///
/// Ownership: the caller frees `*out` with olreg_options_free().
/// Threading: an options object may be used by one thread at a time.
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_new(out: *mut *mut olreg_options) -> olreg_status {
    super::fence(std::ptr::null_mut::<*mut olreg_error>(), || {
        if out.is_null() {
            return Err(super::null_argument("out"));
        }
        let opts = Box::new(olreg_options {
            builder: ClientBuilder::new(),
            unconverted: Vec::new(),
        });
        // SAFETY: checked non-NULL above.
        unsafe { *out = Box::into_raw(opts) };
        Ok(())
    })
}

/// Frees options. NULL is ignored. Clients made from them are unaffected.
///
/// Threading: any thread, once per options object.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_free(opts: *mut olreg_options) {
    if !opts.is_null() {
        // SAFETY: created by Box::into_raw in olreg_options_new, freed once.
        drop(unsafe { Box::from_raw(opts) });
    }
}

/// Whether a setter replaces its setting's value or adds to a list.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Setter {
    Replaces,
    Adds,
}
use Setter::{Adds, Replaces};

/// Stores a setting (named `option`, as the Rust setter) through `f`.
///
/// A NULL `opts` or required argument is OLREG_NULL_ARGUMENT at once. A
/// value `f` cannot convert (a string that is not UTF-8, an unknown log
/// level) is kept instead and reported by olreg_client_new(), which checks
/// every setting: setters themselves only store. A later successful call of
/// a setter that replaces its value replaces an unconvertible one too.
unsafe fn edit(
    opts: *mut olreg_options,
    option: &'static str,
    setter: Setter,
    f: impl FnOnce(ClientBuilder) -> Result<ClientBuilder, CallError>,
) -> olreg_status {
    super::fence(std::ptr::null_mut(), || {
        // SAFETY: `opts` is a live options object used by one thread at a time.
        let opts = unsafe { opts.as_mut() }.ok_or_else(|| super::null_argument("opts"))?;
        match f(opts.builder.clone()) {
            Ok(builder) => {
                opts.builder = builder;
                if setter == Replaces {
                    opts.unconverted.retain(|(o, _)| *o != option);
                }
            }
            Err(e @ CallError::NullArgument(_)) => return Err(e),
            Err(CallError::Library(e)) => {
                let reason = match e.kind() {
                    ErrorKind::InvalidArgument { reason } => reason.clone(),
                    _ => e.to_string(),
                };
                opts.unconverted.push((option, reason));
            }
        }
        Ok(())
    })
}

/// Sets the store root directory (not empty).
///
/// Every setter: copies its strings; is used by one thread at a time per
/// options object; only stores the value, which olreg_client_new() checks
/// with every other setting (it reports a bad one as OLREG_INVALID_ARGUMENT,
/// or the status its cause has, with a message naming the option, e.g.
/// `option models_dir: …`). Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_set_models_dir(
    opts: *mut olreg_options,
    dir: *const c_char,
) -> olreg_status {
    unsafe {
        edit(opts, "models_dir", Replaces, |b| {
            Ok(b.models_dir(arg(dir, "dir")?))
        })
    }
}

/// Sets the mask that completes names, e.g. `registry.ollama.ai/library/_:latest`
/// or `http://127.0.0.1:5000/library/_:latest` (option `name_mask`; a bad
/// mask makes olreg_client_new() return OLREG_INVALID_NAME).
///
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_set_name_mask(
    opts: *mut olreg_options,
    mask: *const c_char,
) -> olreg_status {
    unsafe {
        edit(opts, "name_mask", Replaces, |b| {
            Ok(b.name_mask(arg(mask, "mask")?))
        })
    }
}

/// Signs requests with the OpenSSH Ed25519 key at `path` (option
/// `key_file`; it must exist when the client is created). NULL makes every
/// request anonymous, even if `~/.ollama/id_ed25519` exists.
///
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_set_key_file(
    opts: *mut olreg_options,
    path: *const c_char,
) -> olreg_status {
    unsafe {
        edit(opts, "key_file", Replaces, |b| {
            Ok(match opt_arg(path, "path")? {
                Some(p) => b.key_file(p),
                None => b.no_key(),
            })
        })
    }
}

/// Sets how many requests run in parallel per call (option `streams`: at
/// least 1; at most 12 are used, which bounds memory whatever the value).
///
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_set_streams(
    opts: *mut olreg_options,
    streams: u32,
) -> olreg_status {
    unsafe {
        edit(opts, "streams", Replaces, |b| {
            Ok(b.streams(streams as usize))
        })
    }
}

/// Caps the bytes per second the whole client moves (option `rate_limit`):
/// every stream of every call, pulls and pushes alike, share the one budget.
/// 0: no cap, the default unless `$OLREG_LIMIT_RATE` sets one, e.g. `50M`:
/// bytes with an optional K, M or G, powers of 1024 (a bad value there makes
/// olreg_client_new() fail naming the option).
///
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_set_rate_limit(
    opts: *mut olreg_options,
    bytes_per_sec: u64,
) -> olreg_status {
    unsafe {
        edit(opts, "rate_limit", Replaces, |b| {
            Ok(b.rate_limit(bytes_per_sec))
        })
    }
}

/// Blobs over `threshold` bytes (option `chunk_threshold`, default 128 MiB)
/// download in ranged chunks of `chunk_size` bytes (option `chunk_size`,
/// default 8 MiB, at least 1 MiB) over parallel connections. 0 leaves a
/// value as it is.
///
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_set_chunking(
    opts: *mut olreg_options,
    threshold: u64,
    chunk_size: u64,
) -> olreg_status {
    unsafe {
        edit(opts, "chunk_size", Replaces, |mut b| {
            if threshold > 0 {
                b = b.chunk_threshold(threshold);
            }
            if chunk_size > 0 {
                b = b.chunk_size(chunk_size);
            }
            Ok(b)
        })
    }
}

/// Upload sessions send blobs over the chunking threshold in PATCH pieces
/// of `size` bytes (option `upload_chunk_size`, default 64 MiB, at least
/// 1 MiB). 0 leaves the value as it is.
///
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_set_upload_chunk_size(
    opts: *mut olreg_options,
    size: u64,
) -> olreg_status {
    unsafe {
        edit(opts, "upload_chunk_size", Replaces, |b| {
            Ok(if size > 0 {
                b.upload_chunk_size(size)
            } else {
                b
            })
        })
    }
}

/// Sets the User-Agent header (option `user_agent`). The default is
/// Ollama-shaped (ollama.com refuses other agents) and names olreg.
///
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_set_user_agent(
    opts: *mut olreg_options,
    user_agent: *const c_char,
) -> olreg_status {
    unsafe {
        edit(opts, "user_agent", Replaces, |b| {
            Ok(b.user_agent(arg(user_agent, "user_agent")?))
        })
    }
}

/// Sets the connect timeout (option `connect_timeout`) and the stall
/// timeout (option `stall_timeout`: how long a connection may deliver
/// nothing, before or after its first byte, before it is abandoned and
/// retried), in milliseconds. 0 leaves a value as it is (default 30 s).
///
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_set_timeouts(
    opts: *mut olreg_options,
    connect_ms: u32,
    stall_ms: u32,
) -> olreg_status {
    unsafe {
        edit(opts, "connect_timeout", Replaces, |mut b| {
            if connect_ms > 0 {
                b = b.connect_timeout(Duration::from_millis(connect_ms.into()));
            }
            if stall_ms > 0 {
                b = b.stall_timeout(Duration::from_millis(stall_ms.into()));
            }
            Ok(b)
        })
    }
}

/// Sets the minimum speed of a response body, in bytes per second averaged
/// over each stall timeout's worth of waiting (option `min_speed`, default
/// 1024): a registry that keeps a connection alive with a trickle slower
/// than this is treated as stalled (dropped and retried). 0 turns the rule
/// off, leaving only the stall timeout.
///
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_set_min_speed(
    opts: *mut olreg_options,
    bytes_per_second: u64,
) -> olreg_status {
    unsafe {
        edit(opts, "min_speed", Replaces, |b| {
            Ok(b.min_speed(bytes_per_second))
        })
    }
}

/// Sets the attempts per request (option `retry_attempts`: the first
/// included; 1 = no retries; default 6), the first backoff (option
/// `retry_base_delay`, default 250 ms) and the longest backoff (option
/// `retry_max_delay`, default 30 s), in milliseconds; 0 leaves a value as
/// it is. Backoff is exponential with full jitter; a registry's Retry-After
/// is honoured up to the longest backoff. Only network errors, 429 and 5xx
/// are retried.
///
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_set_retries(
    opts: *mut olreg_options,
    attempts: u32,
    base_delay_ms: u32,
    max_delay_ms: u32,
) -> olreg_status {
    unsafe {
        edit(opts, "retry_attempts", Replaces, |mut b| {
            if attempts > 0 {
                b = b.retry_attempts(attempts);
            }
            if base_delay_ms > 0 {
                b = b.retry_base_delay(Duration::from_millis(base_delay_ms.into()));
            }
            if max_delay_ms > 0 {
                b = b.retry_max_delay(Duration::from_millis(max_delay_ms.into()));
            }
            Ok(b)
        })
    }
}

/// Sends every request through the proxy at `url` (option `proxy`;
/// NO_PROXY still applies); an empty `url` connects directly, ignoring the
/// environment. Without this call the HTTPS_PROXY, HTTP_PROXY and NO_PROXY
/// environment variables are honoured.
///
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_set_proxy(
    opts: *mut olreg_options,
    url: *const c_char,
) -> olreg_status {
    unsafe {
        edit(opts, "proxy", Replaces, |b| {
            Ok(match arg(url, "url")? {
                "" => b.no_proxy(),
                url => b.proxy(url),
            })
        })
    }
}

/// Trusts the CA certificates in the PEM file at `path` as well as the
/// system's (option `ca_file`). olreg_client_new() reads the file: an
/// unreadable one is OLREG_IO there; one without certificates, one that is
/// not a regular file (a FIFO, a device) or one over 4 MiB is
/// OLREG_INVALID_ARGUMENT.
///
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_add_ca_file(
    opts: *mut olreg_options,
    path: *const c_char,
) -> olreg_status {
    unsafe {
        edit(opts, "ca_file", Adds, |b| {
            Ok(b.add_ca_file(arg(path, "path")?))
        })
    }
}

/// Trusts the CA certificates in `len` bytes of PEM at `pem` (copied;
/// option `ca_pem`).
///
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_add_ca_pem(
    opts: *mut olreg_options,
    pem: *const c_char,
    len: usize,
) -> olreg_status {
    unsafe {
        edit(opts, "ca_pem", Adds, |b| {
            if pem.is_null() {
                return Err(super::null_argument("pem"));
            }
            // SAFETY: the caller passes `len` readable bytes.
            let bytes = std::slice::from_raw_parts(pem.cast::<u8>(), len).to_vec();
            Ok(b.add_ca_pem(bytes))
        })
    }
}

/// With `insecure` true, accepts any TLS certificate from every registry
/// (as the `https+insecure://` scheme does for one name) and lets https
/// redirect to http.
///
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_set_insecure(
    opts: *mut olreg_options,
    insecure: bool,
) -> olreg_status {
    unsafe { edit(opts, "insecure", Replaces, |b| Ok(b.insecure(insecure))) }
}

/// Adds a user name and password for `host` (`host[:port]`; option
/// `credential`), used for Basic challenges from that host and for the
/// token service it names. They are never sent to any other host.
///
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_add_credential(
    opts: *mut olreg_options,
    host: *const c_char,
    user: *const c_char,
    password: *const c_char,
) -> olreg_status {
    unsafe {
        edit(opts, "credential", Adds, |b| {
            Ok(b.credential(
                arg(host, "host")?,
                arg(user, "user")?,
                arg(password, "password")?,
            ))
        })
    }
}

/// Reads credentials from the Docker config.json at `path` (option
/// `docker_config`): its `auths` (user names and passwords, used first),
/// and the credential helpers its `credHelpers` and `credsStore` name
/// (`docker-credential-<name>` on PATH, run when a registry asks for
/// credentials). NULL reads none. Default:
/// `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, if present.
///
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_set_docker_config(
    opts: *mut olreg_options,
    path: *const c_char,
) -> olreg_status {
    unsafe {
        edit(opts, "docker_config", Replaces, |b| {
            Ok(match opt_arg(path, "path")? {
                Some(p) => b.docker_config(p),
                None => b.no_docker_config(),
            })
        })
    }
}

/// Sends Ollama's signed per-request token (made with the key) to `host`
/// (`host[:port]`; option `signed_host`) without waiting for it to ask, as
/// to registry.ollama.ai and ollama.com, which always get it over TLS. Any
/// other registry gets a signature only by answering its own challenge.
/// Without this call, the comma-separated hosts of the OLREG_SIGNED_HOSTS
/// environment variable are used.
///
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_add_signed_host(
    opts: *mut olreg_options,
    host: *const c_char,
) -> olreg_status {
    unsafe {
        edit(opts, "signed_host", Adds, |b| {
            Ok(b.signed_host(arg(host, "host")?))
        })
    }
}

/// Adds a mirror tried before the named registry for pulls (option
/// `mirror`): `URL` for every host, or `HOST=URL` for one
/// (`registry.ollama.ai=http://10.0.0.5:5000`). Models are still filed
/// under their own names.
///
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_add_mirror(
    opts: *mut olreg_options,
    spec: *const c_char,
) -> olreg_status {
    unsafe { edit(opts, "mirror", Adds, |b| Ok(b.mirror(arg(spec, "spec")?))) }
}

/// Sets the platform, `os/arch[/variant]` in Go's names (`linux/amd64`,
/// `linux/arm64/v8`; option `platform`), whose entry of an image index or
/// manifest list a pull follows (default: this machine's).
///
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_set_platform(
    opts: *mut olreg_options,
    platform: *const c_char,
) -> olreg_status {
    unsafe {
        edit(opts, "platform", Replaces, |b| {
            Ok(b.platform(arg(platform, "platform")?))
        })
    }
}

/// Bounds what a registry's manifest may claim (option `limits`): its size
/// in bytes (default 4 MiB), one blob's size (default 1 TiB) and the layer
/// count (default 1000). 0 keeps a default.
///
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_set_limits(
    opts: *mut olreg_options,
    max_manifest_bytes: u64,
    max_blob_size: u64,
    max_layers: u32,
) -> olreg_status {
    unsafe {
        edit(opts, "limits", Replaces, |b| {
            let mut limits = Limits::default();
            if max_manifest_bytes > 0 {
                limits.max_manifest_bytes =
                    usize::try_from(max_manifest_bytes).unwrap_or(usize::MAX);
            }
            if max_blob_size > 0 {
                limits.max_blob_size = max_blob_size;
            }
            if max_layers > 0 {
                limits.max_layers = max_layers as usize;
            }
            Ok(b.limits(limits))
        })
    }
}

/// A C log callback with its user pointer.
struct LogCallback {
    cb: unsafe extern "C" fn(*mut c_void, olreg_log_level, *const c_char),
    user_data: *mut c_void,
}

impl LogCallback {
    fn call(&self, level: LogLevel, message: &str) {
        let text = CString::new(message.replace('\0', " ")).expect("NULs replaced");
        // SAFETY: the caller registered a valid callback and pointer.
        unsafe { (self.cb)(self.user_data, level as olreg_log_level, text.as_ptr()) };
    }
}

// SAFETY: the header requires the callback to be callable from every thread
// that makes olreg calls with this client; olreg only calls it on those.
unsafe impl Send for LogCallback {}
unsafe impl Sync for LogCallback {}

/// Routes the library's log lines at `level` or more severe (an
/// OLREG_LOG_* value; option `log`) to `cb`; NULL turns logging off.
///
/// Threading: `cb` runs on the thread of the olreg call that produced the
/// line (olreg_client_new, olreg_pull, …), never on a thread of olreg's own.
/// If several threads share a client, `cb` must be safe to call from each.
/// It must not call blocking olreg functions (they return OLREG_REENTRANT).
/// Ownership: `user_data` must stay valid as long as any client made from
/// these options.
///
/// Returns OLREG_OK or OLREG_NULL_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn olreg_options_set_log_callback(
    opts: *mut olreg_options,
    cb: olreg_log_cb,
    user_data: *mut c_void,
    level: olreg_log_level,
) -> olreg_status {
    unsafe {
        edit(opts, "log", Replaces, |b| {
            let level = match level {
                1 => LogLevel::Error,
                2 => LogLevel::Warn,
                3 => LogLevel::Info,
                4 => LogLevel::Debug,
                other => {
                    return Err(Error::invalid_argument(format!(
                        "log level {other} is not an OLREG_LOG_* value"
                    ))
                    .into())
                }
            };
            let Some(cb) = cb else {
                return Ok(b.log(LogLevel::Error, Arc::new(|_, _| {})));
            };
            let callback = LogCallback { cb, user_data };
            Ok(b.log(
                level,
                Arc::new(move |level, message| callback.call(level, message)),
            ))
        })
    }
}
