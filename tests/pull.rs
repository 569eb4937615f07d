//! Pulls against the test registry on loopback.

mod common;

use common::*;
use olreg::{ProgressEvent, Status};
use std::time::{Duration, Instant};

#[test]
fn pull_not_cached_then_cached_then_mixed() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("library/tiny:1", &[1000, 2000, 3000], 1);
    let store = TempStore::new();
    let client = client(&store);
    let name = name_of(&reg, &model);

    let (r, events) = pull_collect(&client, &name);
    let manifest = r.expect("first pull");
    assert_eq!(manifest.digest().to_string(), model.digest);
    let stored = std::fs::read(store.manifest_path(&reg.host(), &model.repo, "1")).unwrap();
    assert_eq!(
        stored,
        model.manifest.to_vec(),
        "the manifest is stored byte for byte"
    );
    for blob in model.layers.iter().chain([&model.config]) {
        assert_eq!(
            std::fs::read(store.blob_path(&blob.digest)).unwrap(),
            reg.blob(&blob.digest).unwrap().to_vec()
        );
    }
    assert_eq!(
        events.first().unwrap().event,
        ProgressEvent::Resolved,
        "totals come first"
    );
    assert_eq!(events.first().unwrap().total, 6000 + model.config.size);
    assert_eq!(events.last().unwrap().event, ProgressEvent::Finished);
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event == ProgressEvent::Done)
            .count(),
        4
    );
    assert_eq!(assert_store_consistent(store.root()), 4);

    // Everything is present: no blob is requested again.
    reg.clear_requests();
    let (r, events) = pull_collect(&client, &name);
    r.expect("cached pull");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event == ProgressEvent::Cached)
            .count(),
        4
    );
    assert!(
        reg.requests()
            .iter()
            .all(|r| !r.path_and_query.contains("/blobs/")),
        "{:?}",
        reg.requests()
    );

    // A second model sharing two blobs fetches only what it lacks.
    let other = reg.add_model("library/tiny:2", &[1000, 2000, 4000], 1);
    assert_eq!(other.layers[0].digest, model.layers[0].digest);
    reg.clear_requests();
    let (r, events) = pull_collect(&client, &name_of(&reg, &other));
    r.expect("mixed pull");
    let cached = events
        .iter()
        .filter(|e| e.event == ProgressEvent::Cached)
        .count();
    let done = events
        .iter()
        .filter(|e| e.event == ProgressEvent::Done)
        .count();
    assert_eq!(
        (cached, done),
        (2, 2),
        "two shared blobs cached, the new layer and config fetched"
    );
    let fetched: Vec<_> = requests_on(&reg, Server::BlobStore)
        .into_iter()
        .map(|r| r.path_and_query)
        .collect();
    assert_eq!(fetched.len(), 2, "{fetched:?}");
    assert_eq!(client.list().unwrap().len(), 2);
}

#[test]
fn large_layer_is_chunked_after_resolving_the_redirect_once() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/big:latest", &[6 << 20], 7);
    let store = TempStore::new();
    let client = builder(&store)
        .chunk_threshold(1 << 20)
        .chunk_size(1 << 20)
        .streams(4)
        .build()
        .unwrap();
    client
        .pull(&name_of(&reg, &model), Default::default())
        .expect("pull");
    assert_store_consistent(store.root());

    let layer = &model.layers[0].digest;
    let on_registry: Vec<_> = requests_on(&reg, Server::Registry)
        .into_iter()
        .filter(|r| r.path_and_query.ends_with(&format!("/blobs/{layer}")))
        .collect();
    assert_eq!(
        on_registry.len(),
        1,
        "the registry's redirect is resolved once: {on_registry:?}"
    );
    assert_eq!(on_registry[0].header("range"), Some("bytes=0-0"));
    let ranges: Vec<String> = requests_on(&reg, Server::BlobStore)
        .into_iter()
        .filter(|r| r.path_and_query.contains(layer.as_str()))
        .filter_map(|r| r.header("range").map(str::to_owned))
        .collect();
    // The probe's byte, then 6 chunks ending on 1 MiB boundaries (the
    // first one byte short), each asked for once.
    assert_eq!(ranges[0], "bytes=0-0");
    let mut chunks: Vec<String> = ranges[1..].to_vec();
    chunks.sort_by_key(|r| r[6..].split('-').next().unwrap().parse::<u64>().unwrap());
    let expected: Vec<String> = (0..6u64)
        .map(|i| format!("bytes={}-{}", (i << 20).max(1), ((i + 1) << 20) - 1))
        .collect();
    assert_eq!(chunks, expected);
}

