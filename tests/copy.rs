//! Registry-to-registry copy: across two real Docker Distributions with
//! different auth (Basic one side, token the other), between Ollama's
//! protocol and OCI both ways, mounts within one registry, a second copy
//! that uploads nothing, a corrupt source that leaves nothing at the
//! destination, a resumed upload session, and memory that stays bounded.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use olreg::{LogLevel, Progress, ProgressEvent, Status, Watch};
use olreg_testreg::distribution::{Distribution, DistributionAuth};

fn distribution(auth: DistributionAuth) -> Distribution {
    Distribution::start(auth).unwrap_or_else(|e| {
        panic!("Docker Distribution must be installed (apt-get install docker-registry): {e}")
    })
}

/// Copies with `client`, collecting progress events.
fn copy_collect(
    client: &olreg::Client,
    src: &str,
    dst: &str,
) -> (olreg::Result<olreg::Manifest>, Vec<Progress>) {
    let mut events = Vec::new();
    let mut cb = |p: &Progress| {
        events.push(p.clone());
        true
    };
    let r = client.copy(
        src,
        dst,
        Watch {
            progress: Some(&mut cb),
            cancel: None,
        },
    );
    (r, events)
}

/// A client that sends blobs over 1 MiB in 1 MiB `PATCH` pieces.
fn chunked_client(store: &TempStore) -> olreg::Client {
    builder(store)
        .chunk_threshold(1 << 20)
        .chunk_size(1 << 20)
        .upload_chunk_size(1 << 20)
        .build()
        .unwrap()
}

fn count(events: &[Progress], kind: ProgressEvent) -> usize {
    events.iter().filter(|p| p.event == kind).count()
}

/// Upload requests (`POST`/`PATCH`/`PUT` on `blobs/uploads/`) that a
/// Distribution accepted (not those it answered 401), from its access log.
fn upload_requests(dist: &Distribution) -> usize {
    dist.log_contents()
        .lines()
        .filter(|l| {
            l.contains("/blobs/uploads/")
                && !l.contains("\" 401 ")
                && (l.contains("\"POST ") || l.contains("\"PATCH ") || l.contains("\"PUT "))
        })
        .count()
}

#[test]
fn copy_across_basic_and_token_registries_is_byte_identical_and_idempotent() {
    let basic = distribution(DistributionAuth::Htpasswd {
        user: "alice".into(),
        password: "a-pw".into(),
    });
    let token = distribution(DistributionAuth::Token {
        user: "bob".into(),
        password: "b-pw".into(),
        ttl_secs: 300,
    });
    // Seed the Basic side with a model.
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("library/m:v1", &[3 << 20, 5000, 17], 81);
    let seed = TempStore::new();
    let seeder = builder(&seed)
        .credential(&basic.host(), "alice", "a-pw")
        .build()
        .unwrap();
    seeder
        .pull(&name_of(&reg, &model), Watch::default())
        .unwrap();
    let src = format!("http://{}/library/m:v1", basic.host());
    seeder
        .push(&src, Some(&name_of(&reg, &model)), Watch::default())
        .unwrap();

    // Copy with both credentials, small pieces so PATCH sessions are used.
    let store = TempStore::new();
    let copier = builder(&store)
        .credential(&basic.host(), "alice", "a-pw")
        .credential(&token.host(), "bob", "b-pw")
        .chunk_threshold(1 << 20)
        .chunk_size(1 << 20)
        .upload_chunk_size(1 << 20)
        .build()
        .unwrap();
    let dst = format!("http://{}/team/copied:v7", token.host());
    let (copied, events) = copy_collect(&copier, &src, &dst);
    let copied = copied.expect("copy from Basic to token auth");
    assert_eq!(copied.digest().to_string(), model.digest);
    assert_eq!(
        events.first().map(|p| p.event),
        Some(ProgressEvent::Resolved)
    );
    assert_eq!(
        events.last().map(|p| p.event),
        Some(ProgressEvent::Finished)
    );
    assert_eq!(
        count(&events, ProgressEvent::Done),
        4,
        "three layers and the config"
    );
    assert_eq!(
        events.last().unwrap().completed,
        copied.total_size(),
        "progress counts every byte as a pull does"
    );
    assert!(
        files_under(store.root()).is_empty(),
        "a copy never touches the store: {:?}",
        files_under(store.root())
    );

    // The destination serves the same bytes.
    let back = TempStore::new();
    let reader = builder(&back)
        .credential(&token.host(), "bob", "b-pw")
        .build()
        .unwrap();
    reader.pull(&dst, Watch::default()).unwrap();
    assert_eq!(reader.show(&dst).unwrap(), model.manifest.to_vec());
    assert_store_consistent(back.root());
    // The token side's credentials never went to the Basic side and back.
    assert!(token.token_server().unwrap().requests().iter().all(|r| r
        .header("authorization")
        .is_some_and(|a| a.starts_with("Basic "))));

    // A second copy finds every blob and uploads nothing.
    let uploads_before = upload_requests(&token);
    let (again, events) = copy_collect(&copier, &src, &dst);
    again.expect("second copy");
    assert_eq!(count(&events, ProgressEvent::Cached), 4, "{events:?}");
    assert_eq!(count(&events, ProgressEvent::Bytes), 0);
    assert_eq!(upload_requests(&token), uploads_before, "no upload request");
}

