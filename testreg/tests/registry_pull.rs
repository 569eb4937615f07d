//! The download side of the test registry over real sockets: manifests,
//! blob redirects to the blob store host, direct blobs, ranges, the request
//! log.

mod common;

use common::{get, get_range, head, resolve, Req};
use olreg_testreg::{BlobMode, Options, Server, TestRegistry};

#[test]
fn api_root_answers_empty_json() {
    let reg = TestRegistry::start(Options::default());
    let resp = get(&format!("{}/v2/", reg.url()));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json(), serde_json::json!({}));
    assert!(reg.url().starts_with("http://127.0.0.1:"));
    assert!(reg.blob_store_url().starts_with("http://127.0.0.2:"));
    assert_eq!(reg.ca_pem(), None);
}

#[test]
fn manifests_are_served_exactly_by_tag_and_by_digest() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("library/tiny:latest", &[1000, 10], 3);
    let base = format!("{}/v2/library/tiny", reg.url());

    let resp = get(&format!("{base}/manifests/latest"));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, model.manifest);
    assert_eq!(
        resp.header("content-type"),
        Some("application/vnd.docker.distribution.manifest.v2+json")
    );
    assert_eq!(
        resp.header("docker-content-digest"),
        Some(model.digest.as_str())
    );
    assert_eq!(resp.content_length(), Some(model.manifest.len()));

    let resp = head(&format!("{base}/manifests/latest"));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.content_length(), Some(model.manifest.len()));
    assert!(resp.body.is_empty());

    // By digest, on the manifests path and on the blobs path (Ollama's
    // client uses the latter).
    for path in ["manifests", "blobs"] {
        let resp = get(&format!("{base}/{path}/{}", model.digest));
        assert_eq!(resp.status, 200, "{path}");
        assert_eq!(resp.body, model.manifest, "{path}");
    }
    // Names are case-insensitive, as Ollama's are.
    assert_eq!(
        get(&format!("{}/v2/Library/Tiny/manifests/LATEST", reg.url())).status,
        200
    );

    let resp = get(&format!("{base}/manifests/nope"));
    assert_eq!(resp.status, 404);
    assert_eq!(
        resp.json(),
        serde_json::json!({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown", "detail": {"Tag": "nope"}}]})
    );
}

#[test]
fn raw_manifests_keep_their_bytes_and_type() {
    let reg = TestRegistry::start(Options::default());
    let digest = reg.put_manifest("a/b", "bad", "!!!");
    let resp = get(&format!("{}/v2/a/b/manifests/bad", reg.url()));
    assert_eq!(resp.body, b"!!!");
    assert_eq!(
        resp.header("content-type"),
        Some("application/vnd.docker.distribution.manifest.v2+json")
    );
    assert_eq!(resp.header("docker-content-digest"), Some(digest.as_str()));

    let oci = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#;
    reg.put_manifest("a/b", "oci", oci);
    let resp = get(&format!("{}/v2/a/b/manifests/oci", reg.url()));
    assert_eq!(
        resp.header("content-type"),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    assert_eq!(reg.manifest("a/b", "oci").as_deref(), Some(oci.as_bytes()));
}

#[test]
fn blobs_redirect_to_the_blob_store_which_checks_its_signature() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[5000], 1);
    let layer = &model.layers[0];
    let blob_url = format!("{}/v2/ns/m/blobs/{}", reg.url(), layer.digest);

    let resp = get(&blob_url);
    assert_eq!(resp.status, 307);
    let location = resp.header("location").expect("Location").to_string();
    let prefix = format!("{}/blobs/{}?sig=", reg.blob_store_url(), layer.digest);
    assert!(location.starts_with(&prefix), "{location}");

    let resp = get(&location);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, reg.blob(&layer.digest).expect("stored"));
    assert_eq!(
        resp.header("docker-content-digest"),
        Some(layer.digest.as_str())
    );

    // HEAD answers on the registry itself.
    let resp = head(&blob_url);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.content_length(), Some(5000));

    let forged = format!("{prefix}0000");
    assert_eq!(get(&forged).status, 403);
    let unsigned = format!("{}/blobs/{}", reg.blob_store_url(), layer.digest);
    assert_eq!(get(&unsigned).status, 403);

    let missing = format!("{}/v2/ns/m/blobs/sha256:{}", reg.url(), "0".repeat(64));
    let resp = get(&missing);
    assert_eq!(resp.status, 404);
    assert_eq!(resp.error_code(), "BLOB_UNKNOWN");
    assert_eq!(head(&missing).status, 404);
    let resp = get(&format!("{}/v2/ns/m/blobs/sha256:xyz", reg.url()));
    assert_eq!(resp.status, 400);
    assert_eq!(resp.error_code(), "DIGEST_INVALID");
}

