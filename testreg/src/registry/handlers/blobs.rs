//! Blob downloads: `GET|HEAD /v2/<repo>/blobs/<digest>` on the registry
//! (bytes, a redirect, or a manifest fetched by digest) and
//! `GET|HEAD /blobs/<digest>?sig=…` on the blob store.

use hyper::header::CONTENT_LENGTH;
use hyper::http::request::Parts;

use super::manifests::media_type_of;
use super::query_param;
use crate::registry::content::{range_request, serve_blob, serve_manifest};
use crate::registry::digest::{parse_digest, random_hex, sha256_digest};
use crate::registry::faults::FaultKind;
use crate::registry::options::BlobMode;
use crate::registry::respond::{self, set_header, set_named, Resp};
use crate::registry::state::{lock, State};

/// A blob request on the registry host.
pub(super) fn registry_get(
    state: &State,
    parts: &Parts,
    repo: &str,
    digest: &str,
    fault: Option<&FaultKind>,
    head: bool,
) -> Resp {
    if parse_digest(digest).is_none() {
        return respond::oci_error(
            400,
            "DIGEST_INVALID",
            "invalid digest",
            serde_json::Value::String(digest.to_string()),
        );
    }
    // Ollama's client fetches a manifest by digest through the blobs path.
    if let Some(m) = state.manifest(repo, digest) {
        if let Some(FaultKind::ManifestBody { body }) = fault {
            let (media, sum) = (media_type_of(body), sha256_digest(body));
            return serve_manifest(body.clone(), &media, &sum, None, head);
        }
        return serve_manifest(
            m.body.clone(),
            &media_type_of(&m.body),
            &m.digest,
            fault,
            head,
        );
    }
    let Some(data) = state.blob(digest) else {
        return blob_unknown(digest);
    };
    if head {
        // HEAD answers here in every mode: it is how clients ask "exists?".
        let mut resp = respond::empty(200);
        set_header(&mut resp, CONTENT_LENGTH, &data.len().to_string());
        set_header(
            &mut resp,
            hyper::header::CONTENT_TYPE,
            "application/octet-stream",
        );
        set_named(&mut resp, "docker-content-digest", digest);
        return resp;
    }
    match state.opts.blob_mode {
        BlobMode::Direct => serve_blob(
            &data,
            digest,
            range_request(&parts.headers, data.len() as u64),
            fault,
            false,
        ),
        BlobMode::Redirect => {
            let sig = random_hex(16);
            lock(&state.blob_sigs).insert(sig.clone(), digest.to_string());
            let location = format!(
                "{}/blobs/{digest}?sig={sig}",
                state.endpoints.blob_store_url()
            );
            respond::redirect(307, &location)
        }
    }
}

/// A blob request on the blob store host: the `sig` must be one the
/// registry issued for this digest.
pub(super) fn store_get(
    state: &State,
    parts: &Parts,
    digest: &str,
    fault: Option<&FaultKind>,
    head: bool,
) -> Resp {
    let sig_ok = query_param(parts, "sig")
        .is_some_and(|sig| lock(&state.blob_sigs).get(&sig).map(String::as_str) == Some(digest));
    if !sig_ok {
        return respond::oci_error(
            403,
            "DENIED",
            "missing or wrong signature",
            serde_json::Value::Null,
        );
    }
    let Some(data) = state.blob(digest) else {
        return blob_unknown(digest);
    };
    let range = range_request(&parts.headers, data.len() as u64);
    serve_blob(&data, digest, range, fault, head)
}

fn blob_unknown(digest: &str) -> Resp {
    respond::oci_error(
        404,
        "BLOB_UNKNOWN",
        "blob unknown to registry",
        serde_json::Value::String(digest.to_string()),
    )
}
