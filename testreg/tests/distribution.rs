//! Docker Distribution 2.8 as a peer: the behaviour `docs/docker-distribution-notes.md`
//! describes, pinned with a plain HTTP client in every auth mode.
//!
//! These tests need the `docker-registry` binary (`apt-get install
//! docker-registry`, or `OLREG_DOCKER_REGISTRY`); without it they fail, on
//! purpose, rather than pass without testing anything.

use olreg_testreg::distribution::{Distribution, DistributionAuth, DistributionOptions};
use olreg_testreg::token::{AnonymousAccess, Grant, KeyHint, TokenUser};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RANGE};
use reqwest::{Method, Response, StatusCode};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};

const DOCKER_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_V1: &str = "application/vnd.oci.image.manifest.v1+json";
const OCTETS: &str = "application/octet-stream";

fn start(auth: DistributionAuth) -> Distribution {
    start_with(DistributionOptions {
        auth,
        ..DistributionOptions::default()
    })
}

fn start_with(options: DistributionOptions) -> Distribution {
    if let Err(e) = Distribution::binary() {
        panic!("these tests need Docker Distribution 2.8: {e}");
    }
    Distribution::start_with(options).unwrap_or_else(|e| panic!("cannot start Distribution: {e}"))
}

fn digest(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// An Ollama-style model: a config blob, one layer, and the manifest bytes.
struct Model {
    config: Vec<u8>,
    layer: Vec<u8>,
    manifest: Vec<u8>,
}

impl Model {
    fn new(seed: &str) -> Model {
        let config = format!(r#"{{"model_format":"gguf","model_family":"{seed}"}}"#).into_bytes();
        let layer: Vec<u8> = (0..100_000u32)
            .map(|i| (i * 7 + seed.len() as u32) as u8)
            .collect();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_V2,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "digest": digest(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.ollama.image.model",
                        "digest": digest(&layer), "size": layer.len()}],
        }))
        .unwrap();
        Model {
            config,
            layer,
            manifest,
        }
    }
}

/// A client that answers `Basic` and `Bearer` challenges the way a registry
/// client must: on 401, fetch a token for the challenge's scope (sending the
/// password only to the realm) and retry once.
struct Client {
    http: reqwest::Client,
    base: String,
    credentials: Option<(String, String)>,
    /// The `Authorization` value that last worked, reused until a 401.
    authorization: Option<String>,
}

impl Client {
    fn new(registry: &Distribution) -> Client {
        Client {
            http: http_client()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: registry.url(),
            credentials: registry
                .user()
                .map(|u| (u.to_string(), registry.password().unwrap().to_string())),
            authorization: None,
        }
    }

    fn with_user(mut self, user: &str, password: &str) -> Client {
        self.credentials = Some((user.to_string(), password.to_string()));
        self
    }

    fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.base)
        }
    }

    /// One request, with no auth handling.
    async fn raw(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Response {
        let mut req = self.http.request(method, self.url(url));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(a) = &self.authorization {
            req = req.header(AUTHORIZATION, a);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        req.send().await.unwrap()
    }

    /// A request that answers one auth challenge.
    async fn send(
        &mut self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Response {
        let first = self.raw(method.clone(), url, headers, body.clone()).await;
        if first.status() != StatusCode::UNAUTHORIZED || self.credentials.is_none() {
            return first;
        }
        let challenge = header(first.headers(), "www-authenticate");
        self.authorization = Some(self.answer(&challenge).await);
        self.raw(method, url, headers, body).await
    }

    async fn answer(&self, challenge: &str) -> String {
        let (user, password) = self.credentials.clone().unwrap();
        let (scheme, params) = parse_challenge(challenge);
        if scheme.eq_ignore_ascii_case("basic") {
            return basic(&user, &password);
        }
        assert_eq!(scheme, "Bearer", "{challenge}");
        let mut query = vec![("service", params["service"].as_str())];
        if let Some(scope) = params.get("scope") {
            query.push(("scope", scope.as_str()));
        }
        let response = self
            .http
            .get(with_query(&params["realm"], &query))
            .header(AUTHORIZATION, basic(&user, &password))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "token request for {challenge}"
        );
        let body: serde_json::Value =
            serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(body["token"], body["access_token"]);
        assert!(body["expires_in"].as_u64().unwrap() > 0);
        assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));
        format!("Bearer {}", body["token"].as_str().unwrap())
    }

    /// POST an upload session, then PUT the whole blob with `digest`.
    async fn push_blob(&mut self, repo: &str, data: &[u8]) {
        let post = self
            .send(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/"),
                &[],
                None,
            )
            .await;
        assert_eq!(post.status(), StatusCode::ACCEPTED);
        let location = header(post.headers(), "location");
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = self
            .send(
                Method::PUT,
                &format!("{location}{sep}digest={}", digest(data)),
                &[(CONTENT_TYPE.as_str(), OCTETS)],
                Some(data.to_vec()),
            )
            .await;
        assert_eq!(
            put.status(),
            StatusCode::CREATED,
            "{}",
            put.text().await.unwrap()
        );
    }

    async fn push_model(&mut self, repo: &str, tag: &str, model: &Model) -> Response {
        self.push_blob(repo, &model.config).await;
        self.push_blob(repo, &model.layer).await;
        self.send(
            Method::PUT,
            &format!("/v2/{repo}/manifests/{tag}"),
            &[(CONTENT_TYPE.as_str(), DOCKER_V2)],
            Some(model.manifest.clone()),
        )
        .await
    }

    async fn get_manifest(&mut self, repo: &str, reference: &str) -> Response {
        let accept = format!("{DOCKER_V2}, {OCI_V1}");
        self.send(
            Method::GET,
            &format!("/v2/{repo}/manifests/{reference}"),
            &[(ACCEPT.as_str(), &accept)],
            None,
        )
        .await
    }
}

