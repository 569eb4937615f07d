//! Answering a registry's `401` (docs/design.md §5): what a session sends in
//! `Authorization`, `Basic` and `Bearer` challenges, the request to a
//! bearer token's realm (with a password or the Ed25519 signature, where
//! the realm may receive them), and the token cache shared by a client's
//! operations.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, Url};
use serde::Deserialize;

use super::challenge::{self, Challenge};
use super::credentials::{host_key, realm_may_get_password, Credential, Secret};
use super::redact::{redact, redact_text};
use super::session::{Access, Body, Req, Session};
use super::signer::realm_may_get_signature;
use crate::context::blocking;
use crate::error::{Error, ErrorKind, Result};
use crate::progress::LogLevel;

/// The credentials a session currently uses with its registry's origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum AuthState {
    /// Nothing negotiated yet: the signed per-request token when a key is
    /// configured and the registry takes it unasked, else nothing.
    Initial,
    Basic(String),
    Bearer {
        realm: String,
        service: String,
        scope: String,
        token: String,
    },
}

/// A session's negotiated credentials.
pub(super) struct Negotiation {
    state: Mutex<AuthState>,
    /// The registry's user credential, looked up once (a helper runs at
    /// most once per session).
    credential: tokio::sync::OnceCell<Option<Credential>>,
    /// Serialises answering challenges, so parallel requests that meet the
    /// same 401 fetch one token between them.
    turn: tokio::sync::Mutex<()>,
}

impl Default for Negotiation {
    fn default() -> Negotiation {
        Negotiation {
            state: Mutex::new(AuthState::Initial),
            credential: tokio::sync::OnceCell::new(),
            turn: tokio::sync::Mutex::new(()),
        }
    }
}

impl Negotiation {
    pub(super) fn state(&self) -> AuthState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, state: AuthState) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }
}

impl Session {
    /// The `Authorization` value for the registry's origin in `state`.
    pub(super) fn authorization(&self, state: &AuthState) -> Option<String> {
        match state {
            AuthState::Initial => self
                .transport()
                .signer
                .as_ref()
                .filter(|_| self.transport().signed_hosts.allows(self.base()))
                .map(|s| s.legacy_token(unix_now())),
            AuthState::Basic(h) => Some(h.clone()),
            AuthState::Bearer { token, .. } => Some(format!("Bearer {token}")),
        }
    }

    /// The user credential for the registry: stored, or from the Docker
    /// credential helper configured for it.
    async fn credential(&self) -> Result<Option<Credential>> {
        let found = self.negotiation().credential.get_or_try_init(|| async {
            let host = host_key(self.base());
            if let Some(helper) = self.transport().credentials.helper_for(&host) {
                self.log(LogLevel::Debug, || {
                    format!("asking docker-credential-{helper} for {host}'s credentials")
                });
            }
            let transport = self.transport().clone();
            self.cancellable(blocking(move || transport.credentials.lookup(&host)))
                .await
        });
        Ok(found.await?.clone())
    }

    fn default_scope(&self) -> String {
        match self.access() {
            Access::Pull => format!("repository:{}:pull", self.repo()),
            Access::Push => format!("repository:{}:pull,push", self.repo()),
        }
    }

