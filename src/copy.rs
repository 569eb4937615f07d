//! The copy engine: a model from one registry to another, never touching
//! the store. The manifest is resolved as a pull resolves it; each blob is
//! uploaded by the push engine's [`UploadJob`] (skipped when the
//! destination has it, mounted when the source is another repository of the
//! same registry, sent whole or in resumable `PATCH` pieces), with its bytes
//! streamed from the source registry as the request sends them. The
//! manifest's exact bytes are `PUT` once every blob is in place.
//!
//! Each blob is hashed on its way through, and the piece that completes it
//! is held back until the hash matches: a destination never receives the
//! whole of a blob whose bytes are wrong, so it cannot commit one.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use reqwest::Url;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use crate::context::{join_all, Op};
use crate::digest::Hasher;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Layer, Manifest};
use crate::name::Name;
use crate::progress::{LogLevel, ProgressEvent};
use crate::pull;
use crate::push::{BlobSource, UploadJob};
use crate::remote::redact::redact;
use crate::remote::session::{Access, Body, ResponseBody, Session};

/// Pieces buffered between the source's answer and the destination's
/// request, per blob in flight.
const PIECES_IN_FLIGHT: usize = 2;

/// Copies `source` to `target`.
pub(crate) async fn copy(op: Arc<Op>, source: Name, target: Name) -> Result<Manifest> {
    let stop = op.cancel.child_token();
    let (from, manifest, _) = pull::resolve(&op, &source, Access::Pull, &stop).await?;
    let from = Arc::new(from);
    let to = Arc::new(
        op.session(&target, Access::Push, stop.clone())
            .map_err(|e| e.with_model(&target))?,
    );
    let blobs = manifest.blobs();
    // Mounts work within one registry (the source may be a mirror).
    let mount_from =
        (from.base() == to.base() && from.repo() != to.repo()).then(|| from.repo().to_owned());
    op.log(LogLevel::Info, || {
        format!(
            "copy {source} to {target}: manifest {} from {}, {} blobs ({} bytes){}",
            manifest.digest().short(),
            from.base(),
            blobs.len(),
            manifest.total_size(),
            if mount_from.is_some() {
                ", mounting within the registry"
            } else {
                ""
            }
        )
    });
    op.reporter.resolved_with(&blobs, &[]);

    // Each upload holds two connections (source and destination): half the
    // streams keeps the connections, and so memory, where a pull has them.
    let uploads = Arc::new(Semaphore::new((op.settings.streams / 2).max(1)));
    let mut tasks = JoinSet::new();
    for (i, layer) in blobs.iter().enumerate() {
        let blob_url = from
            .url(&format!("blobs/{}", layer.digest))
            .map_err(|e| e.with_model(&source))?;
        let job = UploadJob {
            op: op.clone(),
            session: to.clone(),
            streams: uploads.clone(),
            index: i,
            layer: layer.clone(),
            mount_from: mount_from.iter().cloned().collect(),
            source: Arc::new(RegistryBlob {
                session: from.clone(),
                url: blob_url,
                layer: layer.clone(),
                checkpoints: Arc::new(Mutex::new(vec![(0, Hasher::new())])),
                failure: Arc::new(Mutex::new(None)),
            }),
        };
        tasks.spawn(async move { job.run().await });
    }
    join_all(&mut tasks, Some(&stop))
        .await
        .map_err(|e| e.with_model(&target))?;
    if op.cancel.is_cancelled() {
        return Err(Error::cancelled().with_model(&target));
    }
    to.put_manifest(target.tag(), &manifest)
        .await
        .map_err(|e| e.with_model(&target))?;
    op.log(LogLevel::Info, || format!("{target}: manifest put"));
    op.reporter.operation(ProgressEvent::Finished);
    Ok(manifest)
}

/// A blob on the source registry, streamed into upload bodies.
struct RegistryBlob {
    session: Arc<Session>,
    url: Url,
    layer: Layer,
    /// The hash of bytes `[0, offset)` at the ends of pieces streamed so
    /// far, so that a piece sent again (a resumed upload) continues the hash
    /// from the nearest one instead of from the start.
    checkpoints: Arc<Mutex<Vec<(u64, Hasher)>>>,
    /// The last body's failure, as seen from the source.
    failure: Arc<Mutex<Option<Error>>>,
}

