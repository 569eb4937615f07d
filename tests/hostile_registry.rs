//! A registry (or the hosts it redirects to) that lies, misbehaves or
//! attacks: everything is refused with a clear error before harm is done.

mod common;

use common::*;
use olreg::{Status, Watch};

fn d(n: u8) -> String {
    olreg::Digest::of(&[n]).to_string()
}

#[test]
fn hostile_manifests_are_rejected_before_any_blob_is_fetched() {
    let reg = TestRegistry::start(Options::default());
    let layer = |digest: &str, size: &str| {
        format!(r#"{{"mediaType":"m","digest":"{digest}","size":{size}}}"#)
    };
    let manifest =
        |layers: Vec<String>| format!(r#"{{"schemaVersion":2,"layers":[{}]}}"#, layers.join(","));
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "negative size",
            manifest(vec![layer(&d(1), "-5")]),
            "not a non-negative integer",
        ),
        (
            "absurd size",
            manifest(vec![layer(&d(1), "2000000000000")]),
            "over the 1099511627776 byte limit",
        ),
        (
            "float size",
            manifest(vec![layer(&d(1), "1.5")]),
            "not a non-negative integer",
        ),
        (
            "sha512",
            manifest(vec![layer(&format!("sha512:{}", "a".repeat(128)), "1")]),
            "not a sha256 digest",
        ),
        (
            "short digest",
            manifest(vec![layer("sha256:abc", "1")]),
            "64 hex digits",
        ),
        (
            "dotdot digest",
            manifest(vec![layer(
                &format!("sha256:../../../../etc/{}", "a".repeat(50)),
                "1",
            )]),
            "invalid digest",
        ),
        (
            "uppercase digest",
            manifest(vec![layer(
                &d(1).to_uppercase().replace("SHA256", "sha256"),
                "1",
            )]),
            "lowercase hex",
        ),
        (
            "too many layers",
            manifest((0..1001).map(|_| layer(&d(1), "1")).collect()),
            "1001 layers",
        ),
        (
            "huge body",
            format!(r#"{{"pad":"{}","layers":[]}}"#, "x".repeat(5 << 20)),
            "byte limit",
        ),
        (
            "config digest",
            format!(
                r#"{{"config":{{"digest":"md5:x","size":1}},"layers":[{}]}}"#,
                layer(&d(1), "1")
            ),
            "config",
        ),
    ];
    let store = TempStore::new();
    let client = client(&store);
    for (i, (what, body, why)) in cases.iter().enumerate() {
        let tag = format!("t{i}");
        reg.put_manifest("ns/m", &tag, body.clone().into_bytes());
        reg.clear_requests();
        let err = client
            .pull(
                &format!("http://{}/ns/m:{tag}", reg.host()),
                Watch::default(),
            )
            .unwrap_err();
        assert_eq!(err.status(), Status::InvalidManifest, "{what}: {err}");
        assert!(err.to_string().contains(why), "{what}: {err}");
        assert!(
            reg.requests()
                .iter()
                .all(|r| !r.path_and_query.contains("/blobs/")),
            "{what}"
        );
    }
    assert!(files_under(store.root())
        .iter()
        .all(|f| !f.starts_with("blobs/") && !f.starts_with("manifests/")));
}

#[test]
fn a_huge_error_body_is_cut_short() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[10], 1);
    reg.inject(
        Fault::status(Target::Manifest, 418, ErrorBody::Text("x".repeat(8 << 20))).forever(),
    );
    let store = TempStore::new();
    let err = client(&store)
        .pull(&name_of(&reg, &model), Watch::default())
        .unwrap_err();
    assert_eq!(err.http_status(), Some(418));
    assert!(
        err.to_string().len() < 2048,
        "the message is bounded: {} bytes",
        err.to_string().len()
    );
}

fn pull_with_blob_fault(kind: FaultKind, chunked: bool) -> olreg::Error {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[3 << 20], 1);
    let layer = model.layers[0].digest.clone();
    reg.inject(
        Fault::new(
            Target::BlobStore {
                digest: Some(layer.clone()),
            },
            kind,
        )
        .forever()
        .after(u32::from(chunked)),
    );
    let store = TempStore::new();
    let mut b = builder(&store);
    if chunked {
        b = b.chunk_threshold(1 << 20).chunk_size(1 << 20);
    }
    let err = b
        .build()
        .unwrap()
        .pull(&name_of(&reg, &model), Watch::default())
        .unwrap_err();
    assert!(!store.blob_path(&layer).exists());
    assert_store_consistent(store.root());
    err
}

