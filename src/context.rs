//! What a running operation works with: the client's shared transport and
//! settings, the store, its progress reporter and its cancel token.

use std::sync::Arc;

use reqwest::Url;
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{Layer, Limits};
use crate::mirror::Mirror;
use crate::name::{Name, Scheme};
use crate::platform::Platform;
use crate::progress::{LogLevel, Reporter};
use crate::remote::session::{Access, Session};
use crate::remote::Transport;
use crate::store::Store;

/// A client's settings, resolved from its options.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Parallel HTTP requests per operation.
    pub streams: usize,
    /// Blobs larger than this are fetched in ranged chunks in parallel.
    pub chunk_threshold: u64,
    pub chunk_size: u64,
    /// Upload sessions send blobs larger than `chunk_threshold` in `PATCH`
    /// pieces of this size.
    pub upload_chunk_size: u64,
    pub limits: Limits,
    /// The entry of an image index that pulls follow.
    pub platform: Platform,
    pub mirrors: Vec<Mirror>,
}

/// One operation's context.
pub(crate) struct Op {
    pub transport: Arc<Transport>,
    pub store: Store,
    pub settings: Arc<Settings>,
    pub reporter: Arc<Reporter>,
    pub cancel: CancellationToken,
}

impl Op {
    /// A session with `name`'s registry, cancelled by `cancel`.
    pub(crate) fn session(
        &self,
        name: &Name,
        access: Access,
        cancel: CancellationToken,
    ) -> Result<Session> {
        let base = Url::parse(&format!("{}/", name.base_url())).map_err(|e| {
            Error::invalid_name(
                &name.to_string(),
                format!("its host is not usable in a URL: {e}"),
            )
        })?;
        Ok(Session::new(
            self.transport.clone(),
            base,
            // OCI registries accept only lowercase repositories; Ollama's
            // compare names ignoring case, so lowercase is right for both.
            name.repository().to_ascii_lowercase(),
            name.scheme() == Scheme::HttpsInsecure,
            access,
            cancel,
            self.reporter.clone(),
        ))
    }

    /// The names to try for a pull of `name`: its mirrors, then itself.
    pub(crate) fn pull_sources(&self, name: &Name) -> Vec<Name> {
        let mut out: Vec<Name> = self
            .settings
            .mirrors
            .iter()
            .filter_map(|m| m.serve(name))
            .collect();
        out.push(name.clone());
        out
    }

    pub(crate) fn log(&self, level: LogLevel, message: impl FnOnce() -> String) {
        self.reporter.log(level, message);
    }

    /// Records that `name`'s repository holds `blobs`, for later mounts; a
    /// failure is only logged (the record is a hint).
    pub(crate) async fn remember_sources(&self, name: &Name, blobs: &[Layer]) {
        let store = self.store.clone();
        let (host, repo) = (name.host().to_owned(), name.repository());
        let digests: Vec<Digest> = blobs.iter().map(|l| l.digest).collect();
        if let Err(e) = blocking(move || store.remember_blob_sources(&host, &repo, &digests)).await
        {
            self.log(LogLevel::Warn, || {
                format!("cannot record where blobs are: {e}")
            });
        }
    }
}

/// Waits for every task of `tasks`. At the first failure the others are
/// stopped — through `stop` when given (they clean up and return), else by
/// aborting them — and the first real cause is returned rather than the
/// cancellations it triggered.
pub(crate) async fn join_all(
    tasks: &mut JoinSet<Result<()>>,
    stop: Option<&CancellationToken>,
) -> Result<()> {
    let mut failure: Option<Error> = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.unwrap_or_else(|e| Err(task_failed(e)));
        if let Err(e) = result {
            if failure
                .as_ref()
                .is_none_or(|f| f.is_cancelled() && !e.is_cancelled())
            {
                failure = Some(e);
            }
            match stop {
                Some(token) => token.cancel(),
                None => tasks.abort_all(),
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

/// Why a task returned no result: it panicked (a bug, `Panic`), or it was
/// aborted — by a sibling's failure or a cancel, so `Cancelled`: the cause
/// that made it stop is reported by whoever aborted it.
pub(crate) fn task_failed(e: JoinError) -> Error {
    match e.try_into_panic() {
        Ok(payload) => Error::panic(payload),
        Err(e) if e.is_cancelled() => Error::cancelled(),
        Err(e) => Error::internal(format!("a task failed: {e}")),
    }
}

/// Runs blocking file work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(task_failed)?
}
