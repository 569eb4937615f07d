//! The endpoints: what each route answers once auth and faults have had
//! their say.
//!
//! [`facts`] describes a request for fault matching before anything is
//! answered; [`dispatch`] then produces the real response, shaped by the
//! fault that matched (if any).

mod blobs;
mod manifests;
mod sessions;
mod uploads;

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::CONTENT_LENGTH;
use hyper::http::request::Parts;
use hyper::Method;
use sha2::Digest as _;

use super::content::{blob_facts, range_request};
use super::faults::{BodyFacts, FaultKind, Op, OpClass};
use super::options::BlobMode;
use super::respond::{self, set_named, Resp};
use super::routes::Route;
use super::state::State;

/// Describes a request for fault matching: its class, the digest it is
/// about and the content its response would carry.
pub(crate) fn facts(state: &State, route: &Route, parts: &Parts) -> Op {
    let get = parts.method == Method::GET;
    let upload_data = parts.method == Method::PUT || parts.method == Method::PATCH;
    let op = |class, digest: Option<&String>, body| Op {
        class,
        digest: digest.cloned(),
        body,
    };
    match route {
        Route::Manifest { repo, reference } if get => {
            let body = state
                .manifest(repo, reference)
                .map_or(BodyFacts::None, |m| BodyFacts::Manifest {
                    len: m.body.len() as u64,
                });
            op(OpClass::ManifestGet, None, body)
        }
        Route::Manifest { .. } if parts.method == Method::PUT => {
            op(OpClass::ManifestPut, None, BodyFacts::None)
        }
        Route::Blob { repo, digest } if get => {
            let body = if let Some(m) = state.manifest(repo, digest) {
                BodyFacts::Manifest {
                    len: m.body.len() as u64,
                }
            } else {
                match (state.opts.blob_mode, state.blob(digest)) {
                    (BlobMode::Direct, Some(data)) => {
                        let total = data.len() as u64;
                        blob_facts(total, range_request(&parts.headers, total))
                    }
                    _ => BodyFacts::None,
                }
            };
            op(OpClass::BlobGet, Some(digest), body)
        }
        Route::Blob { digest, .. } if parts.method == Method::HEAD => {
            op(OpClass::BlobHead, Some(digest), BodyFacts::None)
        }
        Route::StoreBlob { digest } if get => {
            let body = state.blob(digest).map_or(BodyFacts::None, |data| {
                let total = data.len() as u64;
                blob_facts(total, range_request(&parts.headers, total))
            });
            op(OpClass::BlobStoreGet, Some(digest), body)
        }
        Route::UploadStart { .. } if parts.method == Method::POST => {
            op(OpClass::UploadPost, None, BodyFacts::None)
        }
        Route::UploadSession { .. } | Route::StoreUpload { .. } if upload_data => {
            op(OpClass::UploadData, None, BodyFacts::None)
        }
        Route::Token => op(OpClass::Token, None, BodyFacts::None),
        _ => op(OpClass::Other, None, BodyFacts::None),
    }
}

/// Answers a request that passed auth, shaped by `fault`.
pub(crate) async fn dispatch(
    state: &Arc<State>,
    route: Route,
    parts: Parts,
    body: Incoming,
    fault: Option<FaultKind>,
) -> Resp {
    let method = parts.method.clone();
    // Routes that consume the request body.
    match (&route, &method) {
        (Route::Manifest { repo, reference }, &Method::PUT) => {
            return manifests::put(state, &parts, repo, reference, body).await;
        }
        (Route::UploadSession { repo, id }, &Method::PATCH | &Method::PUT) => {
            return sessions::write(state, &parts, repo, id, body).await;
        }
        (Route::StoreUpload { id }, &Method::PUT) => {
            return uploads::presigned_put(state, &parts, id, body).await;
        }
        _ => {}
    }
    // Everything else ignores the body; read it anyway so the connection
    // stays usable for the next request.
    drain(body).await;
    let head = method == Method::HEAD;
    let readable = method == Method::GET || head;
    let fault = fault.as_ref();
    match &route {
        Route::Base if readable => {
            let mut resp = respond::json(200, &serde_json::json!({}));
            set_named(&mut resp, "docker-distribution-api-version", "registry/2.0");
            resp
        }
        Route::Manifest { repo, reference } if readable => {
            manifests::get(state, repo, reference, fault, head)
        }
        Route::Blob { repo, digest } if readable => {
            blobs::registry_get(state, &parts, repo, digest, fault, head)
        }
        Route::UploadStart { repo } if method == Method::POST => {
            uploads::start(state, &parts, repo, fault)
        }
        Route::UploadSession { repo, id } if method == Method::GET => {
            sessions::status(state, &parts, repo, id)
        }
        Route::UploadSession { repo, id } if method == Method::DELETE => {
            sessions::cancel(state, &parts, repo, id)
        }
        Route::Token if readable => super::auth::issue_token(state, &parts),
        Route::StoreBlob { digest } if readable => {
            blobs::store_get(state, &parts, digest, fault, head)
        }
        Route::Unknown => respond::oci_error(
            404,
            "NOT_FOUND",
            "no such endpoint",
            serde_json::json!({"path": parts.uri.path()}),
        ),
        _ => respond::oci_error(
            405,
            "UNSUPPORTED",
            "method not allowed here",
            serde_json::json!({"method": method.as_str()}),
        ),
    }
}

/// Reads a whole request body into memory.
pub(crate) async fn read_body(parts: &Parts, body: Incoming) -> Result<Bytes, String> {
    match read_body_keeping(parts, body).await {
        (data, None) => Ok(data),
        (_, Some(why)) => Err(why),
    }
}

/// Reads a request body and its `sha256:` digest, hashing each piece as it
/// arrives (so a big upload is hashed while the rest is still on its way,
/// and the registry does not become the bottleneck of the benchmark).
pub(crate) async fn read_body_hashing(
    parts: &Parts,
    body: Incoming,
) -> Result<(Bytes, String), String> {
    let mut hasher = sha2::Sha256::new();
    match read_body_with(parts, body, |piece| hasher.update(piece)).await {
        (data, None) => Ok((data, crate::registry::digest::finish(hasher))),
        (_, Some(why)) => Err(why),
    }
}

/// Reads a request body; when it breaks off, what arrived before and why.
pub(crate) async fn read_body_keeping(parts: &Parts, body: Incoming) -> (Bytes, Option<String>) {
    read_body_with(parts, body, |_| {}).await
}

/// Reads a request body, showing each piece to `each` as it arrives.
async fn read_body_with(
    parts: &Parts,
    mut body: Incoming,
    mut each: impl FnMut(&[u8]),
) -> (Bytes, Option<String>) {
    let hint = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0)
        // Only a reservation hint: never trust it for more than 1 GiB.
        .min(1 << 30);
    let mut data = BytesMut::with_capacity(hint);
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                return (
                    data.freeze(),
                    Some(format!("reading the request body: {e}")),
                )
            }
        };
        if let Ok(chunk) = frame.into_data() {
            each(&chunk);
            data.extend_from_slice(&chunk);
        }
    }
    (data.freeze(), None)
}

/// Reads and discards a request body (errors ignored: the response is
/// already decided).
pub(crate) async fn drain(mut body: Incoming) {
    while let Some(Ok(_)) = body.frame().await {}
}

/// The value of query parameter `name` (decoded).
pub(crate) fn query_param(parts: &Parts, name: &str) -> Option<String> {
    let query = parts.uri.query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