#[test]
fn authorization_never_reaches_the_blob_store() {
    let key = include_str!("fixtures/auth-vector.json");
    let vector: serde_json::Value = serde_json::from_str(key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("id_ed25519");
    std::fs::write(&key_path, vector["private_key_openssh"].as_str().unwrap()).unwrap();

    let reg = TestRegistry::start(Options::default().auth(Auth::Ed25519Legacy {
        public_keys: vec![],
    }));
    let model = reg.add_model("ns/m:t", &[5 << 20], 3);
    let store = TempStore::new();
    let client = builder(&store)
        .key_file(&key_path)
        .signed_host(reg.host())
        .chunk_threshold(1 << 20)
        .chunk_size(1 << 20)
        .build()
        .unwrap();
    client
        .pull(&name_of(&reg, &model), Default::default())
        .expect("signed pull");
    let registry = requests_on(&reg, Server::Registry);
    assert!(
        !registry.is_empty()
            && registry.iter().all(|r| r
                .header("authorization")
                .is_some_and(|a| a.starts_with("Bearer ")))
    );
    let store_reqs = requests_on(&reg, Server::BlobStore);
    assert!(store_reqs.len() > 2);
    for r in store_reqs {
        assert_eq!(
            r.header("authorization"),
            None,
            "credentials leaked to the blob store: {r:?}"
        );
    }
}

#[test]
fn pull_by_digest_checks_the_digest() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[100], 1);
    let store = TempStore::new();
    let client = client(&store);
    let name = format!("http://{}/ns/m:pinned@{}", reg.host(), model.digest);
    let m = client
        .pull(&name, Default::default())
        .expect("pull by digest");
    assert_eq!(m.digest().to_string(), model.digest);
    assert!(store.manifest_path(&reg.host(), "ns/m", "pinned").is_file());

    // A digest the registry does not have.
    let missing = olreg::Digest::of(b"nothing").to_string();
    let err = client
        .pull(
            &format!("http://{}/ns/m@{missing}", reg.host()),
            Default::default(),
        )
        .unwrap_err();
    assert_eq!(err.status(), Status::NotFound, "{err}");

    // A registry that serves other bytes under the digest.
    let body = br#"{"layers":[{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1}]}"#;
    reg.inject(
        Fault::new(
            Target::Manifest,
            FaultKind::ManifestBody {
                body: body.to_vec().into(),
            },
        )
        .forever(),
    );
    reg.inject(
        Fault::new(
            Target::Blob { digest: None },
            FaultKind::ManifestBody {
                body: body.to_vec().into(),
            },
        )
        .forever(),
    );
    let err = client.pull(&name, Default::default()).unwrap_err();
    assert_eq!(err.status(), Status::DigestMismatch, "{err}");
}

