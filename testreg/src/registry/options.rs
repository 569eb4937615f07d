//! How a test registry behaves: transport, where blobs are served from, how
//! uploads work and which authentication it demands.
//!
//! The defaults imitate ollama.com (blob redirects to a CDN host, presigned
//! upload URLs, no auth, plain HTTP); the other modes imitate Docker
//! Distribution and its relatives so one server covers both families.

use serde::{Deserialize, Serialize};

/// Everything [`TestRegistry::start`](super::TestRegistry::start) needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    /// Serve both hosts over TLS with a certificate made at start; see
    /// [`TestRegistry::ca_pem`](super::TestRegistry::ca_pem).
    pub tls: bool,
    /// Where layer blobs come from.
    pub blob_mode: BlobMode,
    /// How `POST .../blobs/uploads/` answers.
    pub upload_mode: UploadMode,
    /// What the registry host demands on `/v2/` requests.
    pub auth: Auth,
    /// Registry port; 0 picks a free one.
    pub port: u16,
    /// Blob store port; 0 picks a free one.
    pub blob_store_port: u16,
    /// Upload sessions keep the bytes of a `PATCH` whose body broke off, as
    /// registries that stream chunks straight to storage do: the session's
    /// progress then ends inside the chunk the client was sending.
    pub keep_broken_chunks: bool,
    /// The realm and service a `Bearer` challenge names
    /// (`Auth::OllamaChallenge`) instead of this registry's own `/token`: a
    /// registry sending its clients to another one's token service.
    pub realm: Option<Realm>,
}

/// A token realm and its service, as a `Bearer` challenge names them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Realm {
    pub url: String,
    pub service: String,
}

impl Options {
    /// Turns TLS on or off.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// Sets where layer blobs are served from.
    pub fn blob_mode(mut self, mode: BlobMode) -> Self {
        self.blob_mode = mode;
        self
    }

    /// Sets how uploads are accepted.
    pub fn upload_mode(mut self, mode: UploadMode) -> Self {
        self.upload_mode = mode;
        self
    }

    /// Sets the authentication the registry demands.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Fixes the registry port (0 = any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Upload sessions keep what a broken `PATCH` delivered.
    pub fn keep_broken_chunks(mut self, on: bool) -> Self {
        self.keep_broken_chunks = on;
        self
    }

    /// Names another realm and service in `Bearer` challenges.
    pub fn realm(mut self, url: impl Into<String>, service: impl Into<String>) -> Self {
        self.realm = Some(Realm {
            url: url.into(),
            service: service.into(),
        });
        self
    }

    /// Docker-Distribution-like behaviour in one call: blobs served directly
    /// and OCI upload sessions.
    pub fn distribution_like(self) -> Self {
        self.blob_mode(BlobMode::Direct)
            .upload_mode(UploadMode::Session)
    }
}

/// Where a layer `GET /v2/<repo>/blobs/<digest>` is answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlobMode {
    /// `307` to the blob store host, like ollama.com and its CDN.
    #[default]
    Redirect,
    /// The registry serves the bytes itself, like Docker Distribution.
    Direct,
}

/// How `POST /v2/<repo>/blobs/uploads/` hands out somewhere to put a blob.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadMode {
    /// An absolute presigned URL on the blob store host, like ollama.com.
    #[default]
    Presigned,
    /// A relative OCI upload session URL with `_state`, like Docker
    /// Distribution (PATCH chunks, then PUT with `digest`).
    Session,
}

/// Authentication demanded by the registry host. The blob store never asks
/// for credentials; its URLs carry a signature instead.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// Anyone may do anything.
    #[default]
    None,
    /// Every `/v2/` request carries Ollama's signed
    /// `Bearer <base64 url>:<public key>:<base64 signature>` token.
    /// `public_keys` holds OpenSSH `ssh-ed25519 AAAA…` lines or just their
    /// base64 field; empty accepts any correctly signed key.
    Ed25519Legacy { public_keys: Vec<String> },
    /// `401` with a `Bearer realm,service,scope` challenge; `GET /token`
    /// signed with an allowed key returns a token valid for
    /// `token_ttl_secs` and the scopes asked for.
    OllamaChallenge {
        public_keys: Vec<String>,
        token_ttl_secs: u64,
    },
    /// HTTP Basic with one user.
    Basic { user: String, password: String },
}
