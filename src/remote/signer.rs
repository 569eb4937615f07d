//! Ollama's Ed25519 request signatures (docs/design.md §5): the key of
//! `~/.ollama/id_ed25519` signs a per-request token for Ollama's registry
//! and, in ollama.com's challenge flow, the request to the token realm.
//!
//! Nothing here does I/O except reading the key file.

use std::fs::Metadata;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use reqwest::Url;

use super::user_file;
use crate::digest::Digest;
use crate::error::{Error, Result};

/// The largest key file read: an OpenSSH Ed25519 key is about 400 bytes.
const MAX_KEY_FILE: u64 = 16 << 10;

/// The URL the original client signs for its per-request token.
const LEGACY_TOKEN_URL: &str = "https://ollama.com";

/// Hosts run by Ollama: they take the signed per-request token unasked
/// (over TLS), and the token realm of one may live on another.
const OLLAMA_HOSTS: &[&str] = &["ollama.com", "registry.ollama.ai"];

/// `base64(hex(sha256("")))`: the body hash the original client signs.
pub(crate) fn zero_sum() -> String {
    STANDARD.encode(Digest::empty().hex())
}

/// An Ed25519 signing key and its OpenSSH public key.
pub(crate) struct Signer {
    key: SigningKey,
    /// The base64 field of the `ssh-ed25519 AAAA…` public key line.
    public: String,
    /// Why the key file it came from deserves a warning, if it does.
    warning: Option<String>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("public", &self.public)
            .finish()
    }
}

impl Signer {
    fn new(key: SigningKey) -> Signer {
        let public = ssh_key::PublicKey::from(ssh_key::public::KeyData::from(
            ssh_key::public::Ed25519PublicKey(key.verifying_key().to_bytes()),
        ));
        // The key's SSH wire form; encoding 32 bytes into memory cannot fail.
        let public = STANDARD.encode(public.to_bytes().unwrap_or_default());
        Signer {
            key,
            public,
            warning: None,
        }
    }

    /// Parses an unencrypted Ed25519 private key, as Go's
    /// `ssh.ParseRawPrivateKey` (the original client) accepts them: OpenSSH
    /// (`BEGIN OPENSSH PRIVATE KEY`, whatever the base64 line width) or
    /// PKCS#8 (`BEGIN PRIVATE KEY`). The error says why not.
    pub(crate) fn parse(text: &str) -> Result<Signer, String> {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        let (label, der) = pem_block(text)?;
        let key = match label {
            "OPENSSH PRIVATE KEY" => {
                let key = ssh_key::PrivateKey::from_bytes(&der).map_err(|e| e.to_string())?;
                if key.is_encrypted() {
                    return Err("it is encrypted with a passphrase".into());
                }
                match key.key_data() {
                    ssh_key::private::KeypairData::Ed25519(pair) => {
                        SigningKey::from_bytes(&pair.private.to_bytes())
                    }
                    _ => return Err(format!("it is a {} key, not Ed25519", key.algorithm())),
                }
            }
            "PRIVATE KEY" => SigningKey::from_pkcs8_der(&der)
                .map_err(|e| format!("it is not a PKCS#8 Ed25519 key ({e})"))?,
            "ENCRYPTED PRIVATE KEY" => return Err("it is encrypted with a passphrase".into()),
            other => return Err(format!("it is a {other}, not an Ed25519 key")),
        };
        Ok(Signer::new(key))
    }

    /// Loads the key at `path`; `Ok(None)` when there is no file there
    /// (requests then go anonymous).
    pub(crate) fn load(path: &Path) -> Result<Option<Signer>> {
        let Some((bytes, meta)) = user_file::read(path, MAX_KEY_FILE, "key file")? else {
            return Ok(None);
        };
        let mut signer = Signer::parse(&String::from_utf8_lossy(&bytes)).map_err(|why| {
            Error::invalid_argument(format!(
                "key file {}: not a usable Ed25519 private key: {why}",
                path.display()
            ))
        })?;
        signer.warning = exposure_warning(path, &meta);
        Ok(Some(signer))
    }

