//! The verify engine: re-hash every blob of the store (or of one model) on
//! blocking threads, one per core, and report the ones that are missing,
//! damaged or of the wrong size. Nothing is changed on disk.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::context::{blocking, task_failed, Op};
use crate::error::{Error, Result};
use crate::manifest::Layer;
use crate::name::Name;
use crate::progress::ProgressEvent;
use crate::store::VerifyIssue;

/// Verifies `name`'s blobs (config included), or every blob when `None`.
pub(crate) async fn verify(op: Arc<Op>, name: Option<Name>) -> Result<Vec<VerifyIssue>> {
    let store = op.store.clone();
    let targets = {
        let (name, limits) = (name.clone(), op.settings.limits);
        blocking(move || store.verify_targets(name.as_ref(), &limits)).await
    };
    let targets = match (targets, &name) {
        (Err(e), Some(n)) => return Err(e.with_model(n)),
        (r, _) => r?,
    };
    let layers: Vec<Layer> = targets
        .iter()
        .map(|t| Layer {
            digest: t.digest,
            size: t
                .size
                .or_else(|| op.store.blob_size(&t.digest))
                .unwrap_or(0),
            media_type: String::new(),
        })
        .collect();
    op.reporter.resolved(&layers);
    let stop = Arc::new(AtomicBool::new(false));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let limit = Arc::new(Semaphore::new(cores));
    let mut tasks = JoinSet::new();
    for (i, target) in targets.into_iter().enumerate() {
        let (op, stop, limit) = (op.clone(), stop.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit
                .acquire_owned()
                .await
                .map_err(|_| Error::cancelled())?;
            op.reporter.blob(i, ProgressEvent::Started, None);
            let store = op.store.clone();
            let reporter = op.reporter.clone();
            let found =
                blocking(move || store.verify_blob(target, &stop, |n| reporter.add_bytes(i, n)))
                    .await?;
            match &found {
                Some(issue) => op
                    .reporter
                    .blob(i, ProgressEvent::Failed, Some(issue.to_string())),
                None => op.reporter.blob(i, ProgressEvent::Done, None),
            }
            Ok::<_, Error>(found)
        });
    }
    let mut issues = Vec::new();
    let mut failure = None;
    loop {
        let next = tokio::select! {
            biased;
            _ = op.cancel.cancelled() => {
                stop.store(true, Ordering::Relaxed);
                failure.get_or_insert_with(Error::cancelled);
                tasks.join_next().await
            }
            n = tasks.join_next() => n,
        };
        let Some(joined) = next else { break };
        match joined {
            Ok(Ok(Some(issue))) => issues.push(issue),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(e) => {
                failure.get_or_insert(task_failed(e));
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    issues.sort_by_key(|i| i.digest);
    op.reporter.operation(ProgressEvent::Finished);
    Ok(issues)
}
