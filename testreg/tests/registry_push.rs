//! The upload side: presigned uploads on the blob store, OCI upload
//! sessions, mounts, and manifest pushes with their checks.

mod common;

use common::{digest_of, resolve, Req};
use olreg_testreg::{Options, Server, TestRegistry, UploadMode};

fn post(reg: &TestRegistry, query: &str) -> common::Resp {
    Req::new(
        "POST",
        &format!("{}/v2/ns/m/blobs/uploads/{query}", reg.url()),
    )
    .send()
}

#[test]
fn presigned_uploads_go_to_the_blob_store_exactly_as_issued() {
    let reg = TestRegistry::start(Options::default());
    let data = b"some layer bytes".to_vec();
    let digest = digest_of(&data);

    let resp = post(&reg, &format!("?digest={digest}"));
    assert_eq!(resp.status, 202);
    let location = resp.header("location").expect("Location").to_string();
    assert!(
        location.starts_with(&format!("{}/upload/", reg.blob_store_url())),
        "{location}"
    );
    assert!(location.contains("X-Amz-Signature="));
    assert!(location.ends_with(&format!("&digest={digest}")));

    // Any change to the URL breaks the "signature".
    let tampered = format!("{location}&extra=1");
    assert_eq!(
        Req::new("PUT", &tampered).body(data.clone()).send().status,
        403
    );
    // Wrong content.
    let resp = Req::new("PUT", &location).body(&b"other"[..]).send();
    assert_eq!(resp.status, 400);
    assert_eq!(resp.error_code(), "DIGEST_INVALID");
    // Right content, with a credential it should not have been sent.
    let resp = Req::new("PUT", &location)
        .header("Authorization", "Bearer leaked")
        .body(data.clone())
        .send();
    assert_eq!(resp.status, 200);
    assert_eq!(reg.blob(&digest).as_deref(), Some(&data[..]));
    let puts: Vec<_> = reg
        .requests()
        .into_iter()
        .filter(|r| r.server == Server::BlobStore && r.method == "PUT")
        .collect();
    assert_eq!(puts.len(), 3);
    assert_eq!(puts[2].header("authorization"), Some("Bearer leaked"));
    assert_eq!(puts[0].header("authorization"), None);

    // Used up.
    assert_eq!(Req::new("PUT", &location).body(data).send().status, 404);
    // Now it exists: 201 without Location.
    let resp = post(&reg, &format!("?digest={digest}"));
    assert_eq!(resp.status, 201);
    assert_eq!(resp.header("location"), None);

    assert_eq!(post(&reg, "").status, 400);
    assert_eq!(post(&reg, "?digest=md5:00").status, 400);
}

