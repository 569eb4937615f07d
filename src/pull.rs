//! The pull engine (docs/design.md §6): resolve the manifest, skip blobs already
//! present, fetch the rest in parallel — large blobs as ranged chunks over
//! separate connections, written at their offsets while a hasher consumes
//! the completed prefix — and link the manifest last.
//!
//! Every byte goes through a [`Partial`], so whatever stops a pull (cancel,
//! error, kill -9) leaves ranges that the next pull resumes from, and no blob
//! reaches its final name before its hash is checked. Finished blobs wait in
//! the store's staging area, out of sight of Ollama's pruning, until the
//! whole model is there; then they go into `blobs/` and the manifest is
//! linked at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Response, Url};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::context::{blocking, join_all, task_failed, Op};
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result, Status};
use crate::index::{Document, Index};
use crate::manifest::{Layer, Manifest};
use crate::name::Name;
use crate::progress::{LogLevel, ProgressEvent};
use crate::remote::session::{Access, ResponseBody, Session};
use crate::spans::{self, Span};
use crate::store::{available_space, Partial};
use tokio::time::Instant;

/// How often partial-download state is made durable while bytes arrive.
const PERSIST_EVERY: Duration = Duration::from_secs(2);
/// How often a pull waiting for another writer of a blob looks again.
const WAIT_POLL: Duration = Duration::from_millis(100);

/// Fetches `name`'s manifest from its mirrors or its registry; returns the
/// name it came from (a mirror's, or `name`) with its session.
pub(crate) async fn resolve(
    op: &Op,
    name: &Name,
    access: Access,
    cancel: &CancellationToken,
) -> Result<(Session, Manifest, Name)> {
    let sources = op.pull_sources(name);
    let last = sources.len() - 1;
    for (i, source) in sources.iter().enumerate() {
        let session = op.session(source, access, cancel.clone())?;
        let limits = &op.settings.limits;
        let fetched = match name.digest() {
            Some(digest) => session.get_manifest_by_digest(digest, limits).await,
            None => session.get_manifest(name.tag(), limits).await,
        };
        let result = match fetched {
            Ok(Document::Manifest(manifest)) => Ok(manifest),
            Ok(Document::Index(index)) => follow_index(op, &session, &index).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(manifest) => return Ok((session, manifest, source.clone())),
            Err(e) if i < last && !e.is_cancelled() => {
                op.log(LogLevel::Warn, || {
                    format!(
                        "mirror {} failed, trying the next source: {e}",
                        source.host()
                    )
                });
            }
            Err(e) => return Err(e.with_model(name)),
        }
    }
    unreachable!("pull_sources always ends with the name itself")
}

/// The manifest an image index lists for the client's platform: what a
/// pull stores under the tag (the index itself is not kept).
async fn follow_index(op: &Op, session: &Session, index: &Index) -> Result<Manifest> {
    let entry = index.select(&op.settings.platform)?;
    op.log(LogLevel::Info, || {
        format!(
            "image index {} with {} entries: following {} for {}",
            index.digest().short(),
            index.entries().len(),
            entry.digest.short(),
            op.settings.platform
        )
    });
    session.get_index_child(entry, &op.settings.limits).await
}

