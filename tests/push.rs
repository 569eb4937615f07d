//! Pushes against the test registry on loopback.

mod common;

use common::*;
use olreg::{ProgressEvent, Status, Watch};

/// A store holding `model`, pulled from `src`.
fn pulled(src: &TestRegistry, model: &Model) -> (TempStore, olreg::Client) {
    let store = TempStore::new();
    let client = client(&store);
    client
        .pull(&name_of(src, model), Watch::default())
        .expect("pull");
    (store, client)
}

#[test]
fn push_one_and_many_layers_with_presigned_uploads() {
    let src = TestRegistry::start(Options::default());
    let dst = TestRegistry::start(Options::default());
    for (tag, sizes) in [
        ("one", vec![3000u64]),
        ("many", vec![10, 2000, 30_000, 400_000, 5]),
    ] {
        let model = src.add_model(&format!("ns/m:{tag}"), &sizes, 9);
        let (_store, client) = pulled(&src, &model);
        let target = format!("http://{}/other/copy:{tag}", dst.host());
        let mut events = Vec::new();
        let mut cb = |p: &olreg::Progress| {
            events.push(p.event);
            true
        };
        let pushed = client
            .push(
                &target,
                Some(&name_of(&src, &model)),
                Watch {
                    progress: Some(&mut cb),
                    cancel: None,
                },
            )
            .expect("push");
        assert_eq!(pushed.digest().to_string(), model.digest);
        assert_eq!(
            dst.manifest("other/copy", tag).unwrap(),
            model.manifest,
            "the exact bytes are pushed"
        );
        assert_eq!(
            dst.manifest_content_type("other/copy", tag).as_deref(),
            Some("application/vnd.docker.distribution.manifest.v2+json")
        );
        for blob in model.layers.iter().chain([&model.config]) {
            assert_eq!(
                dst.blob(&blob.digest),
                src.blob(&blob.digest),
                "{}",
                blob.digest
            );
        }
        assert_eq!(events.first(), Some(&ProgressEvent::Resolved));
        assert_eq!(events.last(), Some(&ProgressEvent::Finished));
    }
}

#[test]
fn blobs_the_registry_has_are_not_uploaded() {
    let src = TestRegistry::start(Options::default());
    let dst = TestRegistry::start(Options::default());
    let model = src.add_model("ns/m:t", &[1000, 2000], 2);
    let (_store, client) = pulled(&src, &model);
    // The destination already has the first layer.
    dst.add_blob(src.blob(&model.layers[0].digest).unwrap());
    client
        .push(
            &format!("http://{}/ns/m:t", dst.host()),
            Some(&name_of(&src, &model)),
            Watch::default(),
        )
        .unwrap();
    let uploads: Vec<_> = dst
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path_and_query.starts_with("/upload/"))
        .collect();
    assert_eq!(
        uploads.len(),
        2,
        "only the second layer and the config are sent: {uploads:?}"
    );
    assert!(uploads
        .iter()
        .all(|r| !r.path_and_query.contains(&model.layers[0].digest[7..])));
}

#[test]
fn presigned_upload_urls_get_no_credentials() {
    let src = TestRegistry::start(Options::default());
    let dst = TestRegistry::start(Options::default().auth(Auth::Basic {
        user: "u".into(),
        password: "p".into(),
    }));
    let model = src.add_model("ns/m:t", &[1000], 2);
    let store = TempStore::new();
    let client = builder(&store)
        .credential(&dst.host(), "u", "p")
        .build()
        .unwrap();
    client
        .pull(&name_of(&src, &model), Watch::default())
        .unwrap();
    client
        .push(
            &format!("http://{}/ns/m:t", dst.host()),
            Some(&name_of(&src, &model)),
            Watch::default(),
        )
        .unwrap();
    let store_reqs = requests_on(&dst, Server::BlobStore);
    assert!(!store_reqs.is_empty());
    assert!(
        store_reqs
            .iter()
            .all(|r| r.header("authorization").is_none()),
        "{store_reqs:?}"
    );
    assert!(requests_on(&dst, Server::Registry).iter().any(|r| r
        .header("authorization")
        .is_some_and(|a| a.starts_with("Basic "))));
}

