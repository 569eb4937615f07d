//! [`ClientBuilder`]: a client's settings as the caller gives them, one
//! setter per setting. Setters only store; [`ClientBuilder::build`] checks
//! every setting in one place ([`ClientBuilder::check`]), loads the files
//! they name, and names the offending option in its error.
//!
//! A new setting is a field, a setter that stores it, and its check in
//! `check` (with `Error::with_option` naming it), plus its C setter in
//! `src/ffi/options.rs`, which only converts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::Client;
use crate::context::Settings;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::Limits;
use crate::mirror::{self, Mirror};
use crate::name::{NameMask, DEFAULT_MASK};
use crate::platform::Platform;
use crate::progress::LogLevel;
use crate::remote::credentials::{Credential, Credentials, DockerConfig};
use crate::remote::rate::{parse_rate, RATE_LIMIT_ENV};
use crate::remote::retry::RetryPolicy;
use crate::remote::signer::{SignedHosts, Signer};
use crate::remote::{tls, user_file, NetConfig, Proxy};
use crate::store::{home_dir, Store};

/// The smallest download chunk and upload piece: smaller ones cost a request
/// per few bytes and memory per request without making anything faster.
pub const MIN_CHUNK_SIZE: u64 = 1 << 20;

/// The environment variable that sets the default number of streams.
pub const STREAMS_ENV: &str = "OLLAMA_REGISTRY_MAXSTREAMS";
/// The environment variable listing more hosts that take Ollama's signed
/// token unasked (comma-separated `host[:port]`), used when the options
/// list none.
pub const SIGNED_HOSTS_ENV: &str = "OLREG_SIGNED_HOSTS";

/// The most an extra CA file may hold: system bundles are a few hundred
/// KiB; a larger file, a FIFO or a device is refused, never read whole.
const MAX_CA_FILE: u64 = 4 << 20;

/// The most parallel requests one operation makes. Each connection holds
/// about 1 MiB of the HTTP stack's read buffers (two or three of hyper's
/// adaptive buffers of up to 408 KiB, which reqwest does not let olreg
/// bound): a pull's peak RSS reached 38-42 MiB at 24 connections and
/// 29-32 MiB at 16 (Ollama's own number of parts per blob), against the
/// 32 MiB allowed, while on loopback no more than 4 made a pull faster
/// (docs/performance.md, "Peak RSS").
pub const MAX_STREAMS: usize = 12;

/// The least a response body must deliver by default: 1 KiB/s, averaged
/// over the stall timeout. A registry trickling slower (or a link that slow
/// for one of many parallel streams) is dropped and retried.
pub const DEFAULT_MIN_SPEED: u64 = 1024;

/// A function that receives the library's log lines.
pub type LogFn = Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

/// Where the signing key comes from.
#[derive(Clone, Debug)]
enum KeySource {
    /// `~/.ollama/id_ed25519` if it exists, else none.
    Default,
    /// This file, which must exist.
    File(PathBuf),
    /// Anonymous.
    None,
}

/// Where Docker registry credentials come from.
#[derive(Clone, Debug)]
enum DockerConfigSource {
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, if present.
    Default,
    /// This file, if present.
    File(PathBuf),
    /// None.
    None,
}

/// Extra trusted CA certificates.
#[derive(Clone, Debug)]
enum CaSource {
    /// PEM data.
    Pem(Vec<u8>),
    /// A PEM file, read by `build`.
    File(PathBuf),
}

/// Configures and builds a [`Client`].
#[derive(Clone)]
pub struct ClientBuilder {
    models_dir: Option<PathBuf>,
    mask: String,
    key: KeySource,
    streams: Option<usize>,
    chunk_threshold: u64,
    chunk_size: u64,
    upload_chunk_size: u64,
    user_agent: Option<String>,
    connect_timeout: Duration,
    stall_timeout: Duration,
    min_speed: u64,
    retry: RetryPolicy,
    proxy: Proxy,
    extra_cas: Vec<CaSource>,
    insecure: bool,
    credentials: Vec<Credential>,
    docker_config: DockerConfigSource,
    mirrors: Option<Vec<String>>,
    signed_hosts: Option<Vec<String>>,
    limits: Limits,
    platform: Option<String>,
    rate_limit: Option<u64>,
    log: Option<(LogLevel, LogFn)>,
}