#[test]
fn copy_between_ollamas_protocol_and_oci_both_ways() {
    // Ollama's protocol (blobs redirected to a CDN host) to Distribution.
    let ollama = TestRegistry::start(Options::default());
    let model = ollama.add_model("library/both:v1", &[2 << 20, 300], 82);
    let dist = distribution(DistributionAuth::None);
    let store = TempStore::new();
    let c = builder(&store)
        .chunk_threshold(1 << 20)
        .chunk_size(1 << 20)
        .upload_chunk_size(1 << 20)
        .build()
        .unwrap();
    let oci = format!("http://{}/library/both:v1", dist.host());
    c.copy(&name_of(&ollama, &model), &oci, Watch::default())
        .expect("Ollama protocol to OCI");
    assert!(
        !requests_on(&ollama, Server::BlobStore).is_empty(),
        "the blobs came through the redirect"
    );
    // And back, into another Ollama-protocol registry (presigned uploads).
    let other = TestRegistry::start(Options::default());
    c.copy(
        &oci,
        &format!("http://{}/library/again:v2", other.host()),
        Watch::default(),
    )
    .expect("OCI to Ollama protocol");
    assert_eq!(
        other.manifest("library/again", "v2").unwrap(),
        model.manifest,
        "identical manifest bytes"
    );
    for blob in model.layers.iter().chain([&model.config]) {
        assert_eq!(other.blob(&blob.digest), ollama.blob(&blob.digest));
    }
    assert!(files_under(store.root()).is_empty());
}

#[test]
fn copy_within_one_registry_mounts_instead_of_uploading() {
    let dist = distribution(DistributionAuth::Token {
        user: "bob".into(),
        password: "pw".into(),
        ttl_secs: 300,
    });
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("library/m:v1", &[4000, 5000], 83);
    let store = TempStore::new();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let c = builder(&store)
        .credential(&dist.host(), "bob", "pw")
        .log(
            LogLevel::Info,
            Arc::new(move |_, m| sink.lock().unwrap().push(m.to_owned())),
        )
        .build()
        .unwrap();
    let one = format!("http://{}/team/one:v1", dist.host());
    c.copy(&name_of(&reg, &model), &one, Watch::default())
        .unwrap();
    let uploads_before = upload_requests(&dist);
    let (r, events) = copy_collect(&c, &one, &format!("http://{}/team/two:v1", dist.host()));
    r.expect("copy within the registry");
    assert_eq!(count(&events, ProgressEvent::Bytes), 0, "no byte was sent");
    let mounted = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("mounted from team/one"))
        .count();
    assert_eq!(mounted, 3, "two layers and the config are mounted");
    // One mount POST per blob, nothing else.
    assert_eq!(upload_requests(&dist) - uploads_before, 3);
    let back = TempStore::new();
    builder(&back)
        .credential(&dist.host(), "bob", "pw")
        .build()
        .unwrap()
        .pull(
            &format!("http://{}/team/two:v1", dist.host()),
            Watch::default(),
        )
        .unwrap();
    assert_store_consistent(back.root());
}