    /// A warning for the log when the key file is open to others.
    pub(crate) fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }

    /// The public key's base64 field.
    pub(crate) fn public_key(&self) -> &str {
        &self.public
    }

    /// `<public>:<base64 signature>` over `"<method>,<url>,<zero sum>"`.
    pub(crate) fn sign_request(&self, method: &str, url: &str) -> String {
        let data = format!("{method},{url},{}", zero_sum());
        let sig = self.key.sign(data.as_bytes());
        format!("{}:{}", self.public, STANDARD.encode(sig.to_bytes()))
    }

    /// The per-request `Authorization` value of the original client:
    /// `Bearer base64(url):<public>:<base64 signature>` with
    /// `url = https://ollama.com?ts=<unix seconds>`.
    pub(crate) fn legacy_token(&self, unix_secs: u64) -> String {
        let url = format!("{LEGACY_TOKEN_URL}?ts={unix_secs}");
        format!(
            "Bearer {}:{}",
            STANDARD.encode(&url),
            self.sign_request("GET", &url)
        )
    }
}

/// The label and decoded body of the first PEM block in `text`. Lenient
/// where writers differ (line width, surrounding text, CRLF), strict where
/// the key is concerned.
fn pem_block(text: &str) -> Result<(&str, Vec<u8>), String> {
    let mut lines = text.lines().map(str::trim);
    let label = lines
        .by_ref()
        .find_map(|l| l.strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .ok_or("there is no private key in it (expected a PEM block: OpenSSH or PKCS#8)")?;
    let end = format!("-----END {label}-----");
    let mut base64 = String::new();
    let mut ended = false;
    for line in lines {
        if line == end {
            ended = true;
            break;
        }
        // RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`) mark legacy encryption.
        if line.contains(':') {
            return Err("it is encrypted with a passphrase".into());
        }
        base64.push_str(line);
    }
    if !ended {
        return Err(format!("its PEM block has no {end:?} line"));
    }
    let der = STANDARD
        .decode(base64)
        .map_err(|e| format!("its base64 is damaged ({e})"))?;
    Ok((label, der))
}

/// Why a key file readable or writable by group or others is worth a
/// warning (ssh refuses such a key; olreg uses it, as Ollama does).
#[cfg(unix)]
fn exposure_warning(path: &Path, meta: &Metadata) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "the key file {} is open to group or others (mode {mode:04o}): anyone who can read it \
             can sign as you; it is used anyway (chmod 600 it)",
            path.display()
        )
    })
}

#[cfg(not(unix))]
fn exposure_warning(_path: &Path, _meta: &Metadata) -> Option<String> {
    None
}

/// Where the signed per-request token goes without being asked for: it is
/// a replayable `ollama.com` credential, so only to Ollama's own hosts over
/// TLS and to hosts the user lists (any scheme: the user chose them). Any
/// other registry gets a signature only by answering its own challenge.
#[derive(Clone, Debug, Default)]
pub(crate) struct SignedHosts {
    /// `host` or `host:port`, lowercase.
    listed: Vec<String>,
}

impl SignedHosts {
    /// The hosts in `specs` (`host[:port]` each), checked.
    pub(crate) fn parse(specs: &[String]) -> Result<SignedHosts> {
        let mut listed = Vec::new();
        for spec in specs {
            let host = spec.trim().to_ascii_lowercase();
            let usable = !host.is_empty()
                && !host.contains(['/', '@', '?', '#'])
                && Url::parse(&format!("https://{host}/"))
                    .is_ok_and(|u| u.path() == "/" && u.host_str().is_some());
            if !usable {
                return Err(Error::invalid_argument(format!(
                    "signed host {spec:?} is not host[:port]"
                )));
            }
            listed.push(host);
        }
        Ok(SignedHosts { listed })
    }

    /// Whether `registry` takes the signed token unasked.
    pub(crate) fn allows(&self, registry: &Url) -> bool {
        let Some(host) = registry.host_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        let default_port = registry.port().is_none();
        if registry.scheme() == "https" && default_port && OLLAMA_HOSTS.contains(&host.as_str()) {
            return true;
        }
        let with_port = format!("{host}:{}", registry.port_or_known_default().unwrap_or(0));
        self.listed
            .iter()
            .any(|l| *l == with_port || (default_port && *l == host))
    }
}

