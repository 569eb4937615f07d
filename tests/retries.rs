//! Retries, backoff and stalls for every kind of request (issue: faults).

mod common;

use std::time::{Duration, Instant};

use common::*;
use olreg::{Status, Watch};

fn count(reg: &TestRegistry, method: &str, needle: &str) -> usize {
    reg.requests()
        .iter()
        .filter(|r| r.method == method && r.path_and_query.contains(needle))
        .count()
}

fn status(code: u16) -> FaultKind {
    FaultKind::Status {
        code,
        body: ErrorBody::oci("UNAVAILABLE", "try later"),
        retry_after: None,
    }
}

/// Pushes `model` (pulled from `src`) as `ns/m:t` to a new registry with
/// `options` and `faults`, checks it arrived byte for byte, and returns the
/// registry.
fn push_through(
    client: &olreg::Client,
    src: &TestRegistry,
    model: &Model,
    options: Options,
    faults: impl IntoIterator<Item = Fault>,
) -> TestRegistry {
    let dst = TestRegistry::start(options);
    for fault in faults {
        dst.inject(fault);
    }
    client
        .push(
            &format!("http://{}/ns/m:t", dst.host()),
            Some(&name_of(src, model)),
            Watch::default(),
        )
        .expect("retries absorb every fault");
    assert_eq!(dst.manifest("ns/m", "t").unwrap(), model.manifest);
    dst
}

#[test]
fn every_pull_request_kind_is_retried() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[6 << 20, 1000], 11);
    let big = model.layers[0].digest.clone();
    let small = model.layers[1].digest.clone();
    // The manifest fails twice, the small blob's redirect answers 502, its
    // bytes break off twice, and two chunks of the large blob fail.
    reg.inject(Fault::new(Target::Manifest, status(503)).times(2));
    reg.inject(
        Fault::new(
            Target::Blob {
                digest: Some(small.clone()),
            },
            status(502),
        )
        .times(1),
    );
    reg.inject(
        Fault::new(
            Target::BlobStore {
                digest: Some(small.clone()),
            },
            FaultKind::DropAfter { bytes: 300 },
        )
        .times(2),
    );
    reg.inject(
        Fault::new(
            Target::BlobStore {
                digest: Some(big.clone()),
            },
            FaultKind::ShortBody,
        )
        .times(1)
        .after(2),
    );
    reg.inject(
        Fault::new(
            Target::BlobStore {
                digest: Some(big.clone()),
            },
            status(500),
        )
        .times(1)
        .after(3),
    );
    let store = TempStore::new();
    let client = builder(&store)
        .chunk_threshold(1 << 20)
        .chunk_size(1 << 20)
        .build()
        .unwrap();
    client
        .pull(&name_of(&reg, &model), Watch::default())
        .expect("retries absorb every fault");
    assert_store_consistent(store.root());
    assert_eq!(count(&reg, "GET", "/manifests/"), 3);
    // The small blob resumed from the bytes it had each time.
    let small_ranges: Vec<String> = requests_on(&reg, Server::BlobStore)
        .into_iter()
        .filter(|r| r.path_and_query.contains(&small))
        .map(|r| r.header("range").unwrap_or("whole").to_string())
        .collect();
    assert_eq!(
        small_ranges,
        vec!["whole", "bytes=300-999", "bytes=600-999"]
    );
}

#[test]
fn every_push_request_kind_is_retried() {
    let src = TestRegistry::start(Options::default());
    let model = src.add_model("ns/m:t", &[2000], 3);
    let store = TempStore::new();
    let client = client(&store);
    client
        .pull(&name_of(&src, &model), Watch::default())
        .unwrap();
    for options in [Options::default(), Options::default().distribution_like()] {
        let dst = push_through(
            &client,
            &src,
            &model,
            options,
            [
                Fault::new(Target::Upload, status(503)).times(2),
                Fault::new(Target::UploadPut, status(500)).times(1),
                Fault::new(Target::ManifestPut, status(502)).times(2),
            ],
        );
        assert_eq!(count(&dst, "PUT", "/manifests/"), 3);
    }
}

/// Answers cut off mid-body: the manifest, the token and every upload
/// step are asked again under the retry policy, as blob bodies are.
#[test]
fn every_request_kind_survives_a_cut_body() {
    let vector: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/auth-vector.json")).unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("id_ed25519");
    std::fs::write(&key, vector["private_key_openssh"].as_str().unwrap()).unwrap();
    let src = TestRegistry::start(Options::default().auth(Auth::OllamaChallenge {
        public_keys: vec![],
        token_ttl_secs: 300,
    }));
    let model = src.add_model("ns/m:t", &[3 << 20, 2000], 5);
    src.inject(Fault::new(Target::Manifest, FaultKind::CutBody));
    src.inject(Fault::new(Target::Token, FaultKind::CutBody));
    let store = TempStore::new();
    let client = builder(&store)
        .key_file(&key)
        .chunk_threshold(1 << 20)
        .chunk_size(1 << 20)
        .upload_chunk_size(1 << 20)
        .build()
        .unwrap();
    client
        .pull(&name_of(&src, &model), Watch::default())
        .expect("a cut manifest and a cut token are fetched again");
    assert_eq!(count(&src, "GET", "/manifests/t"), 3, "401, cut, whole");
    assert_eq!(count(&src, "GET", "/token"), 2, "cut, whole");

    for options in [Options::default(), Options::default().distribution_like()] {
        let dst = push_through(
            &client,
            &src,
            &model,
            options,
            [
                Fault::new(Target::Upload, FaultKind::CutBody),
                Fault::new(Target::UploadPut, FaultKind::CutBody).after(1),
                Fault::new(Target::ManifestPut, FaultKind::CutBody),
            ],
        );
        assert_eq!(count(&dst, "PUT", "/manifests/"), 2, "cut, whole");
    }
}

