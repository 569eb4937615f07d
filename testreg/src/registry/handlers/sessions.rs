//! OCI upload sessions (`UploadMode::Session`), as Docker Distribution runs
//! them: `PATCH` chunks at the current offset, `GET` the progress, `PUT`
//! with `digest` to finish, `DELETE` to cancel. Every answer issues a new
//! `_state` and only the latest is accepted, so a client that mangles or
//! reuses the Location is caught.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{CONTENT_RANGE, LOCATION, RANGE};
use hyper::http::request::Parts;
use hyper::Method;
use sha2::Digest;

use super::uploads::digest_invalid;
use super::{query_param, read_body_keeping};
use crate::registry::digest::{finish, parse_digest, random_hex};
use crate::registry::respond::{self, set_header, set_named, Resp};
use crate::registry::state::{lock, Session, State};

/// `PATCH` (append a chunk) or `PUT` (append an optional last chunk and
/// finish).
pub(super) async fn write(
    state: &Arc<State>,
    parts: &Parts,
    repo: &str,
    id: &str,
    body: Incoming,
) -> Resp {
    // Read first so that every answer leaves the connection reusable.
    let chunk = match read_body_keeping(parts, body).await {
        (chunk, None) => chunk,
        (partial, Some(why)) => {
            if state.opts.keep_broken_chunks && parts.method == Method::PATCH {
                keep_partial(state, parts, repo, id, &partial);
            }
            return respond::oci_error(400, "BLOB_UPLOAD_INVALID", &why, serde_json::Value::Null);
        }
    };
    let finishing = parts.method == Method::PUT;
    let wanted = if finishing {
        match query_param(parts, "digest") {
            None => return digest_invalid(""),
            Some(text) => match parse_digest(&text) {
                Some(digest) => Some(digest),
                None => return digest_invalid(&text),
            },
        }
    } else {
        None
    };
    let mut sessions = lock(&state.sessions);
    let session = match find(&mut sessions, parts, repo, id) {
        Ok(session) => session,
        Err(resp) => return resp,
    };
    let offset = session.data.len() as u64;
    if let Some(range) = parts
        .headers
        .get(CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
    {
        match parse_content_range(range) {
            Some((start, _)) if start != offset => {
                let mut resp = respond::oci_error(
                    416,
                    "BLOB_UPLOAD_INVALID",
                    "chunk does not start at the current offset",
                    serde_json::json!({"offset": offset, "content_range": range}),
                );
                set_header(&mut resp, RANGE, &progress(offset));
                return resp;
            }
            Some((start, end)) if (end - start).saturating_add(1) != chunk.len() as u64 => {
                return respond::oci_error(
                    400,
                    "BLOB_UPLOAD_INVALID",
                    "Content-Range does not match the body length",
                    serde_json::json!({"content_range": range, "length": chunk.len()}),
                );
            }
            Some(_) => {}
            None => {
                return respond::oci_error(
                    400,
                    "BLOB_UPLOAD_INVALID",
                    "malformed Content-Range",
                    serde_json::Value::String(range.to_string()),
                )
            }
        }
    }
    session.hasher.update(&chunk);
    session.data.extend_from_slice(&chunk);

    let Some(wanted) = wanted else {
        session.state = random_hex(16);
        let location = location(repo, id, &session.state);
        let mut resp = respond::redirect(202, &location);
        set_named(&mut resp, "docker-upload-uuid", id);
        set_header(&mut resp, RANGE, &progress(session.data.len() as u64));
        return resp;
    };
    let Some(session) = sessions.remove(id) else {
        return unknown(id);
    };
    drop(sessions);
    let actual = finish(session.hasher);
    if actual != wanted {
        return respond::oci_error(
            400,
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
            serde_json::json!({"expected": wanted, "actual": actual}),
        );
    }
    state.insert_blob(actual.clone(), session.data.freeze());
    let mut resp = respond::empty(201);
    set_header(&mut resp, LOCATION, &format!("/v2/{repo}/blobs/{actual}"));
    set_named(&mut resp, "docker-content-digest", &actual);
    resp
}

/// `GET` of a session: `204` with how much has arrived.
pub(super) fn status(state: &State, parts: &Parts, repo: &str, id: &str) -> Resp {
    let mut sessions = lock(&state.sessions);
    let session = match find(&mut sessions, parts, repo, id) {
        Ok(session) => session,
        Err(resp) => return resp,
    };
    let mut resp = respond::redirect(204, &location(repo, id, &session.state));
    set_named(&mut resp, "docker-upload-uuid", id);
    set_header(&mut resp, RANGE, &progress(session.data.len() as u64));
    resp
}

/// `DELETE` of a session: cancels it.
pub(super) fn cancel(state: &State, parts: &Parts, repo: &str, id: &str) -> Resp {
    let mut sessions = lock(&state.sessions);
    if let Err(resp) = find(&mut sessions, parts, repo, id) {
        return resp;
    }
    sessions.remove(id);
    respond::empty(204)
}

/// The session `id` of `repo`, if the request carries its current `_state`.
/// Appends what a broken `PATCH` delivered to its session, if the chunk
/// started at the session's offset (a later `GET` reports the new offset).
fn keep_partial(state: &Arc<State>, parts: &Parts, repo: &str, id: &str, partial: &[u8]) {
    let mut sessions = lock(&state.sessions);
    let Ok(session) = find(&mut sessions, parts, repo, id) else {
        return;
    };
    let start = parts
        .headers
        .get(CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_content_range)
        .map(|(start, _)| start);
    if start.is_none_or(|start| start == session.data.len() as u64) {
        session.hasher.update(partial);
        session.data.extend_from_slice(partial);
    }
}

fn find<'a>(
    sessions: &'a mut std::collections::HashMap<String, Session>,
    parts: &Parts,
    repo: &str,
    id: &str,
) -> Result<&'a mut Session, Resp> {
    let session = sessions
        .get_mut(id)
        .filter(|s| s.repo == repo.to_ascii_lowercase())
        .ok_or_else(|| unknown(id))?;
    if query_param(parts, "_state").as_deref() != Some(session.state.as_str()) {
        return Err(respond::oci_error(
            400,
            "BLOB_UPLOAD_INVALID",
            "_state is missing or not the latest issued",
            serde_json::Value::Null,
        ));
    }
    Ok(session)
}

fn unknown(id: &str) -> Resp {
    respond::oci_error(
        404,
        "BLOB_UPLOAD_UNKNOWN",
        "blob upload unknown to registry",
        serde_json::Value::String(id.to_string()),
    )
}

fn location(repo: &str, id: &str, state: &str) -> String {
    format!("/v2/{repo}/blobs/uploads/{id}?_state={state}")
}

/// Docker Distribution's `Range` progress header: `0-<last byte>`, and
/// `0-0` before any data.
fn progress(len: u64) -> String {
    format!("0-{}", len.saturating_sub(1))
}

/// `a-b` or `bytes a-b` (inclusive).
fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let value = value.trim();
    let value = value.strip_prefix("bytes ").unwrap_or(value);
    let (start, end) = value.split_once('-')?;
    let (start, end) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
    (end >= start).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_parse() {
        assert_eq!(parse_content_range("0-9"), Some((0, 9)));
        assert_eq!(parse_content_range("bytes 10-19"), Some((10, 19)));
        assert_eq!(parse_content_range("9-0"), None);
        assert_eq!(parse_content_range("x"), None);
        assert_eq!(progress(0), "0-0");
        assert_eq!(progress(10), "0-9");
    }
}
