//! The push engine: check the local model completely before any request,
//! upload the blobs the registry lacks in parallel (mounting from another
//! repository when possible, in `PATCH` chunks for large blobs on upload
//! sessions), then `PUT` the manifest's exact bytes.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::context::{blocking, join_all, Op};
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Layer, Manifest};
use crate::name::Name;
use crate::progress::{LogLevel, ProgressEvent};
use crate::remote::registry::{Presence, UploadStart};
use crate::remote::session::{Access, Body, Session};
use crate::store::Store;

/// The most other repositories tried as mount sources for one blob.
const MAX_MOUNT_SOURCES: usize = 3;

/// Pushes the local model `source` as `target`.
pub(crate) async fn push(op: Arc<Op>, target: Name, source: Name) -> Result<Manifest> {
    let store = op.store.clone();
    let limits = op.settings.limits;
    let (src, dst) = (source.clone(), target.clone());
    let (manifest, pin, mounts) = blocking(move || {
        let manifest = check_local(&store, &src, &limits)?;
        let digests: Vec<Digest> = manifest.blobs().iter().map(|l| l.digest).collect();
        let pin = store.pin(&digests)?;
        let mounts = mount_sources(&store, &dst, &digests);
        Ok((manifest, pin, mounts))
    })
    .await
    .map_err(|e| e.with_model(&source))?;

    let stop = op.cancel.child_token();
    let session = Arc::new(op.session(&target, Access::Push, stop.clone())?);
    let blobs = manifest.blobs();
    op.log(LogLevel::Info, || {
        format!(
            "push {source} as {target}: manifest {}, {} blobs ({} bytes)",
            manifest.digest().short(),
            blobs.len(),
            manifest.total_size()
        )
    });
    op.reporter.resolved_with(&blobs, &[]);

    let streams = Arc::new(Semaphore::new(op.settings.streams.max(1)));
    let mut tasks = JoinSet::new();
    for (i, layer) in blobs.iter().enumerate() {
        let job = UploadJob {
            op: op.clone(),
            session: session.clone(),
            streams: streams.clone(),
            index: i,
            layer: layer.clone(),
            mount_from: mounts.get(&layer.digest).cloned().unwrap_or_default(),
            source: Arc::new(StoreBlob {
                store: op.store.clone(),
                digest: layer.digest,
            }),
        };
        tasks.spawn(async move { job.run().await });
    }
    join_all(&mut tasks, Some(&stop))
        .await
        .map_err(|e| e.with_model(&target))?;
    // Every blob is in the target repository now: later pushes to the same
    // registry can mount from it.
    op.remember_sources(&target, &blobs).await;
    session
        .put_manifest(target.tag(), &manifest)
        .await
        .map_err(|e| e.with_model(&target))?;
    drop(pin);
    op.reporter.operation(ProgressEvent::Finished);
    Ok(manifest)
}

/// Everything a push needs, checked before the first request: a manifest
/// that parses (no null layers), and every blob present with its size.
pub(crate) fn check_local(
    store: &Store,
    source: &Name,
    limits: &crate::manifest::Limits,
) -> Result<Manifest> {
    let manifest = store.load_manifest(source, limits)?;
    for layer in manifest.blobs() {
        match store.checked_blob_size(&layer.digest)? {
            None => {
                return Err(
                    Error::not_found(format!("blob {} of the local model", layer.digest))
                        .with_blob(layer.digest),
                )
            }
            Some(actual) if actual != layer.size => {
                return Err(Error::new(ErrorKind::SizeMismatch {
                    expected: layer.size,
                    actual,
                })
                .with_blob(layer.digest))
            }
            Some(_) => {}
        }
    }
    Ok(manifest)
}

