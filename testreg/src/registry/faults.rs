//! Fault injection: what can go wrong, on which requests, how often.
//!
//! Tests describe a failure as a [`Fault`] and the server consults the
//! [`FaultTable`] once per request. A fault only *matches* a request it can
//! act on (a `Corrupt` fault waits for a response whose bytes cover its
//! offset, `IgnoreRange` waits for a ranged blob request, and so on), so
//! "corrupt byte 100 once" means once, however the client splits its ranges.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::digest::normalize_digest;

/// One injected failure. Faults are tried in the order they were added; the
/// first that matches a request acts on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// Which requests it can hit.
    pub target: Target,
    /// What happens to them.
    pub kind: FaultKind,
    /// How many requests it hits before disappearing; 0 means forever.
    /// Defaults to 1 when absent from JSON.
    #[serde(default = "one")]
    pub times: u32,
    /// How many matching requests to let through untouched first.
    #[serde(default)]
    pub after: u32,
}

fn one() -> u32 {
    1
}

impl Fault {
    /// A fault that hits the first matching request once.
    pub fn new(target: Target, kind: FaultKind) -> Fault {
        Fault {
            target,
            kind,
            times: 1,
            after: 0,
        }
    }

    /// Hits `n` matching requests (0 = every one, forever).
    pub fn times(mut self, n: u32) -> Fault {
        self.times = n;
        self
    }

    /// Hits every matching request until cleared.
    pub fn forever(self) -> Fault {
        self.times(0)
    }

    /// Lets `n` matching requests through before acting.
    pub fn after(mut self, n: u32) -> Fault {
        self.after = n;
        self
    }

    /// Shorthand for a `Status` fault with the given code and body.
    pub fn status(target: Target, code: u16, body: ErrorBody) -> Fault {
        Fault::new(
            target,
            FaultKind::Status {
                code,
                body,
                retry_after: None,
            },
        )
    }
}

/// The kind of request a fault applies to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// `GET /v2/<repo>/manifests/<ref>`.
    Manifest,
    /// `GET /v2/<repo>/blobs/<digest>` on the registry host (a redirect in
    /// `BlobMode::Redirect`, the bytes in `BlobMode::Direct`, or a manifest
    /// fetched by digest). `None` matches any digest.
    Blob {
        #[serde(default)]
        digest: Option<String>,
    },
    /// `HEAD /v2/<repo>/blobs/<digest>` on the registry host: the
    /// existence check before an upload. `None` matches any digest.
    BlobHead {
        #[serde(default)]
        digest: Option<String>,
    },
    /// `GET /blobs/<digest>` on the blob store host.
    BlobStore {
        #[serde(default)]
        digest: Option<String>,
    },
    /// `POST /v2/<repo>/blobs/uploads/`.
    Upload,
    /// `PUT`/`PATCH` carrying blob data, on either host.
    UploadPut,
    /// `PUT /v2/<repo>/manifests/<ref>`.
    ManifestPut,
    /// `GET /token` (challenge auth).
    Token,
    /// Any request except the control API.
    Any,
}

/// What an injected fault does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with this status and body instead of the real answer.
    Status {
        code: u16,
        #[serde(default)]
        body: ErrorBody,
        /// Sent as the `Retry-After` header when present.
        #[serde(default)]
        retry_after: Option<String>,
    },
    /// Correct headers and Content-Length, then `bytes` bytes of body, then
    /// the connection is aborted.
    DropAfter { bytes: u64 },
    /// Flip one byte at this offset of the content (blob or manifest
    /// offset, not response offset) in the bytes sent; matches only responses
    /// that cover it.
    Corrupt { offset: u64 },
    /// Send `after_bytes` bytes of body, pause `millis`, then continue.
    Stall { after_bytes: u64, millis: u64 },
    /// Pause `millis` before sending the response headers.
    StallHeaders { millis: u64 },
    /// Send `count` bytes beyond the range asked for; Content-Length counts
    /// them (so it disagrees with Content-Range / the blob size).
    ExtraBytes { count: u64 },
    /// Content-Length is right but the body ends halfway (then abort).
    ShortBody,
    /// A 206 whose Content-Range names a different range than was asked for
    /// (and sent). Matches ranged blob requests only.
    WrongContentRange,
    /// Answer a ranged blob request with 200 and the whole blob.
    IgnoreRange,
    /// Answer a redirect (`code`, default 307) with this `Location`.
    Redirect {
        location: String,
        #[serde(default = "temporary_redirect")]
        code: u16,
    },
    /// `POST .../blobs/uploads/` answers `202` with this `Location`.
    UploadLocation { location: String },
    /// Serve this body instead of the manifest.
    ManifestBody {
        #[serde(with = "super::text_bytes")]
        body: Bytes,
    },
    /// Send the body `bytes` bytes at a time, pausing `millis` before each
    /// piece: alive, but hardly moving.
    Trickle { bytes: u64, millis: u64 },
    /// Close the connection without an answer, leaving the request's body
    /// unread. Acts on any request.
    HangUp,
    /// Answer as usual, then cut the answer short: `Content-Length` promises
    /// one byte more than the body has and the connection is aborted after
    /// the body. Acts on any request (upload steps and tokens included).
    CutBody,
    /// The connection this request arrived on delivers every response body
    /// at no more than `bytes_per_sec` from now on, this one included: one
    /// slow path among fast ones, as a congested route or a sick CDN node
    /// gives. Matches responses with a body.
    Throttle { bytes_per_sec: u64 },
}