#[test]
fn upload_sessions_with_chunks() {
    let src = TestRegistry::start(Options::default());
    let dst = TestRegistry::start(Options::default().distribution_like());
    let model = src.add_model("ns/m:t", &[(3 << 20) + 17, 100], 4);
    let store = TempStore::new();
    let client = builder(&store)
        .chunk_threshold(1 << 20)
        .chunk_size(1 << 20)
        .upload_chunk_size(1 << 20)
        .build()
        .unwrap();
    client
        .pull(&name_of(&src, &model), Watch::default())
        .unwrap();
    client
        .push(
            &format!("http://{}/ns/m:t", dst.host()),
            Some(&name_of(&src, &model)),
            Watch::default(),
        )
        .unwrap();
    for blob in model.layers.iter().chain([&model.config]) {
        assert_eq!(dst.blob(&blob.digest), src.blob(&blob.digest));
    }
    let patches = dst
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(patches, 4, "the large layer goes in four PATCH pieces");
    let puts: Vec<_> = dst
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path_and_query.contains("/blobs/uploads/"))
        .collect();
    assert_eq!(puts.len(), 3);
    for put in &puts {
        assert!(
            put.path_and_query.contains("_state="),
            "the session's query is kept: {put:?}"
        );
        assert!(put.path_and_query.contains("digest=sha256"), "{put:?}");
        assert_eq!(put.header("content-type"), Some("application/octet-stream"));
    }
}

#[test]
fn an_invalid_upload_location_is_an_error() {
    let src = TestRegistry::start(Options::default());
    let dst = TestRegistry::start(Options::default());
    let model = src.add_model("ns/m:t", &[1000], 2);
    let (_store, client) = pulled(&src, &model);
    for location in [
        "http://[::1",
        "ftp://127.0.0.1/upload",
        "file:///etc/passwd",
    ] {
        dst.clear_faults();
        dst.inject(
            Fault::new(
                Target::Upload,
                FaultKind::UploadLocation {
                    location: location.into(),
                },
            )
            .forever(),
        );
        let err = client
            .push(
                &format!("http://{}/ns/m:t", dst.host()),
                Some(&name_of(&src, &model)),
                Watch::default(),
            )
            .unwrap_err();
        assert_eq!(err.status(), Status::Protocol, "{location}: {err}");
        assert!(err.to_string().contains("Location"), "{err}");
        assert!(dst.manifest("ns/m", "t").is_none());
    }
}