    /// Answers a 401's challenges. `Ok(true)`: credentials changed, send
    /// again. `Ok(false)`: nothing more to try (the 401 stands).
    pub(super) async fn authenticate(
        &self,
        headers: &HeaderMap,
        sent: &AuthState,
        fresh_fetched: &mut bool,
    ) -> Result<bool> {
        let challenges: Vec<Challenge> = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(challenge::parse)
            .collect();
        let negotiation = self.negotiation();
        let _turn = negotiation.turn.lock().await;
        let current = negotiation.state();
        if current != *sent {
            // Another request of this operation negotiated meanwhile.
            return Ok(true);
        }
        for c in &challenges {
            if let Challenge::Bearer {
                realm,
                service,
                scope,
                ..
            } = c
            {
                let service = service.clone().unwrap_or_default();
                let scope = match scope {
                    Some(asked) => merge_scopes(asked, &self.default_scope()),
                    None => self.default_scope(),
                };
                // A token for exactly this scope was just refused (an
                // `insufficient_scope` answer names a different scope): drop
                // it and fetch a fresh one, once per request.
                let refused = matches!(&current, AuthState::Bearer { realm: r, service: s, scope: sc, .. }
                    if r == realm && *s == service && *sc == scope);
                let tokens = &self.transport().tokens;
                let key = TokenKey::new(self.base(), realm, &service, &scope);
                if refused {
                    tokens.forget(&key);
                    if *fresh_fetched {
                        return Ok(false);
                    }
                }
                let (token, fresh) = match tokens.get(&key) {
                    Some(token) => (token, false),
                    None => (self.fetch_token(&key).await?, true),
                };
                *fresh_fetched |= fresh;
                negotiation.set(AuthState::Bearer {
                    realm: realm.clone(),
                    service,
                    scope,
                    token,
                });
                return Ok(true);
            }
        }
        if challenges.contains(&Challenge::Basic) {
            let host = host_key(self.base());
            let refused = |why: String| {
                Err(Error::new(ErrorKind::Registry {
                    status: 401,
                    code: Some("UNAUTHORIZED".into()),
                    message: format!("{host} asks for a user name and password and {why}"),
                    url: self.base().to_string(),
                    retry_after: None,
                }))
            };
            let Some(cred) = self.credential().await? else {
                return refused(
                    "none is configured for it (give them in the client options or in a Docker \
                     config.json, $DOCKER_CONFIG/config.json or ~/.docker/config.json: auths, \
                     credHelpers or credsStore)"
                        .into(),
                );
            };
            let Some(header) = cred.basic_header() else {
                return refused(
                    "its credential helper holds an identity token, which only a token service \
                     takes"
                        .into(),
                );
            };
            if current == AuthState::Basic(header.clone()) {
                return Ok(false);
            }
            negotiation.set(AuthState::Basic(header));
            return Ok(true);
        }
        Ok(false)
    }