/// Pulls `name` into the store and returns its manifest.
pub(crate) async fn pull(op: Arc<Op>, name: Name) -> Result<Manifest> {
    // Failures of one blob stop the others through this child token.
    let stop = op.cancel.child_token();
    let (session, manifest, source) = resolve(&op, &name, Access::Pull, &stop).await?;
    let blobs = manifest.blobs();

    let store = op.store.clone();
    let digests: Vec<Digest> = blobs.iter().map(|l| l.digest).collect();
    let pin = blocking(move || {
        store.ensure_layout()?;
        store.pin(&digests)
    })
    .await
    .map_err(|e| e.with_model(&name))?;

    let present: Vec<bool> = blobs
        .iter()
        .map(|l| op.store.blob_ready(&l.digest, l.size))
        .collect();
    check_space(&op, &blobs, &present).map_err(|e| e.with_model(&name))?;

    op.log(LogLevel::Info, || {
        let have = present.iter().filter(|p| **p).count();
        format!(
            "{name}: manifest {} from {}, {} blobs ({} bytes), {have} already present",
            manifest.digest().short(),
            session.base(),
            blobs.len(),
            manifest.total_size()
        )
    });
    op.reporter.resolved_with(&blobs, &present);

    let fetcher = Fetcher {
        op: op.clone(),
        session: Arc::new(session),
        streams: Arc::new(Semaphore::new(op.settings.streams.max(1))),
        // Blobs in progress at once: each holds an open partial file and a
        // hashing thread. Twice the streams, so that blobs being prepared or
        // synced do not leave a stream idle.
        active: Arc::new(Semaphore::new(2 * op.settings.streams.max(1))),
    };
    let mut wanted: Vec<usize> = (0..blobs.len()).filter(|i| !present[*i]).collect();
    let mut vanished_rounds = 0;
    loop {
        fetcher
            .fetch(&blobs, &wanted, &stop)
            .await
            .map_err(|e| e.with_model(&name))?;
        if op.cancel.is_cancelled() {
            return Err(Error::cancelled().with_model(&name));
        }
        // Invariant 2: the manifest is linked only once every blob is in
        // place. Blobs another program deleted meanwhile are put back from
        // their staged copies, or fetched again.
        let store = op.store.clone();
        let link_name = name.without_digest();
        let linked = manifest.clone();
        let missing = blocking(move || store.link_pulled(&link_name, &linked))
            .await
            .map_err(|e| e.with_model(&name))?;
        let Some(&first) = missing.first() else {
            break;
        };
        vanished_rounds += 1;
        if vanished_rounds > MAX_VANISHED_ROUNDS {
            return Err(keeps_vanishing(first, vanished_rounds).with_model(&name));
        }
        op.log(LogLevel::Warn, || {
            format!(
                "{name}: {} blob(s) disappeared from the store before the model was linked \
                 (another program deleting unreferenced blobs?); putting them back",
                missing.len()
            )
        });
        wanted = (0..blobs.len())
            .filter(|i| missing.contains(&blobs[*i].digest))
            .collect();
        for &i in &wanted {
            op.reporter.blob(i, ProgressEvent::Queued, None);
        }
    }
    drop(pin);
    op.log(LogLevel::Info, || format!("{name}: linked"));
    // The source holds these blobs: pushes to its registry can mount them.
    op.remember_sources(&source, &blobs).await;
    op.reporter.operation(ProgressEvent::Finished);
    Ok(manifest)
}

/// How often a pull puts back (from its staged copies, else by fetching
/// them again) blobs that vanished before its manifest was linked, before it
/// gives up.
const MAX_VANISHED_ROUNDS: u32 = 10;

/// The error for a pull whose blobs keep being deleted under it.
fn keeps_vanishing(digest: Digest, rounds: u32) -> Error {
    Error::not_found(format!(
        "the blob in blobs/ after {rounds} attempts to link the model (another program keeps \
         deleting it; OLLAMA_NOPRUNE=1 stops Ollama's pruning)"
    ))
    .with_blob(digest)
}

/// Fetches blobs of one pull into `.olreg/staged/`, sharing its streams.
struct Fetcher {
    op: Arc<Op>,
    session: Arc<Session>,
    /// Parallel requests of the whole pull.
    streams: Arc<Semaphore>,
    /// Blobs in progress of the whole pull.
    active: Arc<Semaphore>,
}

impl Fetcher {
    /// Fetches `blobs[i]` for each `i` of `wanted`, in parallel; the first
    /// failure stops the rest through `stop`.
    async fn fetch(
        &self,
        blobs: &[Layer],
        wanted: &[usize],
        stop: &CancellationToken,
    ) -> Result<()> {
        let mut tasks = JoinSet::new();
        for &i in wanted {
            let job = Arc::new(BlobJob {
                op: self.op.clone(),
                session: self.session.clone(),
                streams: self.streams.clone(),
                active: self.active.clone(),
                index: i,
                layer: blobs[i].clone(),
            });
            tasks.spawn(job.run());
        }
        join_all(&mut tasks, Some(stop)).await
    }
}

/// Fails early, with how much is needed, when the store's file system cannot
/// hold what is left to download.
pub(crate) fn check_space(op: &Op, blobs: &[Layer], present: &[bool]) -> Result<()> {
    let missing: Vec<(Digest, u64)> = blobs
        .iter()
        .zip(present)
        .filter(|(_, p)| !**p)
        .map(|(l, _)| (l.digest, l.size))
        .collect();
    let needed = op.store.bytes_to_allocate(&missing);
    if needed == 0 {
        return Ok(());
    }
    let available = available_space(op.store.root())?;
    if needed > available {
        return Err(Error::new(ErrorKind::NoSpace {
            path: op.store.root().to_owned(),
            needed,
            available,
        }));
    }
    Ok(())
}