/// For each digest, other repositories on the target's registry that hold
/// it, as far as the store knows: those recorded as having received or
/// served it (most recent first), then those of models pulled from there.
fn mount_sources(store: &Store, target: &Name, digests: &[Digest]) -> HashMap<Digest, Vec<String>> {
    let mut out: HashMap<Digest, Vec<String>> = HashMap::new();
    let target_repo = target.repository();
    let mut add = |digest: Digest, repo: String| {
        let repos = out.entry(digest).or_default();
        if repos.len() < MAX_MOUNT_SOURCES && !repos.iter().any(|r| r.eq_ignore_ascii_case(&repo)) {
            repos.push(repo);
        }
    };
    for (digest, repo) in store.blob_sources(target.host(), &target_repo, digests) {
        add(digest, repo);
    }
    let Ok(models) = store.walk_manifests() else {
        return out;
    };
    let limits = crate::manifest::Limits::default();
    for (name, parts) in models {
        let other_repo = name.repository();
        if !name.host().eq_ignore_ascii_case(target.host())
            || other_repo.eq_ignore_ascii_case(&target_repo)
        {
            continue;
        }
        let Ok(manifest) = store
            .read_stored_manifest(&parts, &limits)
            .and_then(|b| Manifest::parse(b, &limits))
        else {
            continue;
        };
        for layer in manifest.blobs() {
            if digests.contains(&layer.digest) {
                add(layer.digest, other_repo.clone());
            }
        }
    }
    out
}

/// Whether the registry gave up an upload session: it forgot it, or (as
/// Docker Distribution does after a `PATCH` broke off midway) what it stored
/// no longer matches the session's state. Only a new session helps.
fn session_lost(e: &Error) -> bool {
    matches!(
        e.registry_code(),
        Some("BLOB_UPLOAD_UNKNOWN" | "BLOB_UPLOAD_INVALID")
    ) && e.http_status() != Some(416)
}

/// Where an upload's bytes come from.
pub(crate) trait BlobSource: Send + Sync {
    /// A body carrying bytes `[offset, offset+len)` of the blob, reporting
    /// each piece sent to `on_sent`.
    fn body(&self, offset: u64, len: u64, on_sent: Arc<dyn Fn(u64) + Send + Sync>) -> Body;

    /// Why the last body failed, when the source knows better than the
    /// request that carried it (its own registry failed, or its bytes do
    /// not match their digest). Taken: a second call returns `None`.
    fn failure(&self) -> Option<Error> {
        None
    }
}

/// A blob of the local store, opened afresh (never through a link) for each
/// request that carries it.
struct StoreBlob {
    store: Store,
    digest: Digest,
}

impl BlobSource for StoreBlob {
    fn body(&self, offset: u64, len: u64, on_sent: Arc<dyn Fn(u64) + Send + Sync>) -> Body {
        let (store, digest) = (self.store.clone(), self.digest);
        Body::File {
            open: Arc::new(move || store.open_blob(&digest).map_err(std::io::Error::other)),
            offset,
            len,
            on_sent: Some(on_sent),
        }
    }
}

/// The upload of one blob: skipped when the registry has it, mounted when
/// another repository there has it, else sent whole or in resumable `PATCH`
/// pieces.
pub(crate) struct UploadJob {
    pub(crate) op: Arc<Op>,
    pub(crate) session: Arc<Session>,
    /// One permit per running upload.
    pub(crate) streams: Arc<Semaphore>,
    pub(crate) index: usize,
    pub(crate) layer: Layer,
    /// Repositories on the same registry to try mounting from.
    pub(crate) mount_from: Vec<String>,
    pub(crate) source: Arc<dyn BlobSource>,
}

impl UploadJob {
    pub(crate) async fn run(&self) -> Result<()> {
        let digest = self.layer.digest;
        let result = self.upload().await;
        if let Err(e) = &result {
            if !e.is_cancelled() {
                self.op
                    .reporter
                    .blob(self.index, ProgressEvent::Failed, Some(e.to_string()));
            }
        }
        result.map_err(|e| e.with_blob(digest))
    }

    async fn upload(&self) -> Result<()> {
        let streams = self.streams.clone();
        let _permit = self
            .session
            .cancellable(async move {
                streams
                    .acquire_owned()
                    .await
                    .map_err(|_| Error::cancelled())
            })
            .await?;
        // Every blob's task waits here from the start of the push; the
        // upload's own state (tens of KiB: requests, retries, timers) is
        // allocated only for the few that hold a stream.
        Box::pin(self.upload_holding_stream()).await
    }