#[test]
fn manifest_not_found_and_server_errors_are_reported_with_their_cause() {
    let reg = TestRegistry::start(Options::default());
    let store = TempStore::new();
    let client = client(&store);
    let err = client
        .pull(
            &format!("http://{}/ns/absent:t", reg.host()),
            Default::default(),
        )
        .unwrap_err();
    assert_eq!(err.status(), Status::NotFound);
    assert_eq!(err.http_status(), Some(404));
    assert_eq!(err.registry_code(), Some("MANIFEST_UNKNOWN"));
    assert!(err.to_string().contains("ns/absent:t"), "{err}");

    let model = reg.add_model("ns/m:t", &[10], 1);
    reg.inject(
        Fault::status(
            Target::Manifest,
            500,
            ErrorBody::ollama("INTERNAL_ERROR", "the database is on fire"),
        )
        .forever(),
    );
    let err = client
        .pull(&name_of(&reg, &model), Default::default())
        .unwrap_err();
    assert_eq!(err.status(), Status::Http);
    assert_eq!(err.http_status(), Some(500));
    assert_eq!(err.registry_code(), Some("INTERNAL_ERROR"));
    assert!(err.to_string().contains("the database is on fire"), "{err}");
    let tries = requests_on(&reg, Server::Registry)
        .iter()
        .filter(|r| r.path_and_query.contains("/manifests/"))
        .count();
    assert_eq!(
        tries,
        1 + 4,
        "a 5xx is retried (4 attempts here), plus the 404 above"
    );
    assert!(files_under(store.root())
        .iter()
        .all(|f| !f.starts_with("manifests/")));
}

#[test]
fn invalid_manifests_are_rejected_before_any_blob() {
    let reg = TestRegistry::start(Options::default());
    let store = TempStore::new();
    let client = client(&store);
    for (i, body) in [
        &b""[..],
        b"null",
        b"!!!",
        br#"{"layers":[]}"#,
        br#"{"layers":[null]}"#,
    ]
    .iter()
    .enumerate()
    {
        let tag = format!("bad{i}");
        reg.put_manifest("ns/m", &tag, body.to_vec());
        reg.clear_requests();
        let err = client
            .pull(
                &format!("http://{}/ns/m:{tag}", reg.host()),
                Default::default(),
            )
            .unwrap_err();
        assert_eq!(err.status(), Status::InvalidManifest, "{body:?}: {err}");
        assert!(reg
            .requests()
            .iter()
            .all(|r| !r.path_and_query.contains("/blobs/")));
    }
    assert!(olreg::Store::new(store.root()).list().unwrap().is_empty());
}

#[test]
fn corrupted_blob_never_reaches_its_final_name() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[50_000], 1);
    let layer = model.layers[0].digest.clone();
    reg.inject(
        Fault::new(
            Target::BlobStore {
                digest: Some(layer.clone()),
            },
            FaultKind::Corrupt { offset: 1234 },
        )
        .forever(),
    );
    let store = TempStore::new();
    let client = client(&store);
    let err = client
        .pull(&name_of(&reg, &model), Default::default())
        .unwrap_err();
    assert_eq!(err.status(), Status::DigestMismatch, "{err}");
    assert!(
        err.to_string().contains(&layer[..19]),
        "the message names the blob: {err}"
    );
    assert!(!store.blob_path(&layer).exists());
    assert!(
        olreg::Store::new(store.root()).list().unwrap().is_empty(),
        "no manifest is linked"
    );
    assert_store_consistent(store.root());

    reg.clear_faults();
    client
        .pull(&name_of(&reg, &model), Default::default())
        .expect("a later pull succeeds");
    assert_store_consistent(store.root());
}

#[test]
fn https_needs_a_trusted_certificate_or_insecure_mode() {
    let reg = TestRegistry::start(Options::default().tls(true));
    let model = reg.add_model("ns/m:t", &[1000], 1);
    let store = TempStore::new();
    let client = client(&store);
    let secure = format!("https://{}/ns/m:t", reg.host());
    let err = client.pull(&secure, Default::default()).unwrap_err();
    assert_eq!(err.status(), Status::Network, "{err}");
    assert!(
        err.to_string().contains("TLS") || err.to_string().contains("certificate"),
        "{err}"
    );

    client
        .pull(
            &format!("https+insecure://{}/ns/m:t", reg.host()),
            Default::default(),
        )
        .expect("https+insecure accepts the self-signed certificate");

    // Trusting the registry's CA works too, without insecure mode.
    let store2 = TempStore::new();
    let trusting = builder(&store2)
        .add_ca_pem(reg.ca_pem().unwrap())
        .build()
        .unwrap();
    trusting
        .pull(&secure, Default::default())
        .expect("extra CA");
    let _ = model;
}

