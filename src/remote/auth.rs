//! Credentials and what they turn into on the wire (DESIGN.md §3):
//!
//! - the Ed25519 key of `~/.ollama/id_ed25519`, which signs a token sent
//!   with every registry request and, for ollama.com's challenge flow, the
//!   request to the token realm;
//! - user names and passwords (from the options or `~/.docker/config.json`)
//!   for `Basic` challenges and for token services;
//! - bearer tokens from a realm, cached per scope until they expire.
//!
//! Nothing here does I/O except reading key and config files.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use reqwest::Url;
use serde::Deserialize;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// The URL the original client signs for its per-request token.
const LEGACY_TOKEN_URL: &str = "https://ollama.com";

/// Hosts run by Ollama whose token realm may live on another of them.
const OLLAMA_HOSTS: &[&str] = &["ollama.com", "registry.ollama.ai"];

/// `base64(hex(sha256("")))`: the body hash the original client signs.
pub fn zero_sum() -> String {
    STANDARD.encode(Digest::empty().hex())
}

/// An Ed25519 key in OpenSSH format.
pub struct Signer {
    key: SigningKey,
    /// The base64 field of the `ssh-ed25519 AAAA…` public key line.
    public: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("public", &self.public)
            .finish()
    }
}

impl Signer {
    /// Parses an unencrypted OpenSSH Ed25519 private key.
    pub fn from_openssh(pem: &str) -> Result<Signer> {
        let bad = |why: String| Error::invalid_argument(format!("unusable private key: {why}"));
        let key = ssh_key::PrivateKey::from_openssh(pem).map_err(|e| bad(e.to_string()))?;
        if key.is_encrypted() {
            return Err(bad("it is encrypted with a passphrase".into()));
        }
        let ssh_key::private::KeypairData::Ed25519(pair) = key.key_data() else {
            return Err(bad(format!("it is a {} key, not Ed25519", key.algorithm())));
        };
        let line = key
            .public_key()
            .to_openssh()
            .map_err(|e| bad(e.to_string()))?;
        let public = line
            .split_whitespace()
            .nth(1)
            .ok_or_else(|| bad("its public key has no base64 field".into()))?
            .to_owned();
        Ok(Signer {
            key: SigningKey::from_bytes(&pair.private.to_bytes()),
            public,
        })
    }

