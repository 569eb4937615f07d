//! Ollama's Ed25519 request signatures, verified exactly as ollama.com
//! expects clients to make them.
//!
//! A signature covers `"GET," + url + "," + base64(hex(sha256("")))` (the
//! original client always signed an empty body hash) and is presented with
//! the base64 field of the key's OpenSSH public line.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::registry::digest::hex;

/// The prefix of the URL inside a legacy bearer token.
const LEGACY_URL_PREFIX: &str = "https://ollama.com?ts=";

/// `base64(hex(sha256("")))`, the body hash every signature includes.
pub(crate) fn zero_sum() -> String {
    STANDARD.encode(hex(&Sha256::digest(b"")))
}

/// The exact bytes a client signs for `url`.
pub(crate) fn signed_data(url: &str) -> String {
    format!("GET,{url},{}", zero_sum())
}

/// The base64 key field of an OpenSSH public key line
/// (`ssh-ed25519 AAAA… comment`), or the input itself if it is just the
/// field.
pub(crate) fn key_field(line: &str) -> &str {
    let mut words = line.split_whitespace();
    match (words.next(), words.next()) {
        (Some("ssh-ed25519"), Some(field)) => field,
        (Some(field), _) => field,
        _ => "",
    }
}

/// Whether the key (base64 field) is acceptable: listed, or any key if the
/// list is empty.
pub(crate) fn key_allowed(allowed: &[String], key_b64: &str) -> bool {
    allowed.is_empty() || allowed.iter().any(|line| key_field(line) == key_b64)
}

/// Decodes the base64 field of an `ssh-ed25519` public key: SSH wire format,
/// the string `ssh-ed25519` then a string holding the 32-byte key.
pub(crate) fn parse_public_key(key_b64: &str) -> Result<VerifyingKey, String> {
    let wire = STANDARD
        .decode(key_b64)
        .map_err(|e| format!("public key is not base64: {e}"))?;
    let (kind, rest) = ssh_string(&wire)?;
    if kind != b"ssh-ed25519" {
        return Err("public key is not ssh-ed25519".into());
    }
    let (key, rest) = ssh_string(rest)?;
    if !rest.is_empty() {
        return Err("trailing bytes after the public key".into());
    }
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| "ed25519 key is not 32 bytes".to_string())?;
    VerifyingKey::from_bytes(&key).map_err(|e| format!("bad ed25519 key: {e}"))
}

fn ssh_string(buf: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let short = || "truncated SSH public key".to_string();
    let len_bytes: [u8; 4] = buf
        .get(..4)
        .ok_or_else(short)?
        .try_into()
        .map_err(|_| short())?;
    let len = usize::try_from(u32::from_be_bytes(len_bytes)).map_err(|_| short())?;
    let body = buf.get(4..4 + len).ok_or_else(short)?;
    Ok((body, &buf[4 + len..]))
}

/// Verifies that `sig_b64` is the key's signature of [`signed_data`]`(url)`.
pub(crate) fn verify(key_b64: &str, sig_b64: &str, url: &str) -> Result<(), String> {
    let key = parse_public_key(key_b64)?;
    let sig = STANDARD
        .decode(sig_b64)
        .map_err(|e| format!("signature is not base64: {e}"))?;
    let sig = Signature::from_slice(&sig).map_err(|e| format!("bad signature: {e}"))?;
    key.verify(signed_data(url).as_bytes(), &sig)
        .map_err(|_| "signature does not verify".to_string())
}

/// Checks a legacy `Authorization: Bearer <b64 url>:<key>:<b64 sig>` header
/// and returns the key's base64 field.
pub(crate) fn verify_legacy(authorization: &str) -> Result<String, String> {
    let token = authorization
        .strip_prefix("Bearer ")
        .ok_or("not a Bearer token")?;
    let mut parts = token.trim().split(':');
    let (Some(url_b64), Some(key_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("token is not url:key:signature".into());
    };
    let url = STANDARD
        .decode(url_b64)
        .map_err(|e| format!("token url is not base64: {e}"))?;
    let url = String::from_utf8(url).map_err(|_| "token url is not UTF-8".to_string())?;
    let ts = url
        .strip_prefix(LEGACY_URL_PREFIX)
        .ok_or_else(|| format!("token url {url:?} is not {LEGACY_URL_PREFIX}<ts>"))?;
    if ts.is_empty() || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("token url {url:?} has no numeric ts"));
    }
    verify(key_b64, sig_b64, &url)?;
    Ok(key_b64.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/testdata/auth-vector.json"
        );
        let fallback = "/work/shared/testdata/auth-vector.json";
        let text = std::fs::read_to_string(path)
            .or_else(|_| std::fs::read_to_string(fallback))
            .expect("auth-vector.json");
        serde_json::from_str(&text).expect("vector JSON")
    }

    #[test]
    fn zero_sum_matches_the_vector() {
        assert_eq!(
            zero_sum(),
            vectors()["zero_sum"].as_str().expect("zero_sum")
        );
    }

    #[test]
    fn legacy_vectors_verify() {
        let v = vectors();
        let key = key_field(v["public_key"].as_str().expect("public_key")).to_string();
        for case in v["cases"].as_array().expect("cases") {
            let header = case["authorization"].as_str().expect("authorization");
            assert_eq!(verify_legacy(header), Ok(key.clone()));
            let url = format!("https://ollama.com?ts={}", case["ts"]);
            assert_eq!(
                signed_data(&url),
                case["check_data"].as_str().expect("check")
            );
        }
    }

    #[test]
    fn challenge_vector_verifies() {
        let v = vectors();
        let case = &v["challenge_cases"][0];
        let url = case["realm_request_url"].as_str().expect("url");
        assert_eq!(
            signed_data(url),
            case["signed_data"].as_str().expect("data")
        );
        let header = case["authorization"].as_str().expect("authorization");
        let (key, sig) = header.split_once(':').expect("key:sig");
        assert_eq!(verify(key, sig, url), Ok(()));
        assert!(verify(key, sig, &format!("{url}&x=1")).is_err());
    }

    #[test]
    fn tampering_is_rejected() {
        let v = vectors();
        let header = v["cases"][0]["authorization"]
            .as_str()
            .expect("authorization");
        let parts: Vec<&str> = header.trim_start_matches("Bearer ").split(':').collect();
        let other_url = STANDARD.encode("https://ollama.com?ts=1700000001");
        let other_ts = format!("Bearer {other_url}:{}:{}", parts[1], parts[2]);
        assert!(verify_legacy(&other_ts).is_err());
        assert!(verify_legacy("Bearer a:b").is_err());
        assert!(verify_legacy("Basic abc").is_err());
        assert!(parse_public_key("AAAA").is_err());
        let key = key_field(v["public_key"].as_str().expect("public_key"));
        assert!(key_allowed(&[], key));
        assert!(key_allowed(
            &[v["public_key"].as_str().expect("pk").to_string()],
            key
        ));
        assert!(!key_allowed(&["ssh-ed25519 AAAAother".to_string()], key));
    }
}
