//! `verify`: re-hash blobs and report the ones that do not match their names.

use std::fs::{self, File};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Store;
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::manifest::Limits;
use crate::name::Name;

/// What is wrong with a blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobProblem {
    /// A manifest needs it and it is not there.
    Missing,
    /// Its bytes hash to something else.
    Corrupt { actual: Digest },
    /// Its length differs from what the manifest states.
    WrongSize { expected: u64, actual: u64 },
    /// It could not be read.
    Unreadable { reason: String },
}

/// One blob that failed verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyIssue {
    pub digest: Digest,
    pub problem: BlobProblem,
}

impl std::fmt::Display for VerifyIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.digest)?;
        match &self.problem {
            BlobProblem::Missing => write!(f, "missing"),
            BlobProblem::Corrupt { actual } => write!(f, "corrupt: its bytes hash to {actual}"),
            BlobProblem::WrongSize { expected, actual } => {
                write!(
                    f,
                    "wrong size: {actual} bytes, the manifest says {expected}"
                )
            }
            BlobProblem::Unreadable { reason } => write!(f, "unreadable: {reason}"),
        }
    }
}

/// A blob to check: its digest and, when a manifest states it, its size.
#[derive(Clone, Copy, Debug)]
pub struct VerifyTarget {
    pub digest: Digest,
    pub size: Option<u64>,
}

impl Store {
    /// The blobs `verify` checks: `name`'s (config and layers), or every
    /// blob in the store.
    pub fn verify_targets(&self, name: Option<&Name>) -> Result<Vec<VerifyTarget>> {
        if let Some(name) = name {
            let manifest = self.load_manifest(name, &Limits::default())?;
            return Ok(manifest
                .blobs()
                .into_iter()
                .map(|l| VerifyTarget {
                    digest: l.digest,
                    size: Some(l.size),
                })
                .collect());
        }
        let dir = self.blobs_dir();
        let mut out = Vec::new();
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
                if let Some(digest) = entry.file_name().to_str().and_then(Digest::from_file_name) {
                    if is_file {
                        out.push(VerifyTarget { digest, size: None });
                    }
                }
            }
        }
        out.sort_by_key(|t| t.digest);
        Ok(out)
    }

    /// Re-hashes one blob. `on_bytes` hears how many bytes were hashed since
    /// its last call; `stop` abandons the work (returning `Cancelled`).
    pub fn verify_blob(
        &self,
        target: VerifyTarget,
        stop: &AtomicBool,
        mut on_bytes: impl FnMut(u64),
    ) -> Result<Option<VerifyIssue>> {
        let path = self.blob_path(&target.digest);
        let issue = |problem| {
            Ok(Some(VerifyIssue {
                digest: target.digest,
                problem,
            }))
        };
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return issue(BlobProblem::Missing)
            }
            Err(e) => {
                return issue(BlobProblem::Unreadable {
                    reason: e.to_string(),
                })
            }
        };
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", &path, e))?
            .len();
        if let Some(expected) = target.size {
            if expected != len {
                return issue(BlobProblem::WrongSize {
                    expected,
                    actual: len,
                });
            }
        }
        let mut hasher = Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err(Error::cancelled());
            }
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return issue(BlobProblem::Unreadable {
                        reason: e.to_string(),
                    })
                }
            };
            hasher.update(&buf[..n]);
            on_bytes(n as u64);
        }
        let actual = hasher.finish();
        if actual != target.digest {
            return issue(BlobProblem::Corrupt { actual });
        }
        Ok(None)
    }
}