/// `base?k=v&...`, form-encoded like Go's `url.Values`.
fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{base}?{query}")
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// `Bearer realm="..",service="..",scope=".."` → ("Bearer", {realm, service, scope}).
fn parse_challenge(value: &str) -> (String, HashMap<String, String>) {
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let after = after.strip_prefix('"').unwrap();
        let end = after.find('"').unwrap();
        params.insert(key.trim().to_string(), after[..end].to_string());
        rest = after[end + 1..].trim_start_matches(',').trim();
    }
    (scheme.to_string(), params)
}

/// A scope with its actions sorted: Distribution lists actions (and the
/// scopes of a mount) in Go map order, which varies from answer to answer.
fn normalize_scope(scope: &str) -> String {
    let (resource, actions) = scope.rsplit_once(':').unwrap();
    let actions: BTreeSet<&str> = actions.split(',').collect();
    format!(
        "{resource}:{}",
        actions.into_iter().collect::<Vec<_>>().join(",")
    )
}

fn scope_set(scopes: &[&str]) -> BTreeSet<String> {
    scopes.iter().map(|s| normalize_scope(s)).collect()
}

/// The scopes a 401's Bearer challenge asks for, normalized.
fn challenge_scopes(response: &Response) -> BTreeSet<String> {
    let (_, params) = parse_challenge(&header(response.headers(), "www-authenticate"));
    params["scope"]
        .split_whitespace()
        .map(normalize_scope)
        .collect()
}

/// The `error` parameter of a 401's Bearer challenge.
fn challenge_error(response: &Response) -> String {
    let (_, params) = parse_challenge(&header(response.headers(), "www-authenticate"));
    params.get("error").cloned().unwrap_or_default()
}

async fn error_code(response: Response) -> (StatusCode, String, serde_json::Value) {
    let status = response.status();
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let first = &body["errors"][0];
    (
        status,
        first["code"].as_str().unwrap().to_string(),
        first["detail"].clone(),
    )
}