    /// Loads the key at `path`; `Ok(None)` when there is no file there
    /// (requests then go anonymous).
    pub fn load(path: &Path) -> Result<Option<Signer>> {
        match std::fs::read_to_string(path) {
            Ok(pem) => Signer::from_openssh(&pem)
                .map(Some)
                .map_err(|e| Error::invalid_argument(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read key", path, e)),
        }
    }

    /// The public key's base64 field.
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// `<public>:<base64 signature>` over `"<method>,<url>,<zero sum>"`.
    pub fn sign_request(&self, method: &str, url: &str) -> String {
        let data = format!("{method},{url},{}", zero_sum());
        let sig = self.key.sign(data.as_bytes());
        format!("{}:{}", self.public, STANDARD.encode(sig.to_bytes()))
    }

    /// The per-request `Authorization` value of the original client:
    /// `Bearer base64(url):<public>:<base64 signature>` with
    /// `url = https://ollama.com?ts=<unix seconds>`.
    pub fn legacy_token(&self, unix_secs: u64) -> String {
        let url = format!("{LEGACY_TOKEN_URL}?ts={unix_secs}");
        format!(
            "Bearer {}:{}",
            STANDARD.encode(&url),
            self.sign_request("GET", &url)
        )
    }
}

/// Whether the realm named in `registry`'s challenge may receive this
/// client's signature: the same host, or two hosts both run by Ollama.
pub fn realm_may_get_signature(registry: &Url, realm: &Url) -> bool {
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

/// Whether a password for `registry` may go to the token `realm` it named:
/// over TLS, or to the registry's own host (a token service beside it).
pub fn realm_may_get_password(registry: &Url, realm: &Url) -> bool {
    realm.scheme() == "https"
        || registry
            .host_str()
            .zip(realm.host_str())
            .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
}

/// Escapes like Go's `url.QueryEscape`, which the original client's query
/// encoding (and so its signatures) relies on.
pub fn go_query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The realm URL with `service`, each scope and, for a signed request, `ts`
/// and `nonce` added to any query it has, encoded as Go's
/// `url.Values.Encode` does: keys sorted, values in order.
pub fn realm_request_url(
    realm: &str,
    service: Option<&str>,
    scopes: &[&str],
    signed: Option<(u64, &str)>,
) -> Result<Url> {
    let mut url = Url::parse(realm)
        .map_err(|e| Error::protocol(realm, format!("the token realm is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::protocol(
            realm,
            "the token realm is not an http(s) URL",
        ));
    }
    let mut pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    if let Some(service) = service {
        pairs.push(("service".into(), service.into()));
    }
    for scope in scopes {
        pairs.push(("scope".into(), (*scope).into()));
    }
    if let Some((ts, nonce)) = signed {
        pairs.push(("ts".into(), ts.to_string()));
        pairs.push(("nonce".into(), nonce.into()));
    }
    // A stable sort keeps the values of one key in the order they were added.
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let query = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", go_query_escape(k), go_query_escape(v)))
        .collect::<Vec<_>>()
        .join("&");
    url.set_query((!query.is_empty()).then_some(query.as_str()));
    Ok(url)
}

/// A random nonce as the original client makes them: 16 bytes, base64url.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::getrandom(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A user name and password for one registry host.
#[derive(Clone)]
pub struct Credential {
    /// `host[:port]`, compared ignoring case.
    pub host: String,
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("host", &self.host)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// `Authorization: Basic …`.
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", self.user, self.password))
        )
    }
}

/// The `host[:port]` a URL addresses, as credentials are keyed.
pub fn host_key(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{}:{p}", h.to_ascii_lowercase()),
        (Some(h), None) => h.to_ascii_lowercase(),
        _ => String::new(),
    }
}

/// Reads the `auths` of a Docker `config.json`: `{"auths":{"host":{"auth":
/// base64("user:pass")}}}` (or `username`/`password` fields). Keys may be
/// URLs (`https://host/v1/`); they are reduced to `host[:port]`. A missing
/// file means no credentials; a malformed one is an error naming it.
pub fn docker_config_credentials(path: &Path) -> Result<Vec<Credential>> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(default)]
        auths: HashMap<String, Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        auth: Option<String>,
        username: Option<String>,
        password: Option<String>,
    }
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    let config: Config = serde_json::from_slice(&text).map_err(|e| {
        Error::invalid_argument(format!(
            "{} is not a Docker config file: {e}",
            path.display()
        ))
    })?;
    let mut out = Vec::new();
    for (key, entry) in config.auths {
        let host = key
            .split_once("://")
            .map_or(key.as_str(), |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let pair = match (entry.auth, entry.username, entry.password) {
            (Some(auth), _, _) if !auth.is_empty() => STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned()))),
            (_, Some(u), Some(p)) => Some((u, p)),
            _ => None,
        };
        if let (false, Some((user, password))) = (host.is_empty(), pair) {
            out.push(Credential {
                host,
                user,
                password,
            });
        }
    }
    Ok(out)
}

/// A token service's answer.
#[derive(Debug)]
pub struct Token {
    pub value: String,
    pub lifetime: Duration,
}

/// Parses `{"token"|"access_token": …, "expires_in": …}`. Tokens without an
/// expiry live 60 seconds, as the Docker token specification says.
pub fn parse_token(body: &[u8], url: &str) -> Result<Token> {
    #[derive(Deserialize)]
    struct Answer {
        token: Option<String>,
        access_token: Option<String>,
        expires_in: Option<u64>,
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|e| {
        Error::protocol(url, format!("the token service's answer is not JSON: {e}"))
    })?;
    let value = answer
        .token
        .filter(|t| !t.is_empty())
        .or(answer.access_token.filter(|t| !t.is_empty()))
        .ok_or_else(|| Error::protocol(url, "the token service's answer has no token"))?;
    Ok(Token {
        value,
        lifetime: Duration::from_secs(answer.expires_in.unwrap_or(60).max(1)),
    })
}

