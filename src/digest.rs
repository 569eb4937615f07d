//! Content digests: `sha256:<64 lowercase hex>`, spelled `sha256-<hex>` in the
//! store's file names. Only SHA-256 exists in Ollama's world, so a digest is
//! just its 32 bytes; anything else is refused when parsed, before it can
//! become part of a URL or a path.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::error::Error;

/// A SHA-256 content digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    /// The digest of the empty blob.
    pub fn empty() -> Digest {
        Digest::of(b"")
    }

    /// Wraps raw hash bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }

    /// Parses `sha256:<hex>` or the file-name spelling `sha256-<hex>`.
    /// The hex must be exactly 64 lowercase digits.
    pub fn parse(s: &str) -> Result<Digest, Error> {
        let hex = s
            .strip_prefix("sha256:")
            .or_else(|| s.strip_prefix("sha256-"))
            .ok_or_else(|| Error::invalid_digest(s, "not a sha256 digest"))?;
        if hex.len() != 64 {
            return Err(Error::invalid_digest(
                s,
                "a sha256 digest has 64 hex digits",
            ));
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]);
            let lo = hex_value(pair[1]);
            match (hi, lo) {
                (Some(hi), Some(lo)) => out[i] = hi << 4 | lo,
                _ => return Err(Error::invalid_digest(s, "not lowercase hex")),
            }
        }
        Ok(Digest(out))
    }

    /// Parses a store file name `sha256-<hex>`; `None` for anything else
    /// (partial files, temporary files, files olreg does not own).
    pub fn from_file_name(name: &str) -> Option<Digest> {
        if name.starts_with("sha256-") {
            Digest::parse(name).ok()
        } else {
            None
        }
    }

    /// The 32 hash bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lowercase hex digits.
    pub fn hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(DIGITS[(b >> 4) as usize] as char);
            s.push(DIGITS[(b & 15) as usize] as char);
        }
        s
    }

    /// The store's file name, `sha256-<hex>`.
    pub fn file_name(&self) -> String {
        format!("sha256-{}", self.hex())
    }

    /// A short form for messages: `sha256:0123456789ab`.
    pub fn short(&self) -> String {
        format!("sha256:{}", &self.hex()[..12])
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Digest, Error> {
        Digest::parse(s)
    }
}

/// An incremental SHA-256 that ends in a [`Digest`].
#[derive(Clone, Default)]
pub struct Hasher(Sha256);

impl Hasher {
    /// A hasher over zero bytes.
    pub fn new() -> Hasher {
        Hasher(Sha256::new())
    }

    /// Feeds more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of every byte fed so far.
    pub fn finish(self) -> Digest {
        Digest(self.0.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn empty_digest_is_the_well_known_one() {
        assert_eq!(Digest::empty().to_string(), EMPTY);
    }

    #[test]
    fn both_spellings_parse_to_the_same_digest() {
        let a = Digest::parse(EMPTY).unwrap();
        let b = Digest::parse(&EMPTY.replace(':', "-")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.file_name(), EMPTY.replace(':', "-"));
    }

    #[test]
    fn bad_digests_are_refused() {
        for bad in [
            "",
            "sha256:",
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555",
            "sha256:../../../../etc/passwd/../../../../../../../../../../../../../..",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn only_exact_blob_names_are_blobs() {
        let name = Digest::empty().file_name();
        assert!(Digest::from_file_name(&name).is_some());
        assert!(Digest::from_file_name(&format!("{name}-partial")).is_none());
        assert!(Digest::from_file_name(&format!(".{name}")).is_none());
        assert!(Digest::from_file_name(&Digest::empty().to_string()).is_none());
    }

    #[test]
    fn incremental_hash_matches_one_shot() {
        let mut h = Hasher::new();
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(h.finish(), Digest::of(b"hello world"));
    }
}