#[test]
fn ranges_are_exact_on_both_modes() {
    for mode in [BlobMode::Redirect, BlobMode::Direct] {
        let reg = TestRegistry::start(Options::default().blob_mode(mode));
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let digest = reg.add_blob(data.clone());
        let mut url = format!("{}/v2/x/y/blobs/{digest}", reg.url());
        if mode == BlobMode::Redirect {
            let resp = get_range(&url, "bytes=0-0");
            assert_eq!(resp.status, 307);
            url = resolve(&url, resp.header("location").expect("Location"));
        }
        let cases = [
            ("bytes=0-0", 0, 0),
            ("bytes=10-19", 10, 19),
            ("bytes=990-", 990, 999),
            ("bytes=995-2000", 995, 999),
            ("bytes=-5", 995, 999),
        ];
        for (range, start, end) in cases {
            let resp = get_range(&url, range);
            assert_eq!(resp.status, 206, "{mode:?} {range}");
            assert_eq!(
                resp.header("content-range"),
                Some(format!("bytes {start}-{end}/1000").as_str()),
                "{mode:?} {range}"
            );
            assert_eq!(resp.content_length(), Some(end - start + 1));
            assert_eq!(resp.body, &data[start..=end], "{mode:?} {range}");
        }
        let resp = get_range(&url, "bytes=1000-");
        assert_eq!(resp.status, 416);
        assert_eq!(resp.header("content-range"), Some("bytes */1000"));
        let resp = get(&url);
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, data);
    }
}

#[test]
fn the_request_log_sees_both_hosts_in_order_with_statuses() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[10], 1);
    let url = format!("{}/v2/ns/m/blobs/{}", reg.url(), model.layers[0].digest);
    let resp = Req::new("GET", &url)
        .header("Authorization", "Bearer secret")
        .send();
    let location = resp.header("location").expect("Location").to_string();
    get(&location);

    let log = reg.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].server, Server::Registry);
    assert_eq!(log[0].status, 307);
    assert_eq!(log[0].header("authorization"), Some("Bearer secret"));
    assert_eq!(log[0].header("Authorization"), Some("Bearer secret"));
    assert_eq!(log[1].server, Server::BlobStore);
    assert_eq!(log[1].status, 200);
    assert_eq!(log[1].method, "GET");
    assert_eq!(log[1].header("authorization"), None);
    assert!(location.ends_with(&log[1].path_and_query));
    reg.clear_requests();
    assert!(reg.requests().is_empty());
}

#[test]
fn unknown_paths_and_methods_are_refused() {
    let reg = TestRegistry::start(Options::default());
    assert_eq!(
        get(&format!("{}/v2/a/b/c/manifests/x", reg.url())).status,
        404
    );
    assert_eq!(get(&format!("{}/elsewhere", reg.url())).status, 404);
    assert_eq!(get(&format!("{}/upload/x", reg.url())).status, 404);
    let resp = Req::new("DELETE", &format!("{}/v2/a/b/manifests/x", reg.url())).send();
    assert_eq!(resp.status, 405);
    assert_eq!(resp.error_code(), "UNSUPPORTED");
}

/// A real client (reqwest, keep-alive, redirects followed) pulling a blob in
/// parallel ranges gets exactly the blob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_client_pulls_in_parallel_ranges() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[3 << 20], 9);
    let layer = model.layers[0].clone();
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let url = format!("{}/v2/ns/m/blobs/{}", reg.url(), layer.digest);
    let first = client
        .get(&url)
        .header("Range", "bytes=0-0")
        .send()
        .await
        .expect("first byte");
    assert_eq!(first.status(), 206);
    let final_url = first.url().to_string();
    assert!(final_url.starts_with(&reg.blob_store_url()));

    let chunk = 256 * 1024;
    let mut tasks = Vec::new();
    for start in (0..layer.size).step_by(chunk) {
        let (client, final_url) = (client.clone(), final_url.clone());
        let end = (start + chunk as u64).min(layer.size) - 1;
        tasks.push(tokio::spawn(async move {
            let resp = client
                .get(&final_url)
                .header("Range", format!("bytes={start}-{end}"))
                .send()
                .await
                .expect("range");
            assert_eq!(resp.status(), 206);
            (start, resp.bytes().await.expect("body"))
        }));
    }
    let mut whole = vec![0u8; layer.size as usize];
    for task in tasks {
        let (start, bytes) = task.await.expect("task");
        whole[start as usize..start as usize + bytes.len()].copy_from_slice(&bytes);
    }
    assert_eq!(common::digest_of(&whole), layer.digest);
}