#[test]
fn cancelling_mid_pull_is_prompt_and_leaves_the_store_consistent() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[8 << 20], 5);
    // Slow the blob store down so the pull is surely mid-way when cancelled.
    stall_every_blob(&reg, 512 << 10, 10_000);
    let store = TempStore::new();
    let client = builder(&store)
        .chunk_threshold(1 << 20)
        .chunk_size(1 << 20)
        .streams(2)
        .build()
        .unwrap();
    let token = olreg::CancelToken::new();
    let canceller = {
        let token = token.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(500));
            let at = std::time::Instant::now();
            token.cancel();
            at
        })
    };
    let err = client
        .pull(
            &name_of(&reg, &model),
            olreg::Watch {
                progress: None,
                cancel: Some(&token),
            },
        )
        .unwrap_err();
    let returned = std::time::Instant::now();
    let cancelled_at = canceller.join().unwrap();
    assert_eq!(err.status(), Status::Cancelled, "{err}");
    let latency = returned - cancelled_at;
    assert!(
        latency < std::time::Duration::from_secs(1),
        "cancel took {latency:?}"
    );
    assert_store_consistent(store.root());
    assert!(olreg::Store::new(store.root()).list().unwrap().is_empty());
    // What arrived is kept for the next pull.
    let partials = files_under(&store.root().join(".olreg/partial"));
    assert!(
        partials.iter().any(|f| f.ends_with(".state")),
        "{partials:?}"
    );

    reg.clear_faults();
    client
        .pull(&name_of(&reg, &model), Default::default())
        .expect("resumes");
    assert_store_consistent(store.root());
}

#[test]
fn a_progress_callback_can_cancel() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[4 << 20], 5);
    stall_every_blob(&reg, 1 << 20, 5_000);
    let store = TempStore::new();
    let client = client(&store);
    let mut calls = 0;
    let mut cb = |p: &olreg::Progress| {
        calls += 1;
        p.event != ProgressEvent::Bytes
    };
    let err = client
        .pull(
            &name_of(&reg, &model),
            olreg::Watch {
                progress: Some(&mut cb),
                cancel: None,
            },
        )
        .unwrap_err();
    assert_eq!(err.status(), Status::Cancelled);
    assert!(calls >= 2);
}

#[test]
fn a_callback_that_stops_before_finished_cancels_even_when_the_work_got_done_first() {
    // Events reach the callback after the fact. Here the callback holds the
    // first event until the pull has linked the model, then asks to stop:
    // the call is still cancelled, as the callback's contract says.
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[1000], 6);
    let store = TempStore::new();
    let client = client(&store);
    let linked = store.manifest_path(&reg.host(), &model.repo, "t");
    let mut cb = |p: &olreg::Progress| {
        assert_eq!(p.event, ProgressEvent::Resolved);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !linked.exists() {
            assert!(Instant::now() < deadline, "the pull never linked");
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    };
    let watch = olreg::Watch {
        progress: Some(&mut cb),
        cancel: None,
    };
    let err = client.pull(&name_of(&reg, &model), watch).unwrap_err();
    assert_eq!(err.status(), Status::Cancelled);

    // Stopping at FINISHED changes nothing: the work is done.
    let mut at_finished = |p: &olreg::Progress| p.event != ProgressEvent::Finished;
    let watch = olreg::Watch {
        progress: Some(&mut at_finished),
        cancel: None,
    };
    client.pull(&name_of(&reg, &model), watch).expect("done");
    assert_store_consistent(store.root());
}