#[test]
fn blob_answers_that_do_not_match_the_request_are_errors() {
    let err = pull_with_blob_fault(FaultKind::ExtraBytes { count: 10 }, false);
    assert_eq!(err.status(), Status::Protocol, "{err}");
    let err = pull_with_blob_fault(FaultKind::ExtraBytes { count: 10 }, true);
    assert_eq!(err.status(), Status::Protocol, "{err}");
    let err = pull_with_blob_fault(FaultKind::WrongContentRange, true);
    assert_eq!(err.status(), Status::Protocol, "{err}");
    assert!(err.to_string().contains("Content-Range"), "{err}");
    let err = pull_with_blob_fault(FaultKind::IgnoreRange, true);
    assert_eq!(err.status(), Status::Protocol, "{err}");
    let err = pull_with_blob_fault(FaultKind::ShortBody, false);
    assert_eq!(
        err.status(),
        Status::Network,
        "a body that ends early is retried, then reported: {err}"
    );
    assert!(
        err.to_string().contains("end of file") || err.to_string().contains("early"),
        "{err}"
    );
}

#[test]
fn a_server_without_ranges_still_serves_a_large_blob_in_one_stream() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[3 << 20], 1);
    reg.inject(Fault::new(Target::BlobStore { digest: None }, FaultKind::IgnoreRange).forever());
    let store = TempStore::new();
    let client = builder(&store)
        .chunk_threshold(1 << 20)
        .chunk_size(1 << 20)
        .build()
        .unwrap();
    client
        .pull(&name_of(&reg, &model), Watch::default())
        .expect("falls back to one stream");
    assert_store_consistent(store.root());
}

#[test]
fn redirect_loops_and_other_schemes_are_refused() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[100], 1);
    let layer = model.layers[0].digest.clone();
    let store = TempStore::new();
    let client = client(&store);
    let own = format!("{}/v2/ns/m/blobs/{layer}", reg.url());
    for (location, why) in [
        (own.as_str(), "loop"),
        ("ftp://127.0.0.1/blob", "\"ftp\" scheme"),
        ("file:///etc/passwd", "\"file\" scheme"),
        ("http://[::1", "not a valid URL"),
    ] {
        reg.clear_faults();
        reg.inject(
            Fault::new(
                Target::Blob {
                    digest: Some(layer.clone()),
                },
                FaultKind::Redirect {
                    location: location.into(),
                    code: 307,
                },
            )
            .forever(),
        );
        let err = client
            .pull(&name_of(&reg, &model), Watch::default())
            .unwrap_err();
        assert_eq!(err.status(), Status::Protocol, "{location}: {err}");
        assert!(err.to_string().contains(why), "{location}: {err}");
    }
}

#[test]
fn tls_cannot_be_downgraded_by_a_redirect_unless_insecure() {
    let reg = TestRegistry::start(Options::default().tls(true));
    let plain = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[100], 1);
    let layer = &model.layers[0].digest;
    plain.add_blob(reg.blob(layer).unwrap());
    let downgrade = format!("{}/v2/ns/m/blobs/{layer}", plain.url());
    reg.inject(
        Fault::new(
            Target::Blob {
                digest: Some(layer.clone()),
            },
            FaultKind::Redirect {
                location: downgrade,
                code: 307,
            },
        )
        .forever(),
    );
    let store = TempStore::new();
    let trusting = builder(&store)
        .add_ca_pem(reg.ca_pem().unwrap())
        .build()
        .unwrap();
    let err = trusting
        .pull(&format!("https://{}/ns/m:t", reg.host()), Watch::default())
        .unwrap_err();
    assert_eq!(err.status(), Status::Protocol, "{err}");
    assert!(err.to_string().contains("plain http"), "{err}");
    // The caller's explicit insecure mode allows it.
    trusting
        .pull(
            &format!("https+insecure://{}/ns/m:t", reg.host()),
            Watch::default(),
        )
        .expect("insecure mode follows the downgrade");
}
