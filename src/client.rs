//! The client: owns the tokio runtime, the HTTP clients, the settings and
//! the key, and runs operations.
//!
//! Every operation is a blocking call, like libcurl's easy interface: the job
//! runs on the client's runtime while the calling thread waits for its
//! events and runs the caller's progress and log callbacks, so callbacks
//! always run on the caller's own thread. The calling thread never enters
//! the runtime, so a call from inside another async runtime is safe, and a
//! call from inside one of this client's callbacks is refused (`Reentrant`).

use std::cell::Cell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt as _;
use tokio_util::sync::CancellationToken;

use crate::cancel::CancelToken;
use crate::context::{blocking, Mirror, Op, Settings};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Limits, Manifest};
use crate::name::{Name, NameMask, Scheme, DEFAULT_MASK};
use crate::platform::Platform;
use crate::progress::{Event, LogLevel, Progress, ProgressEvent, Reporter};
use crate::remote::credentials::{Credential, Credentials, DockerConfig};
use crate::remote::retry::RetryPolicy;
use crate::remote::session::Access;
use crate::remote::signer::{SignedHosts, Signer};
use crate::remote::{tls, NetConfig, Proxy, Transport};
use crate::store::{home_dir, PruneReport, Store, VerifyIssue};
use crate::{copy, layout, pull, push};

/// The environment variable that sets the default number of streams.
pub const STREAMS_ENV: &str = "OLLAMA_REGISTRY_MAXSTREAMS";
/// The environment variable naming mirrors (comma-separated `URL` or
/// `HOST=URL`), used when no mirror is set in the options.
pub const MIRRORS_ENV: &str = "OLREG_MIRRORS";
/// The environment variable listing more hosts that take Ollama's signed
/// token unasked (comma-separated `host[:port]`), used when the options
/// list none.
pub const SIGNED_HOSTS_ENV: &str = "OLREG_SIGNED_HOSTS";

