//! Content digests and random identifiers.
//!
//! Digests are always kept in the canonical `sha256:<64 lowercase hex>`
//! spelling inside the server, so lookups never depend on how a client or a
//! test wrote them.

use sha2::{Digest, Sha256};

/// `sha256:<hex>` of `data`.
pub(crate) fn sha256_digest(data: &[u8]) -> String {
    finish(Sha256::new().chain_update(data))
}

/// `sha256:<hex>` from a hasher that has seen all the data.
pub(crate) fn finish(hasher: Sha256) -> String {
    format!("sha256:{}", hex(&hasher.finalize()))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    out
}

/// The canonical spelling of a digest if `text` is one (`sha256:` or the
/// store's `sha256-` prefix, any hex case), else `None`.
pub(crate) fn parse_digest(text: &str) -> Option<String> {
    let hex_part = text
        .strip_prefix("sha256:")
        .or_else(|| text.strip_prefix("sha256-"))?;
    if hex_part.len() == 64 && hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
        Some(format!("sha256:{}", hex_part.to_ascii_lowercase()))
    } else {
        None
    }
}

/// Canonical spelling if `text` parses as a digest, else `text` unchanged
/// (so a malformed digest in a fault target simply never matches).
pub(crate) fn normalize_digest(text: &str) -> String {
    parse_digest(text).unwrap_or_else(|| text.to_string())
}

/// `n` random bytes as hex, for upload ids, signatures and tokens.
pub(crate) fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    fill_random(&mut buf);
    hex(&buf)
}

/// A random RFC 4122 version 4 UUID, as Docker Distribution uses for
/// upload sessions.
pub(crate) fn random_uuid() -> String {
    let mut b = [0u8; 16];
    fill_random(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn fill_random(buf: &mut [u8]) {
    use ring::rand::SecureRandom;
    if ring::rand::SystemRandom::new().fill(buf).is_err() {
        // The OS RNG failing is not something a test server can recover
        // from; fall back to time-based bytes so ids stay distinct.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let seed = Sha256::digest(nanos.to_le_bytes());
        for (i, byte) in buf.iter_mut().enumerate() {
            *byte = seed[i % seed.len()];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_parse_in_both_spellings() {
        let hex64 = "AB".repeat(32);
        assert_eq!(
            parse_digest(&format!("sha256-{hex64}")),
            Some(format!("sha256:{}", "ab".repeat(32)))
        );
        assert_eq!(parse_digest("sha256:abc"), None);
        assert_eq!(parse_digest("md5:00"), None);
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn uuids_look_like_uuids() {
        let id = random_uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(random_uuid(), id);
    }
}