#[tokio::test]
async fn no_auth_push_pull_range_and_mount() {
    let registry = start(DistributionAuth::None);
    let mut c = Client::new(&registry);
    let model = Model::new("plain");

    let put = c.push_model("library/m", "latest", &model).await;
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(
        header(put.headers(), "docker-content-digest"),
        digest(&model.manifest)
    );
    assert_eq!(
        header(put.headers(), "location"),
        format!(
            "{}/v2/library/m/manifests/{}",
            registry.url(),
            digest(&model.manifest)
        )
    );

    let got = c.get_manifest("library/m", "latest").await;
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(header(got.headers(), "content-type"), DOCKER_V2);
    assert_eq!(
        header(got.headers(), "docker-content-digest"),
        digest(&model.manifest)
    );
    assert_eq!(got.bytes().await.unwrap(), model.manifest);

    // Without an Accept header a tag GET is answered 400 (Distribution tries
    // to downconvert to schema 1 and fails on an Ollama config)...
    let bare = c
        .raw(Method::GET, "/v2/library/m/manifests/latest", &[], None)
        .await;
    let (status, code, _) = error_code(bare).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "MANIFEST_INVALID")
    );
    // ...while a digest GET comes back as stored.
    let by_digest = c
        .raw(
            Method::GET,
            &format!("/v2/library/m/manifests/{}", digest(&model.manifest)),
            &[],
            None,
        )
        .await;
    assert_eq!(by_digest.status(), StatusCode::OK);
    assert_eq!(by_digest.bytes().await.unwrap(), model.manifest);

    let blob = format!("/v2/library/m/blobs/{}", digest(&model.layer));
    let head = c.raw(Method::HEAD, &blob, &[], None).await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        header(head.headers(), "content-length"),
        model.layer.len().to_string()
    );
    assert_eq!(
        header(head.headers(), "docker-content-digest"),
        digest(&model.layer)
    );
    assert_eq!(header(head.headers(), "accept-ranges"), "bytes");

    let ranged = c
        .raw(
            Method::GET,
            &blob,
            &[(RANGE.as_str(), "bytes=1000-1999")],
            None,
        )
        .await;
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(ranged.headers(), "content-range"),
        format!("bytes 1000-1999/{}", model.layer.len())
    );
    assert_eq!(ranged.bytes().await.unwrap(), model.layer[1000..2000]);

    // A range ending past the end is clipped; one starting past it is a 416
    // whose Content-Length promises the whole blob but whose body is empty.
    let clipped = c
        .raw(
            Method::GET,
            &blob,
            &[(RANGE.as_str(), "bytes=99990-200000")],
            None,
        )
        .await;
    assert_eq!(clipped.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(clipped.bytes().await.unwrap(), model.layer[99_990..]);
    let past = c
        .raw(
            Method::GET,
            &blob,
            &[(RANGE.as_str(), "bytes=100000-100010")],
            None,
        )
        .await;
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(past.headers(), "content-range"), "bytes */100000");
    assert!(past.bytes().await.is_err(), "the 416 body should break off");

    let missing = c
        .raw(
            Method::GET,
            &format!("/v2/library/m/blobs/{}", digest(b"nope")),
            &[],
            None,
        )
        .await;
    let (status, code, detail) = error_code(missing).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "BLOB_UNKNOWN")
    );
    assert_eq!(detail, serde_json::json!(digest(b"nope")));
    let head_missing = c
        .raw(
            Method::HEAD,
            &format!("/v2/library/m/blobs/{}", digest(b"nope")),
            &[],
            None,
        )
        .await;
    assert_eq!(head_missing.status(), StatusCode::NOT_FOUND);

    let unknown_tag = c.get_manifest("library/m", "nope").await;
    let (status, code, detail) = error_code(unknown_tag).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN")
    );
    assert_eq!(detail, serde_json::json!({"Tag": "nope"}));

    // Cross-repository mount: 201 with the blob's new Location, or a plain
    // 202 upload session when the source does not have the blob.
    let mount = c
        .raw(
            Method::POST,
            &format!(
                "/v2/other/m/blobs/uploads/?mount={}&from=library/m",
                digest(&model.layer)
            ),
            &[],
            None,
        )
        .await;
    assert_eq!(mount.status(), StatusCode::CREATED);
    assert_eq!(
        header(mount.headers(), "docker-content-digest"),
        digest(&model.layer)
    );
    assert_eq!(
        header(mount.headers(), "location"),
        format!(
            "{}/v2/other/m/blobs/{}",
            registry.url(),
            digest(&model.layer)
        )
    );
    let mounted = c
        .raw(
            Method::HEAD,
            &format!("/v2/other/m/blobs/{}", digest(&model.layer)),
            &[],
            None,
        )
        .await;
    assert_eq!(mounted.status(), StatusCode::OK);
    let no_source = c
        .raw(
            Method::POST,
            &format!(
                "/v2/other/m/blobs/uploads/?mount={}&from=library/m",
                digest(b"nope")
            ),
            &[],
            None,
        )
        .await;
    assert_eq!(no_source.status(), StatusCode::ACCEPTED);
    assert!(header(no_source.headers(), "location").contains("?_state="));
}