/// The download of one blob.
struct BlobJob {
    op: Arc<Op>,
    session: Arc<Session>,
    /// Parallel requests of the whole pull.
    streams: Arc<Semaphore>,
    /// Blobs in progress of the whole pull.
    active: Arc<Semaphore>,
    index: usize,
    layer: Layer,
}

impl BlobJob {
    async fn run(self: Arc<Self>) -> Result<()> {
        let digest = self.layer.digest;
        let result = async {
            let _slot = self.acquire(&self.active).await?;
            // Every blob's task waits for its slot from the start of the
            // pull; the download's own state (tens of KiB) is allocated
            // only for the blobs in progress.
            Box::pin(self.fetch_once_locked()).await
        }
        .await;
        match &result {
            Err(e) if !e.is_cancelled() => {
                self.op
                    .reporter
                    .blob(self.index, ProgressEvent::Failed, Some(e.to_string()));
            }
            _ => {}
        }
        result.map_err(|e| e.with_blob(digest))
    }

    /// Takes the blob's lock (waiting while another pull holds it), then
    /// downloads it unless that other pull already did.
    async fn fetch_once_locked(self: &Arc<Self>) -> Result<()> {
        let (digest, size) = (self.layer.digest, self.layer.size);
        let store = &self.op.store;
        let mut waiting = false;
        let mut restarted = false;
        loop {
            if store.blob_ready(&digest, size) {
                self.op
                    .reporter
                    .blob(self.index, ProgressEvent::Cached, None);
                return Ok(());
            }
            let Some(lock) = store.try_lock_blob(&digest)? else {
                if !waiting {
                    waiting = true;
                    self.op
                        .reporter
                        .blob(self.index, ProgressEvent::Waiting, None);
                }
                self.session.sleep(WAIT_POLL).await?;
                continue;
            };
            if store.blob_ready(&digest, size) {
                continue;
            }
            let owned_store = store.clone();
            let partial = blocking(move || Partial::open(&owned_store, digest, size, lock)).await?;
            let resumed = partial.resumed_bytes() > 0;
            if resumed {
                self.op.log(LogLevel::Info, || {
                    format!(
                        "{}: resuming with {} of {} bytes",
                        digest.short(),
                        partial.resumed_bytes(),
                        size
                    )
                });
            }
            match self.download(partial).await {
                // Resumed bytes that hash wrong were lost before they reached
                // the disk (a power cut after a cancel): fetch it all once more.
                Err(e) if e.status() == Status::DigestMismatch && resumed && !restarted => {
                    restarted = true;
                    self.op.log(LogLevel::Warn, || {
                        format!(
                            "{}: resumed data was damaged; downloading it again",
                            digest.short()
                        )
                    });
                    self.op.reporter.set_bytes(self.index, 0);
                }
                other => return other,
            }
        }
    }