    /// Fetches a bearer token for `key` with the registry's password
    /// (Basic) or the Ed25519 signature, whichever the realm may receive, or
    /// anonymously, and caches it.
    async fn fetch_token(&self, key: &TokenKey) -> Result<String> {
        let (realm, service, scope) = (key.realm.as_str(), key.service.as_str(), &key.scope);
        let realm_url = Url::parse(realm).map_err(|e| {
            Error::protocol(
                &redact_text(realm),
                format!("the token realm is not a URL: {e}"),
            )
        })?;
        let scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
        let service_opt = (!service.is_empty()).then_some(service);
        let anonymous = || -> Result<Req> {
            Ok(Req::new(
                Method::GET,
                realm_request_url(realm, service_opt, &scopes, None)?,
            ))
        };
        let req = match (self.credential().await?, &self.transport().signer) {
            (Some(cred), _) if realm_may_get_password(self.base(), &realm_url) => {
                match &cred.secret {
                    Secret::Password { .. } => {
                        anonymous()?.header(AUTHORIZATION, cred.basic_header().unwrap_or_default())
                    }
                    // OAuth2's refresh-token grant, as Docker sends it.
                    Secret::IdentityToken(token) => {
                        let form = [
                            ("client_id", "olreg"),
                            ("grant_type", "refresh_token"),
                            ("refresh_token", token),
                            ("scope", &scopes.join(" ")),
                            ("service", service),
                        ]
                        .iter()
                        .map(|(k, v)| format!("{k}={}", go_query_escape(v)))
                        .collect::<Vec<_>>()
                        .join("&");
                        Req::new(Method::POST, realm_url.clone())
                            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                            .body(Body::Bytes(form.into()))
                    }
                }
            }
            (_, Some(signer)) if realm_may_get_signature(self.base(), &realm_url) => {
                let nonce = new_nonce();
                let url =
                    realm_request_url(realm, service_opt, &scopes, Some((unix_now(), &nonce)))?;
                let header = signer.sign_request("GET", url.as_str());
                Req::new(Method::GET, url).header(AUTHORIZATION, header)
            }
            _ => anonymous()?,
        }
        .without_registry_auth();
        let url = req.url.clone();
        self.log(LogLevel::Debug, || {
            format!(
                "token request for {scope:?}: {} {}",
                req.method,
                redact(&url)
            )
        });
        // Boxed: sending is what led here (a 401), and async recursion
        // needs a known size. `without_registry_auth` ends it after one level.
        let body = Box::pin(self.fetch_small(&req)).await?.body;
        let token = parse_token(&body, &redact(&url))?;
        self.transport().tokens.put(key.clone(), &token);
        Ok(token.value)
    }
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Escapes like Go's `url.QueryEscape`, which the original client's query
/// encoding (and so its signatures) relies on.
fn go_query_escape(s: &str) -> String {
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
fn realm_request_url(
    realm: &str,
    service: Option<&str>,
    scopes: &[&str],
    signed: Option<(u64, &str)>,
) -> Result<Url> {
    let shown = || redact_text(realm);
    let mut url = Url::parse(realm)
        .map_err(|e| Error::protocol(&shown(), format!("the token realm is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::protocol(
            &shown(),
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
fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::getrandom(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token service's answer.
#[derive(Debug)]
struct Token {
    value: String,
    lifetime: Duration,
}

/// Parses `{"token"|"access_token": …, "expires_in": …}`. Tokens without an
/// expiry live 60 seconds, as the Docker token specification says.
fn parse_token(body: &[u8], url: &str) -> Result<Token> {
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
fn canonical_scope(scope: &str) -> String {
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
fn merge_scopes(a: &str, b: &str) -> String {
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

/// Bearer tokens, kept until shortly before they expire and shared by
/// every operation of a client. A token is only ever sent to the registry
/// it was fetched for: another registry naming the same realm, service and
/// scope gets its own.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    tokens: Mutex<HashMap<TokenKey, (String, Instant)>>,
}

/// What a token is for: the registry's origin and the challenge's realm,
/// service and scope (canonical).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TokenKey {
    /// `scheme://host:port` of the registry that asked.
    origin: String,
    realm: String,
    service: String,
    scope: String,
}

impl TokenKey {
    fn new(registry: &Url, realm: &str, service: &str, scope: &str) -> TokenKey {
        TokenKey {
            origin: format!(
                "{}://{}:{}",
                registry.scheme(),
                registry.host_str().unwrap_or_default().to_ascii_lowercase(),
                registry.port_or_known_default().unwrap_or(0)
            ),
            realm: realm.to_owned(),
            service: service.to_owned(),
            scope: canonical_scope(scope),
        }
    }
}

impl TokenCache {
    fn get(&self, key: &TokenKey) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let (token, until) = tokens.get(key)?;
        (Instant::now() < *until).then(|| token.clone())
    }

    fn put(&self, key: TokenKey, token: &Token) {
        // Renew a little early so a token does not expire in flight.
        let margin = (token.lifetime / 10).min(Duration::from_secs(30));
        let until = Instant::now() + token.lifetime - margin;
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.insert(key, (token.value.clone(), until));
    }

    fn forget(&self, key: &TokenKey) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::super::signer::{zero_sum, Signer};
    use super::*;

    #[test]
    fn challenge_flow_matches_the_original_client_exactly() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/auth-vector.json")).unwrap();
        let signer = Signer::parse(v["private_key_openssh"].as_str().unwrap()).unwrap();
        let case = &v["challenge_cases"][0];
        let challenges = challenge::parse(case["www_authenticate"].as_str().unwrap());
        let Challenge::Bearer {
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
        let registry = Url::parse("https://r.example/").unwrap();
        let cache = TokenCache::default();
        cache.put(
            TokenKey::new(&registry, "r", "s", "repository:x:push,pull"),
            &Token {
                value: "t".into(),
                lifetime: Duration::from_secs(60),
            },
        );
        assert_eq!(
            cache
                .get(&TokenKey::new(
                    &registry,
                    "r",
                    "s",
                    "repository:x:pull,push"
                ))
                .as_deref(),
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
        let registry = Url::parse("https://r.example/").unwrap();
        let key = |registry: &Url, scope| TokenKey::new(registry, "r", "s", scope);
        cache.put(key(&registry, "scope"), &t);
        assert_eq!(cache.get(&key(&registry, "scope")).as_deref(), Some("abc"));
        assert!(cache.get(&key(&registry, "other")).is_none());
        for other in [
            "https://r.example:444/",
            "http://r.example/",
            "https://q.example/",
        ] {
            let other = Url::parse(other).unwrap();
            assert!(cache.get(&key(&other, "scope")).is_none(), "{other}");
        }
        assert!(cache
            .get(&key(
                &Url::parse("https://R.example:443/x").unwrap(),
                "scope"
            ))
            .is_some());
        cache.forget(&key(&registry, "scope"));
        assert!(cache.get(&key(&registry, "scope")).is_none());
    }
}