#[tokio::test]
async fn manifest_put_needs_its_blobs_and_its_media_type() {
    let registry = start(DistributionAuth::None);
    let mut c = Client::new(&registry);
    let model = Model::new("partial");
    c.push_blob("library/p", &model.layer).await;

    let put = c
        .raw(
            Method::PUT,
            "/v2/library/p/manifests/latest",
            &[(CONTENT_TYPE.as_str(), DOCKER_V2)],
            Some(model.manifest.clone()),
        )
        .await;
    let (status, code, detail) = error_code(put).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN")
    );
    assert_eq!(detail, serde_json::json!(digest(&model.config)));

    c.push_blob("library/p", &model.config).await;
    for content_type in ["application/json", ""] {
        let headers: Vec<(&str, &str)> = if content_type.is_empty() {
            vec![]
        } else {
            vec![(CONTENT_TYPE.as_str(), content_type)]
        };
        let put = c
            .raw(
                Method::PUT,
                "/v2/library/p/manifests/latest",
                &headers,
                Some(model.manifest.clone()),
            )
            .await;
        let (status, code, _) = error_code(put).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "MANIFEST_INVALID")
        );
    }
    let put = c
        .raw(
            Method::PUT,
            "/v2/library/p/manifests/latest",
            &[(CONTENT_TYPE.as_str(), DOCKER_V2)],
            Some(model.manifest.clone()),
        )
        .await;
    assert_eq!(put.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn upload_sessions_chunks_and_state() {
    let registry = start(DistributionAuth::None);
    let c = Client::new(&registry);
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();

    let post = c
        .raw(Method::POST, "/v2/library/u/blobs/uploads/", &[], None)
        .await;
    assert_eq!(post.status(), StatusCode::ACCEPTED);
    assert_eq!(header(post.headers(), "range"), "0-0");
    assert!(!header(post.headers(), "docker-upload-uuid").is_empty());
    let location = header(post.headers(), "location");
    assert!(location.starts_with(&format!("{}/v2/library/u/blobs/uploads/", registry.url())));
    assert!(location.contains("?_state="));

    let status = c.raw(Method::GET, &location, &[], None).await;
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(status.headers(), "range"), "0-0");

    let first = c
        .raw(
            Method::PATCH,
            &location,
            &[(CONTENT_TYPE.as_str(), OCTETS), ("content-range", "0-1999")],
            Some(data[..2000].to_vec()),
        )
        .await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert_eq!(header(first.headers(), "range"), "0-1999");
    let after_first = header(first.headers(), "location");
    assert_ne!(after_first, location, "every answer carries a new _state");

    // The state in the old Location no longer matches the session.
    let stale = c.raw(Method::GET, &location, &[], None).await;
    let (status, code, _) = error_code(stale).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "BLOB_UPLOAD_INVALID")
    );

    // 2.8 ignores Content-Range on PATCH: a wrong offset is appended anyway.
    let wrong = c
        .raw(
            Method::PATCH,
            &after_first,
            &[(CONTENT_TYPE.as_str(), OCTETS), ("content-range", "0-999")],
            Some(data[2000..3000].to_vec()),
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::ACCEPTED);
    assert_eq!(header(wrong.headers(), "range"), "0-2999");
    let after_second = header(wrong.headers(), "location");

    let put = c
        .raw(
            Method::PUT,
            &format!("{after_second}&digest={}", digest(&data)),
            &[(CONTENT_TYPE.as_str(), OCTETS)],
            Some(data[3000..].to_vec()),
        )
        .await;
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(
        header(put.headers(), "docker-content-digest"),
        digest(&data)
    );

    let again = c
        .raw(
            Method::PUT,
            &format!("{after_second}&digest={}", digest(&data)),
            &[(CONTENT_TYPE.as_str(), OCTETS)],
            Some(vec![]),
        )
        .await;
    let (status, code, _) = error_code(again).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN")
    );

    // A digest that does not match the bytes.
    let post = c
        .raw(Method::POST, "/v2/library/u/blobs/uploads/", &[], None)
        .await;
    let location = header(post.headers(), "location");
    let bad = c
        .raw(
            Method::PUT,
            &format!("{location}&digest={}", digest(b"other")),
            &[(CONTENT_TYPE.as_str(), OCTETS)],
            Some(b"these bytes".to_vec()),
        )
        .await;
    let (status, code, _) = error_code(bad).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
}

#[tokio::test]
async fn relative_urls_make_locations_paths() {
    let registry = start_with(DistributionOptions {
        relative_urls: true,
        ..DistributionOptions::default()
    });
    let mut c = Client::new(&registry);
    let post = c
        .raw(Method::POST, "/v2/library/r/blobs/uploads/", &[], None)
        .await;
    let location = header(post.headers(), "location");
    assert!(
        location.starts_with("/v2/library/r/blobs/uploads/"),
        "{location}"
    );
    c.push_blob("library/r", b"relative").await;
}

