//! `prune`: delete blobs that no manifest and no running operation needs.
//!
//! Only files olreg recognises as its own are touched: `blobs/sha256-<hex>`
//! and olreg's scratch files under `.olreg/`. A manifest that cannot be
//! parsed still protects every digest that appears in its text.

use std::collections::HashSet;
use std::fs;
use std::time::{Duration, SystemTime};

use super::{partial, LockMode, Store};
use crate::digest::Digest;
use crate::error::{Error, Result};

/// What `prune` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Unreferenced blobs deleted.
    pub blobs_removed: u64,
    /// Bytes those blobs and abandoned partial downloads occupied.
    pub bytes_freed: u64,
    /// Abandoned partial downloads deleted.
    pub partials_removed: u64,
}

/// Temporary files older than this belong to a process that died.
const STALE_TMP: Duration = Duration::from_secs(3600);

impl Store {
    /// Deletes unreferenced blobs and abandoned partial downloads.
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
        for path in unreadable {
            let text = fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
            keep.extend(digests_in_text(&text));
        }
        keep.extend(self.pinned_blobs()?);

        let mut report = PruneReport::default();
        let blobs = self.blobs_dir();
        if let Ok(entries) = fs::read_dir(&blobs) {
            for entry in entries.flatten() {
                let Some(digest) = entry.file_name().to_str().and_then(Digest::from_file_name)
                else {
                    continue;
                };
                let Ok(meta) = entry.metadata() else { continue };
                if !meta.is_file() || keep.contains(&digest) {
                    continue;
                }
                let path = entry.path();
                fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
                report.blobs_removed += 1;
                report.bytes_freed += meta.len();
            }
        }
        self.prune_partials(&keep, &mut report)?;
        self.prune_scratch()?;
        Ok(report)
    }

    /// Partial downloads nobody is writing and no manifest needs.
    fn prune_partials(&self, keep: &HashSet<Digest>, report: &mut PruneReport) -> Result<()> {
        let dir = self.olreg_dir("partial");
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(());
        };
        let mut digests: Vec<Digest> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let stem = name
                    .strip_suffix(".part")
                    .or_else(|| name.strip_suffix(".state"))?;
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
            let data = partial::data_path(self, &digest);
            let size = fs::metadata(&data).map(|m| m.len()).unwrap_or(0);
            let _ = fs::remove_file(data.with_extension("state"));
            if fs::remove_file(&data).is_ok() {
                report.partials_removed += 1;
                report.bytes_freed += size;
            }
            drop(lock);
        }
        Ok(())
    }

    /// Old temporary files, and lock files nobody holds.
    fn prune_scratch(&self) -> Result<()> {
        let now = SystemTime::now();
        if let Ok(entries) = fs::read_dir(self.olreg_dir("tmp")) {
            for entry in entries.flatten() {
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(|t| now.duration_since(t).unwrap_or_default() > STALE_TMP)
                    .unwrap_or(false);
                let ours = entry.file_name().to_string_lossy().ends_with(".tmp");
                if old && ours {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        if let Ok(entries) = fs::read_dir(self.olreg_dir("locks")) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".lock")) else {
                    continue;
                };
                if Digest::from_file_name(stem).is_none() {
                    continue;
                }
                let path = entry.path();
                if let Some(lock) = super::FileLock::try_acquire(&path, LockMode::Exclusive)? {
                    let _ = fs::remove_file(lock.path());
                }
            }
        }
        Ok(())
    }
}

/// Every `sha256:<hex>` that appears in `text`.
fn digests_in_text(text: &[u8]) -> Vec<Digest> {
    const PREFIX: &[u8] = b"sha256:";
    let mut out = Vec::new();
    let mut i = 0;
    while i + PREFIX.len() + 64 <= text.len() {
        if &text[i..i + PREFIX.len()] == PREFIX {
            let candidate = &text[i..i + PREFIX.len() + 64];
            if let Some(d) = std::str::from_utf8(candidate)
                .ok()
                .and_then(|s| Digest::parse(s).ok())
            {
                out.push(d);
                i += candidate.len();
                continue;
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_found_in_any_text() {
        let d = Digest::of(b"x");
        let text = format!("garbage {{ \"digest\": \"{d}\" ... sha256:nothex");
        assert_eq!(digests_in_text(text.as_bytes()), vec![d]);
    }
}
