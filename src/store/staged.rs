//! Staged blobs: downloaded and verified, waiting in `.olreg/staged/` until
//! every blob of their model is ready, then put into `blobs/` together right
//! before the manifest is linked.
//!
//! Ollama deletes every blob no manifest references when its server starts,
//! and when `ollama rm`, `pull` or `create` replaces a name. During a pull
//! the blobs already fetched are exactly such blobs; kept out of `blobs/`
//! they are out of its sight. Staged files obey the rule of `blobs/`: only
//! complete, verified, synced bytes under their digest's name. They are
//! shared by every pull that needs them, and a pull that was stopped leaves
//! them for the next one (or for `prune`).
//!
//! A staged blob enters `blobs/` as a hard link, and its staged name goes
//! only once the manifest is linked: a blob deleted from `blobs/` in the
//! moment between is put back from the staged copy, not downloaded again.
//! File systems without hard links get a rename instead.

use super::dir::{Dir, Kind};
use super::fsutil::PendingWrite;
use super::{Store, BLOBS, STAGED};
use crate::digest::Digest;
use crate::error::Result;
use crate::manifest::{Layer, Manifest};
use crate::name::Name;

impl Store {
    /// Whether a pull has the blob: in place or staged, with the size.
    pub(crate) fn blob_ready(&self, digest: &Digest, size: u64) -> bool {
        self.has_blob(digest, size)
            || matches!(self.file_len(STAGED, &digest.file_name()), Ok(Some(len)) if len == size)
    }

    /// The directory completed downloads are moved to.
    pub(crate) fn staged_dir(&self) -> Result<Dir> {
        self.create_dir(STAGED)
    }

    /// Puts a pulled model in place: its staged blobs into `blobs/`, then
    /// `manifest` linked under `name` — unless a blob is neither in place nor
    /// staged (another program deleted it). Then nothing is linked and the
    /// missing blobs are returned, to be fetched again.
    ///
    /// The manifest is written and synced, and its directory made, first,
    /// and renamed into place right after the blobs: blobs sit unreferenced
    /// in `blobs/` only for the moment the links and one sync take. A blob
    /// deleted then comes back from its staged copy. One deleted right after
    /// the link (by a prune that read the manifests just before it) is put
    /// back too if it is seen; if it cannot be, it is returned although the
    /// manifest is linked, and the next round restores it.
    pub(crate) fn link_pulled(&self, name: &Name, manifest: &Manifest) -> Result<Vec<Digest>> {
        let blobs = manifest.blobs();
        let missing: Vec<Digest> = blobs
            .iter()
            .filter(|l| !self.blob_ready(&l.digest, l.size))
            .map(|l| l.digest)
            .collect();
        if !missing.is_empty() {
            return Ok(missing);
        }
        let pending = PendingWrite::new(self.tmp_dir()?, manifest.bytes())?;
        let (manifest_dir, manifest_file) = self.manifest_link_target(name)?;
        let in_place = self.create_dir(BLOBS)?;
        let staged = self.open_dir(STAGED)?;
        let missing = put_all_in_place(&blobs, staged.as_ref(), &in_place)?;
        if !missing.is_empty() {
            return Ok(missing);
        }
        pending.commit(&manifest_dir, &manifest_file)?;
        // A prune that read the manifests just before the link may still
        // delete: look once more. What cannot be put back is returned
        // (linked but incomplete, by another program's doing) to be fetched.
        let missing = put_all_in_place(&blobs, staged.as_ref(), &in_place)?;
        if !missing.is_empty() {
            return Ok(missing);
        }
        // Complete: the staged copies are spare names now.
        if let Some(staged) = &staged {
            for layer in &blobs {
                staged.remove_file(&layer.digest.file_name())?;
            }
        }
        Ok(Vec::new())
    }
}

/// Puts each of `blobs` that `in_place` lacks there from `staged`, makes
/// that durable, and returns the ones still missing.
fn put_all_in_place(blobs: &[Layer], staged: Option<&Dir>, in_place: &Dir) -> Result<Vec<Digest>> {
    let mut added = false;
    for layer in blobs {
        if let (false, Some(staged)) = (holds(in_place, &layer.digest, layer.size)?, staged) {
            added |= put_in_place(staged, in_place, &layer.digest, layer.size)?;
        }
    }
    if added {
        in_place.sync()?;
    }
    let mut missing = Vec::new();
    for layer in blobs {
        if !holds(in_place, &layer.digest, layer.size)? {
            missing.push(layer.digest);
        }
    }
    Ok(missing)
}