fn temporary_redirect() -> u16 {
    307
}

/// The body of an injected error status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorBody {
    /// Ollama's `{"code": …, "error": …}`.
    Ollama { code: String, message: String },
    /// OCI's `{"errors": [{"code": …, "message": …, "detail": …}]}`.
    Oci {
        code: String,
        message: String,
        #[serde(default)]
        detail: serde_json::Value,
    },
    /// A plain-text body.
    Text(String),
    /// No body at all.
    #[default]
    Empty,
    /// Any JSON document.
    Json(serde_json::Value),
}

impl ErrorBody {
    /// An Ollama-form body.
    pub fn ollama(code: &str, message: &str) -> ErrorBody {
        ErrorBody::Ollama {
            code: code.to_string(),
            message: message.to_string(),
        }
    }

    /// An OCI-form body with a null detail.
    pub fn oci(code: &str, message: &str) -> ErrorBody {
        ErrorBody::Oci {
            code: code.to_string(),
            message: message.to_string(),
            detail: serde_json::Value::Null,
        }
    }
}

/// The class of a request, as far as fault targets are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpClass {
    ManifestGet,
    BlobGet,
    BlobHead,
    BlobStoreGet,
    UploadPost,
    UploadData,
    ManifestPut,
    Token,
    Other,
}

/// What the response to a request will carry, so body-shaping faults match
/// only where they can act.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyFacts {
    /// No content body (errors, redirects, uploads).
    None,
    /// A manifest of `len` bytes, served whole.
    Manifest { len: u64 },
    /// Blob bytes `start..end` (exclusive); `ranged` if the client asked for
    /// a satisfiable range.
    Blob { start: u64, end: u64, ranged: bool },
}

/// The facts about one request that faults are matched against.
#[derive(Clone, Debug)]
pub(crate) struct Op {
    pub class: OpClass,
    pub digest: Option<String>,
    pub body: BodyFacts,
}

impl Target {
    fn matches(&self, op: &Op) -> bool {
        let digest_ok = |want: &Option<String>| match want {
            None => true,
            Some(want) => op.digest.as_deref() == Some(normalize_digest(want).as_str()),
        };
        match self {
            Target::Manifest => op.class == OpClass::ManifestGet,
            Target::Blob { digest } => op.class == OpClass::BlobGet && digest_ok(digest),
            Target::BlobHead { digest } => op.class == OpClass::BlobHead && digest_ok(digest),
            Target::BlobStore { digest } => op.class == OpClass::BlobStoreGet && digest_ok(digest),
            Target::Upload => op.class == OpClass::UploadPost,
            Target::UploadPut => op.class == OpClass::UploadData,
            Target::ManifestPut => op.class == OpClass::ManifestPut,
            Target::Token => op.class == OpClass::Token,
            Target::Any => true,
        }
    }
}

impl FaultKind {
    /// Whether this kind can do anything to a response described by `op`.
    fn applies_to(&self, op: &Op) -> bool {
        match self {
            FaultKind::Status { .. }
            | FaultKind::StallHeaders { .. }
            | FaultKind::Redirect { .. }
            | FaultKind::HangUp
            | FaultKind::CutBody => true,
            FaultKind::DropAfter { .. }
            | FaultKind::Stall { .. }
            | FaultKind::Trickle { .. }
            | FaultKind::ExtraBytes { .. }
            | FaultKind::ShortBody
            | FaultKind::Throttle { .. } => op.body != BodyFacts::None,
            FaultKind::Corrupt { offset } => match op.body {
                BodyFacts::None => false,
                BodyFacts::Manifest { len } => *offset < len,
                BodyFacts::Blob { start, end, .. } => (start..end).contains(offset),
            },
            FaultKind::WrongContentRange | FaultKind::IgnoreRange => {
                matches!(op.body, BodyFacts::Blob { ranged: true, .. })
            }
            FaultKind::UploadLocation { .. } => op.class == OpClass::UploadPost,
            FaultKind::ManifestBody { .. } => {
                op.class == OpClass::ManifestGet || matches!(op.body, BodyFacts::Manifest { .. })
            }
        }
    }
}

