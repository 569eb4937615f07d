//! Starting uploads (`POST /v2/<repo>/blobs/uploads/`) and the presigned
//! upload URLs of the blob store (`PUT /upload/<id>?X-Amz-Signature=…`).

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::LOCATION;
use hyper::http::request::Parts;

use super::{query_param, read_body_hashing};
use crate::registry::digest::{parse_digest, random_hex, random_uuid};
use crate::registry::faults::FaultKind;
use crate::registry::options::UploadMode;
use crate::registry::respond::{self, set_header, set_named, Resp};
use crate::registry::state::{lock, Presigned, Session, State};

/// Answers `POST .../blobs/uploads/`: `201` without `Location` if the blob
/// exists, `201` with one for a successful cross-repository mount, else
/// `202` with where to upload (per the upload mode).
pub(super) fn start(state: &State, parts: &Parts, repo: &str, fault: Option<&FaultKind>) -> Resp {
    if let Some(mount) = query_param(parts, "mount") {
        if let Some(digest) = parse_digest(&mount).filter(|d| state.has_blob(d)) {
            let mut resp = respond::empty(201);
            set_header(&mut resp, LOCATION, &format!("/v2/{repo}/blobs/{digest}"));
            set_named(&mut resp, "docker-content-digest", &digest);
            return resp;
        }
    }
    // A failed mount falls through to an upload of the mounted digest.
    let digest = match query_param(parts, "digest").or_else(|| query_param(parts, "mount")) {
        None => None,
        Some(text) => match parse_digest(&text) {
            Some(digest) => Some(digest),
            None => return digest_invalid(&text),
        },
    };
    if let Some(digest) = digest.as_deref().filter(|d| state.has_blob(d)) {
        let mut resp = respond::empty(201);
        set_named(&mut resp, "docker-content-digest", digest);
        return resp;
    }
    if let Some(FaultKind::UploadLocation { location }) = fault {
        return respond::redirect(202, location);
    }
    match state.opts.upload_mode {
        UploadMode::Presigned => {
            let Some(digest) = digest else {
                return respond::oci_error(
                    400,
                    "DIGEST_INVALID",
                    "presigned uploads need ?digest=",
                    serde_json::Value::Null,
                );
            };
            let id = random_uuid();
            let path_and_query = format!(
                "/upload/{id}?X-Amz-Signature={}&digest={digest}",
                random_hex(16)
            );
            let location = format!("{}{path_and_query}", state.endpoints.blob_store_url());
            lock(&state.presigned).insert(
                id,
                Presigned {
                    digest,
                    path_and_query,
                },
            );
            respond::redirect(202, &location)
        }
        UploadMode::Session => {
            let id = random_uuid();
            let session_state = random_hex(16);
            let location = format!("/v2/{repo}/blobs/uploads/{id}?_state={session_state}");
            lock(&state.sessions).insert(
                id.clone(),
                Session {
                    repo: repo.to_ascii_lowercase(),
                    state: session_state,
                    data: Default::default(),
                    hasher: Default::default(),
                },
            );
            let mut resp = respond::redirect(202, &location);
            set_named(&mut resp, "docker-upload-uuid", &id);
            set_header(&mut resp, hyper::header::RANGE, "0-0");
            resp
        }
    }
}

/// A `PUT` of a whole blob to a presigned URL. The URL must be used exactly
/// as issued (any change breaks a real signature); the body must hash to
/// the digest it was issued for. Answers `200`, as object stores do.
pub(super) async fn presigned_put(
    state: &Arc<State>,
    parts: &Parts,
    id: &str,
    body: Incoming,
) -> Resp {
    let body = read_body_hashing(parts, body).await;
    let Some(upload) = lock(&state.presigned).get(id).cloned() else {
        return respond::oci_error(
            404,
            "BLOB_UPLOAD_UNKNOWN",
            "blob upload unknown",
            serde_json::Value::String(id.to_string()),
        );
    };
    let sent = parts.uri.path_and_query().map_or("", |pq| pq.as_str());
    if sent != upload.path_and_query {
        return respond::oci_error(
            403,
            "SignatureDoesNotMatch",
            "the URL differs from the presigned one",
            serde_json::json!({"expected": upload.path_and_query, "got": sent}),
        );
    }
    let (body, actual) = match body {
        Ok(read) => read,
        Err(why) => {
            return respond::oci_error(400, "BLOB_UPLOAD_INVALID", &why, serde_json::Value::Null)
        }
    };
    if actual != upload.digest {
        return respond::oci_error(
            400,
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
            serde_json::json!({"expected": upload.digest, "actual": actual}),
        );
    }
    state.insert_blob(actual, body);
    lock(&state.presigned).remove(id);
    respond::empty(200)
}

pub(super) fn digest_invalid(text: &str) -> Resp {
    respond::oci_error(
        400,
        "DIGEST_INVALID",
        "invalid digest",
        serde_json::Value::String(text.to_string()),
    )
}