#[test]
fn a_corrupt_source_blob_leaves_no_manifest_and_no_blob_at_the_destination() {
    let src = TestRegistry::start(Options::default());
    let model = src.add_model("library/bad:v1", &[3_000_000, 40], 84);
    let bad = model.layers[0].digest.clone();
    src.inject(
        Fault::new(
            Target::BlobStore {
                digest: Some(bad.clone()),
            },
            FaultKind::Corrupt { offset: 2_999_999 },
        )
        .forever(),
    );
    for chunked in [false, true] {
        let dist = distribution(DistributionAuth::None);
        let store = TempStore::new();
        let mut b = builder(&store);
        if chunked {
            b = b
                .chunk_threshold(1 << 20)
                .chunk_size(1 << 20)
                .upload_chunk_size(1 << 20);
        }
        let c = b.build().unwrap();
        let dst = format!("http://{}/library/bad:v1", dist.host());
        let err = c
            .copy(&name_of(&src, &model), &dst, Watch::default())
            .unwrap_err();
        assert_eq!(err.status(), Status::DigestMismatch, "{err}");
        assert_eq!(err.blob().map(|d| d.to_string()), Some(bad.clone()));
        let missing = c.resolve(&dst, Watch::default()).unwrap_err();
        assert_eq!(missing.status(), Status::NotFound, "no manifest: {missing}");
        let blob_dir = dist
            .dir()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&bad["sha256:".len().."sha256:".len() + 2])
            .join(&bad["sha256:".len()..]);
        assert!(
            !blob_dir.exists(),
            "the destination never committed the bad blob (chunked: {chunked})"
        );
        // The piece that completes the blob was held back: the request broke
        // off, so Distribution never had to refuse a wrong digest itself.
        let log = dist.log_contents();
        assert!(!log.contains("digest invalid"), "chunked: {chunked}\n{log}");
    }
}

#[test]
fn a_failed_upload_piece_resumes_from_the_session_offset() {
    let src = TestRegistry::start(Options::default());
    let model = src.add_model("ns/m:t", &[(4 << 20) + 5], 85);
    let dst = TestRegistry::start(Options::default().distribution_like());
    // The third PATCH fails: the session is asked where it stands.
    dst.inject(
        Fault::status(Target::UploadPut, 503, ErrorBody::Empty)
            .after(2)
            .times(1),
    );
    let store = TempStore::new();
    let c = chunked_client(&store);
    c.copy(
        &name_of(&src, &model),
        &format!("http://{}/ns/m:t", dst.host()),
        Watch::default(),
    )
    .expect("the upload resumes");
    assert_eq!(dst.manifest("ns/m", "t").unwrap(), model.manifest);
    for blob in model.layers.iter().chain([&model.config]) {
        assert_eq!(dst.blob(&blob.digest), src.blob(&blob.digest));
    }
    let reqs = dst.requests();
    let posts = reqs.iter().filter(|r| r.method == "POST").count();
    let status_checks = reqs
        .iter()
        .filter(|r| r.method == "GET" && r.path_and_query.contains("/blobs/uploads/"))
        .count();
    assert_eq!(posts, 2, "one session per blob, none restarted: {reqs:?}");
    assert_eq!(status_checks, 1, "the failed piece asked for the offset");
}

#[test]
fn an_upload_session_broken_mid_piece_starts_over() {
    // The source breaks off mid-piece, so the PATCH carrying it breaks off
    // too. Distribution 2.8 then refuses the session (BLOB_UPLOAD_INVALID:
    // what it stored no longer matches the session's state): the upload
    // starts over in a new session.
    let src = TestRegistry::start(Options::default());
    let model = src.add_model("ns/m:t", &[3 << 20], 86);
    let layer = model.layers[0].digest.clone();
    src.inject(
        Fault::new(
            Target::BlobStore {
                digest: Some(layer.clone()),
            },
            FaultKind::DropAfter { bytes: 700_000 },
        )
        .after(1)
        .times(1),
    );
    let dist = distribution(DistributionAuth::None);
    let store = TempStore::new();
    let c = chunked_client(&store);
    let dst = format!("http://{}/ns/m:t", dist.host());
    c.copy(&name_of(&src, &model), &dst, Watch::default())
        .expect("the copy survives the broken source");
    let back = TempStore::new();
    let reader = client(&back);
    reader.pull(&dst, Watch::default()).unwrap();
    assert_eq!(reader.show(&dst).unwrap(), model.manifest.to_vec());
    assert_store_consistent(back.root());
    let status_checks = dist
        .log_contents()
        .lines()
        .filter(|l| l.contains("\"GET ") && l.contains("/blobs/uploads/"))
        .count();
    assert!(status_checks >= 1, "the session was asked for its offset");
    let sessions = dist
        .log_contents()
        .lines()
        .filter(|l| l.contains("\"POST ") && l.contains("/blobs/uploads/"))
        .count();
    assert_eq!(sessions, 3, "config, layer, and the layer again");
}