impl Default for ClientBuilder {
    fn default() -> ClientBuilder {
        ClientBuilder::new()
    }
}

impl ClientBuilder {
    /// The defaults: Ollama's store and key, ollama.com's name mask.
    pub fn new() -> ClientBuilder {
        ClientBuilder {
            models_dir: None,
            mask: DEFAULT_MASK.to_owned(),
            key: KeySource::Default,
            streams: None,
            chunk_threshold: 128 << 20,
            chunk_size: 8 << 20,
            upload_chunk_size: 64 << 20,
            user_agent: None,
            connect_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(30),
            min_speed: DEFAULT_MIN_SPEED,
            retry: RetryPolicy::default(),
            proxy: Proxy::FromEnvironment,
            extra_cas: Vec::new(),
            insecure: false,
            credentials: Vec::new(),
            docker_config: DockerConfigSource::Default,
            mirrors: None,
            signed_hosts: None,
            limits: Limits::default(),
            platform: None,
            rate_limit: None,
            log: None,
        }
    }

    /// The store root (default `$OLLAMA_MODELS`, else `~/.ollama/models`).
    pub fn models_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.models_dir = Some(dir.into());
        self
    }

    /// The mask that completes names (default `registry.ollama.ai/library/_:latest`).
    pub fn name_mask(mut self, mask: impl Into<String>) -> Self {
        self.mask = mask.into();
        self
    }

    /// Signs requests with this OpenSSH Ed25519 key file (which must exist).
    pub fn key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key = KeySource::File(path.into());
        self
    }

    /// Sends requests anonymously even if `~/.ollama/id_ed25519` exists.
    pub fn no_key(mut self) -> Self {
        self.key = KeySource::None;
        self
    }

    /// Parallel requests per operation (default `$OLLAMA_REGISTRY_MAXSTREAMS`,
    /// else the CPU count, at least 2; at most [`MAX_STREAMS`] are used).
    pub fn streams(mut self, n: usize) -> Self {
        self.streams = Some(n);
        self
    }

    /// Blobs over this many bytes are fetched in ranged chunks over parallel
    /// connections (default 128 MiB).
    pub fn chunk_threshold(mut self, bytes: u64) -> Self {
        self.chunk_threshold = bytes;
        self
    }

    /// The size of those ranged chunks (default 8 MiB, at least
    /// [`MIN_CHUNK_SIZE`]).
    pub fn chunk_size(mut self, bytes: u64) -> Self {
        self.chunk_size = bytes;
        self
    }

    /// Upload sessions send blobs over the chunking threshold in `PATCH`
    /// pieces of this size (default 64 MiB, at least [`MIN_CHUNK_SIZE`]).
    pub fn upload_chunk_size(mut self, bytes: u64) -> Self {
        self.upload_chunk_size = bytes;
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = Some(ua.into());
        self
    }

    /// How long connecting may take (default 30 s; more than zero).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// How long a connection may deliver nothing before it is abandoned and
    /// retried (default 30 s; more than zero).
    pub fn stall_timeout(mut self, t: Duration) -> Self {
        self.stall_timeout = t;
        self
    }

    /// The least a response body must deliver, in bytes per second averaged
    /// over each stall timeout's worth of waiting (default
    /// [`DEFAULT_MIN_SPEED`]); slower counts as a stall. 0 turns the rule
    /// off, leaving only the stall timeout.
    pub fn min_speed(mut self, bytes_per_second: u64) -> Self {
        self.min_speed = bytes_per_second;
        self
    }

    /// Attempts per request, the first included (default 6; 1 never
    /// retries; at least 1).
    pub fn retry_attempts(mut self, attempts: u32) -> Self {
        self.retry.attempts = attempts;
        self
    }

    /// The bound of the first backoff, doubled after each failure (default
    /// 250 ms).
    pub fn retry_base_delay(mut self, delay: Duration) -> Self {
        self.retry.base_delay = delay;
        self
    }

    /// The longest backoff between attempts, `Retry-After` included (default
    /// 30 s).
    pub fn retry_max_delay(mut self, delay: Duration) -> Self {
        self.retry.max_delay = delay;
        self
    }

    /// Sends every request through this proxy (`NO_PROXY` still applies).
    /// Without it, `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` are honoured.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = Proxy::Url(url.into());
        self
    }

    /// Connects straight to registries, ignoring the proxy variables.
    pub fn no_proxy(mut self) -> Self {
        self.proxy = Proxy::Direct;
        self
    }

    /// Trusts the CA certificates in this PEM data too.
    pub fn add_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_cas.push(CaSource::Pem(pem.into()));
        self
    }

    /// Trusts the CA certificates in this PEM file too (read by `build`).
    pub fn add_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.extra_cas.push(CaSource::File(path.into()));
        self
    }

    /// Accepts any TLS certificate from every registry.
    pub fn insecure(mut self, yes: bool) -> Self {
        self.insecure = yes;
        self
    }

    /// A user name and password for `host[:port]` (Basic challenges and token
    /// services).
    pub fn credential(mut self, host: &str, user: &str, password: &str) -> Self {
        self.credentials
            .push(Credential::password(host, user, password));
        self
    }

    /// Reads credentials from this Docker `config.json`, if it exists
    /// (default `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`):
    /// its `auths`, then the helpers `credHelpers` and `credsStore` name.
    pub fn docker_config(mut self, path: impl Into<PathBuf>) -> Self {
        self.docker_config = DockerConfigSource::File(path.into());
        self
    }

    /// Reads no Docker `config.json` at all.
    pub fn no_docker_config(mut self) -> Self {
        self.docker_config = DockerConfigSource::None;
        self
    }

    /// Tries this registry before the named one for pulls: `URL` for every
    /// host, or `HOST=URL` for one (e.g. `registry.ollama.ai=http://10.0.0.5:5000`).
    /// Without any, the mirrors of `$OLREG_MIRRORS` are used.
    pub fn mirror(mut self, spec: impl Into<String>) -> Self {
        self.mirrors.get_or_insert_with(Vec::new).push(spec.into());
        self
    }

    /// Sends Ollama's signed per-request token to `host[:port]` without
    /// waiting for it to ask, as to `registry.ollama.ai` and `ollama.com`
    /// (which always get it over TLS). Without any, the hosts of
    /// `$OLREG_SIGNED_HOSTS` (comma-separated) are used. Other registries
    /// get a signature only through their own challenge.
    pub fn signed_host(mut self, host: impl Into<String>) -> Self {
        self.signed_hosts
            .get_or_insert_with(Vec::new)
            .push(host.into());
        self
    }

    /// Bounds on what a manifest may claim (each more than zero).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The platform whose entry of an image index or manifest list a pull
    /// follows, as `os/arch[/variant]` (default: this machine's, e.g.
    /// `linux/amd64`). Checked by [`ClientBuilder::build`].
    pub fn platform(mut self, platform: impl Into<String>) -> Self {
        self.platform = Some(platform.into());
        self
    }

    /// Caps the bytes per second the whole client moves, shared by every
    /// stream of every operation, pulls and pushes alike; 0: no cap.
    /// Without it, `$OLREG_LIMIT_RATE` (e.g. `50M`) sets the cap, checked
    /// by [`ClientBuilder::build`].
    pub fn rate_limit(mut self, bytes_per_sec: u64) -> Self {
        self.rate_limit = Some(bytes_per_sec);
        self
    }

    /// Receives log lines of `level` and more severe, on the thread of the
    /// call that produced them.
    pub fn log(mut self, level: LogLevel, f: LogFn) -> Self {
        self.log = Some((level, f));
        self
    }

    /// Builds the client: checks the settings, loads the key and
    /// credentials, sets up TLS and starts the runtime.
    pub fn build(self) -> Result<Client> {
        Client::start(self.check()?)
    }

    /// Checks every setting and loads what they name. Each error names its
    /// option.
    fn check(self) -> Result<Checked> {
        let mask = NameMask::parse(&self.mask).map_err(named("name_mask"))?;
        let root = match self.models_dir.clone() {
            Some(dir) if dir.as_os_str().is_empty() => {
                return Err(invalid("models_dir", "the store root must not be empty"))
            }
            Some(dir) => dir,
            None => Store::default_root().map_err(named("models_dir"))?,
        };
        let asked_streams = match self.streams {
            Some(0) => return Err(invalid("streams", "at least 1 stream is needed")),
            Some(n) => n,
            None => default_streams(),
        };
        check_chunk("chunk_size", self.chunk_size)?;
        check_chunk("upload_chunk_size", self.upload_chunk_size)?;
        if let Some(ua) = &self.user_agent {
            reqwest::header::HeaderValue::from_str(ua).map_err(|_| {
                invalid("user_agent", format!("{ua:?} is not a valid header value"))
            })?;
        }
        check_positive("connect_timeout", self.connect_timeout)?;
        check_positive("stall_timeout", self.stall_timeout)?;
        if self.retry.attempts == 0 {
            return Err(invalid("retry_attempts", "at least 1 attempt is needed"));
        }
        if let Proxy::Url(url) = &self.proxy {
            reqwest::Proxy::all(url.as_str())
                .map_err(|e| invalid("proxy", format!("bad proxy URL {url:?}: {e}")))?;
        }
        let signer = self.load_key().map_err(named("key_file"))?;
        let mut extra_roots = Vec::new();
        for ca in &self.extra_cas {
            extra_roots.extend(load_ca(ca)?);
        }
        let docker = match self.docker_config {
            DockerConfigSource::Default => default_docker_config(),
            DockerConfigSource::File(path) => Some(path),
            DockerConfigSource::None => None,
        };
        let docker = match docker {
            Some(path) => DockerConfig::read(&path).map_err(named("docker_config"))?,
            None => DockerConfig::default(),
        };
        let credentials = Credentials::new(self.credentials, docker);
        let signed_hosts = SignedHosts::parse(
            &self
                .signed_hosts
                .unwrap_or_else(|| env_list(SIGNED_HOSTS_ENV)),
        )
        .map_err(named("signed_host"))?;
        let mirrors = self
            .mirrors
            .unwrap_or_else(|| env_list(mirror::MIRRORS_ENV))
            .iter()
            .map(|s| Mirror::parse(s))
            .collect::<Result<Vec<_>>>()
            .map_err(named("mirror"))?;
        let platform = match &self.platform {
            Some(text) => Platform::parse(text).map_err(named("platform"))?,
            None => Platform::host(),
        };
        let rate_limit = match self.rate_limit {
            Some(n) => n,
            None => env_rate_limit().map_err(named("rate_limit"))?,
        };
        let limits = self.limits;
        if limits.max_manifest_bytes == 0 || limits.max_blob_size == 0 || limits.max_layers == 0 {
            return Err(invalid("limits", "every limit must be more than zero"));
        }
        Ok(Checked {
            mask,
            root,
            asked_streams,
            settings: Settings {
                streams: asked_streams.min(MAX_STREAMS),
                chunk_threshold: self.chunk_threshold,
                chunk_size: self.chunk_size,
                upload_chunk_size: self.upload_chunk_size,
                limits,
                platform,
                mirrors,
            },
            net: NetConfig {
                user_agent: self.user_agent.unwrap_or_else(default_user_agent),
                connect_timeout: self.connect_timeout,
                stall_timeout: self.stall_timeout,
                min_speed: self.min_speed,
                retry: self.retry,
                insecure: self.insecure,
                proxy: self.proxy,
                extra_roots,
                rate_limit,
            },
            signer,
            signed_hosts,
            credentials,
            log: self.log,
        })
    }

    /// The signing key the key setting names, if any.
    fn load_key(&self) -> Result<Option<Signer>> {
        match &self.key {
            KeySource::Default => match home_dir() {
                Some(home) => Signer::load(&home.join(".ollama").join("id_ed25519")),
                None => Ok(None),
            },
            KeySource::File(path) => Signer::load(path)?.map(Some).ok_or_else(|| {
                Error::invalid_argument(format!("key file {} does not exist", path.display()))
            }),
            KeySource::None => Ok(None),
        }
    }
}