/// A scope string in a canonical form for comparisons and cache keys:
/// registries list actions and scopes in varying order (Docker Distribution
/// answers `pull,push` and `push,pull` for the same request).
pub fn canonical_scope(scope: &str) -> String {
    let mut scopes: Vec<String> = scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|one| match one.rsplit_once(':') {
            Some((resource, actions)) => {
                let mut actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
                actions.sort_unstable();
                actions.dedup();
                format!("{resource}:{}", actions.join(","))
            }
            None => one.to_owned(),
        })
        .collect();
    scopes.sort();
    scopes.dedup();
    scopes.join(" ")
}

/// The union of two scope strings, in canonical form: a push asks for
/// `pull,push` up front even when the first challenge (a `HEAD`) names only
/// `pull`, saving a second token.
pub fn merge_scopes(a: &str, b: &str) -> String {
    let mut by_resource: Vec<(String, Vec<String>)> = Vec::new();
    for one in canonical_scope(&format!("{a} {b}"))
        .split(' ')
        .filter(|s| !s.is_empty())
    {
        let (resource, actions) = one.rsplit_once(':').unwrap_or((one, ""));
        let entry = match by_resource.iter_mut().find(|(r, _)| r == resource) {
            Some(entry) => entry,
            None => {
                by_resource.push((resource.to_owned(), Vec::new()));
                by_resource.last_mut().expect("just pushed")
            }
        };
        entry.1.extend(
            actions
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_owned),
        );
    }
    let joined: Vec<String> = by_resource
        .into_iter()
        .map(|(resource, actions)| format!("{resource}:{}", actions.join(",")))
        .collect();
    canonical_scope(&joined.join(" "))
}

/// Bearer tokens by (realm, service, scope), kept until shortly before they
/// expire and shared by every operation of a client.
#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<TokenKey, (String, Instant)>>,
}

/// (realm, service, scope).
type TokenKey = (String, String, String);