#[test]
fn other_4xx_are_not_retried() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[1000], 3);
    reg.inject(Fault::new(Target::BlobStore { digest: None }, status(403)).forever());
    let store = TempStore::new();
    let err = client(&store)
        .pull(&name_of(&reg, &model), Watch::default())
        .unwrap_err();
    assert_eq!(err.status(), Status::Unauthorized, "{err}");
    let mut paths: Vec<String> = requests_on(&reg, Server::BlobStore)
        .into_iter()
        .map(|r| r.path_and_query)
        .collect();
    let before = paths.len();
    paths.sort();
    paths.dedup();
    assert_eq!(
        before,
        paths.len(),
        "a 403 is final: no blob was asked for twice"
    );
    reg.clear_faults();
    reg.inject(Fault::new(Target::Manifest, status(400)).forever());
    reg.clear_requests();
    let err = client(&store)
        .pull(&name_of(&reg, &model), Watch::default())
        .unwrap_err();
    assert_eq!(err.http_status(), Some(400));
    assert_eq!(count(&reg, "GET", "/manifests/"), 1);
}

#[test]
fn retry_after_is_honoured() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[10], 3);
    reg.inject(Fault::new(
        Target::Manifest,
        FaultKind::Status {
            code: 429,
            body: ErrorBody::ollama("TOOMANYREQUESTS", "slow down"),
            retry_after: Some("1".into()),
        },
    ));
    let store = TempStore::new();
    let client = builder(&store)
        .retry_max_delay(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    client
        .pull(&name_of(&reg, &model), Watch::default())
        .expect("429 is retried");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        started.elapsed()
    );
}

#[test]
fn attempts_are_bounded() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[10], 3);
    reg.inject(Fault::new(Target::Manifest, status(500)).forever());
    let store = TempStore::new();
    let client = builder(&store)
        .retry_attempts(3)
        .retry_base_delay(Duration::from_millis(1))
        .build()
        .unwrap();
    let err = client
        .pull(&name_of(&reg, &model), Watch::default())
        .unwrap_err();
    assert_eq!(err.http_status(), Some(500));
    assert_eq!(count(&reg, "GET", "/manifests/"), 3);
}

#[test]
fn cancellation_interrupts_a_backoff_at_once() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[10], 3);
    reg.inject(
        Fault::new(
            Target::Manifest,
            FaultKind::Status {
                code: 503,
                body: ErrorBody::Empty,
                retry_after: Some("60".into()),
            },
        )
        .forever(),
    );
    let store = TempStore::new();
    let client = builder(&store)
        .retry_max_delay(Duration::from_secs(60))
        .build()
        .unwrap();
    let token = olreg::CancelToken::new();
    let t = token.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        t.cancel();
        Instant::now()
    });
    let err = client
        .pull(
            &name_of(&reg, &model),
            Watch {
                progress: None,
                cancel: Some(&token),
            },
        )
        .unwrap_err();
    let latency = canceller.join().unwrap().elapsed();
    assert_eq!(err.status(), Status::Cancelled);
    assert!(latency < Duration::from_millis(500), "{latency:?}");
}

#[test]
fn stalls_before_and_after_the_first_byte_are_abandoned_and_retried() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[200_000], 3);
    reg.inject(Fault::new(
        Target::BlobStore { digest: None },
        FaultKind::StallHeaders { millis: 5_000 },
    ));
    reg.inject(Fault::new(
        Target::BlobStore { digest: None },
        FaultKind::Stall {
            after_bytes: 1000,
            millis: 5_000,
        },
    ));
    reg.inject(Fault::new(
        Target::Manifest,
        FaultKind::StallHeaders { millis: 5_000 },
    ));
    let store = TempStore::new();
    let client = builder(&store)
        .stall_timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    let started = Instant::now();
    client
        .pull(&name_of(&reg, &model), Watch::default())
        .expect("stalls are retried");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_store_consistent(store.root());
}

#[test]
fn an_expired_storage_url_is_resolved_again() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[4 << 20], 12);
    let layer = model.layers[0].digest.clone();
    // Mid-download the CDN starts refusing the URL it was given.
    reg.inject(
        Fault::status(
            Target::BlobStore {
                digest: Some(layer.clone()),
            },
            403,
            ErrorBody::Text("Request has expired".into()),
        )
        .times(1)
        .after(3),
    );
    let store = TempStore::new();
    let client = builder(&store)
        .chunk_threshold(1 << 20)
        .chunk_size(1 << 20)
        .streams(1)
        .build()
        .unwrap();
    client
        .pull(&name_of(&reg, &model), Watch::default())
        .expect("a fresh URL is fetched");
    assert_store_consistent(store.root());
    let redirects = requests_on(&reg, Server::Registry)
        .iter()
        .filter(|r| r.path_and_query.ends_with(&format!("/blobs/{layer}")))
        .count();
    assert_eq!(redirects, 2, "the registry was asked once more");
}
