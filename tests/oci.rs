//! Docker Distribution 2.8 as a real peer (no auth, htpasswd, token auth),
//! ollama.com's challenge flow against the test registry, and mirrors.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use olreg::{LogLevel, Status, Watch};
use olreg_testreg::distribution::{Distribution, DistributionAuth, DistributionOptions};
use olreg_testreg::token::{Grant, TokenUser};

fn distribution(auth: DistributionAuth) -> Distribution {
    Distribution::start(auth).unwrap_or_else(|e| {
        panic!("Docker Distribution must be installed (apt-get install docker-registry): {e}")
    })
}

/// A store holding a model pulled from a fresh test registry.
fn source_model(sizes: &[u64]) -> (TestRegistry, Model) {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("library/roundtrip:v1", sizes, 51);
    (reg, model)
}

fn same_files(a: &TempStore, b: &TempStore, model: &Model) {
    for blob in model.layers.iter().chain([&model.config]) {
        assert_eq!(
            std::fs::read(a.blob_path(&blob.digest)).unwrap(),
            std::fs::read(b.blob_path(&blob.digest)).unwrap()
        );
    }
}

#[test]
fn round_trip_through_docker_distribution_is_byte_identical() {
    let dist = distribution(DistributionAuth::None);
    let (src, model) = source_model(&[3 << 20, 5000, 17]);
    let first = TempStore::new();
    // Small chunks and upload pieces so ranges and PATCH sessions are used.
    let opts = |s: &TempStore| {
        builder(s)
            .chunk_threshold(1 << 20)
            .chunk_size(1 << 20)
            .upload_chunk_size(1 << 20)
            .build()
            .unwrap()
    };
    let client = opts(&first);
    client
        .pull(&name_of(&src, &model), Watch::default())
        .unwrap();
    let target = format!("http://{}/library/roundtrip:v1", dist.host());
    client
        .push(&target, Some(&name_of(&src, &model)), Watch::default())
        .expect("push to Distribution");

    let second = TempStore::new();
    let back = opts(&second);
    let pulled = back
        .pull(&target, Watch::default())
        .expect("pull from Distribution");
    assert_eq!(
        pulled.digest().to_string(),
        model.digest,
        "the manifest comes back byte-identical"
    );
    assert_eq!(back.show(&target).unwrap(), model.manifest.to_vec());
    same_files(&first, &second, &model);
    assert_store_consistent(second.root());

    // Pushing again uploads nothing (HEAD finds every blob) and succeeds.
    client
        .push(&target, Some(&name_of(&src, &model)), Watch::default())
        .expect("second push");
    // By digest, through OCI's manifests/<digest>.
    let third = TempStore::new();
    opts(&third)
        .pull(
            &format!(
                "http://{}/library/roundtrip:pinned@{}",
                dist.host(),
                model.digest
            ),
            Watch::default(),
        )
        .expect("pull by digest");
}

/// Pushes `model` (pulled from `src`) to `team/one` on `dist`, pulls it
/// back if `pull_back`, runs `between`, then pushes it to `team/two`.
/// Returns how many blobs were mounted instead of uploaded.
fn mounts_on_second_push(
    dist: &Distribution,
    builder: olreg::ClientBuilder,
    src: &TestRegistry,
    model: &Model,
    pull_back: bool,
    between: impl FnOnce(),
) -> usize {
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let client = builder
        .log(
            LogLevel::Info,
            Arc::new(move |_, m| sink.lock().unwrap().push(m.to_owned())),
        )
        .build()
        .unwrap();
    client.pull(&name_of(src, model), Watch::default()).unwrap();
    let one = format!("http://{}/team/one:v1", dist.host());
    client
        .push(&one, Some(&name_of(src, model)), Watch::default())
        .unwrap();
    if pull_back {
        client.pull(&one, Watch::default()).unwrap();
    }
    between();
    client
        .push(
            &format!("http://{}/team/two:v1", dist.host()),
            Some(&name_of(src, model)),
            Watch::default(),
        )
        .expect("push with mounts");
    let mounted = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("mounted from team/one"))
        .count();
    mounted
}

