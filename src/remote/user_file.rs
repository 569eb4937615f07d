//! Reading the small files a user points olreg at (the signing key, Docker's
//! `config.json`) as carefully as anything a registry sends: regular files
//! only, opened without blocking (a FIFO never hangs client creation), and
//! never more than a small cap (a huge file or `/dev/zero` never eats memory).

use std::fs::{File, Metadata};
use std::io::ErrorKind;
use std::path::Path;

use crate::error::{Error, Result};
use crate::store::fsutil;

/// The bytes of the regular file at `path` and its metadata, or `None`
/// when nothing is there. `what` names the file in errors ("key file").
pub(crate) fn read(path: &Path, cap: u64, what: &str) -> Result<Option<(Vec<u8>, Metadata)>> {
    let file = match open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let meta = file.metadata().map_err(|e| Error::io("stat", path, e))?;
    let refuse = |why: String| Error::invalid_argument(format!("{what} {}: {why}", path.display()));
    if !meta.is_file() {
        return Err(refuse("not a regular file".into()));
    }
    // The file may grow between stat and read: the cap holds either way.
    let bytes = fsutil::read_bounded(file, path, cap as usize)?.ok_or_else(|| {
        refuse(format!(
            "{} bytes, over the {cap} byte limit",
            meta.len().max(cap + 1)
        ))
    })?;
    Ok(Some((bytes, meta)))
}

/// Opens `path` without blocking (a FIFO with no writer returns at once,
/// then fstat refuses it) and whatever it is (a directory too, on Windows).
fn open(path: &Path) -> std::io::Result<File> {
    fsutil::user_file_options().open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_small_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, b"abc").unwrap();
        assert_eq!(read(&small, 3, "f").unwrap().unwrap().0, b"abc");
        let err = read(&small, 2, "key file").unwrap_err();
        assert!(err.to_string().contains("over the 2 byte limit"), "{err}");
        assert!(read(&dir.path().join("absent"), 9, "f").unwrap().is_none());
        let err = read(dir.path(), 9, "f").unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        #[cfg(unix)]
        {
            let err = read(Path::new("/dev/zero"), 9, "f").unwrap_err();
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
    }
}
