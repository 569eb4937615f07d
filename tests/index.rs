//! Image indexes and manifest lists against the test registry: the entry
//! for the client's platform is followed and stored under the tag; indexes
//! that lie about their entries are refused before any blob is fetched.

mod common;

use common::*;
use olreg::{Digest, Status, Watch};
use olreg_testreg::registry::MANIFEST_MEDIA_TYPE;

/// A registry serving `ns/m:v1` as an index of two models (amd64 and
/// arm64/v8) and an entry no client runs on.
struct Multi {
    reg: TestRegistry,
    amd64: Model,
    arm64: Model,
    index: Vec<u8>,
}

impl Multi {
    fn start(media_type: &str) -> Multi {
        let reg = TestRegistry::start(Options::default());
        let amd64 = reg.add_model("ns/m:amd64", &[2000, 10], 61);
        let arm64 = reg.add_model("ns/m:arm64", &[3000], 62);
        let index = image_index(
            media_type,
            &[
                (&amd64.manifest, "linux/amd64"),
                (&arm64.manifest, "linux/arm64/v8"),
                (&amd64.manifest, "unknown/unknown"),
            ],
        );
        reg.put_manifest("ns/m", "v1", index.clone());
        Multi {
            reg,
            amd64,
            arm64,
            index,
        }
    }

    fn name(&self) -> String {
        format!("http://{}/ns/m:v1", self.reg.host())
    }

    fn blob_requests(&self) -> usize {
        self.reg
            .requests()
            .iter()
            .filter(|r| r.path().contains("/blobs/") || r.server == Server::BlobStore)
            .count()
    }
}

fn on(store: &TempStore, platform: &str) -> olreg::Client {
    builder(store).platform(platform).build().unwrap()
}

#[test]
fn the_entry_for_the_platform_is_stored_under_the_tag() {
    for media_type in [OCI_INDEX, DOCKER_LIST] {
        let multi = Multi::start(media_type);
        for (platform, model) in [
            ("linux/amd64", &multi.amd64),
            ("linux/arm64", &multi.arm64),
            ("linux/arm64/v8", &multi.arm64),
        ] {
            let store = TempStore::new();
            let client = on(&store, platform);
            let pulled = client.pull(&multi.name(), Watch::default()).unwrap();
            assert_eq!(pulled.digest().to_string(), model.digest, "{platform}");
            assert_eq!(
                client.show(&multi.name()).unwrap(),
                model.manifest.to_vec(),
                "the child, byte for byte, under the index's tag"
            );
            for blob in model.layers.iter().chain([&model.config]) {
                assert!(store.blob_path(&blob.digest).is_file(), "{platform}");
            }
            assert_store_consistent(store.root());
            // resolve answers what a pull stores.
            let resolved = client.resolve(&multi.name(), Watch::default()).unwrap();
            assert_eq!(resolved.digest().to_string(), model.digest);
        }
    }
}

#[test]
fn the_default_platform_is_this_machines() {
    let multi = Multi::start(OCI_INDEX);
    let store = TempStore::new();
    let client = client(&store);
    let host = olreg::Platform::host();
    let result = client.pull(&multi.name(), Watch::default());
    match (host.os(), host.architecture()) {
        ("linux", "amd64") => {
            assert_eq!(result.unwrap().digest().to_string(), multi.amd64.digest)
        }
        ("linux", "arm64") => {
            assert_eq!(result.unwrap().digest().to_string(), multi.arm64.digest)
        }
        _ => assert_eq!(result.unwrap_err().status(), Status::NotFound),
    }
}

#[test]
fn an_index_without_the_platform_says_what_it_offers() {
    let multi = Multi::start(OCI_INDEX);
    let store = TempStore::new();
    let err = on(&store, "windows/amd64")
        .pull(&multi.name(), Watch::default())
        .unwrap_err();
    assert_eq!(err.status(), Status::NotFound, "{err}");
    let text = err.to_string();
    for part in [
        "windows/amd64",
        "image index",
        "linux/amd64, linux/arm64/v8, unknown/unknown",
    ] {
        assert!(text.contains(part), "{part:?} in {text}");
    }
    assert_eq!(multi.blob_requests(), 0);
    assert!(files_under(&store.root().join("manifests")).is_empty());
}