#[test]
fn sessions_take_chunks_at_the_right_offset_with_the_latest_state() {
    let reg = TestRegistry::start(Options::default().upload_mode(UploadMode::Session));
    let data: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let digest = digest_of(&data);
    let base = reg.url();

    let resp = post(&reg, "");
    assert_eq!(resp.status, 202);
    assert_eq!(resp.header("range"), Some("0-0"));
    let uuid = resp.header("docker-upload-uuid").expect("uuid").to_string();
    let first = resp.header("location").expect("Location").to_string();
    assert!(first.starts_with(&format!("/v2/ns/m/blobs/uploads/{uuid}?_state=")));
    let first = resolve(&base, &first);

    let resp = Req::new("PATCH", &first)
        .header("Content-Range", "0-999")
        .body(&data[..1000])
        .send();
    assert_eq!(resp.status, 202);
    assert_eq!(resp.header("range"), Some("0-999"));
    let second = resolve(&base, resp.header("location").expect("Location"));
    assert_ne!(second, first);

    // The old _state is no longer accepted.
    let resp = Req::new("PATCH", &first).body(&data[1000..2000]).send();
    assert_eq!(resp.status, 400);
    // A chunk must start at the current offset.
    let resp = Req::new("PATCH", &second)
        .header("Content-Range", "500-1499")
        .body(&data[500..1500])
        .send();
    assert_eq!(resp.status, 416);
    assert_eq!(resp.header("range"), Some("0-999"));

    let resp = Req::new("GET", &second).send();
    assert_eq!(resp.status, 204);
    assert_eq!(resp.header("range"), Some("0-999"));

    let resp = Req::new("PATCH", &second).body(&data[1000..2000]).send();
    assert_eq!(resp.status, 202);
    let third = resolve(&base, resp.header("location").expect("Location"));

    // Wrong digest is refused and ends the session.
    let wrong = format!("{third}&digest={}", digest_of(b"x"));
    let resp = Req::new("PUT", &wrong).body(&data[2000..]).send();
    assert_eq!(resp.status, 400);
    assert_eq!(resp.error_code(), "DIGEST_INVALID");
    let resp = Req::new("PUT", &format!("{third}&digest={digest}")).send();
    assert_eq!(resp.status, 404);
    assert_eq!(resp.error_code(), "BLOB_UPLOAD_UNKNOWN");

    // Again, finishing with the last chunk in the PUT.
    let resp = post(&reg, "");
    let loc = resolve(&base, resp.header("location").expect("Location"));
    let resp = Req::new("PATCH", &loc).body(&data[..2000]).send();
    let loc = resolve(&base, resp.header("location").expect("Location"));
    let resp = Req::new("PUT", &format!("{loc}&digest={digest}"))
        .body(&data[2000..])
        .send();
    assert_eq!(resp.status, 201);
    assert_eq!(
        resp.header("location"),
        Some(format!("/v2/ns/m/blobs/{digest}").as_str())
    );
    assert_eq!(resp.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(reg.blob(&digest).as_deref(), Some(&data[..]));

    // Existing blob: 201 without Location, in this mode too.
    let resp = post(&reg, &format!("?digest={digest}"));
    assert_eq!((resp.status, resp.header("location")), (201, None));
}

#[test]
fn sessions_can_be_cancelled_and_are_per_repository() {
    let reg = TestRegistry::start(Options::default().upload_mode(UploadMode::Session));
    let resp = post(&reg, "");
    let loc = resp.header("location").expect("Location").to_string();
    let other_repo = resolve(&reg.url(), &loc.replace("/ns/m/", "/ns/other/"));
    assert_eq!(Req::new("GET", &other_repo).send().status, 404);
    let loc = resolve(&reg.url(), &loc);
    assert_eq!(Req::new("DELETE", &loc).send().status, 204);
    assert_eq!(Req::new("GET", &loc).send().status, 404);
}

#[test]
fn mounts_succeed_only_for_known_blobs() {
    let reg = TestRegistry::start(Options::default().upload_mode(UploadMode::Session));
    let digest = reg.add_blob(&b"shared"[..]);
    let resp = post(&reg, &format!("?mount={digest}&from=other/repo"));
    assert_eq!(resp.status, 201);
    assert_eq!(
        resp.header("location"),
        Some(format!("/v2/ns/m/blobs/{digest}").as_str())
    );
    let missing = digest_of(b"missing");
    let resp = post(&reg, &format!("?mount={missing}&from=other/repo"));
    assert_eq!(resp.status, 202);
    assert!(resp.header("docker-upload-uuid").is_some());
}

#[test]
fn manifest_pushes_need_json_and_every_blob() {
    let reg = TestRegistry::start(Options::default());
    let config = reg.add_blob(&b"{}"[..]);
    let layer = digest_of(b"layer");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{config}","size":2}},"layers":[{{"mediaType":"application/vnd.ollama.image.model","digest":"{layer}","size":5}}]}}"#
    );
    let url = format!("{}/v2/ns/m/manifests/v1", reg.url());
    let media = "application/vnd.docker.distribution.manifest.v2+json";

    let resp = Req::new("PUT", &url).body(&b"not json"[..]).send();
    assert_eq!(resp.status, 400);
    assert_eq!(resp.error_code(), "MANIFEST_INVALID");

    let resp = Req::new("PUT", &url)
        .header("Content-Type", media)
        .body(manifest.clone())
        .send();
    assert_eq!(resp.status, 400);
    assert_eq!(resp.error_code(), "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(resp.json()["errors"][0]["detail"], layer.as_str());

    reg.add_blob(&b"layer"[..]);
    let resp = Req::new("PUT", &url)
        .header("Content-Type", media)
        .body(manifest.clone())
        .send();
    assert_eq!(resp.status, 201);
    let digest = digest_of(manifest.as_bytes());
    assert_eq!(resp.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(
        reg.manifest("ns/m", "v1").as_deref(),
        Some(manifest.as_bytes())
    );
    assert_eq!(
        reg.manifest("ns/m", &digest).as_deref(),
        Some(manifest.as_bytes())
    );
    assert_eq!(
        reg.manifest_content_type("ns/m", "v1").as_deref(),
        Some(media)
    );
    let put = reg
        .requests()
        .into_iter()
        .rfind(|r| r.method == "PUT")
        .expect("recorded");
    assert_eq!(put.header("content-type"), Some(media));

    // By digest, the digest must match.
    let by_wrong_digest = format!("{}/v2/ns/m/manifests/{}", reg.url(), digest_of(b"x"));
    let resp = Req::new("PUT", &by_wrong_digest).body(manifest).send();
    assert_eq!(resp.status, 400);
    assert_eq!(resp.error_code(), "DIGEST_INVALID");
}

/// A whole model pushed to one registry and pulled back from another
/// through nothing but HTTP, in both upload modes.
#[test]
fn a_model_survives_a_round_trip() {
    for mode in [UploadMode::Presigned, UploadMode::Session] {
        let source = TestRegistry::start(Options::default());
        let model = source.add_model("ns/m:t", &[70_000, 3], 5);
        let target = TestRegistry::start(Options::default().upload_mode(mode));
        let mut blobs = model.layers.clone();
        blobs.push(model.config.clone());
        for blob in &blobs {
            let data = source.blob(&blob.digest).expect("source blob");
            let resp = post(&target, &format!("?digest={}", blob.digest));
            assert_eq!(resp.status, 202);
            let location = resolve(&target.url(), resp.header("location").expect("Location"));
            let put_url = match mode {
                UploadMode::Presigned => location,
                UploadMode::Session => format!("{location}&digest={}", blob.digest),
            };
            let resp = Req::new("PUT", &put_url).body(data.to_vec()).send();
            assert!(resp.status == 200 || resp.status == 201, "{}", resp.status);
        }
        let url = format!("{}/v2/ns/m/manifests/t", target.url());
        let resp = Req::new("PUT", &url).body(model.manifest.to_vec()).send();
        assert_eq!(resp.status, 201);
        assert_eq!(target.manifest("ns/m", "t"), Some(model.manifest.clone()));
    }
}