#[test]
fn a_session_holding_part_of_a_piece_is_resumed_inside_the_piece() {
    // The source breaks off 300 000 bytes into the second piece; the
    // destination keeps what that PATCH delivered, so its offset lands inside
    // the piece. The copy fetches the piece again, hashes the bytes the
    // destination holds without sending them, and sends the rest.
    let src = TestRegistry::start(Options::default());
    let model = src.add_model("ns/m:t", &[(3 << 20) + 7], 88);
    let layer = model.layers[0].digest.clone();
    src.inject(
        Fault::new(
            Target::BlobStore {
                digest: Some(layer.clone()),
            },
            FaultKind::DropAfter { bytes: 300_000 },
        )
        .after(1)
        .times(1),
    );
    let dst = TestRegistry::start(
        Options::default()
            .distribution_like()
            .keep_broken_chunks(true),
    );
    let store = TempStore::new();
    let c = chunked_client(&store);
    c.copy(
        &name_of(&src, &model),
        &format!("http://{}/ns/m:t", dst.host()),
        Watch::default(),
    )
    .expect("the copy resumes inside the piece");
    assert_eq!(dst.manifest("ns/m", "t").unwrap(), model.manifest);
    assert_eq!(dst.blob(&layer), src.blob(&layer));
    let reqs = dst.requests();
    let posts = reqs.iter().filter(|r| r.method == "POST").count();
    assert_eq!(posts, 2, "one session per blob, none restarted: {reqs:?}");
    let starts: Vec<u64> = reqs
        .iter()
        .filter(|r| r.method == "PATCH")
        .filter_map(|r| r.header("content-range"))
        .filter_map(|v| v.split('-').next()?.parse().ok())
        .collect();
    // (Bytes still buffered when the request broke off may be lost, so the
    // offset is 300 000 at most: somewhere inside the second piece.)
    assert!(
        starts.iter().any(|s| *s > 1 << 20 && *s < 2 << 20),
        "a piece started where the session stood, inside the second: {starts:?}"
    );
}

/// Runs inside the child process of `copy_memory_stays_bounded`: copies
/// (or, for comparison, pulls) and prints its own peak resident memory.
#[test]
fn copy_memory_child() {
    let (Ok(src), Ok(dst)) = (
        std::env::var("OLREG_COPY_SRC"),
        std::env::var("OLREG_COPY_DST"),
    ) else {
        return;
    };
    let store = TempStore::new();
    if std::env::var_os("OLREG_COPY_PULL").is_some() {
        client(&store).pull(&src, Watch::default()).unwrap();
    } else {
        client(&store).copy(&src, &dst, Watch::default()).unwrap();
    }
    print_peak_rss();
}

#[test]
fn copy_memory_stays_bounded() {
    const SIZE: u64 = 192 << 20;
    let src = TestRegistry::start(Options::default());
    let model = src.add_model("ns/big:t", &[SIZE], 87);
    let dst = TestRegistry::start(Options::default());
    let mut envs: Vec<(&str, std::ffi::OsString)> = vec![
        ("OLREG_COPY_SRC", name_of(&src, &model).into()),
        (
            "OLREG_COPY_DST",
            format!("http://{}/ns/big:t", dst.host()).into(),
        ),
    ];
    envs.extend(std::env::var_os("OLREG_COPY_PULL").map(|v| ("OLREG_COPY_PULL", v)));
    let peak_mib = child_peak_rss_mib("copy_memory_child", envs);
    eprintln!("copy of a {} MiB blob: peak RSS {peak_mib} MiB", SIZE >> 20);
    if std::env::var_os("OLREG_COPY_PULL").is_none() {
        assert_eq!(dst.manifest("ns/big", "t").unwrap(), model.manifest);
    }
    assert!(
        peak_mib < 48,
        "a copy streams: peak {peak_mib} MiB for a {} MiB blob",
        SIZE >> 20
    );
}
