//! The registry protocol's verbs (docs/design.md §5) on top of a [`Session`]:
//! manifests, blob ranges, and the steps of an upload. Each verb checks the
//! answer's shape (status, `Content-Range`, `Location`, digests) so the
//! transfer engines only see well-formed results.

use reqwest::header::{
    HeaderMap, HeaderName, ACCEPT, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE,
};
use reqwest::{Method, Response, StatusCode, Url};

use super::content_range;
use super::redact::{redact, redact_text};
use super::redirect::same_origin;
use super::session::{header_str, Body, Req, Session};
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result, Status};
use crate::index::{Document, IndexEntry};
use crate::manifest::{Limits, Manifest, MANIFEST_ACCEPT};

const OCTET_STREAM: &str = "application/octet-stream";
const DOCKER_CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");

/// How a registry answered the start of an upload.
#[derive(Debug)]
pub(crate) enum UploadStart {
    /// It already has the blob.
    Exists,
    /// It linked the blob from another repository.
    Mounted,
    /// Send the bytes to this URL: a presigned storage URL on another host
    /// (used exactly as given, with no credentials), or an upload session on
    /// the registry's own origin.
    Upload(Url),
}

/// What a `HEAD` said about a blob.
#[derive(Debug)]
pub(crate) enum Presence {
    Present,
    Absent,
    /// The check failed (the error says how); the upload finds out.
    Unknown(Error),
}

impl Session {
    /// Fetches and checks the manifest `name:reference` (a tag): an image
    /// manifest or an index of them.
    pub(crate) async fn get_manifest(&self, reference: &str, limits: &Limits) -> Result<Document> {
        let url = self.url(&format!("manifests/{reference}"))?;
        let req = Req::new(Method::GET, url.clone())
            .header(ACCEPT, MANIFEST_ACCEPT)
            .follow();
        let (announced, bytes) = self
            .fetch(&req, |resp| async {
                let announced = header_str(resp.headers(), &DOCKER_CONTENT_DIGEST)
                    .and_then(|d| Digest::parse(d).ok());
                let bytes = self
                    .read_manifest_body(resp, &url, limits.max_manifest_bytes)
                    .await?;
                Ok((announced, bytes))
            })
            .await?;
        if let Some(announced) = announced {
            check_digest(announced, &bytes)?;
        }
        Document::parse(bytes, limits)
    }

    /// Fetches the manifest with this digest: where Ollama's registry serves
    /// it (`blobs/<digest>`), falling back to OCI's `manifests/<digest>`.
    /// The bytes must hash to the digest.
    pub(crate) async fn get_manifest_by_digest(
        &self,
        digest: Digest,
        limits: &Limits,
    ) -> Result<Document> {
        let url = self.url(&format!("blobs/{digest}"))?;
        let req = Req::new(Method::GET, url.clone()).follow();
        let read = |resp| self.read_manifest_body(resp, &url, limits.max_manifest_bytes);
        let bytes = match self.fetch(&req, read).await {
            Ok(bytes) => bytes,
            Err(e) if e.status() == Status::NotFound => {
                self.oci_manifest_bytes(digest, limits.max_manifest_bytes)
                    .await?
            }
            Err(e) => return Err(e),
        };
        check_digest(digest, &bytes)?;
        Document::parse(bytes, limits)
    }

    /// Fetches the manifest an index entry names (`manifests/<digest>`):
    /// exactly the entry's size, hashing to its digest, and not itself an
    /// index (olreg follows one level, as container runtimes do).
    pub(crate) async fn get_index_child(
        &self,
        entry: &IndexEntry,
        limits: &Limits,
    ) -> Result<Manifest> {
        let cap = usize::try_from(entry.size).unwrap_or(usize::MAX);
        let bytes = self.oci_manifest_bytes(entry.digest, cap).await?;
        if bytes.len() as u64 != entry.size {
            return Err(Error::new(ErrorKind::SizeMismatch {
                expected: entry.size,
                actual: bytes.len() as u64,
            }));
        }
        check_digest(entry.digest, &bytes)?;
        match Document::parse(bytes, limits)? {
            Document::Manifest(manifest) => Ok(manifest),
            Document::Index(_) => Err(Error::invalid_manifest(format!(
                "the image index entry {} is itself an index (nested indexes are not followed)",
                entry.digest.short()
            ))),
        }
    }

