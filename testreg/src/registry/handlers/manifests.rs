//! `GET|HEAD|PUT /v2/<repo>/manifests/<reference>`.
//!
//! Manifests are kept and served as the exact bytes pushed: a client that
//! re-serializes them would change their digest, and tests must see that.

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, LOCATION};
use hyper::http::request::Parts;

use super::read_body;
use crate::registry::content::serve_manifest;
use crate::registry::digest::{parse_digest, sha256_digest};
use crate::registry::faults::FaultKind;
use crate::registry::model::MANIFEST_MEDIA_TYPE;
use crate::registry::respond::{self, set_header, set_named, Resp};
use crate::registry::state::{State, StoredManifest};

/// The Content-Type to serve a manifest with: its `mediaType` if it is a
/// JSON object with one, else Docker's v2 manifest type.
pub(crate) fn media_type_of(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(str::to_string))
        .unwrap_or_else(|| MANIFEST_MEDIA_TYPE.to_string())
}

/// Serves a stored manifest (or the body a `ManifestBody` fault
/// substitutes, whose digest header then matches the substitute).
pub(super) fn get(
    state: &State,
    repo: &str,
    reference: &str,
    fault: Option<&FaultKind>,
    head: bool,
) -> Resp {
    if let Some(FaultKind::ManifestBody { body }) = fault {
        return serve_manifest(
            body.clone(),
            &media_type_of(body),
            &sha256_digest(body),
            None,
            head,
        );
    }
    match state.manifest(repo, reference) {
        Some(m) => serve_manifest(
            m.body.clone(),
            &media_type_of(&m.body),
            &m.digest,
            fault,
            head,
        ),
        None => respond::oci_error(
            404,
            "MANIFEST_UNKNOWN",
            "manifest unknown",
            serde_json::json!({"Tag": reference}),
        ),
    }
}

/// Stores a pushed manifest after checking it is JSON and that every blob
/// it names (config included) is already here, as Docker Distribution does.
pub(super) async fn put(
    state: &Arc<State>,
    parts: &Parts,
    repo: &str,
    reference: &str,
    body: Incoming,
) -> Resp {
    let body = match read_body(parts, body).await {
        Ok(body) => body,
        Err(why) => {
            return respond::oci_error(400, "MANIFEST_INVALID", &why, serde_json::Value::Null)
        }
    };
    let digest = sha256_digest(&body);
    if let Some(wanted) = parse_digest(reference) {
        if wanted != digest {
            return respond::oci_error(
                400,
                "DIGEST_INVALID",
                "manifest digest does not match the reference",
                serde_json::json!({"reference": reference, "digest": digest}),
            );
        }
    }
    if let Err(resp) = check_blobs(state, &body) {
        return resp;
    }
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    state.insert_manifest(
        repo,
        reference,
        StoredManifest {
            body,
            digest: digest.clone(),
            pushed_content_type: content_type,
        },
    );
    let mut resp = respond::empty(201);
    set_header(
        &mut resp,
        LOCATION,
        &format!("/v2/{repo}/manifests/{digest}"),
    );
    set_named(&mut resp, "docker-content-digest", &digest);
    resp
}

/// `Err(400)` unless `body` is a JSON object whose `config` and `layers`
/// (each optional) name blobs this registry holds.
fn check_blobs(state: &State, body: &Bytes) -> Result<(), Resp> {
    let invalid = |message: &str| {
        respond::oci_error(400, "MANIFEST_INVALID", message, serde_json::Value::Null)
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| invalid(&format!("not JSON: {e}")))?;
    let object = manifest
        .as_object()
        .ok_or_else(|| invalid("manifest is not a JSON object"))?;
    let mut digests = Vec::new();
    if let Some(config) = object.get("config") {
        digests.push(config.get("digest").and_then(|d| d.as_str()));
    }
    match object.get("layers") {
        None => {}
        Some(serde_json::Value::Array(layers)) => {
            digests.extend(
                layers
                    .iter()
                    .map(|l| l.get("digest").and_then(|d| d.as_str())),
            );
        }
        Some(_) => return Err(invalid("layers is not an array")),
    }
    for digest in digests {
        let digest = digest.ok_or_else(|| invalid("a blob entry has no digest string"))?;
        let canonical = parse_digest(digest)
            .ok_or_else(|| invalid(&format!("{digest:?} is not a sha256 digest")))?;
        if !state.has_blob(&canonical) {
            return Err(respond::oci_error(
                400,
                "MANIFEST_BLOB_UNKNOWN",
                "blob unknown to registry",
                serde_json::Value::String(digest.to_string()),
            ));
        }
    }
    Ok(())
}
