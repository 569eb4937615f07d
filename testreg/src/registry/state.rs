//! Everything the two servers share: stored content, upload sessions, issued
//! signatures and tokens, faults and the request log.
//!
//! All of it sits behind short-lived std locks (never held across an
//! `.await`), so the synchronous test API and the async handlers can use it
//! alike.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use sha2::Sha256;

use super::digest::sha256_digest;
use super::faults::{FaultKind, FaultTable, Op};
use super::model::{generate, Model};
use super::options::Options;
use super::record::RequestLog;

/// A manifest as pushed or added: its exact bytes and the Content-Type it
/// was pushed with (if pushed over HTTP).
#[derive(Clone, Debug)]
pub(crate) struct StoredManifest {
    pub body: Bytes,
    pub digest: String,
    pub pushed_content_type: Option<String>,
}

/// A presigned upload URL handed out by `POST .../blobs/uploads/`.
#[derive(Clone, Debug)]
pub(crate) struct Presigned {
    pub digest: String,
    /// The exact path and query issued; the PUT must use it verbatim.
    pub path_and_query: String,
}

/// An OCI upload session (`UploadMode::Session`).
#[derive(Debug)]
pub(crate) struct Session {
    pub repo: String,
    /// The `_state` value last issued; the next request must carry it.
    pub state: String,
    pub data: BytesMut,
    pub hasher: Sha256,
}

/// A token issued by `GET /token`.
#[derive(Clone, Debug)]
pub(crate) struct Grant {
    /// `(repository, action)` pairs, e.g. `("library/x", "pull")`.
    pub access: Vec<(String, String)>,
    pub expires: Instant,
}

/// Where the servers are, for building absolute URLs.
#[derive(Clone, Debug)]
pub(crate) struct Endpoints {
    pub scheme: &'static str,
    /// `127.0.0.1:PORT`.
    pub registry_host: String,
    /// `127.0.0.2:PORT`.
    pub blob_store_host: String,
}

impl Endpoints {
    pub fn registry_url(&self) -> String {
        format!("{}://{}", self.scheme, self.registry_host)
    }

    pub fn blob_store_url(&self) -> String {
        format!("{}://{}", self.scheme, self.blob_store_host)
    }
}

/// The shared state.
#[derive(Debug)]
pub(crate) struct State {
    pub opts: Options,
    pub endpoints: Endpoints,
    /// PEM of the CA clients should trust, when serving TLS.
    pub ca_pem: Option<String>,
    blobs: RwLock<HashMap<String, Bytes>>,
    /// Keyed by (lowercase repo, lowercase tag) and (lowercase repo, digest).
    manifests: RwLock<HashMap<(String, String), StoredManifest>>,
    pub faults: Mutex<FaultTable>,
    pub log: Mutex<RequestLog>,
    pub presigned: Mutex<HashMap<String, Presigned>>,
    pub sessions: Mutex<HashMap<String, Session>>,
    /// Blob store URL signature -> the digest it was issued for.
    pub blob_sigs: Mutex<HashMap<String, String>>,
    pub tokens: Mutex<HashMap<String, Grant>>,
}

/// Locks a mutex, ignoring poisoning: a panicking handler must not take the
/// rest of a test run down with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    pub fn new(opts: Options, endpoints: Endpoints, ca_pem: Option<String>) -> State {
        State {
            opts,
            endpoints,
            ca_pem,
            blobs: RwLock::default(),
            manifests: RwLock::default(),
            faults: Mutex::default(),
            log: Mutex::default(),
            presigned: Mutex::default(),
            sessions: Mutex::default(),
            blob_sigs: Mutex::default(),
            tokens: Mutex::default(),
        }
    }

    /// Stores a blob under its (canonical) digest.
    pub fn insert_blob(&self, digest: String, data: Bytes) {
        self.blobs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(digest, data);
    }

    /// The blob with this canonical digest.
    pub fn blob(&self, digest: &str) -> Option<Bytes> {
        self.blobs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(digest)
            .cloned()
    }

    /// Whether a blob with this canonical digest is stored.
    pub fn has_blob(&self, digest: &str) -> bool {
        self.blobs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(digest)
    }

    /// Stores a manifest under `reference` and under its digest.
    pub fn insert_manifest(&self, repo: &str, reference: &str, manifest: StoredManifest) {
        let repo = repo.to_ascii_lowercase();
        let mut map = self
            .manifests
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        map.insert((repo.clone(), manifest.digest.clone()), manifest.clone());
        map.insert((repo, reference.to_ascii_lowercase()), manifest);
    }

    /// The manifest of `repo` under a tag or digest (case-insensitive, like
    /// Ollama's names).
    pub fn manifest(&self, repo: &str, reference: &str) -> Option<StoredManifest> {
        self.manifests
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(repo.to_ascii_lowercase(), reference.to_ascii_lowercase()))
            .cloned()
    }

    /// The fault that acts on this request, if any.
    pub fn take_fault(&self, op: &Op) -> Option<FaultKind> {
        lock(&self.faults).take(op)
    }

    /// Stores `data` as a blob and returns its digest.
    pub fn add_blob(&self, data: Bytes) -> String {
        let digest = sha256_digest(&data);
        self.insert_blob(digest.clone(), data);
        digest
    }

    /// Stores raw manifest bytes (valid or not) and returns their digest.
    pub fn put_manifest(&self, repo: &str, reference: &str, body: Bytes) -> String {
        let digest = sha256_digest(&body);
        self.insert_manifest(
            repo,
            reference,
            StoredManifest {
                body,
                digest: digest.clone(),
                pushed_content_type: None,
            },
        );
        digest
    }

    /// Generates a model (see [`generate`]) and stores its blobs and
    /// manifest.
    pub fn add_model(&self, name: &str, layer_sizes: &[u64], seed: u64) -> Result<Model, String> {
        let generated = generate(name, layer_sizes, seed)?;
        for (digest, data) in generated.blobs {
            self.insert_blob(digest, data);
        }
        let model = generated.model;
        self.put_manifest(&model.repo, &model.tag, model.manifest.clone());
        Ok(model)
    }
}
