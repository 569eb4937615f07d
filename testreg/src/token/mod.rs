//! A Docker token server (the `realm` of a `Bearer` challenge) for Docker
//! Distribution's `auth.token` mode.
//!
//! `GET /token?service=..&scope=..` authenticates the caller with
//! `Authorization: Basic` against configured users, grants the requested
//! scopes as far as the user's [`Grant`]s allow, and answers
//! `{"token","access_token","expires_in","issued_at"}` with an ES256 JWT the
//! registry verifies against [`TokenServer::cert_pem`] (its
//! `rootcertbundle`). `POST /token` is the OAuth2 form of the same
//! (`grant_type=refresh_token` with a user's identity token, or
//! `grant_type=password`), as Docker clients use it with identity tokens. Every request is recorded so tests can assert where
//! credentials went. It runs on its own thread and runtime so sync and async
//! tests alike can use it; dropping it stops it.

pub mod jwt;
pub mod scope;

pub use jwt::{Claims, KeyHint, ResourceActions};
pub use scope::{Grant, Scope};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use jwt::SigningKey;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// Distribution 2.8 accepts a token up to this long after its `exp` (and
/// before its `nbf`), for clock skew.
pub const REGISTRY_LEEWAY_SECS: u64 = 60;

/// The `realm` challenge the token server itself answers bad credentials with.
const BASIC_CHALLENGE: &str = "Basic realm=\"olreg-testreg token server\"";

/// A user of the token server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenUser {
    pub name: String,
    pub password: String,
    /// What the user may be granted; requested actions outside these are
    /// silently left out of the token (the registry then answers
    /// `insufficient_scope`).
    pub grants: Vec<Grant>,
    /// The refresh token (Docker's "identity token") that stands for the
    /// user in `POST /token`; the server makes one when it is `None`.
    pub identity_token: Option<String>,
}

impl TokenUser {
    /// A user with the given grants.
    pub fn new(name: &str, password: &str, grants: Vec<Grant>) -> TokenUser {
        TokenUser {
            name: name.to_string(),
            password: password.to_string(),
            grants,
            identity_token: None,
        }
    }
}

/// How requests without credentials are answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnonymousAccess {
    /// `401` with a `Basic` challenge, as a private-only token server does.
    Reject,
    /// A token with these grants (an empty list gives a token granting
    /// nothing, as Docker Hub does for a private repository).
    Grant(Vec<Grant>),
}

/// Settings of a [`TokenServer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenServerConfig {
    /// The `service` the registry names in its challenge and expects as `aud`.
    pub service: String,
    /// The `iss` claim; the registry's `auth.token.issuer` must match.
    pub issuer: String,
    pub users: Vec<TokenUser>,
    pub anonymous: AnonymousAccess,
    /// `expires_in` of issued tokens.
    pub ttl_secs: u64,
    /// Header field naming the signing key.
    pub key_hint: KeyHint,
    /// Write `exp` as `iat + ttl - REGISTRY_LEEWAY_SECS`, so the registry
    /// itself starts refusing the token exactly when `expires_in` says it
    /// expires; without it the registry accepts it a minute longer, which
    /// makes token refresh untestable with short TTLs.
    pub exact_expiry: bool,
}

impl Default for TokenServerConfig {
    fn default() -> Self {
        TokenServerConfig {
            service: "olreg-distribution".to_string(),
            issuer: "olreg-testreg-token-server".to_string(),
            users: Vec::new(),
            anonymous: AnonymousAccess::Grant(Vec::new()),
            ttl_secs: 300,
            key_hint: KeyHint::KeyId,
            exact_expiry: true,
        }
    }
}

/// One request the token server received, as it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    pub method: String,
    /// Path and query, e.g. `/token?scope=...&service=...`.
    pub path_and_query: String,
    /// All headers, names lowercase, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body (the form of a `POST`), as text.
    pub body: String,
}