impl TokenCache {
    pub fn get(&self, realm: &str, service: &str, scope: &str) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let (token, until) = tokens.get(&(realm.into(), service.into(), canonical_scope(scope)))?;
        (Instant::now() < *until).then(|| token.clone())
    }

    pub fn put(&self, realm: &str, service: &str, scope: &str, token: &Token) {
        // Renew a little early so a token does not expire in flight.
        let margin = (token.lifetime / 10).min(Duration::from_secs(30));
        let until = Instant::now() + token.lifetime - margin;
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.insert(
            (realm.into(), service.into(), canonical_scope(scope)),
            (token.value.clone(), until),
        );
    }

    pub fn forget(&self, realm: &str, service: &str, scope: &str) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.remove(&(realm.into(), service.into(), canonical_scope(scope)));
    }
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
        let signer = Signer::from_openssh(v["private_key_openssh"].as_str().unwrap()).unwrap();
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
    fn challenge_flow_matches_the_original_client_exactly() {
        let v = vector();
        let signer = Signer::from_openssh(v["private_key_openssh"].as_str().unwrap()).unwrap();
        let case = &v["challenge_cases"][0];
        let challenges = super::super::challenge::parse(case["www_authenticate"].as_str().unwrap());
        let super::super::challenge::Challenge::Bearer {
            realm,
            service,
            scope,
            ..
        } = &challenges[0]
        else {
            panic!("{challenges:?}");
        };
        let scopes: Vec<&str> = scope.as_deref().unwrap().split(' ').collect();
        let url = realm_request_url(
            realm,
            service.as_deref(),
            &scopes,
            Some((
                case["ts"].as_u64().unwrap(),
                case["nonce"].as_str().unwrap(),
            )),
        )
        .unwrap();
        assert_eq!(url.as_str(), case["realm_request_url"].as_str().unwrap());
        assert_eq!(
            format!("GET,{url},{}", zero_sum()),
            case["signed_data"].as_str().unwrap()
        );
        assert_eq!(
            signer.sign_request("GET", url.as_str()),
            case["authorization"].as_str().unwrap()
        );
    }

    #[test]
    fn bad_keys_are_explained() {
        let err = Signer::from_openssh("not a key").unwrap_err();
        assert!(err.to_string().contains("unusable private key"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        assert!(Signer::load(&dir.path().join("absent")).unwrap().is_none());
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
        assert!(realm_may_get_password(
            &u("http://127.0.0.1:5/"),
            &u("http://127.0.0.1:6/token")
        ));
        assert!(realm_may_get_password(
            &u("https://r.example/"),
            &u("https://auth.example/token")
        ));
        assert!(!realm_may_get_password(
            &u("https://r.example/"),
            &u("http://auth.example/token")
        ));
    }

    #[test]
    fn realm_url_keeps_existing_query_and_sorts() {
        let url = realm_request_url(
            "https://a.example/t?z=1&a=b c",
            Some("svc"),
            &["s2", "s1"],
            None,
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "https://a.example/t?a=b+c&scope=s2&scope=s1&service=svc&z=1"
        );
    }

    #[test]
    fn docker_config_auths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"https://Reg.Example:5000/v1/":{{"auth":"{}"}},"other.example":{{"username":"u","password":"p"}},"empty.example":{{}}}},"credsStore":"x"}}"#,
                STANDARD.encode("alice:s3cr:et")
            ),
        )
        .unwrap();
        let mut creds = docker_config_credentials(&path).unwrap();
        creds.sort_by(|a, b| a.host.cmp(&b.host));
        assert_eq!(creds.len(), 2);
        assert_eq!(
            (
                creds[1].host.as_str(),
                creds[1].user.as_str(),
                creds[1].password.as_str()
            ),
            ("reg.example:5000", "alice", "s3cr:et")
        );
        assert_eq!(creds[0].host, "other.example");
        assert!(docker_config_credentials(&dir.path().join("none"))
            .unwrap()
            .is_empty());
        std::fs::write(&path, "{").unwrap();
        assert!(docker_config_credentials(&path).is_err());
    }

    #[test]
    fn scopes_compare_as_sets() {
        assert_eq!(
            canonical_scope("repository:a/b:push,pull repository:c/d:pull"),
            canonical_scope("repository:c/d:pull repository:a/b:pull,push")
        );
        assert_ne!(
            canonical_scope("repository:a/b:pull"),
            canonical_scope("repository:a/b:pull,push")
        );
        assert_eq!(canonical_scope("registry:catalog:*"), "registry:catalog:*");
        let cache = TokenCache::default();
        cache.put(
            "r",
            "s",
            "repository:x:push,pull",
            &Token {
                value: "t".into(),
                lifetime: Duration::from_secs(60),
            },
        );
        assert_eq!(
            cache.get("r", "s", "repository:x:pull,push").as_deref(),
            Some("t")
        );
    }

    #[test]
    fn scopes_merge_per_resource() {
        assert_eq!(
            merge_scopes("repository:a/b:pull", "repository:a/b:pull,push"),
            "repository:a/b:pull,push"
        );
        assert_eq!(
            merge_scopes(
                "repository:d:pull,push repository:s:pull",
                "repository:d:pull,push"
            ),
            "repository:d:pull,push repository:s:pull"
        );
    }

    #[test]
    fn token_answers() {
        let t = parse_token(br#"{"token":"abc","expires_in":300}"#, "u").unwrap();
        assert_eq!(
            (t.value.as_str(), t.lifetime),
            ("abc", Duration::from_secs(300))
        );
        assert_eq!(
            parse_token(br#"{"access_token":"x"}"#, "u")
                .unwrap()
                .lifetime,
            Duration::from_secs(60)
        );
        assert!(parse_token(br#"{"token":""}"#, "u").is_err());
        assert!(parse_token(b"<html>", "u").is_err());
        let cache = TokenCache::default();
        cache.put("r", "s", "scope", &t);
        assert_eq!(cache.get("r", "s", "scope").as_deref(), Some("abc"));
        assert!(cache.get("r", "s", "other").is_none());
        cache.forget("r", "s", "scope");
        assert!(cache.get("r", "s", "scope").is_none());
    }
}