impl BlobSource for RegistryBlob {
    fn body(&self, offset: u64, len: u64, on_sent: Arc<dyn Fn(u64) + Send + Sync>) -> Body {
        let (tx, rx) = mpsc::channel(PIECES_IN_FLIGHT);
        let (start, hasher) = {
            let checkpoints = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
            checkpoints
                .iter()
                .filter(|(at, _)| *at <= offset)
                .max_by_key(|(at, _)| *at)
                .cloned()
                .expect("the checkpoint at 0 is always there")
        };
        let pump = Pump {
            session: self.session.clone(),
            url: self.url.clone(),
            layer: self.layer.clone(),
            start,
            send_from: offset,
            end: offset + len,
            hasher,
            on_sent,
            tx: tx.clone(),
            checkpoints: self.checkpoints.clone(),
        };
        let failure = self.failure.clone();
        tokio::spawn(async move {
            if let Err(e) = pump.run().await {
                let note = std::io::Error::other(e.to_string());
                *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                // Aborts the request that carries the body.
                let _ = tx.send(Err(note)).await;
            }
        });
        Body::Stream {
            len,
            pieces: Arc::new(Mutex::new(Some(rx))),
        }
    }

    fn failure(&self) -> Option<Error> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// Streams one range of the source blob into a body channel.
struct Pump {
    session: Arc<Session>,
    url: Url,
    layer: Layer,
    /// Where the hash state `hasher` stands: bytes from here to `send_from`
    /// are fetched only to be hashed.
    start: u64,
    send_from: u64,
    end: u64,
    hasher: Hasher,
    on_sent: Arc<dyn Fn(u64) + Send + Sync>,
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    /// Where the hash state at `end` is kept for later pieces.
    checkpoints: Arc<Mutex<Vec<(u64, Hasher)>>>,
}

impl Pump {
    async fn run(mut self) -> Result<()> {
        let size = self.layer.size;
        if self.start == self.end {
            // Nothing to fetch: an empty blob, or an empty piece.
            return if self.end == size {
                self.check()
            } else {
                Ok(())
            };
        }
        let resp = self
            .session
            .get_blob_range(&self.url, self.start, self.end, size, false)
            .await?;
        let url = resp.url().clone();
        let mut body = ResponseBody::new(resp);
        let mut at = self.start;
        while let Some(piece) = self.session.next_chunk(&mut body, &url).await? {
            let n = piece.len() as u64;
            if at + n > self.end {
                return Err(Error::protocol(
                    &redact(&url),
                    format!(
                        "the answer carries more than the {} bytes asked for",
                        self.end - self.start
                    ),
                ));
            }
            self.session.pace(n).await?;
            self.hasher.update(&piece);
            // The piece that completes the blob goes only if the hash is right.
            if at + n == size {
                self.check()?;
            }
            let skip = self.send_from.saturating_sub(at).min(n) as usize;
            let outgoing = piece.slice(skip..);
            at += n;
            if outgoing.is_empty() {
                continue;
            }
            // Counted as it is handed over, as a file body counts its pieces:
            // counted after, it could land after the blob's `Done` (the
            // upload may finish before this task runs again).
            (self.on_sent)(outgoing.len() as u64);
            if self.tx.send(Ok(outgoing)).await.is_err() {
                // The request ended (failed, or was refused before its body).
                return Ok(());
            }
        }
        if at < self.end {
            return Err(Error::network(
                &redact(&url),
                format!("the connection ended {} bytes early", self.end - at),
            ));
        }
        if self.end < size {
            let mut checkpoints = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
            if !checkpoints.iter().any(|(at, _)| *at == self.end) {
                checkpoints.push((self.end, self.hasher));
            }
        }
        Ok(())
    }

    /// Fails unless the bytes hashed so far are the blob's.
    fn check(&self) -> Result<()> {
        let actual = self.hasher.clone().finish();
        if actual != self.layer.digest {
            return Err(Error::new(ErrorKind::DigestMismatch {
                expected: self.layer.digest,
                actual,
            }));
        }
        Ok(())
    }
}