impl TokenRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All values of query parameter `name`, decoded.
    pub fn query(&self, name: &str) -> Vec<String> {
        let query = self.path_and_query.split_once('?').map_or("", |(_, q)| q);
        form_values(query, name)
    }

    /// All values of form field `name` in the body of a `POST`, decoded.
    pub fn form(&self, name: &str) -> Vec<String> {
        form_values(&self.body, name)
    }

    /// Query parameters for a `GET`, form fields for a `POST`.
    fn param(&self, name: &str) -> Vec<String> {
        if self.method == "POST" {
            self.form(name)
        } else {
            self.query(name)
        }
    }
}

fn form_values(encoded: &str, name: &str) -> Vec<String> {
    url::form_urlencoded::parse(encoded.as_bytes())
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect()
}

struct State {
    config: TokenServerConfig,
    requests: Vec<TokenRequest>,
}

struct Shared {
    key: SigningKey,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State inconsistent
        // (every update is a single push or assignment).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running token server on `127.0.0.1`.
pub struct TokenServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenServer {
    /// Generates a signing key and starts serving on an ephemeral port.
    pub fn start(mut config: TokenServerConfig) -> io::Result<TokenServer> {
        let key = SigningKey::generate()?;
        for user in &mut config.users {
            user.identity_token.get_or_insert_with(|| key.random_id());
        }
        let shared = Arc::new(Shared {
            key,
            state: Mutex::new(State {
                config,
                requests: Vec::new(),
            }),
        });
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let serve_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("olreg-token-server".to_string())
            .spawn(move || runtime.block_on(serve(listener, serve_shared, rx)))?;
        Ok(TokenServer {
            addr,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token endpoint, `http://127.0.0.1:PORT/token`: the `realm`.
    pub fn realm(&self) -> String {
        format!("{}/token", self.url())
    }

    /// The configured `service`.
    pub fn service(&self) -> String {
        self.shared.state().config.service.clone()
    }

    /// The configured `issuer`.
    pub fn issuer(&self) -> String {
        self.shared.state().config.issuer.clone()
    }

    /// The signing certificate (PEM): the registry's `rootcertbundle`.
    pub fn cert_pem(&self) -> &str {
        self.shared.key.cert_pem()
    }

    /// The libtrust key ID of the signing key (the JWT `kid`).
    pub fn key_id(&self) -> &str {
        self.shared.key.key_id()
    }

    /// Writes [`cert_pem`](Self::cert_pem) to `path`.
    pub fn write_root_cert_bundle(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, self.cert_pem())
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.shared.state().requests.clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.state().requests.clear();
    }

    /// The identity token of user `name`, if there is such a user.
    pub fn identity_token(&self, name: &str) -> Option<String> {
        let state = self.shared.state();
        let user = state.config.users.iter().find(|u| u.name == name)?;
        user.identity_token.clone()
    }

    /// Adds a user (or replaces the one with the same name).
    pub fn add_user(&self, mut user: TokenUser) {
        user.identity_token
            .get_or_insert_with(|| self.shared.key.random_id());
        let mut state = self.shared.state();
        state.config.users.retain(|u| u.name != user.name);
        state.config.users.push(user);
    }

    /// Changes the lifetime of tokens issued from now on.
    pub fn set_ttl_secs(&self, ttl_secs: u64) {
        self.shared.state().config.ttl_secs = ttl_secs;
    }

    /// Changes how requests without credentials are answered.
    pub fn set_anonymous(&self, anonymous: AnonymousAccess) {
        self.shared.state().config.anonymous = anonymous;
    }

    /// Signs arbitrary claims with the server's key, for tests that need a
    /// token the server would never issue (expired, wrong audience, ...).
    pub fn sign(&self, claims: &Claims) -> io::Result<String> {
        let hint = self.shared.state().config.key_hint;
        self.shared.key.sign(claims, hint)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections until `shutdown` fires; dropping the runtime after
/// this returns cancels the connections still open.
async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("olreg-testreg token server: cannot listen: {e}");
            return;
        }
    };
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let shared = shared.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    // A form is small; a body that cannot be read is empty.
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let request = Request::from_parts(parts, body);
                    Ok::<_, Infallible>(handle(&shared, &request))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Records the request, then answers it.
fn handle(shared: &Shared, req: &Request<Bytes>) -> Response<Full<Bytes>> {
    let recorded = TokenRequest {
        method: req.method().to_string(),
        path_and_query: req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path().to_string(), |p| p.to_string()),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(req.body()).into_owned(),
    };
    let mut state = shared.state();
    state.requests.push(recorded.clone());
    let config = state.config.clone();
    drop(state);
    answer(&shared.key, &config, &recorded)
}

fn answer(
    key: &SigningKey,
    config: &TokenServerConfig,
    req: &TokenRequest,
) -> Response<Full<Bytes>> {
    let path = req.path_and_query.split('?').next().unwrap_or_default();
    if path != "/token" {
        return json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"details": "not found"}),
        );
    }
    if req.method != "GET" && req.method != "POST" {
        return json(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({"details": "only GET and POST are supported"}),
        );
    }
    if req.param("service").iter().any(|s| *s != config.service) {
        return json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({"details": "unknown service"}),
        );
    }
    let user = |name: &str, password: &str| {
        config
            .users
            .iter()
            .find(|x| x.name == name && x.password == password)
    };
    let (subject, grants) = if req.method == "POST" {
        let field = |name: &str| req.form(name).into_iter().next().unwrap_or_default();
        let found = match field("grant_type").as_str() {
            "refresh_token" => {
                let token = field("refresh_token");
                config
                    .users
                    .iter()
                    .find(|u| !token.is_empty() && u.identity_token.as_deref() == Some(&token))
            }
            "password" => user(&field("username"), &field("password")),
            _ => {
                return json(
                    StatusCode::BAD_REQUEST,
                    &serde_json::json!({"error": "unsupported_grant_type"}),
                )
            }
        };
        match found {
            Some(user) => (user.name.clone(), user.grants.clone()),
            None => return unauthorized("invalid grant"),
        }
    } else {
        match req.header("authorization") {
            Some(value) => match basic_credentials(value).and_then(|(u, p)| user(&u, &p)) {
                Some(user) => (user.name.clone(), user.grants.clone()),
                None => return unauthorized("incorrect username or password"),
            },
            None => match &config.anonymous {
                AnonymousAccess::Reject => return unauthorized("authentication required"),
                AnonymousAccess::Grant(grants) => (String::new(), grants.clone()),
            },
        }
    };
    let scopes = req.param("scope");
    let requested = Scope::parse_all(scopes.iter().map(String::as_str));
    let iat = now_unix();
    let ttl = i64::try_from(config.ttl_secs).unwrap_or(i64::MAX / 2);
    let leeway = if config.exact_expiry {
        REGISTRY_LEEWAY_SECS as i64
    } else {
        0
    };
    let claims = Claims {
        iss: config.issuer.clone(),
        sub: subject,
        aud: config.service.clone(),
        exp: iat + ttl - leeway,
        nbf: iat,
        iat,
        jti: key.random_id(),
        access: scope::authorize(&grants, &requested),
    };
    match key.sign(&claims, config.key_hint) {
        Ok(token) => json(
            StatusCode::OK,
            &serde_json::json!({
                "token": token,
                "access_token": token,
                "expires_in": config.ttl_secs,
                "issued_at": rfc3339_utc(iat),
            }),
        ),
        Err(e) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({"details": e.to_string()}),
        ),
    }
}

/// `(user, password)` from an `Authorization: Basic ...` value.
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn unauthorized(details: &str) -> Response<Full<Bytes>> {
    let mut response = json(
        StatusCode::UNAUTHORIZED,
        &serde_json::json!({"details": details}),
    );
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static(BASIC_CHALLENGE));
    response
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time (the `issued_at` field).
fn rfc3339_utc(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn basic_credentials_parse() {
        let v = format!("Basic {}", STANDARD.encode("u:p:q"));
        assert_eq!(basic_credentials(&v), Some(("u".into(), "p:q".into())));
        assert_eq!(basic_credentials("Bearer x"), None);
    }
}