/// Whether the realm named in `registry`'s challenge may receive this
/// client's signature: the same host, or two hosts both run by Ollama.
pub(crate) fn realm_may_get_signature(registry: &Url, realm: &Url) -> bool {
    let (Some(r), Some(t)) = (registry.host_str(), realm.host_str()) else {
        return false;
    };
    let (r, t) = (r.to_ascii_lowercase(), t.to_ascii_lowercase());
    if r == t && registry.port_or_known_default() == realm.port_or_known_default() {
        return true;
    }
    realm.scheme() == "https"
        && OLLAMA_HOSTS.contains(&r.as_str())
        && OLLAMA_HOSTS.contains(&t.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vector() -> Value {
        let text = include_str!("../../tests/fixtures/auth-vector.json");
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn zero_sum_matches_the_original() {
        assert_eq!(zero_sum(), vector()["zero_sum"].as_str().unwrap());
    }

    #[test]
    fn legacy_tokens_match_the_original_client_exactly() {
        let v = vector();
        let signer = Signer::parse(v["private_key_openssh"].as_str().unwrap()).unwrap();
        assert_eq!(
            signer.public_key(),
            v["public_key"]
                .as_str()
                .unwrap()
                .split_whitespace()
                .nth(1)
                .unwrap()
        );
        let cases = v["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 2);
        for case in cases {
            let ts = case["ts"].as_u64().unwrap();
            assert_eq!(
                signer.legacy_token(ts),
                case["authorization"].as_str().unwrap()
            );
        }
    }

    #[test]
    fn bad_keys_are_explained() {
        let err = Signer::parse("not a key").err().unwrap();
        assert!(err.contains("no private key"), "{err}");
        let rsa = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert!(Signer::parse(rsa)
            .err()
            .unwrap()
            .contains("RSA PRIVATE KEY"));
        let legacy =
            "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n-----END EC PRIVATE KEY-----";
        assert!(Signer::parse(legacy).err().unwrap().contains("passphrase"));
        let dir = tempfile::tempdir().unwrap();
        assert!(Signer::load(&dir.path().join("absent")).unwrap().is_none());
    }

    #[cfg(unix)]
    #[test]
    fn exposed_key_files_are_used_with_a_warning() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id_ed25519");
        std::fs::write(&path, vector()["private_key_openssh"].as_str().unwrap()).unwrap();
        for (mode, warned) in [(0o600, false), (0o400, false), (0o640, true), (0o604, true)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let signer = Signer::load(&path).unwrap().unwrap();
            assert_eq!(signer.warning().is_some(), warned, "{mode:o}");
        }
    }

    #[test]
    fn signed_tokens_go_unasked_only_to_ollama_and_listed_hosts() {
        let u = |s: &str| Url::parse(s).unwrap();
        let none = SignedHosts::default();
        assert!(none.allows(&u("https://registry.ollama.ai/v2/")));
        assert!(none.allows(&u("https://ollama.com:443/")));
        assert!(!none.allows(&u("http://registry.ollama.ai/")));
        assert!(!none.allows(&u("https://registry.ollama.ai:8443/")));
        assert!(!none.allows(&u("https://evil.example/")));
        let listed = SignedHosts::parse(&["127.0.0.1:5000".into(), "Mine.Example".into()]).unwrap();
        assert!(listed.allows(&u("http://127.0.0.1:5000/")));
        assert!(!listed.allows(&u("http://127.0.0.1:5001/")));
        assert!(listed.allows(&u("https://mine.example/")));
        assert!(listed.allows(&u("http://mine.example/")));
        assert!(!listed.allows(&u("https://mine.example:444/")));
        for bad in ["", "https://x", "x/y", "u@x", "x:port", "[::1"] {
            assert!(SignedHosts::parse(&[bad.into()]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn realm_trust() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(realm_may_get_signature(
            &u("http://127.0.0.1:5/v2/"),
            &u("http://127.0.0.1:5/token")
        ));
        assert!(!realm_may_get_signature(
            &u("http://127.0.0.1:5/v2/"),
            &u("http://127.0.0.1:6/token")
        ));
        assert!(!realm_may_get_signature(
            &u("https://evil.example/v2/"),
            &u("https://ollama.com/token")
        ));
        assert!(realm_may_get_signature(
            &u("https://registry.ollama.ai/v2/"),
            &u("https://ollama.com/token")
        ));
    }
}
