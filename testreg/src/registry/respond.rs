//! Building responses: statuses, headers and the two JSON error forms.
//!
//! Every response sets its own `Content-Length` (see [`ScriptedBody`]), so
//! this is the only place that turns a body into a response.

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use super::body::ScriptedBody;
use super::faults::ErrorBody;

/// The response type of every handler.
pub(crate) type Resp = Response<ScriptedBody>;

/// A response with `body`, its length as Content-Length, and `content_type`
/// when given.
pub(crate) fn with_body(status: u16, content_type: Option<&str>, body: Bytes) -> Resp {
    let len = body.len() as u64;
    let mut resp = Response::new(ScriptedBody::bytes(body));
    set_status(&mut resp, status);
    set_header(&mut resp, CONTENT_LENGTH, &len.to_string());
    if let Some(content_type) = content_type {
        set_header(&mut resp, CONTENT_TYPE, content_type);
    }
    resp
}

/// A response with no body and `Content-Length: 0`.
pub(crate) fn empty(status: u16) -> Resp {
    with_body(status, None, Bytes::new())
}

/// A JSON response.
pub(crate) fn json(status: u16, value: &serde_json::Value) -> Resp {
    with_body(
        status,
        Some("application/json"),
        Bytes::from(value.to_string()),
    )
}

/// An OCI-form error: `{"errors":[{"code","message","detail"}]}`.
pub(crate) fn oci_error(status: u16, code: &str, message: &str, detail: serde_json::Value) -> Resp {
    json(
        status,
        &serde_json::json!({"errors": [{"code": code, "message": message, "detail": detail}]}),
    )
}

/// An injected error body in whichever form the fault asked for.
pub(crate) fn error_body(status: u16, body: &ErrorBody) -> Resp {
    match body {
        ErrorBody::Ollama { code, message } => {
            json(status, &serde_json::json!({"code": code, "error": message}))
        }
        ErrorBody::Oci {
            code,
            message,
            detail,
        } => oci_error(status, code, message, detail.clone()),
        ErrorBody::Text(text) => with_body(
            status,
            Some("text/plain; charset=utf-8"),
            Bytes::from(text.clone()),
        ),
        ErrorBody::Empty => empty(status),
        ErrorBody::Json(value) => json(status, value),
    }
}

/// A redirect to `location`.
pub(crate) fn redirect(status: u16, location: &str) -> Resp {
    let mut resp = empty(status);
    set_header(&mut resp, hyper::header::LOCATION, location);
    resp
}

/// Cuts `resp` short: its `Content-Length` promises one byte more than the
/// body has, and the connection is aborted after the body.
pub(crate) fn cut_short(resp: &mut Resp) {
    let promised = resp
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    set_header(resp, CONTENT_LENGTH, &(promised + 1).to_string());
    resp.body_mut().abort_at_end();
}

/// Sets the status; an out-of-range code (from a test's fault) becomes 500
/// rather than a panic.
pub(crate) fn set_status(resp: &mut Resp, status: u16) {
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
}

/// Sets a header; a value that cannot be a header (control characters from
/// a test's fault) is dropped rather than panicking.
pub(crate) fn set_header(resp: &mut Resp, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, value);
    }
}

/// Sets a header by its string name (for the `Docker-*` ones hyper has no
/// constant for).
pub(crate) fn set_named(resp: &mut Resp, name: &'static str, value: &str) {
    set_header(resp, HeaderName::from_static(name), value);
}
