//! The control API under `/_testreg/` on the registry host: the same
//! operations as [`TestRegistry`](super::TestRegistry)'s methods, as JSON over
//! HTTP, for the C, Go and Python tests that run the server as a program.
//!
//! It needs no auth, is never faulted and is not recorded in the request
//! log (so reading the log does not change it).
//!
//! | Request | Answer |
//! |---|---|
//! | `POST /_testreg/faults` with a [`Fault`] as JSON | 204 (400 on bad JSON) |
//! | `DELETE /_testreg/faults` | 204 |
//! | `GET /_testreg/requests` | 200, JSON array of request records |
//! | `DELETE /_testreg/requests` | 204 |
//! | `POST /_testreg/models` `{"name","layer_sizes":[..],"seed"}` | 200, the model as JSON |
//! | `POST /_testreg/blobs` with raw bytes | 200 `{"digest"}` |
//! | `GET /_testreg/blobs/<digest>` | 200 with the bytes, or 404 |
//! | `PUT /_testreg/manifests/<ns>/<model>/<ref>` with raw bytes | 200 `{"digest"}` |
//! | `GET /_testreg/manifests/<ns>/<model>/<ref>` | 200 with the bytes, or 404 |
//! | `GET /_testreg/info` | 200 `{"url","host","blob_store_url","ca_pem"}` |

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::Method;
use serde::Deserialize;

use super::faults::Fault;
use super::handlers::{drain, read_body};
use super::respond::{self, Resp};
use super::state::{lock, State};

/// Every control path starts with this.
pub(crate) const PREFIX: &str = "/_testreg/";

/// Body of `POST /_testreg/models`.
#[derive(Deserialize)]
struct NewModel {
    name: String,
    layer_sizes: Vec<u64>,
    #[serde(default)]
    seed: u64,
}

/// Answers one control request.
pub(crate) async fn handle(state: &Arc<State>, parts: Parts, body: Incoming) -> Resp {
    let path = parts.uri.path().strip_prefix(PREFIX).unwrap_or("");
    let segments: Vec<&str> = path.split('/').collect();
    let method = parts.method.clone();
    // Requests that carry a body.
    match (&method, segments.as_slice()) {
        (&Method::POST, ["faults"]) => {
            return with_json::<Fault>(&parts, body, |fault| {
                lock(&state.faults).push(fault);
                respond::empty(204)
            })
            .await;
        }
        (&Method::POST, ["models"]) => {
            let request = match read_json::<NewModel>(&parts, body).await {
                Ok(request) => request,
                Err(resp) => return resp,
            };
            let state = state.clone();
            // Gigabyte layers take a second or two to make: not on a worker.
            let made = tokio::task::spawn_blocking(move || {
                state.add_model(&request.name, &request.layer_sizes, request.seed)
            })
            .await;
            return match made {
                Ok(Ok(model)) => match serde_json::to_value(&model) {
                    Ok(value) => respond::json(200, &value),
                    Err(e) => bad_request(&e.to_string()),
                },
                Ok(Err(why)) => bad_request(&why),
                Err(e) => respond::json(500, &serde_json::json!({"error": e.to_string()})),
            };
        }
        (&Method::POST, ["blobs"]) => {
            return match read_body(&parts, body).await {
                Ok(data) => digest_json(state.add_blob(data)),
                Err(why) => bad_request(&why),
            };
        }
        (&Method::PUT, ["manifests", ns, model, reference]) => {
            let repo = format!("{ns}/{model}");
            return match read_body(&parts, body).await {
                Ok(data) => digest_json(state.put_manifest(&repo, reference, data)),
                Err(why) => bad_request(&why),
            };
        }
        _ => drain(body).await,
    }
    match (&method, segments.as_slice()) {
        (&Method::DELETE, ["faults"]) => {
            lock(&state.faults).clear();
            respond::empty(204)
        }
        (&Method::GET, ["requests"]) => {
            let records = lock(&state.log).snapshot();
            match serde_json::to_value(records) {
                Ok(value) => respond::json(200, &value),
                Err(e) => bad_request(&e.to_string()),
            }
        }
        (&Method::DELETE, ["requests"]) => {
            lock(&state.log).clear();
            respond::empty(204)
        }
        (&Method::GET, ["blobs", digest]) => {
            let digest = super::digest::normalize_digest(digest);
            raw_or_404(state.blob(&digest))
        }
        (&Method::GET, ["manifests", ns, model, reference]) => {
            let repo = format!("{ns}/{model}");
            raw_or_404(state.manifest(&repo, reference).map(|m| m.body))
        }
        (&Method::GET, ["info"]) => respond::json(
            200,
            &serde_json::json!({
                "url": state.endpoints.registry_url(),
                "host": state.endpoints.registry_host,
                "blob_store_url": state.endpoints.blob_store_url(),
                "ca_pem": state.ca_pem,
            }),
        ),
        _ => respond::json(
            404,
            &serde_json::json!({"error": format!("no control endpoint {method} {}", parts.uri.path())}),
        ),
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(
    parts: &Parts,
    body: Incoming,
) -> Result<T, Resp> {
    let data = read_body(parts, body)
        .await
        .map_err(|why| bad_request(&why))?;
    serde_json::from_slice(&data).map_err(|e| bad_request(&format!("bad JSON: {e}")))
}

async fn with_json<T: serde::de::DeserializeOwned>(
    parts: &Parts,
    body: Incoming,
    then: impl FnOnce(T) -> Resp,
) -> Resp {
    match read_json(parts, body).await {
        Ok(value) => then(value),
        Err(resp) => resp,
    }
}

fn raw_or_404(data: Option<Bytes>) -> Resp {
    match data {
        Some(data) => respond::with_body(200, Some("application/octet-stream"), data),
        None => respond::json(404, &serde_json::json!({"error": "not found"})),
    }
}

fn digest_json(digest: String) -> Resp {
    respond::json(200, &serde_json::json!({ "digest": digest }))
}

fn bad_request(why: &str) -> Resp {
    respond::json(400, &serde_json::json!({ "error": why }))
}