    async fn upload_holding_stream(&self) -> Result<()> {
        let digest = self.layer.digest;
        self.op
            .reporter
            .blob(self.index, ProgressEvent::Started, None);
        match self.session.blob_presence(digest).await? {
            Presence::Present => {
                self.op
                    .reporter
                    .blob(self.index, ProgressEvent::Cached, None);
                return Ok(());
            }
            Presence::Absent => {}
            Presence::Unknown(e) => self.op.log(LogLevel::Info, || {
                format!(
                    "{}: existence check failed ({e}); uploading",
                    digest.short()
                )
            }),
        }
        let mut location = None;
        for repo in &self.mount_from {
            match self.session.start_upload(digest, Some(repo)).await {
                Ok(UploadStart::Mounted | UploadStart::Exists) => {
                    self.op.log(LogLevel::Info, || {
                        format!("{}: mounted from {repo}", digest.short())
                    });
                    self.op
                        .reporter
                        .blob(self.index, ProgressEvent::Cached, None);
                    return Ok(());
                }
                // The registry opened an ordinary upload session instead.
                Ok(UploadStart::Upload(url)) => {
                    location = Some(url);
                    break;
                }
                Err(e) if e.is_cancelled() => return Err(e),
                Err(e) => self.op.log(LogLevel::Debug, || {
                    format!("{}: mount from {repo} failed: {e}", digest.short())
                }),
            }
        }

        let policy = self.session.retry_policy();
        let mut restarts = 0;
        loop {
            let url = match location.take() {
                Some(url) => url,
                None => match self.session.start_upload(digest, None).await? {
                    UploadStart::Exists | UploadStart::Mounted => {
                        self.op
                            .reporter
                            .blob(self.index, ProgressEvent::Cached, None);
                        return Ok(());
                    }
                    UploadStart::Upload(url) => url,
                },
            };
            self.op.reporter.set_bytes(self.index, 0);
            let chunked = self.session.is_session_url(&url)
                && self.layer.size > self.op.settings.chunk_threshold;
            let sent = if chunked {
                self.send_chunks(url).await
            } else {
                self.session
                    .put_blob(&url, digest, self.body(0, self.layer.size))
                    .await
            };
            let sent = sent.map_err(|e| self.source.failure().unwrap_or(e));
            match sent {
                Ok(()) => {
                    self.op.reporter.blob(self.index, ProgressEvent::Done, None);
                    return Ok(());
                }
                // A transient failure or a session the registry forgot: start
                // a new upload.
                Err(e)
                    if (e.is_retryable() || session_lost(&e)) && restarts + 1 < policy.attempts =>
                {
                    restarts += 1;
                    self.op
                        .reporter
                        .blob(self.index, ProgressEvent::Retrying, Some(e.to_string()));
                    self.session
                        .backoff(restarts, &e, &format!("upload of {}", digest.short()))
                        .await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends the blob in `PATCH` pieces; after a failed piece, asks the
    /// session how much it holds and goes on from there.
    async fn send_chunks(&self, mut url: reqwest::Url) -> Result<()> {
        let size = self.layer.size;
        let piece = self.op.settings.upload_chunk_size.max(1);
        let policy = self.session.retry_policy();
        let mut offset = 0;
        let mut failures = 0;
        while offset < size {
            let len = piece.min(size - offset);
            let sent = self
                .session
                .patch_blob(&url, offset, len, self.body(offset, len))
                .await
                .map_err(|e| self.source.failure().unwrap_or(e));
            match sent {
                Ok(next) => {
                    url = next;
                    offset += len;
                    failures = 0;
                }
                Err(e) if session_lost(&e) => return Err(e),
                Err(e)
                    if (e.is_retryable() || e.http_status() == Some(416))
                        && failures + 1 < policy.attempts =>
                {
                    failures += 1;
                    self.op
                        .reporter
                        .blob(self.index, ProgressEvent::Retrying, Some(e.to_string()));
                    self.session
                        .backoff(
                            failures,
                            &e,
                            &format!("upload of {}", self.layer.digest.short()),
                        )
                        .await?;
                    let (held, next) = self.session.upload_offset(&url).await?;
                    if held > size {
                        return Err(Error::protocol(
                            &crate::remote::redact::redact(&url),
                            format!("the upload session claims {held} of {size} bytes"),
                        ));
                    }
                    offset = held;
                    url = next;
                    self.op.reporter.set_bytes(self.index, offset);
                }
                Err(e) => return Err(e),
            }
        }
        self.session.finish_upload(&url, self.layer.digest).await
    }

    fn body(&self, offset: u64, len: u64) -> Body {
        let reporter = self.op.reporter.clone();
        let index = self.index;
        self.source
            .body(offset, len, Arc::new(move |n| reporter.add_bytes(index, n)))
    }
}