    /// The body of `manifests/<digest>`, at most `cap` bytes.
    async fn oci_manifest_bytes(&self, digest: Digest, cap: usize) -> Result<Vec<u8>> {
        let url = self.url(&format!("manifests/{digest}"))?;
        let req = Req::new(Method::GET, url.clone())
            .header(ACCEPT, MANIFEST_ACCEPT)
            .follow();
        self.fetch(&req, |resp| self.read_manifest_body(resp, &url, cap))
            .await
    }

    async fn read_manifest_body(&self, resp: Response, url: &Url, cap: usize) -> Result<Vec<u8>> {
        self.read_body(resp, cap, url)
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::Protocol { reason, .. } => Error::invalid_manifest(reason.clone()),
                _ => e,
            })
    }

    /// Requests bytes `[start, end)` of a blob of `size` bytes from `url`
    /// (the registry's blob URL, following its redirect, or an already
    /// resolved storage URL) and checks that the answer is exactly that range.
    /// A whole-blob request may also be answered with 200, and so may any
    /// request when `allow_whole` (a probe that falls back to one stream on
    /// servers without range support).
    pub(crate) async fn get_blob_range(
        &self,
        url: &Url,
        start: u64,
        end: u64,
        size: u64,
        allow_whole: bool,
    ) -> Result<Response> {
        let mut req = Req::new(Method::GET, url.clone()).follow().no_retry();
        let whole = start == 0 && end == size;
        if !whole {
            req = req.header(RANGE, format!("bytes={start}-{}", end - 1));
        }
        let resp = self.send(&req).await?;
        if allow_whole && resp.status() == StatusCode::OK {
            check_range(&resp, 0, size, size)?;
        } else {
            check_range(&resp, start, end, size)?;
        }
        Ok(resp)
    }

    /// Whether the registry has the blob (`HEAD`), asked once: the answer is
    /// only advice, so a failed check (a 5xx, a registry without `HEAD`) is
    /// [`Presence::Unknown`], with the error for the log, and spends no
    /// retries. Only a cancel is an error.
    pub(crate) async fn blob_presence(&self, digest: Digest) -> Result<Presence> {
        let url = self.url(&format!("blobs/{digest}"))?;
        match self
            .fetch_small(&Req::new(Method::HEAD, url).follow().no_retry())
            .await
        {
            Ok(_) => Ok(Presence::Present),
            Err(e) if e.is_cancelled() => Err(e),
            Err(e) if e.status() == Status::NotFound => Ok(Presence::Absent),
            Err(e) => Ok(Presence::Unknown(e)),
        }
    }

    /// Starts uploading `digest`: `POST …/blobs/uploads/?digest=` or, with
    /// `mount_from`, `?mount=&from=`.
    pub(crate) async fn start_upload(
        &self,
        digest: Digest,
        mount_from: Option<&str>,
    ) -> Result<UploadStart> {
        let query = match mount_from {
            Some(from) => format!("mount={digest}&from={from}"),
            None => format!("digest={digest}"),
        };
        let url = self.url(&format!("blobs/uploads/?{query}"))?;
        let req = Req::new(Method::POST, url.clone()).header(CONTENT_LENGTH, "0");
        let answer = self.fetch_small(&req).await?;
        let status = answer.status;
        let already = if mount_from.is_some() {
            UploadStart::Mounted
        } else {
            UploadStart::Exists
        };
        match (status, header_str(&answer.headers, &LOCATION)) {
            (StatusCode::ACCEPTED, Some(location)) => {
                Ok(UploadStart::Upload(self.upload_location(&url, location)?))
            }
            // No Location (Ollama's registry has the blob), or 201 Created
            // (mounted, or already there).
            (s, None) if s.is_success() => Ok(already),
            (StatusCode::CREATED, Some(_)) => Ok(already),
            _ => Err(Error::protocol(
                &redact(&url),
                format!("HTTP {status} to an upload request"),
            )),
        }
    }

    /// Resolves an upload `Location` against the request URL and checks it.
    fn upload_location(&self, request: &Url, location: &str) -> Result<Url> {
        let bad = |why: String| {
            Error::protocol(
                &redact(request),
                format!("the upload Location {:?} {why}", redact_text(location)),
            )
        };
        let to = request
            .join(location)
            .map_err(|e| bad(format!("is not a valid URL: {e}")))?;
        match to.scheme() {
            "https" => {}
            "http" if request.scheme() == "http" || self.allows_plain_http() => {}
            other => return Err(bad(format!("uses the {other:?} scheme"))),
        }
        if to.host_str().is_none_or(str::is_empty) {
            return Err(bad("has no host".into()));
        }
        Ok(to)
    }

    /// Whether `url` is an upload session on the registry's own origin (as
    /// opposed to a presigned storage URL elsewhere).
    pub(crate) fn is_session_url(&self, url: &Url) -> bool {
        same_origin(url, self.base())
    }

    /// Finishes an upload with the whole blob in one `PUT`. A presigned URL
    /// is used exactly as given; a session URL gets `digest=` added to its
    /// query, which is otherwise kept byte for byte.
    pub(crate) async fn put_blob(&self, location: &Url, digest: Digest, body: Body) -> Result<()> {
        let url = if self.is_session_url(location) {
            with_digest(location, digest)
        } else {
            location.clone()
        };
        let req = Req::new(Method::PUT, url)
            .header(CONTENT_TYPE, OCTET_STREAM)
            .body(body)
            .no_retry();
        self.fetch_small(&req).await.map(drop)
    }

    /// Sends bytes `[start, start+len)` of a chunked upload (`PATCH`) and
    /// returns the session URL for the next step.
    pub(crate) async fn patch_blob(
        &self,
        location: &Url,
        start: u64,
        len: u64,
        body: Body,
    ) -> Result<Url> {
        let req = Req::new(Method::PATCH, location.clone())
            .header(CONTENT_TYPE, OCTET_STREAM)
            .header(CONTENT_RANGE, format!("{start}-{}", start + len - 1))
            .body(body)
            .no_retry();
        let answer = self.fetch_small(&req).await?;
        self.next_upload_location(location, &answer.headers)
    }

    /// Asks an upload session how many bytes it holds (`GET` → `Range`).
    pub(crate) async fn upload_offset(&self, location: &Url) -> Result<(u64, Url)> {
        let answer = self
            .fetch_small(&Req::new(Method::GET, location.clone()).no_retry())
            .await?;
        let next = self.next_upload_location(location, &answer.headers)?;
        let offset = match header_str(&answer.headers, &RANGE) {
            None => 0,
            Some(range) => parse_upload_range(range).ok_or_else(|| {
                Error::protocol(
                    &redact(location),
                    format!("the upload Range {range:?} is malformed"),
                )
            })?,
        };
        Ok((offset, next))
    }

    /// Closes a chunked upload: `PUT` with `digest=` and no body.
    pub(crate) async fn finish_upload(&self, location: &Url, digest: Digest) -> Result<()> {
        let req = Req::new(Method::PUT, with_digest(location, digest))
            .header(CONTENT_TYPE, OCTET_STREAM)
            .header(CONTENT_LENGTH, "0")
            .no_retry();
        self.fetch_small(&req).await.map(drop)
    }

    fn next_upload_location(&self, current: &Url, headers: &HeaderMap) -> Result<Url> {
        match header_str(headers, &LOCATION) {
            Some(location) => self.upload_location(current, location),
            None => Ok(current.clone()),
        }
    }

    /// `PUT`s the manifest's exact bytes under `tag`, with its own media type.
    pub(crate) async fn put_manifest(&self, tag: &str, manifest: &Manifest) -> Result<()> {
        let url = self.url(&format!("manifests/{tag}"))?;
        let req = Req::new(Method::PUT, url)
            .header(CONTENT_TYPE, manifest.media_type())
            .body(Body::Bytes(bytes::Bytes::copy_from_slice(manifest.bytes())));
        self.fetch_small(&req).await.map(drop)
    }

    fn allows_plain_http(&self) -> bool {
        self.base().scheme() == "http" || self.is_insecure()
    }
}