#[tokio::test]
async fn basic_auth_challenges_then_accepts_the_user() {
    let registry = start(DistributionAuth::Htpasswd {
        user: "alice".into(),
        password: "s3cret".into(),
    });
    let anonymous = Client::new(&registry);
    let v2 = anonymous.raw(Method::GET, "/v2/", &[], None).await;
    assert_eq!(v2.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(v2.headers(), "www-authenticate"),
        r#"Basic realm="olreg-test""#
    );
    let pull = anonymous
        .raw(Method::GET, "/v2/library/b/manifests/latest", &[], None)
        .await;
    assert_eq!(
        header(pull.headers(), "www-authenticate"),
        r#"Basic realm="olreg-test""#
    );
    let (status, code, detail) = error_code(pull).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
    );
    assert_eq!(
        detail,
        serde_json::json!([{"Type": "repository", "Class": "", "Name": "library/b", "Action": "pull"}])
    );

    let mut wrong = Client::new(&registry).with_user("alice", "wrong");
    let denied = wrong.send(Method::GET, "/v2/", &[], None).await;
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);

    let mut c = Client::new(&registry);
    let model = Model::new("basic");
    assert_eq!(
        c.push_model("library/b", "v1", &model).await.status(),
        StatusCode::CREATED
    );
    let got = c.get_manifest("library/b", "v1").await;
    assert_eq!(got.bytes().await.unwrap(), model.manifest);
}

#[tokio::test]
async fn token_auth_challenge_token_retry() {
    let registry = start(DistributionAuth::Token {
        user: "alice".into(),
        password: "s3cret".into(),
        ttl_secs: 300,
    });
    let tokens = registry.token_server().unwrap();
    let anonymous = Client::new(&registry);

    let v2 = anonymous.raw(Method::GET, "/v2/", &[], None).await;
    assert_eq!(v2.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(v2.headers(), "www-authenticate"),
        format!(
            r#"Bearer realm="{}",service="olreg-distribution""#,
            tokens.realm()
        )
    );
    let pull = anonymous
        .raw(Method::GET, "/v2/library/t/manifests/latest", &[], None)
        .await;
    assert_eq!(
        header(pull.headers(), "www-authenticate"),
        format!(
            r#"Bearer realm="{}",service="olreg-distribution",scope="repository:library/t:pull""#,
            tokens.realm()
        )
    );
    let push = anonymous
        .raw(Method::POST, "/v2/library/t/blobs/uploads/", &[], None)
        .await;
    assert_eq!(
        challenge_scopes(&push),
        scope_set(&["repository:library/t:pull,push"])
    );
    let mount = anonymous
        .raw(
            Method::POST,
            &format!(
                "/v2/library/t/blobs/uploads/?mount={}&from=library/src",
                digest(b"x")
            ),
            &[],
            None,
        )
        .await;
    assert_eq!(
        challenge_scopes(&mount),
        scope_set(&[
            "repository:library/t:pull,push",
            "repository:library/src:pull"
        ])
    );
    assert!(
        !header(mount.headers(), "www-authenticate")
            .contains("scope=\"repository:library/t:pull,push\",scope="),
        "several scopes share one space-separated scope parameter"
    );
    assert!(
        tokens.requests().is_empty(),
        "the registry never calls the token server"
    );

    let mut c = Client::new(&registry);
    let model = Model::new("token");
    assert_eq!(
        c.push_model("library/t", "v1", &model).await.status(),
        StatusCode::CREATED
    );
    let got = c.get_manifest("library/t", "v1").await;
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.bytes().await.unwrap(), model.manifest);

    let requests = tokens.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(r.method, "GET");
        assert!(
            r.path_and_query.starts_with("/token?"),
            "{}",
            r.path_and_query
        );
        assert_eq!(
            r.header("authorization"),
            Some(basic("alice", "s3cret").as_str())
        );
        assert_eq!(r.query("service"), ["olreg-distribution"]);
    }
    let push_scope = scope_set(&["repository:library/t:pull,push"]);
    assert!(requests.iter().any(|r| r
        .query("scope")
        .iter()
        .flat_map(|s| s.split_whitespace())
        .map(normalize_scope)
        .collect::<BTreeSet<_>>()
        == push_scope));

    // A garbage token is an invalid_token challenge.
    let mut forged = Client::new(&registry);
    forged.credentials = None;
    forged.authorization = Some("Bearer a.b.c".into());
    let bad = forged
        .raw(Method::GET, "/v2/library/t/manifests/v1", &[], None)
        .await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge_error(&bad), "invalid_token");
}