#[test]
fn pull_by_the_index_digest_stores_the_platforms_manifest() {
    let multi = Multi::start(OCI_INDEX);
    let store = TempStore::new();
    let client = on(&store, "linux/arm64");
    let by_digest = format!("{}@{}", multi.name(), Digest::of(&multi.index));
    let pulled = client.pull(&by_digest, Watch::default()).unwrap();
    assert_eq!(pulled.digest().to_string(), multi.arm64.digest);
    assert_eq!(
        client.show(&multi.name()).unwrap(),
        multi.arm64.manifest.to_vec()
    );
}

#[test]
fn a_model_pulled_through_an_index_pushes_as_an_ordinary_manifest() {
    let multi = Multi::start(DOCKER_LIST);
    let store = TempStore::new();
    let client = on(&store, "linux/arm64");
    client.pull(&multi.name(), Watch::default()).unwrap();
    let dst = TestRegistry::start(Options::default().distribution_like());
    client
        .push(
            &format!("http://{}/ns/copy:v1", dst.host()),
            Some(&multi.name()),
            Watch::default(),
        )
        .unwrap();
    assert_eq!(dst.manifest("ns/copy", "v1").unwrap(), multi.arm64.manifest);
    assert_eq!(
        dst.manifest_content_type("ns/copy", "v1").as_deref(),
        Some(MANIFEST_MEDIA_TYPE)
    );
}

#[test]
fn indexes_that_lie_about_their_entries_are_refused_before_any_blob() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:real", &[2000], 63);
    let entry = |digest: &str, size: usize| {
        serde_json::json!({
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": digest,
            "size": size,
            "platform": {"os": "linux", "architecture": "amd64"},
        })
    };
    let index_of = |entries: Vec<serde_json::Value>| {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries,
        }))
        .unwrap()
    };
    let real = &model.manifest;
    let size = real.len();
    // A child the registry serves with other bytes than the entry's digest.
    let forged = Digest::of(b"not the manifest").to_string();
    reg.put_manifest("ns/m", &forged, real.clone());
    // A child that is itself an index.
    let inner = image_index(OCI_INDEX, &[(real, "linux/amd64")]);
    reg.put_manifest("ns/m", "inner", inner.clone());
    let inner_digest = Digest::of(&inner).to_string();
    let many: Vec<serde_json::Value> = (0..1001).map(|_| entry(&model.digest, size)).collect();

    let cases: Vec<(&str, Vec<u8>, Status, &str)> = vec![
        (
            "wrong digest",
            index_of(vec![entry(&forged, size)]),
            Status::DigestMismatch,
            "digest mismatch",
        ),
        (
            "claims fewer bytes",
            index_of(vec![entry(&model.digest, size - 1)]),
            Status::InvalidManifest,
            "limit",
        ),
        (
            "claims more bytes",
            index_of(vec![entry(&model.digest, size + 10)]),
            Status::SizeMismatch,
            "size mismatch",
        ),
        (
            "nested index",
            index_of(vec![entry(&inner_digest, inner.len())]),
            Status::InvalidManifest,
            "nested",
        ),
        (
            "1001 entries",
            index_of(many),
            Status::InvalidManifest,
            "1001 entries",
        ),
        (
            "huge child claimed",
            index_of(vec![entry(&model.digest, 5 << 20)]),
            Status::InvalidManifest,
            "manifest limit",
        ),
        (
            "no entries",
            index_of(vec![]),
            Status::InvalidManifest,
            "no manifests",
        ),
    ];
    for (what, index, status, why) in cases {
        reg.put_manifest("ns/m", "v1", index);
        reg.clear_requests();
        let store = TempStore::new();
        let err = on(&store, "linux/amd64")
            .pull(&format!("http://{}/ns/m:v1", reg.host()), Watch::default())
            .unwrap_err();
        assert_eq!(err.status(), status, "{what}: {err}");
        assert!(err.to_string().contains(why), "{what}: {err}");
        let blobs: Vec<_> = reg
            .requests()
            .into_iter()
            .filter(|r| r.path().contains("/blobs/") || r.server == Server::BlobStore)
            .collect();
        assert!(blobs.is_empty(), "{what}: {blobs:?}");
        assert!(
            files_under(&store.root().join("manifests")).is_empty(),
            "{what}"
        );
    }
}

#[test]
fn a_bad_platform_option_is_refused_when_the_client_is_built() {
    for bad in ["linux", "linux/", "a/b/c/d", "linux/amd\u{1b}64"] {
        let err = builder(&TempStore::new())
            .platform(bad)
            .build()
            .err()
            .unwrap_or_else(|| panic!("{bad:?} accepted"));
        assert_eq!(err.status(), Status::InvalidArgument, "{bad:?}: {err}");
        assert!(err.to_string().contains("os/arch"), "{err}");
    }
}