/// Checks that `bytes` hash to `expected`.
fn check_digest(expected: Digest, bytes: &[u8]) -> Result<()> {
    let actual = Digest::of(bytes);
    if actual != expected {
        return Err(Error::new(ErrorKind::DigestMismatch { expected, actual }));
    }
    Ok(())
}

/// `url` with `digest=<digest>` appended to its query; the existing query is
/// kept byte for byte (an upload session's `_state` must not be re-encoded).
fn with_digest(url: &Url, digest: Digest) -> Url {
    let mut out = url.clone();
    let query = match url.query() {
        Some(q) if !q.is_empty() => format!("{q}&digest={digest}"),
        _ => format!("digest={digest}"),
    };
    out.set_query(Some(&query));
    out
}

/// `Range: 0-<last>` of an upload session: the offset of the next byte.
fn parse_upload_range(value: &str) -> Option<u64> {
    let value = value.trim();
    let value = value.strip_prefix("bytes=").unwrap_or(value);
    let (first, last) = value.split_once('-')?;
    let (first, last): (u64, u64) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    // Docker Distribution says `0-0` for an empty session as well as for one
    // byte; olreg never sends a single byte, so `0-0` means nothing yet.
    match (first, last) {
        (0, 0) => Some(0),
        (0, last) => Some(last + 1),
        _ => None,
    }
}

