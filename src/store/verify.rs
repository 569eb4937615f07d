//! `verify`: re-hash blobs and report the ones that do not match their names.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

use super::dir::Kind;
use super::{Store, BLOBS};
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
    /// Its name is taken by something other than a regular file (a link,
    /// a directory): as good as corrupt, and never followed.
    NotAFile { what: String },
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
            BlobProblem::NotAFile { what } => write!(f, "corrupt: {what}"),
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
    /// entry of `blobs/` named like a blob, whatever it is.
    pub fn verify_targets(
        &self,
        name: Option<&Name>,
        limits: &Limits,
    ) -> Result<Vec<VerifyTarget>> {
        if let Some(name) = name {
            let manifest = self.load_manifest(name, limits)?;
            return Ok(manifest
                .blobs()
                .into_iter()
                .map(|l| VerifyTarget {
                    digest: l.digest,
                    size: Some(l.size),
                })
                .collect());
        }
        let mut out = Vec::new();
        if let Some(dir) = self.open_dir(BLOBS)? {
            for entry in dir.entries()? {
                if let Some(digest) = Digest::from_file_name(&entry.name) {
                    out.push(VerifyTarget { digest, size: None });
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
        let issue = |problem| {
            Ok(Some(VerifyIssue {
                digest: target.digest,
                problem,
            }))
        };
        let name = target.digest.file_name();
        let Some(dir) = self.open_dir(BLOBS)? else {
            return issue(BlobProblem::Missing);
        };
        match dir.metadata(&name)? {
            None => return issue(BlobProblem::Missing),
            Some(meta) if meta.kind != Kind::File => {
                return issue(BlobProblem::NotAFile {
                    what: meta.kind.refusal(Kind::File).to_string(),
                })
            }
            Some(_) => {}
        }
        let mut file = match dir.open_read(&name) {
            Ok(Some(f)) => f,
            Ok(None) => return issue(BlobProblem::Missing),
            Err(e) => {
                return issue(BlobProblem::Unreadable {
                    reason: e.to_string(),
                })
            }
        };
        let path = dir.join(&name);
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