/// The most parallel requests one operation makes. Each connection holds up
/// to ~0.8 MiB of buffers; past 24 connections neither loopback nor a real
/// network gets faster, while memory passes the 48 MiB the library allows
/// itself (see the benchmark).
pub const MAX_STREAMS: usize = 24;

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
    extra_ca_pem: Vec<Vec<u8>>,
    insecure: bool,
    credentials: Vec<Credential>,
    docker_config: Option<Option<PathBuf>>,
    mirrors: Option<Vec<String>>,
    signed_hosts: Option<Vec<String>>,
    limits: Limits,
    platform: Option<String>,
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
            extra_ca_pem: Vec::new(),
            insecure: false,
            credentials: Vec::new(),
            docker_config: None,
            mirrors: None,
            signed_hosts: None,
            limits: Limits::default(),
            platform: None,
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

    /// Blobs over `threshold` bytes are fetched in ranged chunks of
    /// `chunk_size` (defaults 128 MiB and 8 MiB).
    pub fn chunking(mut self, threshold: u64, chunk_size: u64) -> Self {
        self.chunk_threshold = threshold;
        self.chunk_size = chunk_size;
        self
    }

    /// Like [`ClientBuilder::chunking`], keeping the current value for a 0.
    pub fn chunking_or_default(mut self, threshold: u64, chunk_size: u64) -> Self {
        if threshold > 0 {
            self.chunk_threshold = threshold;
        }
        if chunk_size > 0 {
            self.chunk_size = chunk_size;
        }
        self
    }

    /// Upload sessions send blobs over the chunking threshold in `PATCH`
    /// pieces of this size (default 64 MiB).
    pub fn upload_chunk_size(mut self, size: u64) -> Self {
        self.upload_chunk_size = size;
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = Some(ua.into());
        self
    }

    /// How long connecting may take (default 30 s).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// How long a connection may deliver nothing before it is abandoned and
    /// retried (default 30 s).
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

    /// Attempts per request (the first included) and the first backoff.
    pub fn retries(mut self, attempts: u32, base_delay: Duration) -> Self {
        self.retry.attempts = attempts.max(1);
        self.retry.base_delay = base_delay;
        self
    }

    /// Attempts, first and longest backoff in milliseconds; 0 keeps the
    /// current value of each.
    pub fn retry_settings(mut self, attempts: u32, base_delay_ms: u64, max_delay_ms: u64) -> Self {
        if attempts > 0 {
            self.retry.attempts = attempts;
        }
        if base_delay_ms > 0 {
            self.retry.base_delay = Duration::from_millis(base_delay_ms);
        }
        if max_delay_ms > 0 {
            self.retry.max_delay = Duration::from_millis(max_delay_ms);
        }
        self
    }

    /// The longest backoff between attempts (default 30 s).
    pub fn max_retry_delay(mut self, max: Duration) -> Self {
        self.retry.max_delay = max;
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
        self.extra_ca_pem.push(pem.into());
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

    /// Reads credentials from this Docker `config.json` (default
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`): its
    /// `auths`, then the helpers `credHelpers` and `credsStore` name;
    /// `None` reads none.
    pub fn docker_config(mut self, path: Option<PathBuf>) -> Self {
        self.docker_config = Some(path);
        self
    }

    /// Tries this registry before the named one for pulls: `URL` for every
    /// host, or `HOST=URL` for one (e.g. `registry.ollama.ai=http://10.0.0.5:5000`).
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

    /// Bounds on what a manifest may claim.
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

    /// Receives log lines of `level` and more severe, on the thread of the
    /// call that produced them.
    pub fn log(mut self, level: LogLevel, f: LogFn) -> Self {
        self.log = Some((level, f));
        self
    }

    /// Builds the client: loads the key and credentials, sets up TLS and
    /// starts the runtime.
    pub fn build(self) -> Result<Client> {
        let mask = NameMask::parse(&self.mask)?;
        let root = match self.models_dir {
            Some(dir) => dir,
            None => Store::default_root()?,
        };
        let streams = match self.streams {
            Some(0) => return Err(Error::invalid_argument("streams must be at least 1")),
            Some(n) => n,
            None => default_streams(),
        };
        let asked_streams = streams;
        let streams = streams.min(MAX_STREAMS);
        if self.chunk_size == 0 || self.upload_chunk_size == 0 {
            return Err(Error::invalid_argument(
                "chunk sizes must be at least 1 byte",
            ));
        }
        let signer = match &self.key {
            KeySource::Default => match home_dir() {
                Some(home) => Signer::load(&home.join(".ollama").join("id_ed25519"))?,
                None => None,
            },
            KeySource::File(path) => Some(Signer::load(path)?.ok_or_else(|| {
                Error::invalid_argument(format!("key file {} does not exist", path.display()))
            })?),
            KeySource::None => None,
        };
        let docker_config = match self.docker_config {
            Some(path) => path,
            None => default_docker_config(),
        };
        let docker = match docker_config {
            Some(path) => DockerConfig::read(&path)?,
            None => DockerConfig::default(),
        };
        let credentials = Credentials::new(self.credentials, docker);
        let signed_hosts = SignedHosts::parse(
            &self
                .signed_hosts
                .unwrap_or_else(|| env_list(SIGNED_HOSTS_ENV)),
        )?;
        let mut extra_roots = Vec::new();
        for pem in &self.extra_ca_pem {
            extra_roots.extend(tls::parse_pem_certificates(pem)?);
        }
        let mirror_specs = self.mirrors.unwrap_or_else(|| env_list(MIRRORS_ENV));
        let mirrors = mirror_specs
            .iter()
            .map(|s| parse_mirror(s))
            .collect::<Result<Vec<_>>>()?;
        let platform = match &self.platform {
            Some(text) => Platform::parse(text)?,
            None => Platform::host(),
        };
        let log_level = self.log.as_ref().map_or(LogLevel::Error, |(l, _)| *l);
        let net = NetConfig {
            user_agent: self.user_agent.unwrap_or_else(default_user_agent),
            connect_timeout: self.connect_timeout,
            stall_timeout: self.stall_timeout,
            min_speed: self.min_speed,
            retry: self.retry,
            insecure: self.insecure,
            proxy: self.proxy,
            extra_roots,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(
                std::thread::available_parallelism()
                    .map_or(2, |n| n.get())
                    .max(2),
            )
            .thread_name("olreg-worker")
            .on_thread_start(crate::remote::block_sigpipe)
            .enable_all()
            .build()
            .map_err(|e| Error::invalid_argument(format!("cannot start the runtime: {e}")))?;
        // The TLS stack is built inside the runtime: the HTTP client spawns
        // its connection pool there.
        let transport = {
            let _guard = runtime.enter();
            Arc::new(Transport::new(net, signer, signed_hosts, credentials)?)
        };
        let client = Client {
            runtime: Some(runtime),
            transport,
            store: Store::new(root),
            settings: Arc::new(Settings {
                mask,
                streams,
                chunk_threshold: self.chunk_threshold,
                chunk_size: self.chunk_size,
                upload_chunk_size: self.upload_chunk_size,
                limits: self.limits,
                platform,
                mirrors,
                log_level,
            }),
            log: self.log.map(|(_, f)| f),
        };
        let key_note = match &client.transport.signer {
            Some(s) => format!(
                "signing with key {}…",
                &s.public_key()[..s.public_key().len().min(24)]
            ),
            None => "no key: requests are anonymous".to_owned(),
        };
        if let Some(warning) = client.transport.signer.as_ref().and_then(|s| s.warning()) {
            client.log_here(LogLevel::Warn, warning);
        }
        if asked_streams > streams {
            client.log_here(
                LogLevel::Info,
                &format!(
                    "{asked_streams} streams asked for, {streams} used (the most olreg opens)"
                ),
            );
        }
        client.log_here(
            LogLevel::Info,
            &format!(
                "store {}, {} streams, {key_note}",
                client.store.root().display(),
                client.settings.streams
            ),
        );
        Ok(client)
    }
}

/// A registry client bound to one store. Safe to share between threads:
/// any number of operations may run at once.
pub struct Client {
    runtime: Option<tokio::runtime::Runtime>,
    transport: Arc<Transport>,
    store: Store,
    settings: Arc<Settings>,
    log: Option<LogFn>,
}

/// How the caller follows one operation: a progress callback (return `false`
/// to cancel) and a cancel token another thread may fire.
#[derive(Default)]
pub struct Watch<'a> {
    pub progress: Option<&'a mut (dyn FnMut(&Progress) -> bool + 'a)>,
    pub cancel: Option<&'a CancelToken>,
}