#[test]
fn broken_local_models_fail_before_any_request() {
    let src = TestRegistry::start(Options::default());
    let dst = TestRegistry::start(Options::default());
    let model = src.add_model("ns/m:t", &[1000, 2000], 2);
    let (store, client) = pulled(&src, &model);
    let manifest_path = store.manifest_path(&src.host(), "ns/m", "t");
    let target = format!("http://{}/ns/m:t", dst.host());
    let from = name_of(&src, &model);

    let check = |what: &str, status: Status| {
        dst.clear_requests();
        let err = client
            .push(&target, Some(&from), Watch::default())
            .unwrap_err();
        assert_eq!(err.status(), status, "{what}: {err}");
        assert!(
            dst.requests().is_empty(),
            "{what}: requests were made: {:?}",
            dst.requests()
        );
        err
    };

    // A missing blob.
    let layer = store.blob_path(&model.layers[1].digest);
    let saved = std::fs::read(&layer).unwrap();
    std::fs::remove_file(&layer).unwrap();
    let err = check("missing blob", Status::NotFound);
    assert!(err.to_string().contains(&model.layers[1].digest), "{err}");
    // A blob of the wrong size.
    std::fs::write(&layer, &saved[..10]).unwrap();
    check("wrong size", Status::SizeMismatch);
    std::fs::write(&layer, &saved).unwrap();
    // A manifest that is not JSON, and one with a null layer.
    let good = std::fs::read(&manifest_path).unwrap();
    std::fs::write(&manifest_path, b"{not json").unwrap();
    check("invalid JSON", Status::InvalidManifest);
    std::fs::write(&manifest_path, br#"{"schemaVersion":2,"layers":[null]}"#).unwrap();
    check("null layer", Status::InvalidManifest);
    // A model that does not exist.
    std::fs::write(&manifest_path, good).unwrap();
    let err = client
        .push(
            &target,
            Some("http://127.0.0.1:1/ns/absent:t"),
            Watch::default(),
        )
        .unwrap_err();
    assert_eq!(err.status(), Status::NotFound);
    assert!(dst.requests().is_empty());
    // And with everything repaired, the push works.
    client.push(&target, Some(&from), Watch::default()).unwrap();
}

#[test]
fn a_failed_upload_chunk_resumes_where_the_session_stands() {
    let src = TestRegistry::start(Options::default());
    let dst = TestRegistry::start(Options::default().distribution_like());
    let model = src.add_model("ns/m:t", &[(4 << 20) + 5], 6);
    let store = TempStore::new();
    let client = builder(&store)
        .chunk_threshold(1 << 20)
        .chunk_size(1 << 20)
        .upload_chunk_size(1 << 20)
        .build()
        .unwrap();
    client
        .pull(&name_of(&src, &model), Watch::default())
        .unwrap();
    // The third PATCH fails: the session is asked where it stands.
    dst.inject(
        Fault::status(Target::UploadPut, 503, ErrorBody::Empty)
            .after(2)
            .times(1),
    );
    client
        .push(
            &format!("http://{}/ns/m:t", dst.host()),
            Some(&name_of(&src, &model)),
            Watch::default(),
        )
        .expect("the upload resumes");
    for blob in model.layers.iter().chain([&model.config]) {
        assert_eq!(dst.blob(&blob.digest), src.blob(&blob.digest));
    }
    let reqs = dst.requests();
    let posts = reqs.iter().filter(|r| r.method == "POST").count();
    let status_checks = reqs
        .iter()
        .filter(|r| r.method == "GET" && r.path_and_query.contains("/blobs/uploads/"))
        .count();
    let patches = reqs.iter().filter(|r| r.method == "PATCH").count();
    assert_eq!(posts, 2, "one session per blob, none restarted: {reqs:?}");
    assert_eq!(
        status_checks, 1,
        "the failed chunk asked the session for its offset"
    );
    assert_eq!(
        patches,
        5 + 1,
        "five pieces of the layer plus the retried one"
    );
}

/// The blob count of `model`: its layers and its config.
fn blob_count(model: &Model) -> usize {
    model.layers.len() + 1
}

/// Pushes `model` (pulled from `src`) to `dst` as `ns/m:t`.
fn push_to(
    client: &olreg::Client,
    src: &TestRegistry,
    model: &Model,
    dst: &TestRegistry,
) -> olreg::Result<olreg::Manifest> {
    client.push(
        &format!("http://{}/ns/m:t", dst.host()),
        Some(&name_of(src, model)),
        Watch::default(),
    )
}

fn heads(reg: &TestRegistry) -> usize {
    reg.requests()
        .iter()
        .filter(|r| r.method == "HEAD" && r.path().contains("/blobs/"))
        .count()
}

#[test]
fn a_failing_existence_check_is_asked_once_and_the_upload_goes_on() {
    let src = TestRegistry::start(Options::default());
    let model = src.add_model("ns/m:t", &[1000, 2000], 2);
    let (_store, client) = pulled(&src, &model);
    // A 5xx on every HEAD, and a registry that does not allow HEAD at all.
    for (options, code) in [
        (Options::default(), 500),
        (Options::default().distribution_like(), 405),
    ] {
        let dst = TestRegistry::start(options);
        dst.inject(
            Fault::status(Target::BlobHead { digest: None }, code, ErrorBody::Empty).forever(),
        );
        push_to(&client, &src, &model, &dst)
            .unwrap_or_else(|e| panic!("HEAD answering {code}: {e}"));
        assert_eq!(dst.manifest("ns/m", "t").unwrap(), model.manifest);
        for blob in model.layers.iter().chain([&model.config]) {
            assert_eq!(dst.blob(&blob.digest), src.blob(&blob.digest));
        }
        assert_eq!(
            heads(&dst),
            blob_count(&model),
            "one HEAD per blob, no retries: {:?}",
            dst.requests()
        );
    }
}

#[test]
fn after_a_failing_existence_check_the_upload_reports_its_own_error() {
    let src = TestRegistry::start(Options::default());
    let model = src.add_model("ns/m:t", &[1000], 2);
    let (_store, client) = pulled(&src, &model);
    let dst = TestRegistry::start(Options::default().distribution_like());
    dst.inject(Fault::status(Target::BlobHead { digest: None }, 503, ErrorBody::Empty).forever());
    dst.inject(
        Fault::status(
            Target::Upload,
            403,
            ErrorBody::oci("DENIED", "pushes to ns/m are not allowed"),
        )
        .forever(),
    );
    let err = push_to(&client, &src, &model, &dst).unwrap_err();
    assert_eq!(err.status(), Status::Unauthorized, "{err}");
    assert_eq!(err.http_status(), Some(403), "{err}");
    assert_eq!(err.registry_code(), Some("DENIED"), "{err}");
    assert!(err.to_string().contains("are not allowed"), "{err}");
    assert!(heads(&dst) <= blob_count(&model), "{:?}", dst.requests());
}

#[test]
fn a_manifest_without_media_type_goes_up_with_the_oci_content_type() {
    let src = TestRegistry::start(Options::default());
    let model = src.add_model("ns/m:t", &[1000], 2);
    let mut json: serde_json::Value = serde_json::from_slice(&model.manifest).unwrap();
    json.as_object_mut().unwrap().remove("mediaType").unwrap();
    let body = serde_json::to_vec(&json).unwrap();
    src.put_manifest("ns/oci", "t", body.clone());
    let store = TempStore::new();
    let client = client(&store);
    let source = format!("http://{}/ns/oci:t", src.host());
    client.pull(&source, Watch::default()).unwrap();
    let dst = TestRegistry::start(Options::default().distribution_like());
    client
        .push(
            &format!("http://{}/ns/oci:t", dst.host()),
            Some(&source),
            Watch::default(),
        )
        .unwrap();
    assert_eq!(dst.manifest("ns/oci", "t").unwrap(), body);
    assert_eq!(
        dst.manifest_content_type("ns/oci", "t").as_deref(),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
}

#[test]
fn a_hostile_mount_record_never_breaks_a_push_nor_reaches_outside_the_store() {
    let src = TestRegistry::start(Options::default());
    let model = src.add_model("ns/m:t", &[1000], 2);
    let (store, client) = pulled(&src, &model);
    let record = store.root().join(".olreg").join("blob-sources");
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, "not olreg's").unwrap();
    let kinds = [
        "binary garbage",
        "5 MiB of plausible lines",
        "a symlink out of the store",
        "a FIFO",
        "hostile lines",
        "a directory",
    ];
    for what in kinds {
        match std::fs::symlink_metadata(&record) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&record).unwrap(),
            Ok(_) => std::fs::remove_file(&record).unwrap(),
            Err(_) => {}
        }
        let d = &model.layers[0].digest;
        match what {
            "binary garbage" => std::fs::write(&record, b"\0\xff\xfe garbage\n\n\0").unwrap(),
            "5 MiB of plausible lines" => {
                let line = format!("{d} 127.0.0.1:1 ns/m\n");
                std::fs::write(&record, line.repeat(80_000)).unwrap()
            }
            // Unix's: Wine, where the Windows build runs, cannot make
            // Windows links, and Windows has no FIFOs.
            #[cfg(unix)]
            "a symlink out of the store" => std::os::unix::fs::symlink(&secret, &record).unwrap(),
            #[cfg(unix)]
            "a FIFO" => {
                let path = std::ffi::CString::new(record.to_str().unwrap()).unwrap();
                // SAFETY: a valid NUL-terminated path.
                assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0);
            }
            #[cfg(not(unix))]
            "a symlink out of the store" | "a FIFO" => continue,
            "hostile lines" => {
                let text = format!(
                    "{d} 127.0.0.1:1 ../../etc\n{d} a/b/c ns/m\n{d} 127.0.0.1:1 ns/m?x=1\n{d}\n"
                );
                std::fs::write(&record, text).unwrap()
            }
            _ => std::fs::create_dir(&record).unwrap(),
        }
        let dst = TestRegistry::start(Options::default().distribution_like());
        push_to(&client, &src, &model, &dst).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(dst.manifest("ns/m", "t").unwrap(), model.manifest, "{what}");
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "not olreg's");
        let meta = std::fs::symlink_metadata(&record).unwrap();
        if what == "a directory" {
            assert!(meta.is_dir(), "left alone");
            continue;
        }
        assert!(meta.is_file(), "{what}: replaced by a regular file");
        assert!(meta.len() <= 1 << 20, "{what}: {} bytes", meta.len());
        let text = std::fs::read_to_string(&record).unwrap();
        assert!(
            text.lines()
                .any(|l| l.ends_with(&format!(" {} ns/m", dst.host()))),
            "{what}: the push is recorded: {text:?}"
        );
    }
}