#[tokio::test]
async fn token_auth_pull_only_user_gets_insufficient_scope() {
    let registry = start(DistributionAuth::Token {
        user: "alice".into(),
        password: "s3cret".into(),
        ttl_secs: 300,
    });
    let tokens = registry.token_server().unwrap();
    tokens.add_user(TokenUser::new(
        "reader",
        "r",
        vec![Grant::repositories(&["pull"])],
    ));

    let mut writer = Client::new(&registry);
    let model = Model::new("scoped");
    assert_eq!(
        writer.push_model("library/s", "v1", &model).await.status(),
        StatusCode::CREATED
    );

    let mut reader = Client::new(&registry).with_user("reader", "r");
    assert_eq!(
        reader.get_manifest("library/s", "v1").await.status(),
        StatusCode::OK
    );
    let push = reader
        .send(Method::POST, "/v2/library/s/blobs/uploads/", &[], None)
        .await;
    assert_eq!(push.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge_scopes(&push),
        scope_set(&["repository:library/s:pull,push"])
    );
    assert_eq!(challenge_error(&push), "insufficient_scope");
    let (_, code, _) = error_code(push).await;
    assert_eq!(code, "UNAUTHORIZED", "2.8 never answers DENIED here");

    // A mount needs pull on the source too; without it the whole POST fails
    // (no fallback to a plain upload session).
    tokens.add_user(TokenUser::new(
        "narrow",
        "n",
        vec![Grant::repository_prefix("library/dst", &["pull", "push"])],
    ));
    let mut narrow = Client::new(&registry).with_user("narrow", "n");
    let mount = narrow
        .send(
            Method::POST,
            &format!(
                "/v2/library/dst/blobs/uploads/?mount={}&from=library/s",
                digest(&model.layer)
            ),
            &[],
            None,
        )
        .await;
    assert_eq!(mount.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge_error(&mount), "insufficient_scope");
}

#[tokio::test]
async fn token_expiry_is_enforced_at_the_ttl() {
    let registry = start(DistributionAuth::Token {
        user: "alice".into(),
        password: "s3cret".into(),
        ttl_secs: 2,
    });
    let mut c = Client::new(&registry);
    let model = Model::new("expiring");
    assert_eq!(
        c.push_model("library/e", "v1", &model).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        c.raw(Method::GET, "/v2/library/e/tags/list", &[], None)
            .await
            .status(),
        StatusCode::OK
    );

    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let stale = c
        .raw(Method::GET, "/v2/library/e/tags/list", &[], None)
        .await;
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge_error(&stale), "invalid_token");
    let refreshed = c
        .send(Method::GET, "/v2/library/e/tags/list", &[], None)
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
}

#[tokio::test]
async fn token_auth_accepts_an_x5c_header_and_anonymous_rules() {
    let registry = start_with(DistributionOptions {
        auth: DistributionAuth::Token {
            user: "alice".into(),
            password: "s3cret".into(),
            ttl_secs: 300,
        },
        token_key_hint: Some(KeyHint::CertChain),
        ..DistributionOptions::default()
    });
    let mut c = Client::new(&registry);
    assert_eq!(
        c.push_model("library/x", "v1", &Model::new("x5c"))
            .await
            .status(),
        StatusCode::CREATED
    );

    let tokens = registry.token_server().unwrap();
    let http = http_client().build().unwrap();
    let url = with_query(
        &tokens.realm(),
        &[
            ("service", "olreg-distribution"),
            ("scope", "repository:library/x:pull"),
        ],
    );

    // Default: anonymous callers get a token that grants nothing.
    let anon = http.get(&url).send().await.unwrap();
    assert_eq!(anon.status(), StatusCode::OK);
    tokens.set_anonymous(AnonymousAccess::Reject);
    let rejected = http.get(&url).send().await.unwrap();
    assert_eq!(rejected.status(), StatusCode::UNAUTHORIZED);
    assert!(header(rejected.headers(), "www-authenticate").starts_with("Basic realm="));
    let wrong = http
        .get(&url)
        .header(AUTHORIZATION, basic("alice", "nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let other_service = http
        .get(with_query(&tokens.realm(), &[("service", "elsewhere")]))
        .header(AUTHORIZATION, basic("alice", "s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(other_service.status(), StatusCode::BAD_REQUEST);
}

/// reqwest as built in this workspace brings no TLS crypto provider of its
/// own (olreg chooses *ring* explicitly); install it for the test clients.
fn http_client() -> reqwest::ClientBuilder {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}