/// Checks that an answer carries exactly bytes `[start, end)` of a blob of
/// `size` bytes.
fn check_range(resp: &Response, start: u64, end: u64, size: u64) -> Result<()> {
    let url = redact(resp.url());
    let length = resp.content_length();
    match resp.status() {
        StatusCode::PARTIAL_CONTENT => {
            let raw = header_str(resp.headers(), &CONTENT_RANGE).unwrap_or("");
            let got = content_range::parse(raw);
            let want_last = end - 1;
            let matches = got.is_some_and(|r| {
                r.first == start && r.last == want_last && r.total.is_none_or(|t| t == size)
            });
            if !matches {
                return Err(Error::protocol(
                    &url,
                    format!(
                        "asked for bytes {start}-{want_last}/{size} and got Content-Range {raw:?}"
                    ),
                ));
            }
            if let Some(len) = length.filter(|&l| l != end - start) {
                return Err(Error::protocol(
                    &url,
                    format!(
                        "asked for {} bytes and the answer announces {len}",
                        end - start
                    ),
                ));
            }
            Ok(())
        }
        StatusCode::OK if start == 0 && end == size => {
            if let Some(len) = length.filter(|&l| l != size) {
                return Err(Error::protocol(
                    &url,
                    format!("the blob is {size} bytes and the answer announces {len}"),
                ));
            }
            Ok(())
        }
        StatusCode::OK => Err(Error::protocol(
            &url,
            format!(
                "asked for bytes {start}-{} and got the whole blob (the server ignored Range)",
                end - 1
            ),
        )),
        other => Err(Error::protocol(
            &url,
            format!("unexpected HTTP {other} to a blob request"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_appended_without_touching_the_query() {
        let d = Digest::empty();
        let u = Url::parse("http://r/v2/a/b/blobs/uploads/123?_state=ab%2Bc%3D%3D&x=1").unwrap();
        assert_eq!(
            with_digest(&u, d).as_str(),
            format!("http://r/v2/a/b/blobs/uploads/123?_state=ab%2Bc%3D%3D&x=1&digest={d}")
        );
        let u = Url::parse("http://r/v2/a/b/blobs/uploads/123").unwrap();
        assert_eq!(
            with_digest(&u, d).query(),
            Some(format!("digest={d}").as_str())
        );
    }

    #[test]
    fn upload_ranges() {
        assert_eq!(parse_upload_range("0-0"), Some(0));
        assert_eq!(parse_upload_range("0-1048575"), Some(1 << 20));
        assert_eq!(parse_upload_range("bytes=0-9"), Some(10));
        assert_eq!(parse_upload_range("5-9"), None);
        assert_eq!(parse_upload_range("x"), None);
    }
}