/// Names `option` in an error.
fn named(option: &'static str) -> impl Fn(Error) -> Error {
    move |e| e.with_option(option)
}

/// An invalid value of `option`.
fn invalid(option: &'static str, reason: impl Into<String>) -> Error {
    Error::invalid_argument(reason).with_option(option)
}

fn check_chunk(option: &'static str, bytes: u64) -> Result<()> {
    if bytes < MIN_CHUNK_SIZE {
        return Err(invalid(
            option,
            format!("{bytes} bytes is below the minimum of {MIN_CHUNK_SIZE} (1 MiB)"),
        ));
    }
    Ok(())
}

fn check_positive(option: &'static str, t: Duration) -> Result<()> {
    if t.is_zero() {
        return Err(invalid(option, "must be more than zero"));
    }
    Ok(())
}

/// The certificates of one extra CA setting.
fn load_ca(ca: &CaSource) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    match ca {
        CaSource::Pem(pem) => tls::parse_pem_certificates(pem).map_err(named("ca_pem")),
        CaSource::File(path) => {
            let pem = user_file::read(path, MAX_CA_FILE, "CA file")
                .and_then(|read| {
                    read.map(|(pem, _)| pem)
                        .ok_or_else(|| Error::io("open", path, std::io::ErrorKind::NotFound.into()))
                })
                .map_err(|e| e.with_option("ca_file"))?;
            tls::parse_pem_certificates(&pem).map_err(|e| match e.kind() {
                ErrorKind::InvalidArgument { reason } => {
                    invalid("ca_file", format!("{}: {reason}", path.display()))
                }
                _ => e.with_option("ca_file"),
            })
        }
    }
}

