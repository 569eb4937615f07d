//! An Ollama-protocol registry for tests: a registry host on `127.0.0.1`
//! and a blob store ("CDN") host on `127.0.0.2`, in memory, with fault
//! injection and a log of every request.
//!
//! ```no_run
//! use olreg_testreg::{Fault, FaultKind, Options, Target, TestRegistry};
//!
//! let reg = TestRegistry::start(Options::default());
//! let model = reg.add_model("library/tiny:latest", &[1024, 10], 1);
//! reg.inject(Fault::new(Target::BlobStore { digest: None }, FaultKind::ShortBody));
//! // … pull `reg.host()/library/tiny:latest` with the client under test …
//! assert!(reg.requests().iter().all(|r| r.header("authorization").is_none()));
//! # let _ = model;
//! ```

// Handlers return early with a ready `Response` as their error: it is the
// answer, not an exceptional value, and boxing it would buy nothing.
#![allow(clippy::result_large_err)]

mod auth;
mod body;
mod content;
mod control;
mod digest;
mod faults;
mod handlers;
mod model;
mod options;
mod record;
mod respond;
mod routes;
mod server;
mod state;
mod text_bytes;
mod tls;

use std::sync::Arc;

use bytes::Bytes;

pub use faults::{ErrorBody, Fault, FaultKind, Target};
pub use model::{BlobInfo, Model, CONFIG_MEDIA_TYPE, LAYER_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
pub use options::{Auth, BlobMode, Options, Realm, UploadMode};
pub use record::{RequestRecord, Server};

use state::{lock, Endpoints, State};

/// A running test registry. Both servers run on a private tokio runtime on
/// background threads, so it works from plain `#[test]`s and from inside
/// another runtime alike; dropping it stops them.
pub struct TestRegistry {
    state: Arc<State>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for TestRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRegistry")
            .field("url", &self.url())
            .field("blob_store_url", &self.blob_store_url())
            .field("options", &self.state.opts)
            .finish()
    }
}

impl TestRegistry {
    /// Starts both servers. Panics if they cannot be started (no free port,
    /// no loopback): a test cannot go on without them.
    pub fn start(opts: Options) -> TestRegistry {
        TestRegistry::try_start(opts)
            .unwrap_or_else(|why| panic!("olreg-testreg: cannot start: {why}"))
    }

    /// Starts both servers, or says why not.
    pub fn try_start(opts: Options) -> Result<TestRegistry, String> {
        let registry = std::net::TcpListener::bind(("127.0.0.1", opts.port))
            .map_err(|e| format!("binding 127.0.0.1:{}: {e}", opts.port))?;
        // The blob store lives on another host, like ollama.com's CDN, so
        // that "credentials must not follow a redirect to another host" is
        // actually tested. Linux routes all of 127/8 to loopback; elsewhere
        // fall back to the same address under the name `localhost`.
        let (store, store_name) =
            match std::net::TcpListener::bind(("127.0.0.2", opts.blob_store_port)) {
                Ok(listener) => (listener, "127.0.0.2"),
                Err(_) => (
                    std::net::TcpListener::bind(("127.0.0.1", opts.blob_store_port))
                        .map_err(|e| format!("binding the blob store: {e}"))?,
                    "localhost",
                ),
            };
        let port = |l: &std::net::TcpListener| {
            l.local_addr()
                .map(|a| a.port())
                .map_err(|e| format!("local address: {e}"))
        };
        let endpoints = Endpoints {
            scheme: if opts.tls { "https" } else { "http" },
            registry_host: format!("127.0.0.1:{}", port(&registry)?),
            blob_store_host: format!("{store_name}:{}", port(&store)?),
        };
        for listener in [&registry, &store] {
            listener
                .set_nonblocking(true)
                .map_err(|e| format!("non-blocking socket: {e}"))?;
        }
        let tls = if opts.tls { Some(tls::make()?) } else { None };
        let ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
        let acceptor = tls.map(|t| t.acceptor);

        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(2);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("olreg-testreg")
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let state = Arc::new(State::new(opts, endpoints, ca_pem));
        runtime.spawn(server::serve(
            registry,
            Server::Registry,
            state.clone(),
            acceptor.clone(),
        ));
        runtime.spawn(server::serve(
            store,
            Server::BlobStore,
            state.clone(),
            acceptor,
        ));
        Ok(TestRegistry {
            state,
            runtime: Some(runtime),
        })
    }

    /// `http://127.0.0.1:PORT` (`https` with TLS).
    pub fn url(&self) -> String {
        self.state.endpoints.registry_url()
    }

    /// `127.0.0.1:PORT`, the host part of model names on this registry.
    pub fn host(&self) -> String {
        self.state.endpoints.registry_host.clone()
    }

    /// `http://127.0.0.2:PORT` (`https` with TLS).
    pub fn blob_store_url(&self) -> String {
        self.state.endpoints.blob_store_url()
    }

    /// `127.0.0.2:PORT`.
    pub fn blob_store_host(&self) -> String {
        self.state.endpoints.blob_store_host.clone()
    }

    /// PEM of the CA that signed the servers' certificate, when serving TLS.
    pub fn ca_pem(&self) -> Option<String> {
        self.state.ca_pem.clone()
    }

    /// The options it was started with.
    pub fn options(&self) -> &Options {
        &self.state.opts
    }

    /// Stores a blob; returns `sha256:<hex>`.
    pub fn add_blob(&self, data: impl Into<Bytes>) -> String {
        self.state.add_blob(data.into())
    }

    /// Stores raw manifest bytes (which may be invalid) under
    /// `repo` (`ns/model`) and `reference`; returns the digest of the bytes.
    pub fn put_manifest(&self, repo: &str, reference: &str, body: impl Into<Bytes>) -> String {
        self.state.put_manifest(repo, reference, body.into())
    }

    /// Creates a model `ns/model:tag` with layers of the given sizes filled
    /// deterministically from `seed`, a config blob and a manifest. Panics
    /// on a malformed name (a bug in the test).
    pub fn add_model(&self, name: &str, layer_sizes: &[u64], seed: u64) -> Model {
        self.state
            .add_model(name, layer_sizes, seed)
            .unwrap_or_else(|why| panic!("olreg-testreg: add_model: {why}"))
    }

    /// The blob with this digest (either spelling).
    pub fn blob(&self, digest: &str) -> Option<Bytes> {
        self.state.blob(&digest::normalize_digest(digest))
    }

    /// The manifest bytes of `repo` under a tag or digest.
    pub fn manifest(&self, repo: &str, reference: &str) -> Option<Bytes> {
        self.state.manifest(repo, reference).map(|m| m.body)
    }

    /// The Content-Type a manifest was pushed with over HTTP (`None` if it
    /// was added through this API or is unknown).
    pub fn manifest_content_type(&self, repo: &str, reference: &str) -> Option<String> {
        self.state
            .manifest(repo, reference)
            .and_then(|m| m.pushed_content_type)
    }

    /// Adds a fault after the existing ones.
    pub fn inject(&self, fault: Fault) {
        lock(&self.state.faults).push(fault);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        lock(&self.state.faults).clear();
    }

    /// Every request both servers received (except the control API), in
    /// arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.state.log).snapshot()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.state.log).clear();
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        // Never blocks, so dropping inside another runtime is fine.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