    async fn download(self: &Arc<Self>, partial: Partial) -> Result<()> {
        let partial = Arc::new(partial);
        self.op.reporter.set_bytes(self.index, partial.covered());
        self.op
            .reporter
            .blob(self.index, ProgressEvent::Started, None);

        let hashing = {
            let p = partial.clone();
            tokio::task::spawn_blocking(move || p.hash_when_complete())
        };
        let stop_persisting = CancellationToken::new();
        let persisting = {
            let p = partial.clone();
            let stop = stop_persisting.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(PERSIST_EVERY) => {}
                    }
                    let p = p.clone();
                    // A failed save only costs resumability; the download goes on.
                    let _ = blocking(move || p.persist(true)).await;
                }
            })
        };

        let fetched = self.fetch_missing(&partial).await;
        // A save under way holds the partial download: let it end (an abort
        // would leave its blocking thread running, still holding it).
        stop_persisting.cancel();
        let _ = persisting.await;

        let hashed = match fetched {
            Ok(()) => {
                if !hashing.is_finished() {
                    self.op
                        .reporter
                        .blob(self.index, ProgressEvent::Verifying, None);
                }
                let abandon = partial.clone();
                tokio::select! {
                    joined = hashing => joined.unwrap_or_else(|e| Err(task_failed(e))),
                    _ = self.session.cancel_token().cancelled() => {
                        abandon.abandon();
                        Err(Error::cancelled())
                    }
                }
            }
            Err(e) => {
                partial.abandon();
                let _ = hashing.await;
                Err(e)
            }
        };

        self.op.log(LogLevel::Debug, || {
            format!(
                "{}: {} of {} bytes hashed as they arrived, the rest read back",
                self.layer.digest.short(),
                self.layer.size - partial.read_back().min(self.layer.size),
                self.layer.size
            )
        });
        let actual = match hashed {
            Ok(actual) => actual,
            Err(e) => {
                // Keep what arrived for the next pull; no sync, so a cancel
                // returns at once.
                let p = partial.clone();
                let _ = blocking(move || p.persist(false)).await;
                return Err(e);
            }
        };
        let partial = Arc::try_unwrap(partial).map_err(|_| {
            Error::internal("the partial download is still shared after its transfer ended")
        })?;
        blocking(move || partial.finish(actual)).await?;
        self.op.reporter.blob(self.index, ProgressEvent::Done, None);
        Ok(())
    }

    /// Fetches every missing range: large blobs as parallel chunks of the
    /// storage URL the registry redirects to (resolved once), small ones in
    /// one stream.
    async fn fetch_missing(self: &Arc<Self>, partial: &Arc<Partial>) -> Result<()> {
        let missing = partial.missing();
        if missing.is_empty() {
            return Ok(());
        }
        let settings = &self.op.settings;
        let size = self.layer.size;
        let blob_url = self.session.url(&format!("blobs/{}", self.layer.digest))?;
        if size <= settings.chunk_threshold {
            for (start, end) in missing {
                let _permit = self.permit().await?;
                self.fetch_range(partial, &blob_url, &Span::new(start, end))
                    .await?;
            }
            return Ok(());
        }

        // Resolve the redirect once, with a one-byte request for the first
        // missing byte; a server without range support sends the whole blob.
        let first = missing[0].0;
        let url = {
            let _permit = self.permit().await?;
            let resp = self
                .session
                .get_blob_range(&blob_url, first, first + 1, size, true)
                .await?;
            let final_url = resp.url().clone();
            let whole = resp.status() == reqwest::StatusCode::OK;
            let span = if whole {
                Span::new(0, size)
            } else {
                Span::new(first, first + 1)
            };
            self.stream_into(partial, resp, &span, span.bounds().1)
                .await?;
            if whole {
                return Ok(());
            }
            final_url
        };

        let storage = Arc::new(StorageUrl::new(blob_url, url));
        let pieces = chunk_pieces(&partial.missing(), settings.chunk_size.max(1));
        self.run_chunks(partial, &storage, pieces).await
    }

    /// Runs `pieces` over the pull's streams. Chunks start in file order
    /// (each waits for a stream first), so the completed prefix — and the
    /// hasher behind it — advances steadily. Each stream that comes free
    /// first rescues a crawling chunk, if one falls far behind the others
    /// (see [`spans`](crate::spans)), and takes the next piece otherwise.
    async fn run_chunks(
        self: &Arc<Self>,
        partial: &Arc<Partial>,
        storage: &Arc<StorageUrl>,
        pieces: Vec<(u64, u64)>,
    ) -> Result<()> {
        let mut queue: VecDeque<(u64, u64)> = pieces.into();
        let mut spans: Vec<Arc<Span>> = Vec::new();
        let mut tasks = JoinSet::new();
        let outcome = loop {
            if let Some(Err(e)) = std::iter::from_fn(|| tasks.try_join_next())
                .map(flatten)
                .find(Result::is_err)
            {
                break Err(e);
            }
            let split = spans::rescue(&spans, Instant::now());
            if split.is_none() && queue.is_empty() {
                // Nothing to start: wait for a chunk to end, or for one to
                // fall behind.
                if tasks.is_empty() {
                    break Ok(());
                }
                tokio::select! {
                    joined = tasks.join_next() => {
                        if let Some(Err(e)) = joined.map(flatten) {
                            break Err(e);
                        }
                    }
                    _ = tokio::time::sleep(RESCUE_CHECK) => {}
                }
                continue;
            }
            let permit = match self.permit().await {
                Ok(p) => p,
                Err(e) => break Err(e),
            };
            let (start, end) = match split {
                Some(split) => {
                    self.op.log(LogLevel::Info, || {
                        format!(
                            "{}: bytes {}-{} crawl at {:.1} MiB/s against {:.1} MiB/s elsewhere; \
                             moving them to another connection",
                            self.layer.digest.short(),
                            split.start,
                            split.end - 1,
                            split.slow_rate / MIB,
                            split.typical_rate / MIB
                        )
                    });
                    (split.start, split.end)
                }
                None => match queue.pop_front() {
                    Some(piece) => piece,
                    None => continue,
                },
            };
            let span = Span::new(start, end);
            spans::remember(&mut spans, span.clone());
            let job = ChunkJob {
                blob: self.clone(),
                partial: partial.clone(),
                storage: storage.clone(),
                span,
            };
            tasks.spawn(async move { job.run(permit).await });
        };
        match outcome {
            Ok(()) => join_all(&mut tasks, None).await,
            Err(e) => {
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                Err(e)
            }
        }
    }

    /// A stream permit for one request.
    async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        self.acquire(&self.streams).await
    }

    /// A permit of `semaphore`, unless the pull is cancelled first.
    async fn acquire(
        &self,
        semaphore: &Arc<Semaphore>,
    ) -> Result<tokio::sync::OwnedSemaphorePermit> {
        let semaphore = semaphore.clone();
        self.session
            .cancellable(async move {
                semaphore
                    .acquire_owned()
                    .await
                    .map_err(|_| Error::cancelled())
            })
            .await
    }

    /// Fetches what is left of `span` from `url`, retrying transient
    /// failures and continuing from the last byte written each time.
    async fn fetch_range(&self, partial: &Partial, url: &Url, span: &Span) -> Result<()> {
        let policy = self.session.retry_policy();
        let mut failures = 0;
        loop {
            let (before, end) = span.bounds();
            if before >= end {
                return Ok(());
            }
            let attempt = async {
                // The request's state (tens of KiB: auth, redirects, retries)
                // lives on the heap until the answer's head arrives, and not
                // in the chunk's task for as long as its body streams.
                let resp =
                    Box::pin(
                        self.session
                            .get_blob_range(url, before, end, self.layer.size, false),
                    )
                    .await?;
                self.stream_into(partial, resp, span, end).await
            }
            .await;
            let (at, end) = span.bounds();
            match attempt {
                Ok(()) => return Ok(()),
                Err(e) if e.is_retryable() => {
                    // Progress resets the count: only attempts that bring
                    // nothing (or a trickle under the minimum speed) use the
                    // budget up.
                    let progressed = at - before >= self.session.least_progress();
                    failures = if progressed { 1 } else { failures + 1 };
                    if failures >= policy.attempts {
                        return Err(e);
                    }
                    self.op
                        .reporter
                        .blob(self.index, ProgressEvent::Retrying, Some(e.to_string()));
                    self.session
                        .backoff(
                            failures,
                            &e,
                            &format!("{} bytes {at}-{}", self.layer.digest.short(), end - 1),
                        )
                        .await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes the body asked for — from `span`'s position to `asked_end` —
    /// into the partial file, up to where the span ends (which a rescue may
    /// move back before or while the body arrives: the rest is then dropped
    /// with the connection). A body longer than asked is a protocol error;
    /// a shorter one a (retryable) network error.
    async fn stream_into(
        &self,
        partial: &Partial,
        resp: Response,
        span: &Span,
        asked_end: u64,
    ) -> Result<()> {
        let url = resp.url().clone();
        let mut body = ResponseBody::new(resp);
        let (mut at, _) = span.bounds();
        while let Some(piece) = self.session.next_chunk(&mut body, &url).await? {
            let n = piece.len() as u64;
            if at + n > asked_end {
                return Err(Error::protocol(
                    &crate::remote::redact::redact(&url),
                    format!(
                        "the answer carries more bytes than the {} asked for",
                        asked_end - at.min(asked_end)
                    ),
                ));
            }
            let taken = span.advance(n, |offset, len| {
                partial.write_at(offset, &piece[..len as usize])
            })?;
            at += n;
            if taken > 0 {
                self.op.reporter.add_bytes(self.index, taken);
                self.session.pace(taken).await?;
            }
            if taken < n || span.bounds().0 >= span.bounds().1 {
                // The span ends here (it was split): the rest is not ours.
                return Ok(());
            }
        }
        let (at, end) = span.bounds();
        if at < end {
            return Err(Error::network(
                &crate::remote::redact::redact(&url),
                format!("the connection ended {} bytes early", end - at),
            ));
        }
        Ok(())
    }
}

/// Splits missing ranges into pieces that end on multiples of `chunk`, so a
/// resumed download asks for the same chunks as the first attempt did.
fn chunk_pieces(missing: &[(u64, u64)], chunk: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(start, end) in missing {
        let mut at = start;
        while at < end {
            let boundary = (at / chunk + 1) * chunk;
            let next = boundary.min(end);
            out.push((at, next));
            at = next;
        }
    }
    out
}

/// One ranged chunk of a large blob, holding a stream permit while it runs.
struct ChunkJob {
    blob: Arc<BlobJob>,
    partial: Arc<Partial>,
    storage: Arc<StorageUrl>,
    span: Arc<Span>,
}

impl ChunkJob {
    async fn run(&self, _permit: tokio::sync::OwnedSemaphorePermit) -> Result<()> {
        let mut refreshed = 0;
        loop {
            let (url, generation) = self.storage.current();
            match self.blob.fetch_range(&self.partial, &url, &self.span).await {
                Err(e) if self.storage.expired(&url, &e) && refreshed < MAX_URL_REFRESHES => {
                    refreshed += 1;
                    self.blob.op.log(LogLevel::Info, || {
                        format!(
                            "{}: the storage URL stopped working ({e}); asking the registry again",
                            self.blob.layer.digest.short()
                        )
                    });
                    // Boxed, like the chunk's own request: rare, and not
                    // worth its size in every chunk's task.
                    Box::pin(self.storage.refresh(generation, &self.blob)).await?;
                }
                other => {
                    other?;
                    break;
                }
            }
        }
        self.span.finish();
        // The span's bytes are final: get them to disk while others arrive.
        let (end, _) = self.span.bounds();
        self.partial.start_writeback(self.span.origin(), end);
        Ok(())
    }
}

/// How often a blob whose chunks are all started looks for a crawling one.
const RESCUE_CHECK: Duration = Duration::from_millis(100);

const MIB: f64 = 1024.0 * 1024.0;

/// A joined chunk task's result.
fn flatten(joined: std::result::Result<Result<()>, tokio::task::JoinError>) -> Result<()> {
    joined.unwrap_or_else(|e| {
        Err(Error::new(ErrorKind::Internal {
            message: format!("a task failed: {e}"),
        }))
    })
}

/// How often one chunk may ask the registry for a fresh storage URL.
const MAX_URL_REFRESHES: u32 = 2;

/// The storage URL a registry redirected a blob to. Presigned URLs expire
/// (a long pull can outlive one), so chunks that meet an expired URL ask the
/// registry for a new one — once between them.
struct StorageUrl {
    registry_url: Url,
    current: std::sync::Mutex<(Url, u64)>,
    refreshing: tokio::sync::Mutex<()>,
}

impl StorageUrl {
    fn new(registry_url: Url, resolved: Url) -> StorageUrl {
        StorageUrl {
            registry_url,
            current: std::sync::Mutex::new((resolved, 0)),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    fn current(&self) -> (Url, u64) {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether `err` from `url` looks like an expired or revoked storage URL.
    fn expired(&self, url: &Url, err: &Error) -> bool {
        *url != self.registry_url && matches!(err.http_status(), Some(401 | 403 | 404 | 410))
    }

    /// Asks the registry again, unless another chunk already did since
    /// `generation`.
    async fn refresh(&self, generation: u64, blob: &BlobJob) -> Result<()> {
        let _one = self.refreshing.lock().await;
        if self.current().1 != generation {
            return Ok(());
        }
        let resp = blob
            .session
            .get_blob_range(&self.registry_url, 0, 1, blob.layer.size, true)
            .await?;
        let fresh = resp.url().clone();
        drop(resp);
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = (fresh, generation + 1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_end_on_boundaries() {
        assert_eq!(chunk_pieces(&[(1, 10)], 4), vec![(1, 4), (4, 8), (8, 10)]);
        assert_eq!(
            chunk_pieces(&[(0, 8), (9, 13)], 4),
            vec![(0, 4), (4, 8), (9, 12), (12, 13)]
        );
        assert!(chunk_pieces(&[], 4).is_empty());
    }
}