/// Settings checked by [`ClientBuilder::build`], with the files they name
/// loaded: what a client starts from.
pub(super) struct Checked {
    pub mask: NameMask,
    pub root: PathBuf,
    /// Streams asked for, before the cap of [`MAX_STREAMS`].
    pub asked_streams: usize,
    pub settings: Settings,
    pub net: NetConfig,
    pub signer: Option<Signer>,
    pub signed_hosts: SignedHosts,
    pub credentials: Credentials,
    pub log: Option<(LogLevel, LogFn)>,
}

/// The cap `$OLREG_LIMIT_RATE` sets (0 if unset or blank), its errors
/// naming the variable.
fn env_rate_limit() -> Result<u64> {
    match std::env::var(RATE_LIMIT_ENV) {
        Ok(text) if !text.trim().is_empty() => parse_rate(&text).map_err(|e| match e.kind() {
            ErrorKind::InvalidArgument { reason } => {
                Error::invalid_argument(format!("${RATE_LIMIT_ENV}: {reason}"))
            }
            _ => e,
        }),
        _ => Ok(0),
    }
}

/// The comma-separated items of environment variable `var` (none if unset).
fn env_list(var: &str) -> Vec<String> {
    std::env::var(var)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn default_streams() -> usize {
    std::env::var(STREAMS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .max(2)
        })
}

