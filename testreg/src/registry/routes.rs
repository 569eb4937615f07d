//! Which endpoint a request path names, on each of the two hosts.
//!
//! Repositories are exactly `<namespace>/<model>`, as on ollama.com; any
//! other shape is not a route (404), which keeps the parsing trivial and
//! lets no path component be misread.

use super::digest::parse_digest;
use super::record::Server;

/// An endpoint with its path parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/v2/` (registry).
    Base,
    /// `/v2/<repo>/manifests/<reference>` (registry).
    Manifest { repo: String, reference: String },
    /// `/v2/<repo>/blobs/<digest>` (registry). `digest` is canonical, or the
    /// raw text if it does not parse (answered with 400).
    Blob { repo: String, digest: String },
    /// `/v2/<repo>/blobs/uploads/` (registry).
    UploadStart { repo: String },
    /// `/v2/<repo>/blobs/uploads/<id>` (registry, OCI sessions).
    UploadSession { repo: String, id: String },
    /// `/token` (registry).
    Token,
    /// `/blobs/<digest>` (blob store).
    StoreBlob { digest: String },
    /// `/upload/<id>` (blob store, presigned uploads).
    StoreUpload { id: String },
    /// Anything else.
    Unknown,
}

impl Route {
    /// Parses `path` as seen by `server`.
    pub fn parse(server: Server, path: &str) -> Route {
        match server {
            Server::Registry => parse_registry(path),
            Server::BlobStore => parse_store(path),
        }
    }

    /// The repository the route is about, if any.
    pub fn repo(&self) -> Option<&str> {
        match self {
            Route::Manifest { repo, .. }
            | Route::Blob { repo, .. }
            | Route::UploadStart { repo }
            | Route::UploadSession { repo, .. } => Some(repo),
            _ => None,
        }
    }

    /// Whether the route is under `/v2/` (and so subject to registry auth).
    pub fn is_api(&self) -> bool {
        !matches!(
            self,
            Route::Token | Route::StoreBlob { .. } | Route::StoreUpload { .. } | Route::Unknown
        )
    }
}

fn parse_registry(path: &str) -> Route {
    if path == "/token" {
        return Route::Token;
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return if path == "/v2" {
            Route::Base
        } else {
            Route::Unknown
        };
    };
    if rest.is_empty() {
        return Route::Base;
    }
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        [ns, model, "manifests", reference] if [ns, model, reference].iter().all(|s| valid(s)) => {
            Route::Manifest {
                repo: format!("{ns}/{model}"),
                reference: (*reference).to_string(),
            }
        }
        [ns, model, "blobs", "uploads"] | [ns, model, "blobs", "uploads", ""]
            if [ns, model].iter().all(|s| valid(s)) =>
        {
            Route::UploadStart {
                repo: format!("{ns}/{model}"),
            }
        }
        [ns, model, "blobs", "uploads", id] if [ns, model, id].iter().all(|s| valid(s)) => {
            Route::UploadSession {
                repo: format!("{ns}/{model}"),
                id: (*id).to_string(),
            }
        }
        [ns, model, "blobs", digest] if [ns, model, digest].iter().all(|s| valid(s)) => {
            Route::Blob {
                repo: format!("{ns}/{model}"),
                digest: parse_digest(digest).unwrap_or_else(|| (*digest).to_string()),
            }
        }
        _ => Route::Unknown,
    }
}

/// A usable path segment: non-empty and not a dot segment.
fn valid(segment: &str) -> bool {
    !segment.is_empty() && segment != "." && segment != ".."
}

fn parse_store(path: &str) -> Route {
    if let Some(digest) = path.strip_prefix("/blobs/") {
        if let Some(digest) = parse_digest(digest) {
            return Route::StoreBlob { digest };
        }
    }
    if let Some(id) = path.strip_prefix("/upload/") {
        if !id.is_empty() && !id.contains('/') {
            return Route::StoreUpload { id: id.to_string() };
        }
    }
    Route::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_paths() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = |p: &str| Route::parse(Server::Registry, p);
        assert_eq!(r("/v2/"), Route::Base);
        assert_eq!(r("/token"), Route::Token);
        assert_eq!(
            r("/v2/library/x/manifests/latest"),
            Route::Manifest {
                repo: "library/x".into(),
                reference: "latest".into()
            }
        );
        assert_eq!(
            r(&format!("/v2/a/b/blobs/{d}")),
            Route::Blob {
                repo: "a/b".into(),
                digest: d.clone()
            }
        );
        assert_eq!(
            r("/v2/a/b/blobs/uploads/"),
            Route::UploadStart { repo: "a/b".into() }
        );
        assert_eq!(
            r("/v2/a/b/blobs/uploads/xyz"),
            Route::UploadSession {
                repo: "a/b".into(),
                id: "xyz".into()
            }
        );
        assert_eq!(r("/v2/a/b/c/manifests/x"), Route::Unknown);
        assert_eq!(r("/v2/../b/manifests/x"), Route::Unknown);
        assert_eq!(r("/v2/a//manifests/x"), Route::Unknown);
        assert_eq!(r("/other"), Route::Unknown);
    }

    #[test]
    fn store_paths() {
        let d = format!("sha256:{}", "a".repeat(64));
        let s = |p: &str| Route::parse(Server::BlobStore, p);
        assert_eq!(s(&format!("/blobs/{d}")), Route::StoreBlob { digest: d });
        assert_eq!(s("/blobs/nope"), Route::Unknown);
        assert_eq!(s("/upload/u1"), Route::StoreUpload { id: "u1".into() });
        assert_eq!(s("/upload/"), Route::Unknown);
    }
}