/// An HTTPS push (no `sendfile`: the body goes through the HTTP stack)
/// reads its blobs in small pieces allocated where they are freed: 32 blobs
/// of 8 MiB at 4 streams stay well under the 32 MiB the library allows
/// itself. Pieces of 1 MiB read through `tokio::fs::File` (whose own 1 MiB
/// buffers were filled, and left in allocator arenas, on blocking threads)
/// took the same push to about 30 MiB, and 64 blobs to 35-40 MiB.
#[test]
fn an_https_push_of_many_blobs_keeps_its_memory_bounded() {
    let src = TestRegistry::start(Options::default());
    let model = src.add_model("ns/many:t", &vec![8 << 20; 32], 88);
    let (store, _) = pulled(&src, &model);
    let dst = TestRegistry::start(Options::default().tls(true));
    let peak_mib = child_peak_rss_mib(
        "push_memory_child",
        [
            ("OLREG_PUSH_ROOT", store.root().as_os_str().to_owned()),
            ("OLREG_PUSH_SRC", name_of(&src, &model).into()),
            (
                "OLREG_PUSH_DST",
                format!("https://{}/ns/many:t", dst.host()).into(),
            ),
            ("OLREG_PUSH_CA", dst.ca_pem().unwrap().into()),
        ],
    );
    assert_eq!(dst.manifest("ns/many", "t").unwrap(), model.manifest);
    eprintln!("HTTPS push of 32 x 8 MiB at 4 streams: peak RSS {peak_mib} MiB");
    assert!(
        peak_mib < 22,
        "an HTTPS push of 32 x 8 MiB at 4 streams peaked at {peak_mib} MiB"
    );
}

/// Runs inside the child process of
/// `an_https_push_of_many_blobs_keeps_its_memory_bounded`: pushes with 4
/// streams and prints its own peak resident memory.
#[test]
fn push_memory_child() {
    let (Ok(root), Ok(src), Ok(dst), Ok(ca)) = (
        std::env::var("OLREG_PUSH_ROOT"),
        std::env::var("OLREG_PUSH_SRC"),
        std::env::var("OLREG_PUSH_DST"),
        std::env::var("OLREG_PUSH_CA"),
    ) else {
        return;
    };
    let client = olreg::Client::builder()
        .models_dir(root)
        .no_key()
        .no_docker_config()
        .streams(4)
        .add_ca_pem(ca)
        .build()
        .unwrap();
    client.push(&dst, Some(&src), Watch::default()).unwrap();
    print_peak_rss();
}
