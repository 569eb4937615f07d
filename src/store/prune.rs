//! `prune`: delete blobs that no manifest and no running operation needs.
//!
//! Only files olreg recognises as its own are touched: regular files named
//! `blobs/sha256-<hex>` and olreg's scratch files under `.olreg/`. A manifest
//! that cannot be parsed (or is too large to be) still protects every digest
//! that appears in its text.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use super::dir::Kind;
use super::{partial, FileLock, LockMode, Store, BLOBS, LOCKS, PARTIAL, STAGED, TMP};
use crate::digest::Digest;
use crate::error::Result;

/// What `prune` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Unreferenced blobs deleted.
    pub blobs_removed: u64,
    /// Bytes those blobs and abandoned downloads occupied.
    pub bytes_freed: u64,
    /// Abandoned downloads deleted: partial ones, and complete blobs of
    /// pulls that stopped before their model was linked.
    pub partials_removed: u64,
}

/// Temporary files older than this belong to a process that died.
const STALE_TMP: Duration = Duration::from_secs(3600);

impl Store {
    /// Deletes unreferenced blobs and abandoned downloads.
    pub fn prune(&self) -> Result<PruneReport> {
        let _gc = loop {
            if let Some(gc) = self.try_lock_gc(LockMode::Exclusive)? {
                break gc;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut keep: HashSet<Digest> = HashSet::new();
        let (referenced, unreadable) = self.referenced_blobs()?;
        keep.extend(referenced);
        for parts in unreadable {
            keep.extend(self.digests_in_stored_manifest(&parts)?);
        }
        let pinned: HashSet<Digest> = self.pinned_blobs()?.into_iter().collect();
        keep.extend(&pinned);

        let mut report = PruneReport::default();
        if let Some(dir) = self.open_dir(BLOBS)? {
            for entry in dir.entries()? {
                let Some(digest) = Digest::from_file_name(&entry.name) else {
                    continue;
                };
                if entry.kind != Kind::File || keep.contains(&digest) {
                    continue;
                }
                let len = dir.metadata(&entry.name)?.map_or(0, |m| m.len);
                if dir.remove_file(&entry.name)? {
                    report.blobs_removed += 1;
                    report.bytes_freed += len;
                }
            }
        }
        self.prune_staged(&keep, &pinned, &mut report)?;
        self.prune_partials(&keep, &mut report)?;
        self.prune_scratch()?;
        Ok(report)
    }

    /// Staged blobs no running pull needs: those of pulls that stopped, and
    /// spare names of blobs already in place (left by a pull stopped just
    /// after linking). A staged blob a manifest needs and `blobs/` lacks is
    /// kept for the next pull to put in place.
    fn prune_staged(
        &self,
        keep: &HashSet<Digest>,
        pinned: &HashSet<Digest>,
        report: &mut PruneReport,
    ) -> Result<()> {
        let Some(dir) = self.open_dir(STAGED)? else {
            return Ok(());
        };
        let blobs = self.open_dir(BLOBS)?;
        for entry in dir.entries()? {
            let Some(digest) = Digest::from_file_name(&entry.name) else {
                continue;
            };
            if entry.kind != Kind::File || pinned.contains(&digest) {
                continue;
            }
            let Some(staged) = dir.metadata(&entry.name)? else {
                continue;
            };
            let in_place = match &blobs {
                Some(blobs) => blobs
                    .metadata(&entry.name)?
                    .filter(|m| m.kind == Kind::File),
                None => None,
            };
            let spare_name = in_place.is_some_and(|m| m.same_file(&staged));
            if keep.contains(&digest) && in_place.is_none() {
                continue;
            }
            if dir.remove_file(&entry.name)? && !spare_name {
                report.partials_removed += 1;
                report.bytes_freed += staged.len;
            }
        }
        Ok(())
    }

    /// Partial downloads nobody is writing and no manifest needs.
    fn prune_partials(&self, keep: &HashSet<Digest>, report: &mut PruneReport) -> Result<()> {
        let Some(dir) = self.open_dir(PARTIAL)? else {
            return Ok(());
        };
        let mut digests: Vec<Digest> = dir
            .entries()?
            .into_iter()
            .filter_map(|e| {
                let stem = e
                    .name
                    .strip_suffix(".part")
                    .or_else(|| e.name.strip_suffix(".state"))?;
                Digest::from_file_name(stem)
            })
            .collect();
        digests.sort();
        digests.dedup();
        for digest in digests {
            if keep.contains(&digest) {
                continue;
            }
            // A partial whose lock is held is being downloaded right now.
            let Some(lock) = self.try_lock_blob(&digest)? else {
                continue;
            };
            let data = partial::data_name(&digest);
            // A link planted here is removed, never followed.
            let size = dir
                .metadata(&data)?
                .filter(|m| m.kind == Kind::File)
                .map_or(0, |m| m.len);
            dir.remove_file(&partial::state_name(&digest))?;
            if dir.remove_file(&data)? {
                report.partials_removed += 1;
                report.bytes_freed += size;
            }
            drop(lock);
        }
        Ok(())
    }

    /// Old temporary files, and lock files nobody holds (left by processes
    /// that died holding them).
    fn prune_scratch(&self) -> Result<()> {
        let now = SystemTime::now();
        if let Some(dir) = self.open_dir(TMP)? {
            for entry in dir.entries()? {
                if !entry.name.ends_with(".tmp") {
                    continue;
                }
                let old = dir.metadata(&entry.name)?.is_some_and(|m| {
                    now.duration_since(m.modified).unwrap_or_default() > STALE_TMP
                });
                if old {
                    dir.remove_file(&entry.name)?;
                }
            }
        }
        if let Some(dir) = self.open_dir(LOCKS)? {
            for entry in dir.entries()? {
                let Some(stem) = entry.name.strip_suffix(".lock") else {
                    continue;
                };
                if Digest::from_file_name(stem).is_none() {
                    continue;
                }
                if let Some(lock) =
                    FileLock::try_acquire(dir.try_clone()?, &entry.name, LockMode::Exclusive)?
                {
                    drop(lock.remove_on_release());
                }
            }
        }
        Ok(())
    }
}
