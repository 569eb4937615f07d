//! Where blobs are known to be: which repositories on which registries
//! received or served each blob, so that a push can mount a blob from a
//! repository that has it instead of uploading it again.
//!
//! The record is `.olreg/blob-sources`, one `<digest> <host> <repository>`
//! line per fact, oldest first, at most [`MAX_ENTRIES`] lines. It is only a
//! hint: a file that is missing, unreadable, over [`MAX_FILE_BYTES`], not a
//! regular file, or full of garbage reads as empty (line by line: bad lines
//! are dropped, good ones kept), and failing to write it never fails an
//! operation. Every line read is validated as a digest and a model name
//! would be, so nothing read from it can name a path or carry odd bytes.

use std::time::Duration;

use super::{fsutil, FileLock, LockMode, Store, LOCKS, SCRATCH};
use crate::digest::Digest;
use crate::error::Result;
use crate::name::{Name, NameMask};

/// The record's file name in `.olreg/`.
const FILE: &str = "blob-sources";

/// The most facts kept; the oldest go first.
pub(crate) const MAX_ENTRIES: usize = 2048;
/// A record larger than this is not read (it is rewritten from scratch).
pub(crate) const MAX_FILE_BYTES: u64 = 1 << 20;
/// How long a writer waits for another one before giving up on the hint.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// One fact: `repository` on `host` holds `digest`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    digest: Digest,
    host: String,
    repository: String,
}

impl Entry {
    /// A line of the record, if it is well-formed: a sha256 digest and a
    /// host and repository that form a valid model name.
    fn parse(line: &str) -> Option<Entry> {
        let mut parts = line.split(' ');
        let (digest, host, repository) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        Entry::new(Digest::parse(digest).ok()?, host, repository)
    }

    /// Normalises `host` and `repository` (lowercase) and checks them.
    fn new(digest: Digest, host: &str, repository: &str) -> Option<Entry> {
        let name = Name::parse(&format!("{host}/{repository}"), &NameMask::default()).ok()?;
        let (host, repository) = (host.to_ascii_lowercase(), repository.to_ascii_lowercase());
        let same = name.host().eq_ignore_ascii_case(&host)
            && name.repository().eq_ignore_ascii_case(&repository);
        same.then_some(Entry {
            digest,
            host,
            repository,
        })
    }

    fn line(&self) -> String {
        format!("{} {} {}\n", self.digest, self.host, self.repository)
    }
}

impl Store {
    /// The recorded facts, oldest first; empty whatever is wrong with the
    /// file (the store's directory walk never follows a link, and opening
    /// refuses anything but a regular file without blocking on a FIFO).
    fn read_sources(&self) -> Vec<Entry> {
        let bytes = self.open_dir(SCRATCH).ok().flatten().and_then(|dir| {
            let file = dir.open_read(FILE).ok()??;
            fsutil::read_bounded(file, &dir.join(FILE), MAX_FILE_BYTES as usize)
                .ok()
                .flatten()
        });
        String::from_utf8_lossy(&bytes.unwrap_or_default())
            .lines()
            .filter_map(Entry::parse)
            .collect()
    }

    /// Repositories on `host` other than `except` known to hold `digest`,
    /// most recently recorded first.
    pub(crate) fn blob_sources(
        &self,
        host: &str,
        except: &str,
        digests: &[Digest],
    ) -> Vec<(Digest, String)> {
        let mut out: Vec<(Digest, String)> = Vec::new();
        for entry in self.read_sources().into_iter().rev() {
            if entry.host.eq_ignore_ascii_case(host)
                && !entry.repository.eq_ignore_ascii_case(except)
                && digests.contains(&entry.digest)
                && !out
                    .iter()
                    .any(|(d, r)| *d == entry.digest && *r == entry.repository)
            {
                out.push((entry.digest, entry.repository));
            }
        }
        out
    }