#[test]
fn blobs_are_mounted_from_another_repository() {
    let dist = distribution(DistributionAuth::None);
    let (src, model) = source_model(&[4000, 5000]);
    let store = TempStore::new();
    // Pulled back: the store holds a model from team/one.
    let mounted = mounts_on_second_push(&dist, builder(&store), &src, &model, true, || {});
    assert_eq!(mounted, 3, "two layers and the config are mounted");
    client(&TempStore::new())
        .pull(
            &format!("http://{}/team/two:v1", dist.host()),
            Watch::default(),
        )
        .unwrap();
}

#[test]
fn distribution_errors_map_to_statuses() {
    let dist = distribution(DistributionAuth::None);
    let store = TempStore::new();
    let err = client(&store)
        .pull(
            &format!("http://{}/library/absent:v1", dist.host()),
            Watch::default(),
        )
        .unwrap_err();
    assert_eq!(err.status(), Status::NotFound, "{err}");
    assert_eq!(err.registry_code(), Some("MANIFEST_UNKNOWN"));
    assert!(err.to_string().contains("manifest unknown"), "{err}");
    // Names keep their case in the store; the registry sees them lowercased.
    let (src, model) = source_model(&[100]);
    let c = client(&store);
    c.pull(&name_of(&src, &model), Watch::default()).unwrap();
    c.push(
        &format!("http://{}/Team/Mixed:V1", dist.host()),
        Some(&name_of(&src, &model)),
        Watch::default(),
    )
    .unwrap();
    c.pull(
        &format!("http://{}/team/mixed:V1", dist.host()),
        Watch::default(),
    )
    .unwrap();
}

#[test]
fn basic_auth_from_options_and_docker_config() {
    let dist = distribution(DistributionAuth::Htpasswd {
        user: "alice".into(),
        password: "s3cret".into(),
    });
    let (src, model) = source_model(&[2000]);
    let target = format!("http://{}/library/m:v1", dist.host());

    // No credentials: a clear refusal.
    let store = TempStore::new();
    let anonymous = client(&store);
    anonymous
        .pull(&name_of(&src, &model), Watch::default())
        .unwrap();
    let err = anonymous
        .push(&target, Some(&name_of(&src, &model)), Watch::default())
        .unwrap_err();
    assert_eq!(err.status(), Status::Unauthorized, "{err}");
    assert!(err.to_string().contains("user name and password"), "{err}");

    // Credentials in the options.
    let with_creds = builder(&store)
        .credential(&dist.host(), "alice", "s3cret")
        .build()
        .unwrap();
    with_creds
        .push(&target, Some(&name_of(&src, &model)), Watch::default())
        .expect("push with Basic");
    // The source registry never saw them.
    assert!(src
        .requests()
        .iter()
        .all(|r| r.header("authorization").is_none()));

    // Credentials from a Docker config file.
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("config.json");
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    std::fs::write(
        &config,
        format!(
            r#"{{"auths":{{"http://{}":{{"auth":"{auth}"}}}}}}"#,
            dist.host()
        ),
    )
    .unwrap();
    let fresh = TempStore::new();
    let from_config = builder(&fresh).docker_config(config).build().unwrap();
    from_config
        .pull(&target, Watch::default())
        .expect("pull with Basic from config.json");

    // A wrong password is refused, not retried forever.
    let wrong = builder(&TempStore::new())
        .credential(&dist.host(), "alice", "nope")
        .build()
        .unwrap();
    let err = wrong.pull(&target, Watch::default()).unwrap_err();
    assert_eq!(err.status(), Status::Unauthorized, "{err}");
}

