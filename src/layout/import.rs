//! Import: an OCI image layout (directory or tar) read into the store as a
//! model, under the store's invariants.
//!
//! Everything that can be checked without reading blobs is checked first
//! (`oci-layout`, `index.json`, the chosen manifest's bytes and digest, each
//! missing blob's presence and size), so a truncated layout fails before
//! anything is written. Blobs are then copied into partial files through the
//! same [`Partial`] a pull uses, hashed as they are written, staged once
//! every one of them has hashed right, and put in place with the manifest as
//! a pull's are. A layout with one damaged blob therefore adds nothing to
//! `blobs/` or `manifests/`.

use std::sync::Arc;
use std::time::Duration;

use super::index::{self, Index, MAX_LAYOUT_FILE};
use super::source::{invalid, Member, Source};
use crate::context::{blocking, Op};
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Layer, Manifest};
use crate::name::Name;
use crate::progress::{LogLevel, ProgressEvent};
use crate::store::{Partial, Store};

/// Bytes copied at a time.
const PIECE: usize = 1 << 20;
/// How often an import waiting for another writer of a blob looks again.
const WAIT_POLL: Duration = Duration::from_millis(100);

/// Reads the layout at `src` into the store as `name`; `reference` picks
/// the index entry (by ref name or full name) when there are several.
pub(crate) async fn import(
    op: Arc<Op>,
    src: std::path::PathBuf,
    name: Name,
    reference: Option<String>,
) -> Result<Manifest> {
    let model = name.clone();
    blocking(move || import_blocking(&op, &src, &name, reference.as_deref()))
        .await
        .map_err(|e| e.with_model(&model))
}

fn import_blocking(
    op: &Op,
    path: &std::path::Path,
    name: &Name,
    reference: Option<&str>,
) -> Result<Manifest> {
    let limits = op.settings.limits;
    let source = Source::open(path)?;
    let layout = source.read_small("oci-layout", MAX_LAYOUT_FILE)?;
    index::check_layout_file(&layout).map_err(|why| invalid(path, why))?;
    let index_bytes = source.read_small("index.json", limits.max_manifest_bytes)?;
    let index = Index::parse(&index_bytes).map_err(|why| invalid(path, why))?;
    let entry = index.choose(reference)?;
    if !entry.is_manifest() {
        return Err(invalid(
            path,
            format!(
                "{} is a {}, not an image manifest",
                entry.label(),
                entry.media_type
            ),
        ));
    }
    let manifest = read_manifest(&source, entry.digest, entry.size, &limits)?;
    op.log(LogLevel::Info, || {
        format!(
            "{name}: importing {} ({}) from {}",
            entry.label(),
            manifest.digest().short(),
            path.display()
        )
    });

    let store = &op.store;
    let blobs = manifest.blobs();
    store.ensure_layout()?;
    let digests: Vec<Digest> = blobs.iter().map(|l| l.digest).collect();
    let pin = store.pin(&digests)?;
    let present: Vec<bool> = blobs
        .iter()
        .map(|l| store.blob_ready(&l.digest, l.size))
        .collect();

    // Every missing blob is in the layout with its size, before any write.
    let mut members = Vec::new();
    for (layer, _) in blobs.iter().zip(&present).filter(|(_, p)| !**p) {
        let member = source.blob(&layer.digest)?.ok_or_else(|| {
            Error::not_found(format!("blob in the layout {}", path.display()))
                .with_blob(layer.digest)
        })?;
        if member.size() != layer.size {
            return Err(Error::new(ErrorKind::SizeMismatch {
                expected: layer.size,
                actual: member.size(),
            })
            .with_blob(layer.digest));
        }
        members.push(member);
    }
    crate::pull::check_space(op, &blobs, &present)?;

    op.reporter.resolved_with(&blobs, &present);

    // Copy and hash every missing blob; keep the verified ones unfinished.
    let missing = blobs.iter().enumerate().filter(|(i, _)| !present[*i]);
    let mut verified: Vec<(Partial, Digest)> = Vec::new();
    let mut failure = None;
    for ((i, layer), member) in missing.zip(&members) {
        match copy_blob(op, i, layer, member, path) {
            Ok(Some(done)) => verified.push(done),
            Ok(None) => op.reporter.blob(i, ProgressEvent::Cached, None),
            Err(e) => {
                if !e.is_cancelled() {
                    op.reporter
                        .blob(i, ProgressEvent::Failed, Some(e.to_string()));
                }
                failure = Some(e.with_blob(layer.digest));
                break;
            }
        }
    }
    if let Some(e) = failure {
        // What hashed right stays as a resumable partial download.
        for (partial, _) in verified {
            let _ = partial.persist(true);
        }
        return Err(e);
    }
    for (partial, actual) in verified {
        partial.finish(actual)?;
    }

    // Invariant 2: the manifest is linked only once every blob is in place.
    let missing = store.link_pulled(&name.without_digest(), &manifest)?;
    if let Some(digest) = missing.first() {
        return Err(Error::not_found(
            "a blob of the store (another program deleted it during the import; import again)",
        )
        .with_blob(*digest));
    }
    drop(pin);
    op.reporter.operation(ProgressEvent::Finished);
    Ok(manifest)
}