    /// Records that `repository` on `host` holds `digests`. Best effort:
    /// the caller logs a failure and goes on.
    pub(crate) fn remember_blob_sources(
        &self,
        host: &str,
        repository: &str,
        digests: &[Digest],
    ) -> Result<()> {
        let fresh: Vec<Entry> = digests
            .iter()
            .filter_map(|d| Entry::new(*d, host, repository))
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        let waited = std::time::Instant::now();
        let _lock = loop {
            let locks = self.create_dir(LOCKS)?;
            if let Some(lock) =
                FileLock::try_acquire(locks, "blob-sources.lock", LockMode::Exclusive)?
            {
                break lock.remove_on_release();
            }
            if waited.elapsed() > LOCK_WAIT {
                // Another writer is slow; this fact is not worth waiting for.
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut entries = self.read_sources();
        entries.retain(|e| !fresh.contains(e));
        entries.extend(fresh);
        let skip = entries.len().saturating_sub(MAX_ENTRIES);
        let text: String = entries[skip..].iter().map(Entry::line).collect();
        fsutil::replace_in(
            self.tmp_dir()?,
            &self.create_dir(SCRATCH)?,
            FILE,
            text.as_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn d(n: u32) -> Digest {
        Digest::of(&n.to_le_bytes())
    }

    #[test]
    fn lines_are_validated() {
        let good = format!("{} 127.0.0.1:5000 team/one", d(1));
        assert_eq!(
            Entry::parse(&good),
            Some(Entry {
                digest: d(1),
                host: "127.0.0.1:5000".into(),
                repository: "team/one".into()
            })
        );
        for bad in [
            format!("{} 127.0.0.1:5000 ../../etc", d(1)),
            format!("{} 127.0.0.1:5000 team/one extra", d(1)),
            format!("{} host/with/slash team/one", d(1)),
            format!("{} 127.0.0.1:5000 team", d(1)),
            format!("{} 127.0.0.1:5000 team/\u{1b}[31m", d(1)),
            "sha256:abc 127.0.0.1:5000 team/one".into(),
            String::new(),
        ] {
            assert_eq!(Entry::parse(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn recent_first_deduplicated_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        store
            .remember_blob_sources("r:1", "a/one", &[d(1), d(2)])
            .unwrap();
        store
            .remember_blob_sources("r:1", "a/two", &[d(1)])
            .unwrap();
        store
            .remember_blob_sources("other:1", "a/three", &[d(1)])
            .unwrap();
        store
            .remember_blob_sources("R:1", "A/One", &[d(1)])
            .unwrap();
        assert_eq!(
            store.blob_sources("r:1", "a/target", &[d(1)]),
            vec![(d(1), "a/one".to_owned()), (d(1), "a/two".to_owned())]
        );
        assert_eq!(store.blob_sources("r:1", "a/one", &[d(2)]), vec![]);
        let many: Vec<Digest> = (0..MAX_ENTRIES as u32 + 10).map(|n| d(100 + n)).collect();
        store.remember_blob_sources("r:1", "a/many", &many).unwrap();
        let entries = store.read_sources();
        assert_eq!(entries.len(), MAX_ENTRIES);
        assert_eq!(
            entries.last().unwrap().digest,
            d(100 + MAX_ENTRIES as u32 + 9)
        );
        let size = fs::metadata(dir.path().join(".olreg").join(FILE))
            .unwrap()
            .len();
        assert!(size <= MAX_FILE_BYTES, "{size}");
    }

    #[test]
    fn a_damaged_record_reads_as_what_is_valid_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        fs::create_dir_all(dir.path().join(".olreg")).unwrap();
        let text = format!(
            "garbage\n\0\0\u{fffd}\n{} r:1 a/one\n{} r:1 ../x\n",
            d(1),
            d(2)
        );
        fs::write(dir.path().join(".olreg").join(FILE), text).unwrap();
        assert_eq!(
            store.blob_sources("r:1", "a/t", &[d(1), d(2)]),
            vec![(d(1), "a/one".into())]
        );
        // Over the size bound: nothing is read, and a write starts afresh.
        fs::write(
            dir.path().join(".olreg").join(FILE),
            vec![b'x'; MAX_FILE_BYTES as usize + 1],
        )
        .unwrap();
        assert!(store.read_sources().is_empty());
        store
            .remember_blob_sources("r:1", "a/one", &[d(3)])
            .unwrap();
        assert_eq!(store.read_sources().len(), 1);
    }
}