#[test]
fn token_auth_caches_tokens_per_scope_and_refreshes_them() {
    let dist = distribution(DistributionAuth::Token {
        user: "bob".into(),
        password: "pw".into(),
        ttl_secs: 300,
    });
    let tokens = dist.token_server().expect("token mode has a token server");
    let (src, model) = source_model(&[3000, 40]);
    let store = TempStore::new();
    let client = builder(&store)
        .credential(&dist.host(), "bob", "pw")
        .build()
        .unwrap();
    client
        .pull(&name_of(&src, &model), Watch::default())
        .unwrap();
    let target = format!("http://{}/library/tok:v1", dist.host());
    client
        .push(&target, Some(&name_of(&src, &model)), Watch::default())
        .expect("push with a token");
    let pushes = tokens.requests();
    assert_eq!(
        pushes.len(),
        1,
        "a push asks for pull,push at once: {pushes:?}"
    );
    tokens.clear_requests();
    let fresh = TempStore::new();
    let puller = builder(&fresh)
        .credential(&dist.host(), "bob", "pw")
        .build()
        .unwrap();
    puller
        .pull(&target, Watch::default())
        .expect("pull with a token");
    puller.pull(&target, Watch::default()).expect("pull again");

    let requests = tokens.requests();
    assert!(pushes.iter().chain(&requests).all(|r| r
        .header("authorization")
        .is_some_and(|a| a.starts_with("Basic "))));
    assert_eq!(
        requests.len(),
        1,
        "the pull token is fetched once and cached: {requests:?}"
    );
    assert!(
        src.requests()
            .iter()
            .all(|r| r.header("authorization").is_none()),
        "credentials went to another host"
    );

    // Tokens that expire are fetched again.
    tokens.set_ttl_secs(2);
    tokens.clear_requests();
    let short = builder(&TempStore::new())
        .credential(&dist.host(), "bob", "pw")
        .build()
        .unwrap();
    short.pull(&target, Watch::default()).unwrap();
    std::thread::sleep(Duration::from_millis(2200));
    short.pull(&target, Watch::default()).unwrap();
    assert_eq!(tokens.requests().len(), 2, "an expired token is replaced");
}

#[test]
fn token_auth_without_push_rights_is_refused_clearly() {
    let dist = distribution(DistributionAuth::Token {
        user: "bob".into(),
        password: "pw".into(),
        ttl_secs: 300,
    });
    let tokens = dist.token_server().unwrap();
    tokens.add_user(TokenUser::new(
        "reader",
        "pw",
        vec![Grant::repositories(&["pull"])],
    ));
    let (src, model) = source_model(&[100]);
    let store = TempStore::new();
    let client = builder(&store)
        .credential(&dist.host(), "reader", "pw")
        .build()
        .unwrap();
    client
        .pull(&name_of(&src, &model), Watch::default())
        .unwrap();
    let err = client
        .push(
            &format!("http://{}/library/ro:v1", dist.host()),
            Some(&name_of(&src, &model)),
            Watch::default(),
        )
        .unwrap_err();
    assert_eq!(err.status(), Status::Unauthorized, "{err}");
    let err = client
        .pull(
            &format!("http://{}/library/ro:v1", dist.host()),
            Watch::default(),
        )
        .unwrap_err();
    assert_eq!(
        err.status(),
        Status::NotFound,
        "a reader may pull, and learns the model is absent: {err}"
    );
}

#[test]
fn ollama_challenge_flow_signs_the_realm_request() {
    let vector: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/auth-vector.json")).unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("id_ed25519");
    std::fs::write(&key, vector["private_key_openssh"].as_str().unwrap()).unwrap();
    let public = vector["public_key"].as_str().unwrap().to_owned();
    let reg = TestRegistry::start(Options::default().auth(Auth::OllamaChallenge {
        public_keys: vec![public],
        token_ttl_secs: 300,
    }));
    let model = reg.add_model("library/m:v1", &[5000], 52);
    let store = TempStore::new();

    let anonymous = client(&store);
    let err = anonymous
        .pull(&name_of(&reg, &model), Watch::default())
        .unwrap_err();
    assert_eq!(err.status(), Status::Unauthorized, "{err}");

    let signed = builder(&store).key_file(&key).build().unwrap();
    signed
        .pull(&name_of(&reg, &model), Watch::default())
        .expect("pull through the challenge");
    signed
        .push(
            &format!("http://{}/library/copy:v1", reg.host()),
            Some(&name_of(&reg, &model)),
            Watch::default(),
        )
        .expect("push through the challenge");
    let token_requests: Vec<_> = reg
        .requests()
        .into_iter()
        .filter(|r| r.path_and_query.starts_with("/token"))
        .collect();
    assert_eq!(
        token_requests.iter().filter(|r| r.status == 200).count(),
        2,
        "one pull token, one push token: {token_requests:?}"
    );
    for r in token_requests.iter().filter(|r| r.status == 200) {
        assert!(
            r.path_and_query.contains("nonce=") && r.path_and_query.contains("ts="),
            "{r:?}"
        );
    }
    assert!(requests_on(&reg, Server::BlobStore)
        .iter()
        .all(|r| r.header("authorization").is_none()));
}