/// Active faults with their counters.
#[derive(Debug, Default)]
pub(crate) struct FaultTable {
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    fault: Fault,
    skipped: u32,
    used: u32,
}

impl FaultTable {
    /// Adds a fault after the existing ones.
    pub fn push(&mut self, fault: Fault) {
        self.entries.push(Entry {
            fault,
            skipped: 0,
            used: 0,
        });
    }

    /// Removes every fault.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The fault that acts on this request, if any, counting it as used.
    /// A fault still in its `after` allowance counts the request as skipped
    /// and lets later faults try.
    pub fn take(&mut self, op: &Op) -> Option<FaultKind> {
        let mut hit = None;
        for (index, entry) in self.entries.iter_mut().enumerate() {
            if !entry.fault.target.matches(op) || !entry.fault.kind.applies_to(op) {
                continue;
            }
            if entry.skipped < entry.fault.after {
                entry.skipped += 1;
                continue;
            }
            entry.used += 1;
            hit = Some(index);
            break;
        }
        let index = hit?;
        let entry = &self.entries[index];
        let kind = entry.fault.kind.clone();
        if entry.fault.times != 0 && entry.used >= entry.fault.times {
            self.entries.remove(index);
        }
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob_op(start: u64, end: u64, ranged: bool) -> Op {
        Op {
            class: OpClass::BlobStoreGet,
            digest: Some(format!("sha256:{}", "a".repeat(64))),
            body: BodyFacts::Blob { start, end, ranged },
        }
    }

    #[test]
    fn after_and_times_count_matching_requests() {
        let mut table = FaultTable::default();
        table.push(
            Fault::new(
                Target::BlobStore { digest: None },
                FaultKind::DropAfter { bytes: 1 },
            )
            .after(1)
            .times(2),
        );
        let op = blob_op(0, 10, false);
        assert_eq!(table.take(&op), None);
        assert!(table.take(&op).is_some());
        assert!(table.take(&op).is_some());
        assert_eq!(table.take(&op), None);
    }

    #[test]
    fn corrupt_waits_for_a_response_covering_its_offset() {
        let mut table = FaultTable::default();
        table.push(Fault::new(Target::Any, FaultKind::Corrupt { offset: 15 }));
        assert_eq!(table.take(&blob_op(0, 10, true)), None);
        assert!(table.take(&blob_op(10, 20, true)).is_some());
        assert_eq!(table.take(&blob_op(10, 20, true)), None);
    }

    #[test]
    fn range_faults_need_a_range_and_digest_filters_apply() {
        let mut table = FaultTable::default();
        table.push(
            Fault::new(
                Target::BlobStore {
                    digest: Some(format!("sha256-{}", "a".repeat(64))),
                },
                FaultKind::IgnoreRange,
            )
            .forever(),
        );
        assert_eq!(table.take(&blob_op(0, 10, false)), None);
        assert!(table.take(&blob_op(0, 10, true)).is_some());
        assert!(table.take(&blob_op(0, 10, true)).is_some());
        let mut other = blob_op(0, 10, true);
        other.digest = Some(format!("sha256:{}", "b".repeat(64)));
        assert_eq!(table.take(&other), None);
    }

    #[test]
    fn json_form_is_friendly() {
        let fault: Fault = serde_json::from_str(
            r#"{"target":{"blob":{}},"kind":{"status":{"code":503,"retry_after":"1"}}}"#,
        )
        .expect("parse");
        assert_eq!(fault.times, 1);
        assert_eq!(fault.target, Target::Blob { digest: None });
        let fault: Fault = serde_json::from_str(
            r#"{"target":"manifest","kind":{"manifest_body":{"body":"!!!"}},"times":0}"#,
        )
        .expect("parse");
        assert_eq!(
            fault.kind,
            FaultKind::ManifestBody {
                body: Bytes::from_static(b"!!!")
            }
        );
        let fault: Fault = serde_json::from_str(
            r#"{"target":"any","kind":{"status":{"code":500,"body":{"text":"boom"}}}}"#,
        )
        .expect("parse");
        assert!(matches!(
            fault.kind,
            FaultKind::Status {
                body: ErrorBody::Text(_),
                ..
            }
        ));
    }
}
