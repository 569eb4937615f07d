//! Serving stored bytes (blobs and manifests): `Range` handling and the
//! body-shaping faults.
//!
//! The same function answers the blob store, the registry in
//! `BlobMode::Direct`, and manifests, so a fault means the same thing
//! wherever it is injected.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::header::{HeaderMap, ACCEPT_RANGES, CONTENT_RANGE, ETAG, RANGE};

use super::body::{ScriptedBody, Step};
use super::faults::{BodyFacts, FaultKind};
use super::respond::{self, set_header, set_named, Resp};

/// What a request's `Range` header asks of content of a given size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RangeReq {
    /// No (usable) Range header: the whole content.
    Full,
    /// Bytes `start..=end`, already clamped to the content.
    Part { start: u64, end: u64 },
    /// A syntactically valid range that starts past the end.
    Unsatisfiable,
}

/// Interprets the `Range` header for content of `total` bytes. Like most
/// servers, a malformed or multi-range header is ignored (whole content).
pub(crate) fn range_request(headers: &HeaderMap, total: u64) -> RangeReq {
    let Some(value) = headers.get(RANGE).and_then(|v| v.to_str().ok()) else {
        return RangeReq::Full;
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeReq::Full;
    };
    if spec.contains(',') {
        return RangeReq::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeReq::Full;
    };
    let parse = |s: &str| s.trim().parse::<u64>().ok();
    match (first.trim().is_empty(), parse(first), parse(last)) {
        // bytes=-N: the last N bytes.
        (true, _, Some(suffix)) => {
            if suffix == 0 || total == 0 {
                RangeReq::Unsatisfiable
            } else {
                RangeReq::Part {
                    start: total.saturating_sub(suffix),
                    end: total - 1,
                }
            }
        }
        (false, Some(start), last_value) => {
            let end = match (last.trim().is_empty(), last_value) {
                (true, _) => u64::MAX,
                (false, Some(end)) if end >= start => end,
                _ => return RangeReq::Full,
            };
            if start >= total {
                RangeReq::Unsatisfiable
            } else {
                RangeReq::Part {
                    start,
                    end: end.min(total - 1),
                }
            }
        }
        _ => RangeReq::Full,
    }
}

/// The facts a fault is matched against for serving `total` bytes under
/// `range` (see [`BodyFacts`]).
pub(crate) fn blob_facts(total: u64, range: RangeReq) -> BodyFacts {
    match range {
        RangeReq::Full => BodyFacts::Blob {
            start: 0,
            end: total,
            ranged: false,
        },
        RangeReq::Part { start, end } => BodyFacts::Blob {
            start,
            end: end + 1,
            ranged: true,
        },
        RangeReq::Unsatisfiable => BodyFacts::None,
    }
}

/// Serves blob `data` for a GET or HEAD with `range`, shaped by `fault`.
pub(crate) fn serve_blob(
    data: &Bytes,
    digest: &str,
    range: RangeReq,
    fault: Option<&FaultKind>,
    head: bool,
) -> Resp {
    let total = data.len() as u64;
    let (mut status, mut start, mut end) = match range {
        RangeReq::Full => (200, 0, total),
        RangeReq::Part { start, end } => (206, start, end + 1),
        RangeReq::Unsatisfiable => {
            let mut resp = respond::oci_error(
                416,
                "RANGE_INVALID",
                "requested range not satisfiable",
                serde_json::Value::Null,
            );
            set_header(&mut resp, CONTENT_RANGE, &format!("bytes */{total}"));
            return resp;
        }
    };
    let mut content_range = (status == 206).then(|| format!("bytes {start}-{}/{total}", end - 1));
    match fault {
        Some(FaultKind::IgnoreRange) => {
            (status, start, end) = (200, 0, total);
            content_range = None;
        }
        Some(FaultKind::WrongContentRange) => {
            content_range = Some(wrong_range(start, end - 1, total));
        }
        _ => {}
    }
    let mut body = data.slice(to_usize(start)..to_usize(end));
    if let Some(FaultKind::ExtraBytes { count }) = fault {
        body = with_extra(data, to_usize(start), to_usize(end), to_usize(*count));
    }
    let mut resp = shaped(status, body, start, fault, head);
    set_header(
        &mut resp,
        hyper::header::CONTENT_TYPE,
        "application/octet-stream",
    );
    set_header(&mut resp, ACCEPT_RANGES, "bytes");
    set_header(&mut resp, ETAG, &format!("\"{digest}\""));
    set_named(&mut resp, "docker-content-digest", digest);
    if let Some(content_range) = content_range {
        set_header(&mut resp, CONTENT_RANGE, &content_range);
    }
    resp
}

/// Serves a whole manifest body, shaped by `fault` (offsets count from the
/// start of the manifest).
pub(crate) fn serve_manifest(
    body: Bytes,
    content_type: &str,
    digest: &str,
    fault: Option<&FaultKind>,
    head: bool,
) -> Resp {
    let body = match fault {
        Some(FaultKind::ExtraBytes { count }) => with_extra(&body, 0, body.len(), to_usize(*count)),
        _ => body,
    };
    let mut resp = shaped(200, body, 0, fault, head);
    set_header(&mut resp, hyper::header::CONTENT_TYPE, content_type);
    set_named(&mut resp, "docker-content-digest", digest);
    resp
}