#[test]
fn mirrors_are_tried_first_and_models_keep_their_names() {
    let origin = TestRegistry::start(Options::default());
    let mirror = TestRegistry::start(Options::default());
    let model = origin.add_model("library/m:v1", &[3000], 53);
    let copy = mirror.add_model("library/m:v1", &[3000], 53);
    assert_eq!(copy.digest, model.digest);
    let store = TempStore::new();
    let client = builder(&store)
        .mirror(format!("{}={}", origin.host(), mirror.url()))
        .build()
        .unwrap();
    client
        .pull(&name_of(&origin, &model), Watch::default())
        .expect("pull via the mirror");
    assert!(origin.requests().is_empty(), "the origin was not needed");
    assert!(
        store
            .manifest_path(&origin.host(), "library/m", "v1")
            .is_file(),
        "filed under the model's own name"
    );

    // A model the mirror lacks comes from the origin.
    let only_origin = origin.add_model("library/other:v1", &[10], 54);
    client
        .pull(&name_of(&origin, &only_origin), Watch::default())
        .expect("fallback to the origin");
    assert!(!origin.requests().is_empty());
    assert_eq!(client.list().unwrap().len(), 2);
}

#[test]
fn a_forgotten_upload_session_starts_over() {
    let (src, model) = source_model(&[3000]);
    let dst = TestRegistry::start(Options::default().distribution_like());
    dst.inject(Fault::status(
        Target::UploadPut,
        404,
        ErrorBody::oci("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry"),
    ));
    let store = TempStore::new();
    let client = client(&store);
    client
        .pull(&name_of(&src, &model), Watch::default())
        .unwrap();
    client
        .push(
            &format!("http://{}/library/m:v1", dst.host()),
            Some(&name_of(&src, &model)),
            Watch::default(),
        )
        .expect("restarts the upload");
    assert_eq!(dst.manifest("library/m", "v1").unwrap(), model.manifest);
    let _ = DistributionOptions::default();
}

#[test]
fn token_auth_mounts_with_a_token_for_both_repositories() {
    let dist = distribution(DistributionAuth::Token {
        user: "bob".into(),
        password: "pw".into(),
        ttl_secs: 300,
    });
    let tokens = dist.token_server().unwrap();
    let (src, model) = source_model(&[3000]);
    let store = TempStore::new();
    let with_password = builder(&store).credential(&dist.host(), "bob", "pw");
    let mounted = mounts_on_second_push(&dist, with_password, &src, &model, true, || {
        tokens.clear_requests()
    });
    assert_eq!(mounted, 2, "the layer and the config are mounted");
    // The mount's challenge asks for a scope on both repositories: a new token.
    let both = tokens.requests().iter().any(|r| {
        r.query("scope").iter().any(|s| s.contains("team/one"))
            && r.query("scope").iter().any(|s| s.contains("team/two"))
    });
    assert!(both, "{:?}", tokens.requests());
}

/// `model`'s manifest without its `mediaType` (legal in OCI, required in
/// Docker's v2 schema), served by `src` as `library/oci:v1`.
fn without_media_type(src: &TestRegistry, model: &Model) -> (String, Vec<u8>) {
    let mut json: serde_json::Value = serde_json::from_slice(&model.manifest).unwrap();
    json.as_object_mut().unwrap().remove("mediaType").unwrap();
    let body = serde_json::to_vec(&json).unwrap();
    src.put_manifest("library/oci", "v1", body.clone());
    (format!("http://{}/library/oci:v1", src.host()), body)
}