/// Whether `dir` holds the blob as a regular file of the right size.
fn holds(dir: &Dir, digest: &Digest, size: u64) -> Result<bool> {
    Ok(matches!(dir.metadata(&digest.file_name())?,
        Some(m) if m.kind == Kind::File && m.len == size))
}

/// Gives the staged blob its name in `blobs/`: a hard link (keeping the
/// staged name until the manifest is linked), else a rename. Returns whether
/// it was there to put.
fn put_in_place(staged: &Dir, in_place: &Dir, digest: &Digest, size: u64) -> Result<bool> {
    if !holds(staged, digest, size)? {
        return Ok(false);
    }
    let file = digest.file_name();
    if staged.hard_link(&file, in_place, &file)? {
        return Ok(true);
    }
    // No hard links here, or a damaged file or a link has the name: the
    // rename replaces it. `false`: another pull moved the blob first.
    staged.rename(&file, in_place, &file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Limits;
    use std::io::Write;

    /// A manifest whose config is `blobs[0]` and layers the rest.
    fn manifest_of(blobs: &[&[u8]]) -> Manifest {
        let entry = |b: &[u8]| format!(r#"{{"digest":"{}","size":{}}}"#, Digest::of(b), b.len());
        let layers: Vec<String> = blobs[1..].iter().map(|b| entry(b)).collect();
        let text = format!(
            r#"{{"config":{},"layers":[{}]}}"#,
            entry(blobs[0]),
            layers.join(",")
        );
        Manifest::parse(text.into_bytes(), &Limits::default()).unwrap()
    }

    fn stage(store: &Store, bytes: &[u8]) {
        let mut f = store
            .staged_dir()
            .unwrap()
            .create_new(&Digest::of(bytes).file_name())
            .unwrap();
        f.write_all(bytes).unwrap();
    }

    fn name() -> Name {
        Name::parse("h/ns/m:t", &Default::default()).unwrap()
    }

    #[test]
    fn a_blob_lost_after_it_was_put_in_place_comes_back_from_its_staged_copy() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let (a, b): (&[u8], &[u8]) = (b"config bytes", b"layer bytes");
        stage(&store, a);
        stage(&store, b);
        // An earlier attempt put `a` in place, then Ollama's prune deleted it
        // before the manifest was linked.
        let staged = store.staged_dir().unwrap();
        let blobs = store.create_dir(BLOBS).unwrap();
        let file = Digest::of(a).file_name();
        assert!(staged.hard_link(&file, &blobs, &file).unwrap());
        blobs.remove_file(&file).unwrap();

        let manifest = manifest_of(&[a, b]);
        assert!(store.link_pulled(&name(), &manifest).unwrap().is_empty());
        assert!(store.has_blob(&Digest::of(a), a.len() as u64));
        assert!(store.has_blob(&Digest::of(b), b.len() as u64));
        assert_eq!(store.list().unwrap().len(), 1, "linked");
        assert!(staged.entries().unwrap().is_empty(), "the spare names go");
    }

    #[test]
    fn a_blob_put_in_place_keeps_its_staged_name_until_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let a: &[u8] = b"layer bytes";
        stage(&store, a);
        let (staged, blobs) = (
            store.staged_dir().unwrap(),
            store.create_dir(BLOBS).unwrap(),
        );
        let file = Digest::of(a).file_name();
        assert!(put_in_place(&staged, &blobs, &Digest::of(a), a.len() as u64).unwrap());
        let (kept, placed) = (
            staged.metadata(&file).unwrap(),
            blobs.metadata(&file).unwrap(),
        );
        assert!(
            kept.unwrap().same_file(&placed.unwrap()),
            "one file, two names"
        );
    }

    #[test]
    fn nothing_enters_blobs_while_a_blob_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let (a, b): (&[u8], &[u8]) = (b"config bytes", b"layer bytes");
        stage(&store, a);
        let manifest = manifest_of(&[a, b]);
        assert_eq!(
            store.link_pulled(&name(), &manifest).unwrap(),
            vec![Digest::of(b)]
        );
        assert_eq!(store.blob_size(&Digest::of(a)), None, "still out of sight");
        assert!(store.list().unwrap().is_empty());
    }
}