/// A response of `body` (which starts at content offset `offset`), with
/// Content-Length = `body.len()`, played through the fault's script.
fn shaped(status: u16, body: Bytes, offset: u64, fault: Option<&FaultKind>, head: bool) -> Resp {
    let len = body.len() as u64;
    let script = if head {
        Vec::new()
    } else {
        script_for(body, offset, fault)
    };
    let mut resp = respond::empty(status);
    *resp.body_mut() = ScriptedBody::script(script);
    set_header(&mut resp, hyper::header::CONTENT_LENGTH, &len.to_string());
    resp
}

/// The body script that delivers `body` (content offset `offset`) with the
/// fault applied.
fn script_for(body: Bytes, offset: u64, fault: Option<&FaultKind>) -> Vec<Step> {
    match fault {
        Some(FaultKind::DropAfter { bytes }) => {
            let cut = to_usize(*bytes).min(body.len());
            vec![Step::Data(body.slice(..cut)), Step::Abort]
        }
        Some(FaultKind::ShortBody) => vec![Step::Data(body.slice(..body.len() / 2)), Step::Abort],
        Some(FaultKind::Stall {
            after_bytes,
            millis,
        }) => {
            let cut = to_usize(*after_bytes).min(body.len());
            vec![
                Step::Data(body.slice(..cut)),
                Step::Pause(Duration::from_millis(*millis)),
                Step::Data(body.slice(cut..)),
            ]
        }
        Some(FaultKind::Trickle { bytes, millis }) => vec![Step::Trickle {
            data: body,
            piece: to_usize(*bytes).max(1),
            pause: Duration::from_millis(*millis),
        }],
        Some(FaultKind::Corrupt { offset: target }) => match target.checked_sub(offset) {
            Some(at) if at < body.len() as u64 => {
                let at = to_usize(at);
                let flipped = Bytes::from(vec![body[at] ^ 0xff]);
                vec![
                    Step::Data(body.slice(..at)),
                    Step::Data(flipped),
                    Step::Data(body.slice(at + 1..)),
                ]
            }
            _ => vec![Step::Data(body)],
        },
        _ => vec![Step::Data(body)],
    }
}

/// `data[start..end]` followed by `count` more bytes: the content that
/// follows, then zeros past the end.
/// `count` is capped at 1 GiB so an absurd fault parameter cannot exhaust
/// memory.
fn with_extra(data: &Bytes, start: usize, end: usize, count: usize) -> Bytes {
    let count = count.min(1 << 30);
    let real_end = end.saturating_add(count).min(data.len());
    let mut out = BytesMut::with_capacity(end - start + count);
    out.extend_from_slice(&data[start..real_end]);
    out.resize(end - start + count, 0);
    out.freeze()
}

/// A Content-Range for the same length as `start..=end` but elsewhere (or,
/// for a whole tiny blob, one that overruns it).
fn wrong_range(start: u64, end: u64, total: u64) -> String {
    if end + 1 < total {
        format!("bytes {}-{}/{total}", start + 1, end + 1)
    } else if start > 0 {
        format!("bytes {}-{}/{total}", start - 1, end - 1)
    } else {
        format!("bytes {}-{}/{total}", start + 1, end + 1)
    }
}

/// Offsets come from stored in-memory content, so they fit in `usize`;
/// saturate rather than panic for absurd fault parameters.
fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn range(value: &str, total: u64) -> RangeReq {
        let mut headers = HeaderMap::new();
        headers.insert(RANGE, HeaderValue::from_str(value).expect("header"));
        range_request(&headers, total)
    }

    #[test]
    fn ranges_parse() {
        assert_eq!(range("bytes=0-0", 10), RangeReq::Part { start: 0, end: 0 });
        assert_eq!(range("bytes=2-", 10), RangeReq::Part { start: 2, end: 9 });
        assert_eq!(
            range("bytes=2-100", 10),
            RangeReq::Part { start: 2, end: 9 }
        );
        assert_eq!(range("bytes=-3", 10), RangeReq::Part { start: 7, end: 9 });
        assert_eq!(range("bytes=10-", 10), RangeReq::Unsatisfiable);
        assert_eq!(range("bytes=0-0", 0), RangeReq::Unsatisfiable);
        assert_eq!(range("bytes=5-2", 10), RangeReq::Full);
        assert_eq!(range("bytes=0-1,3-4", 10), RangeReq::Full);
        assert_eq!(range("items=0-1", 10), RangeReq::Full);
        assert_eq!(range("bytes=x-1", 10), RangeReq::Full);
    }

    #[test]
    fn extra_bytes_pad_past_the_end() {
        let data = Bytes::from_static(b"abcdef");
        assert_eq!(&with_extra(&data, 1, 3, 2)[..], b"bcde");
        assert_eq!(&with_extra(&data, 4, 6, 2)[..], b"ef\0\0");
    }

    #[test]
    fn wrong_range_differs() {
        assert_eq!(wrong_range(0, 9, 100), "bytes 1-10/100");
        assert_eq!(wrong_range(90, 99, 100), "bytes 89-98/100");
        assert_ne!(wrong_range(0, 9, 10), "bytes 0-9/10");
    }
}