/// The manifest `digest`: present, of the size the index says, within the
/// limits, and hashing to its digest.
fn read_manifest(
    source: &Source,
    digest: Digest,
    size: u64,
    limits: &crate::manifest::Limits,
) -> Result<Manifest> {
    let member = source.blob(&digest)?.ok_or_else(|| {
        Error::not_found(format!(
            "manifest in the layout {}",
            source.path().display()
        ))
        .with_blob(digest)
    })?;
    if member.size() != size {
        return Err(Error::new(ErrorKind::SizeMismatch {
            expected: size,
            actual: member.size(),
        })
        .with_blob(digest));
    }
    let bytes = member
        .read_all(limits.max_manifest_bytes)
        .map_err(|e| Error::io("read", source.path(), e))?
        .ok_or_else(|| {
            Error::invalid_manifest(format!(
                "{size} bytes, over the {} byte limit",
                limits.max_manifest_bytes
            ))
        })?;
    let actual = Digest::of(&bytes);
    if actual != digest {
        return Err(Error::new(ErrorKind::DigestMismatch {
            expected: digest,
            actual,
        })
        .with_blob(digest));
    }
    Manifest::parse(bytes, limits).map_err(|e| e.with_blob(digest))
}

/// Copies one blob into a partial file and hashes it. `None` when another
/// pull or import put it in place meanwhile; otherwise the verified partial
/// and its digest, not yet moved to its final name. Bytes an earlier pull
/// left are kept and only the missing ranges copied.
fn copy_blob(
    op: &Op,
    index: usize,
    layer: &Layer,
    member: &Member,
    layout: &std::path::Path,
) -> Result<Option<(Partial, Digest)>> {
    let store: &Store = &op.store;
    let (digest, size) = (layer.digest, layer.size);
    let mut waiting = false;
    let lock = loop {
        if store.blob_ready(&digest, size) {
            return Ok(None);
        }
        if let Some(lock) = store.try_lock_blob(&digest)? {
            if store.blob_ready(&digest, size) {
                return Ok(None);
            }
            break lock;
        }
        if !waiting {
            waiting = true;
            op.reporter.blob(index, ProgressEvent::Waiting, None);
        }
        if op.cancel.is_cancelled() {
            return Err(Error::cancelled());
        }
        std::thread::sleep(WAIT_POLL);
    };
    let partial = Partial::open(store, digest, size, lock)?;
    op.reporter.set_bytes(index, partial.covered());
    op.reporter.blob(index, ProgressEvent::Started, None);
    let mut buf = vec![0u8; PIECE.min(size as usize).max(1)];
    for (start, end) in partial.missing() {
        let mut at = start;
        while at < end {
            if op.cancel.is_cancelled() {
                let _ = partial.persist(false);
                return Err(Error::cancelled());
            }
            let n = (end - at).min(buf.len() as u64) as usize;
            member.read_exact_at(&mut buf[..n], at).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    // The file shrank after it was measured.
                    Error::new(ErrorKind::SizeMismatch {
                        expected: size,
                        actual: at,
                    })
                } else {
                    Error::io("read", layout, e)
                }
            })?;
            partial.write_at(at, &buf[..n])?;
            op.reporter.add_bytes(index, n as u64);
            at += n as u64;
        }
    }
    op.reporter.blob(index, ProgressEvent::Verifying, None);
    let actual = partial.hash_when_complete()?;
    if actual != digest {
        partial.discard();
        return Err(Error::new(ErrorKind::DigestMismatch {
            expected: digest,
            actual,
        }));
    }
    op.reporter.blob(index, ProgressEvent::Done, None);
    Ok(Some((partial, actual)))
}