thread_local! {
    /// Set while this thread runs one of the library's callbacks.
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` marked as a callback, so a nested blocking call is refused.
fn as_callback<T>(f: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            IN_CALLBACK.with(|c| c.set(false));
        }
    }
    IN_CALLBACK.with(|c| c.set(true));
    let _reset = Reset;
    f()
}

impl Client {
    /// A client with the default settings.
    pub fn new() -> Result<Client> {
        ClientBuilder::new().build()
    }

    /// Starts configuring a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// The store this client works on.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Parses and completes a name with this client's mask.
    pub fn parse_name(&self, name: &str) -> Result<Name> {
        Name::parse(name, &self.settings.mask)
    }

    /// Parses a name that must be a tag, not `@digest` (`what` says whose,
    /// for the error).
    fn parse_tagged(&self, name: &str, what: &str) -> Result<Name> {
        let parsed = self.parse_name(name)?;
        if parsed.digest().is_some() {
            return Err(Error::invalid_name(
                name,
                format!("{what} is named by a tag, not @digest"),
            ));
        }
        Ok(parsed)
    }

    /// Downloads `name`'s manifest and every blob it needs into the store.
    pub fn pull(&self, name: &str, watch: Watch<'_>) -> Result<Manifest> {
        let name = self.parse_name(name)?;
        self.run(watch, move |op| pull::pull(op, name))
    }

    /// Uploads the local model `from` (default `name`) as `name`.
    pub fn push(&self, name: &str, from: Option<&str>, watch: Watch<'_>) -> Result<Manifest> {
        let target = self.parse_name(name)?;
        let source = match from {
            Some(from) => self.parse_name(from)?,
            None => target.clone(),
        };
        if target.digest().is_some() || source.digest().is_some() {
            return Err(Error::invalid_name(
                name,
                "a name with @digest cannot be pushed",
            ));
        }
        self.run(watch, move |op| push::push(op, target, source))
    }

    /// Fetches `name`'s manifest from its registry without storing anything.
    pub fn resolve(&self, name: &str, watch: Watch<'_>) -> Result<Manifest> {
        let name = self.parse_name(name)?;
        self.run(watch, move |op| async move {
            let cancel = op.cancel.clone();
            pull::resolve(&op, &name, Access::Pull, &cancel)
                .await
                .map(|(_, manifest, _)| manifest)
        })
    }

    /// Copies `src` from its registry to `dst` on another (or the same)
    /// registry without touching the store: blobs stream through, checked
    /// against their digests on the way; blobs `dst` has are skipped, blobs
    /// on the same registry are mounted; the manifest's bytes are `PUT`
    /// unchanged, and only after every blob is in place.
    pub fn copy(&self, src: &str, dst: &str, watch: Watch<'_>) -> Result<Manifest> {
        let source = self.parse_name(src)?;
        let target = self.parse_tagged(dst, "a copy's destination")?;
        self.run(watch, move |op| copy::copy(op, source, target))
    }

    /// Writes the local model `name` into the OCI image layout `dest` (a
    /// directory, or a tar archive when the name ends in `.tar`), adding to
    /// the layout when it exists. Its index entry is named by the tag.
    pub fn export(&self, name: &str, dest: impl AsRef<Path>, watch: Watch<'_>) -> Result<Manifest> {
        let name = self.parse_tagged(name, "an exported model")?;
        let dest = dest.as_ref().to_owned();
        self.run(watch, move |op| layout::export(op, name, dest))
    }

    /// Reads an image from the OCI image layout `src` (a directory or a tar
    /// archive) into the store as `name`. `reference` picks the index entry
    /// (its ref name or full name) when the layout holds several.
    pub fn import(
        &self,
        src: impl AsRef<Path>,
        name: &str,
        reference: Option<&str>,
        watch: Watch<'_>,
    ) -> Result<Manifest> {
        let name = self.parse_tagged(name, "an imported model")?;
        let src = src.as_ref().to_owned();
        let reference = reference.map(str::to_owned);
        self.run(watch, move |op| layout::import(op, src, name, reference))
    }

    /// Every local model, sorted.
    pub fn list(&self) -> Result<Vec<Name>> {
        self.guard()?;
        self.store.list()
    }

    /// The exact bytes of the local manifest of `name`.
    pub fn show(&self, name: &str) -> Result<Vec<u8>> {
        self.guard()?;
        let name = self.parse_name(name)?;
        self.store
            .read_manifest(&name, &self.settings.limits)
            .map_err(|e| e.with_model(&name))
    }

    /// Removes `name` from the store; its blobs stay until `prune`.
    pub fn remove(&self, name: &str) -> Result<()> {
        self.guard()?;
        let name = self.parse_name(name)?;
        self.store
            .remove_manifest(&name)
            .map_err(|e| e.with_model(&name))
    }

    /// Deletes blobs no manifest or running operation needs.
    pub fn prune(&self) -> Result<PruneReport> {
        self.guard()?;
        self.store.prune()
    }

    /// Re-hashes every blob (or `name`'s) and returns the ones that are
    /// missing, damaged or of the wrong size.
    pub fn verify(&self, name: Option<&str>, watch: Watch<'_>) -> Result<Vec<VerifyIssue>> {
        let name = name.map(|n| self.parse_name(n)).transpose()?;
        self.run(watch, move |op| verify(op, name))
    }

    fn guard(&self) -> Result<()> {
        if IN_CALLBACK.with(Cell::get) {
            return Err(Error::new(ErrorKind::Reentrant));
        }
        Ok(())
    }

    fn log_here(&self, level: LogLevel, message: &str) {
        if let Some(log) = &self.log {
            if level <= self.settings.log_level {
                as_callback(|| log(level, message));
            }
        }
    }

    /// Runs `job` on the runtime and serves its events on this thread.
    fn run<T, F, Fut>(&self, watch: Watch<'_>, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Op>) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        self.guard()?;
        let runtime = self
            .runtime
            .as_ref()
            .expect("the runtime lives as long as the client");
        let (tx, rx) = mpsc::channel();
        let reporter = Arc::new(Reporter::new(tx, self.settings.log_level));
        let cancel = match watch.cancel {
            Some(token) => token.0.child_token(),
            None => CancellationToken::new(),
        };
        let op = Arc::new(Op {
            transport: self.transport.clone(),
            store: self.store.clone(),
            settings: self.settings.clone(),
            reporter: reporter.clone(),
            cancel: cancel.clone(),
        });
        let result_slot: Arc<Mutex<Option<Result<T>>>> = Arc::new(Mutex::new(None));
        let slot = result_slot.clone();
        let future = job(op);
        runtime.spawn(async move {
            let ticker = {
                let reporter = reporter.clone();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_millis(100));
                    loop {
                        tick.tick().await;
                        reporter.flush();
                    }
                })
            };
            let result = AssertUnwindSafe(future)
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".to_owned());
                    Err(Error::new(ErrorKind::Internal { message }))
                });
            ticker.abort();
            reporter.flush();
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
            reporter.finished();
        });

        let mut progress = watch.progress;
        let mut stopped_by_callback = false;
        while let Ok(event) = rx.recv() {
            match event {
                Event::Progress(p) => {
                    if let (Some(cb), false) = (progress.as_mut(), stopped_by_callback) {
                        if !as_callback(|| cb(&p)) {
                            stopped_by_callback = true;
                            cancel.cancel();
                        }
                    }
                }
                Event::Log(level, message) => self.log_here(level, &message),
                Event::Finished => break,
            }
        }
        let taken = result_slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        taken.unwrap_or_else(|| {
            Err(Error::new(ErrorKind::Internal {
                message: "the operation ended without a result".into(),
            }))
        })
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Never blocks, and is safe from any thread, even inside a runtime.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Re-hashes blobs on blocking threads, one per core.
async fn verify(op: Arc<Op>, name: Option<Name>) -> Result<Vec<VerifyIssue>> {
    let store = op.store.clone();
    let targets = {
        let (name, limits) = (name.clone(), op.settings.limits);
        blocking(move || store.verify_targets(name.as_ref(), &limits)).await
    };
    let targets = match (targets, &name) {
        (Err(e), Some(n)) => return Err(e.with_model(n)),
        (r, _) => r?,
    };
    let layers: Vec<crate::manifest::Layer> = targets
        .iter()
        .map(|t| crate::manifest::Layer {
            digest: t.digest,
            size: t
                .size
                .or_else(|| op.store.blob_size(&t.digest))
                .unwrap_or(0),
            media_type: String::new(),
        })
        .collect();
    op.reporter.resolved(&layers);
    let stop = Arc::new(AtomicBool::new(false));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let limit = Arc::new(tokio::sync::Semaphore::new(cores));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, target) in targets.into_iter().enumerate() {
        let (op, stop, limit) = (op.clone(), stop.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit
                .acquire_owned()
                .await
                .map_err(|_| Error::cancelled())?;
            op.reporter.blob(i, ProgressEvent::Started, None);
            let store = op.store.clone();
            let reporter = op.reporter.clone();
            let found =
                blocking(move || store.verify_blob(target, &stop, |n| reporter.add_bytes(i, n)))
                    .await?;
            match &found {
                Some(issue) => op
                    .reporter
                    .blob(i, ProgressEvent::Failed, Some(issue.to_string())),
                None => op.reporter.blob(i, ProgressEvent::Done, None),
            }
            Ok::<_, Error>(found)
        });
    }
    let mut issues = Vec::new();
    let mut failure = None;
    loop {
        let next = tokio::select! {
            biased;
            _ = op.cancel.cancelled() => {
                stop.store(true, Ordering::Relaxed);
                failure.get_or_insert_with(Error::cancelled);
                tasks.join_next().await
            }
            n = tasks.join_next() => n,
        };
        let Some(joined) = next else { break };
        match joined {
            Ok(Ok(Some(issue))) => issues.push(issue),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(e) => {
                failure.get_or_insert(Error::new(ErrorKind::Internal {
                    message: e.to_string(),
                }));
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    issues.sort_by_key(|i| i.digest);
    op.reporter.operation(ProgressEvent::Finished);
    Ok(issues)
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

/// `URL` or `HOST=URL`, where URL is `scheme://host[:port]`.
fn parse_mirror(spec: &str) -> Result<Mirror> {
    let bad = |why: &str| Error::invalid_argument(format!("mirror {spec:?}: {why}"));
    let (for_host, url) = match spec.split_once('=') {
        Some((host, url)) => (Some(host.trim().to_owned()), url.trim()),
        None => (None, spec.trim()),
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("expected scheme://host[:port]"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "https" => Scheme::Https,
        "http" => Scheme::Http,
        "https+insecure" => Scheme::HttpsInsecure,
        _ => return Err(bad("the scheme must be https, http or https+insecure")),
    };
    let host = rest.trim_end_matches('/');
    // Validate the host as a name would be.
    Name::parse(&format!("{host}/ns/m"), &NameMask::default()).map_err(|_| bad("invalid host"))?;
    Ok(Mirror {
        for_host,
        scheme,
        host: host.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_specs() {
        let m = parse_mirror("http://127.0.0.1:5000").unwrap();
        assert_eq!(
            (m.for_host, m.scheme, m.host.as_str()),
            (None, Scheme::Http, "127.0.0.1:5000")
        );
        let m = parse_mirror("registry.ollama.ai=https://mirror.example/").unwrap();
        assert_eq!(m.for_host.as_deref(), Some("registry.ollama.ai"));
        assert_eq!(m.host, "mirror.example");
        assert!(parse_mirror("mirror.example").is_err());
        assert!(parse_mirror("ftp://mirror.example").is_err());
        assert!(parse_mirror("http://mirror.example/path").is_err());
    }

    #[test]
    fn user_agent_is_ollama_shaped() {
        let ua = default_user_agent();
        assert!(ua.starts_with("ollama/"), "{ua}");
        assert!(ua.contains("olreg/"), "{ua}");
    }
}