/// ollama.com answers "needs upgrade" to agents not shaped like Ollama's, so
/// the default is Ollama-shaped and names olreg.
fn default_user_agent() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!(
        "ollama/0.12.0 ({arch} {}) olreg/{}",
        std::env::consts::OS,
        env!("CARGO_PKG_VERSION")
    )
}

fn default_docker_config() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(Path::new(&dir).join("config.json"));
    }
    home_dir().map(|h| h.join(".docker").join("config.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(b: ClientBuilder) -> Error {
        let b = b
            .models_dir("/nonexistent/olreg")
            .no_key()
            .no_docker_config();
        match b.check() {
            Ok(_) => panic!("accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn each_bad_setting_is_refused_by_name() {
        let b = ClientBuilder::new;
        let cases = [
            (refused(b().streams(0)), "streams"),
            (refused(b().chunk_size(MIN_CHUNK_SIZE - 1)), "chunk_size"),
            (refused(b().upload_chunk_size(0)), "upload_chunk_size"),
            (refused(b().retry_attempts(0)), "retry_attempts"),
            (refused(b().stall_timeout(Duration::ZERO)), "stall_timeout"),
            (refused(b().user_agent("a\nb")), "user_agent"),
            (refused(b().mirror("ftp://x")), "mirror"),
            (refused(b().add_ca_pem("no")), "ca_pem"),
            (refused(b().name_mask("bad mask!")), "name_mask"),
        ];
        for (err, option) in cases {
            assert_eq!(err.option(), Some(option), "{err}");
            assert!(err.to_string().starts_with(&format!("option {option}: ")));
        }
        let empty = ClientBuilder::new().models_dir("").check().err().unwrap();
        assert_eq!(empty.option(), Some("models_dir"));
    }

    #[test]
    fn user_agent_is_ollama_shaped() {
        let ua = default_user_agent();
        assert!(ua.starts_with("ollama/"), "{ua}");
        assert!(ua.contains("olreg/"), "{ua}");
    }
}