#[test]
fn a_manifest_without_media_type_is_pushed_as_oci() {
    let dist = distribution(DistributionAuth::None);
    let (src, model) = source_model(&[3000, 20]);
    let (source, body) = without_media_type(&src, &model);
    let store = TempStore::new();
    let c = client(&store);
    c.pull(&source, Watch::default()).unwrap();
    let target = format!("http://{}/team/oci:v1", dist.host());
    c.push(&target, Some(&source), Watch::default())
        .expect("Distribution takes an OCI manifest without mediaType");
    let back = TempStore::new();
    let pulled = client(&back).pull(&target, Watch::default()).unwrap();
    assert_eq!(pulled.bytes(), &body[..], "byte for byte");
    assert_eq!(pulled.media_type(), olreg::manifest::OCI_MANIFEST_V1);
}

/// `team/<repo>:v1` on `dist`: an index (or manifest list) of two models
/// pushed as `:amd64` and `:arm64` by olreg, the index itself put through
/// the registry API. Returns the name and the two models.
fn multi_platform(dist: &Distribution, repo: &str, media_type: &str) -> (String, Model, Model) {
    let src = TestRegistry::start(Options::default());
    let amd64 = src.add_model("library/amd:v1", &[3000, 20], 71);
    let arm64 = src.add_model("library/arm:v1", &[4000], 72);
    let store = TempStore::new();
    let c = client(&store);
    for (model, tag) in [(&amd64, "amd64"), (&arm64, "arm64")] {
        c.pull(&name_of(&src, model), Watch::default()).unwrap();
        c.push(
            &format!("http://{}/team/{repo}:{tag}", dist.host()),
            Some(&name_of(&src, model)),
            Watch::default(),
        )
        .unwrap();
    }
    let index = image_index(
        media_type,
        &[
            (&amd64.manifest, "linux/amd64"),
            (&arm64.manifest, "linux/arm64/v8"),
        ],
    );
    let (status, answer) = dist
        .put_manifest(&format!("team/{repo}"), "v1", media_type, &index)
        .unwrap();
    assert_eq!(status, 201, "Distribution took the index: {answer}");
    (
        format!("http://{}/team/{repo}:v1", dist.host()),
        amd64,
        arm64,
    )
}

#[test]
fn indexes_and_manifest_lists_on_distribution_are_followed() {
    let dist = distribution(DistributionAuth::None);
    for (repo, media_type) in [("oci-index", OCI_INDEX), ("docker-list", DOCKER_LIST)] {
        let (name, amd64, arm64) = multi_platform(&dist, repo, media_type);
        for (platform, model) in [("linux/amd64", &amd64), ("linux/arm64", &arm64)] {
            let store = TempStore::new();
            let c = builder(&store).platform(platform).build().unwrap();
            let pulled = c
                .pull(&name, Watch::default())
                .unwrap_or_else(|e| panic!("{media_type} for {platform}: {e}"));
            assert_eq!(pulled.digest().to_string(), model.digest, "{media_type}");
            assert_eq!(c.show(&name).unwrap(), model.manifest.to_vec());
            assert_store_consistent(store.root());
        }
        let err = builder(&TempStore::new())
            .platform("windows/amd64")
            .build()
            .unwrap()
            .pull(&name, Watch::default())
            .unwrap_err();
        assert_eq!(err.status(), Status::NotFound, "{err}");
        assert!(
            err.to_string().contains("image index")
                && err.to_string().contains("linux/amd64, linux/arm64/v8"),
            "{err}"
        );
    }
}

#[test]
fn a_second_repository_on_the_same_registry_gets_mounts_not_uploads() {
    let dist = distribution(DistributionAuth::None);
    let (src, model) = source_model(&[4000, 5000]);
    let store = TempStore::new();
    // Only pushed to team/one, never pulled from it: the store's record of
    // where blobs went is what finds them.
    let mounted = mounts_on_second_push(&dist, builder(&store), &src, &model, false, || {});
    assert_eq!(mounted, 3, "two layers and the config are mounted");
    let log = dist.log_contents();
    for upload in [
        "\"PATCH /v2/team/two/blobs/uploads",
        "\"PUT /v2/team/two/blobs/uploads",
    ] {
        assert!(!log.contains(upload), "{upload} in the registry's log");
    }
    client(&TempStore::new())
        .pull(
            &format!("http://{}/team/two:v1", dist.host()),
            Watch::default(),
        )
        .unwrap();
}
