//! Every fault kind, observed on the wire.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{get, get_range, Req, Resp};
use olreg_testreg::{BlobMode, ErrorBody, Fault, FaultKind, Options, Target, TestRegistry};

/// A registry in Direct mode holding one 1000-byte blob with distinct bytes
/// per offset, and the blob's URL.
fn direct_blob() -> (TestRegistry, Vec<u8>, String, String) {
    let reg = TestRegistry::start(Options::default().blob_mode(BlobMode::Direct));
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 256) as u8).collect();
    let digest = reg.add_blob(data.clone());
    let url = format!("{}/v2/ns/m/blobs/{digest}", reg.url());
    (reg, data, digest, url)
}

fn blob_fault(kind: FaultKind) -> Fault {
    Fault::new(Target::Blob { digest: None }, kind)
}

#[test]
fn status_faults_send_each_body_form_then_run_out() {
    let (reg, data, _, url) = direct_blob();
    let bodies = [
        (
            ErrorBody::ollama("busy", "try later"),
            Some(r#"{"code":"busy","error":"try later"}"#),
        ),
        (
            ErrorBody::oci("DENIED", "no"),
            Some(r#"{"errors":[{"code":"DENIED","detail":null,"message":"no"}]}"#),
        ),
        (
            ErrorBody::Text("plain failure".into()),
            Some("plain failure"),
        ),
        (ErrorBody::Empty, Some("")),
        (ErrorBody::Json(serde_json::json!([1, 2])), Some("[1,2]")),
    ];
    for (body, expected) in bodies {
        reg.inject(Fault::new(
            Target::Blob { digest: None },
            FaultKind::Status {
                code: 503,
                body,
                retry_after: Some("7".into()),
            },
        ));
        let resp = get(&url);
        assert_eq!(resp.status, 503);
        assert_eq!(resp.header("retry-after"), Some("7"));
        assert_eq!(Some(String::from_utf8_lossy(&resp.body).as_ref()), expected);
        // times = 1: the next request is fine.
        assert_eq!(get(&url).body, data);
    }
}

#[test]
fn after_skips_and_times_counts() {
    let (reg, _, _, url) = direct_blob();
    reg.inject(
        Fault::status(Target::Blob { digest: None }, 500, ErrorBody::Empty)
            .after(2)
            .times(2),
    );
    let statuses: Vec<u16> = (0..6).map(|_| get(&url).status).collect();
    assert_eq!(statuses, [200, 200, 500, 500, 200, 200]);

    reg.inject(Fault::status(Target::Any, 502, ErrorBody::Empty).forever());
    assert!((0..3).all(|_| get(&url).status == 502));
    reg.clear_faults();
    assert_eq!(get(&url).status, 200);
}

#[test]
fn targets_select_requests_and_digests() {
    let (reg, _, digest, url) = direct_blob();
    let other = reg.add_blob(&b"other"[..]);
    let other_url = format!("{}/v2/ns/m/blobs/{other}", reg.url());
    reg.inject(Fault::status(Target::Manifest, 500, ErrorBody::Empty));
    reg.inject(Fault::status(
        Target::Blob {
            // The store's spelling works too.
            digest: Some(digest.replace("sha256:", "sha256-")),
        },
        501,
        ErrorBody::Empty,
    ));
    assert_eq!(get(&other_url).status, 200);
    assert_eq!(get(&url).status, 501);
    assert_eq!(get(&url).status, 200);
    reg.put_manifest("ns/m", "t", "{}");
    assert_eq!(
        get(&format!("{}/v2/ns/m/manifests/t", reg.url())).status,
        500
    );
}

#[test]
fn drop_after_and_short_body_cut_the_connection() {
    let (reg, data, _, url) = direct_blob();
    reg.inject(blob_fault(FaultKind::DropAfter { bytes: 100 }));
    let resp = get(&url);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.content_length(), Some(1000));
    assert_eq!(resp.body, &data[..100]);
    assert!(!resp.complete);

    reg.inject(blob_fault(FaultKind::ShortBody));
    let resp = get_range(&url, "bytes=100-299");
    assert_eq!(resp.status, 206);
    assert_eq!(resp.content_length(), Some(200));
    assert_eq!(resp.body, &data[100..200]);
    assert!(!resp.complete);

    reg.inject(blob_fault(FaultKind::DropAfter { bytes: 0 }));
    let resp = get(&url);
    assert!(resp.body.is_empty() && !resp.complete);
}

#[test]
fn corrupt_flips_the_byte_at_its_blob_offset() {
    let (reg, data, _, url) = direct_blob();
    reg.inject(blob_fault(FaultKind::Corrupt { offset: 150 }));
    // A range that does not cover the offset is untouched and does not
    // use the fault up.
    assert_eq!(get_range(&url, "bytes=0-99").body, &data[..100]);
    let resp = get_range(&url, "bytes=100-199");
    assert!(resp.complete);
    let diffs: Vec<usize> = (0..100)
        .filter(|&i| resp.body[i] != data[100 + i])
        .collect();
    assert_eq!(diffs, [50]);
    assert_eq!(resp.body[50], data[150] ^ 0xff);
    assert_eq!(get_range(&url, "bytes=100-199").body, &data[100..200]);
}

#[test]
fn stalls_delay_the_body_or_the_headers() {
    let (reg, data, _, url) = direct_blob();
    reg.inject(blob_fault(FaultKind::Stall {
        after_bytes: 10,
        millis: 300,
    }));
    let t = Instant::now();
    let resp = get(&url);
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(resp.body, data);

    reg.inject(blob_fault(FaultKind::StallHeaders { millis: 300 }));
    let t = Instant::now();
    assert_eq!(get(&url).body, data);
    assert!(t.elapsed() >= Duration::from_millis(300));
}

#[test]
fn trickles_deliver_everything_slowly() {
    let (reg, data, _, url) = direct_blob();
    reg.inject(blob_fault(FaultKind::Trickle {
        bytes: 250,
        millis: 100,
    }));
    let t = Instant::now();
    let resp = get(&url);
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "4 pieces, 4 pauses"
    );
    assert_eq!(resp.body, data);
}

#[test]
fn cut_bodies_promise_a_byte_more_than_they_send() {
    let (reg, data, _, url) = direct_blob();
    reg.inject(blob_fault(FaultKind::CutBody));
    let resp = get(&url);
    assert_eq!(resp.content_length(), Some(data.len() + 1));
    assert_eq!(resp.body, data);
    assert!(!resp.complete);
    // Any answer, an empty one included.
    reg.inject(Fault::new(Target::Upload, FaultKind::CutBody));
    let upload = format!(
        "{}/v2/ns/m/blobs/uploads/?digest=sha256:{}",
        reg.url(),
        "0".repeat(64)
    );
    let resp = Req::new("POST", &upload).send();
    assert_eq!(resp.status, 202);
    assert_eq!(resp.content_length(), Some(1));
    assert!(!resp.complete);
}

#[test]
fn hang_ups_close_the_connection_without_an_answer() {
    let (reg, data, _, url) = direct_blob();
    use std::io::{Read, Write};
    reg.inject(blob_fault(FaultKind::HangUp));
    let mut tcp = std::net::TcpStream::connect(reg.host()).expect("connect");
    let path = url.strip_prefix(&reg.url()).expect("path");
    write!(tcp, "GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", reg.host()).expect("send");
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).expect("read");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    assert_eq!(get(&url).body, data);
}

#[test]
fn extra_bytes_overrun_the_range() {
    let (reg, data, _, url) = direct_blob();
    reg.inject(blob_fault(FaultKind::ExtraBytes { count: 5 }));
    let resp = get_range(&url, "bytes=10-19");
    assert_eq!(resp.status, 206);
    assert_eq!(resp.header("content-range"), Some("bytes 10-19/1000"));
    assert_eq!(resp.content_length(), Some(15));
    assert_eq!(resp.body, &data[10..25]);

    reg.inject(blob_fault(FaultKind::ExtraBytes { count: 3 }));
    let resp = get(&url);
    assert_eq!(resp.content_length(), Some(1003));
    assert_eq!(&resp.body[..1000], &data[..]);
    assert_eq!(&resp.body[1000..], [0, 0, 0]);
}

#[test]
fn range_faults_misreport_or_ignore_the_range() {
    let (reg, data, _, url) = direct_blob();
    reg.inject(blob_fault(FaultKind::WrongContentRange));
    // Not ranged: the fault waits.
    assert_eq!(get(&url).status, 200);
    let resp = get_range(&url, "bytes=10-19");
    assert_eq!(resp.status, 206);
    assert_eq!(resp.header("content-range"), Some("bytes 11-20/1000"));
    assert_eq!(resp.body, &data[10..20]);

    reg.inject(blob_fault(FaultKind::IgnoreRange));
    let resp = get_range(&url, "bytes=10-19");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-range"), None);
    assert_eq!(resp.body, data);
}

#[test]
fn faults_on_the_blob_store_shape_its_bytes() {
    let reg = TestRegistry::start(Options::default());
    let data = vec![1u8; 4096];
    let digest = reg.add_blob(data.clone());
    let resp = get(&format!("{}/v2/ns/m/blobs/{digest}", reg.url()));
    let location = resp.header("location").expect("Location").to_string();
    reg.inject(Fault::new(
        Target::BlobStore {
            digest: Some(digest.clone()),
        },
        FaultKind::DropAfter { bytes: 1000 },
    ));
    let resp = get(&location);
    assert_eq!(resp.body.len(), 1000);
    assert!(!resp.complete);
    assert_eq!(get(&location).body, data);
}

#[test]
fn redirect_faults_point_anywhere() {
    let (reg, _, _, url) = direct_blob();
    for location in ["ftp://example.com/x", url.as_str()] {
        reg.inject(blob_fault(FaultKind::Redirect {
            location: location.to_string(),
            code: 308,
        }));
        let resp = get(&url);
        assert_eq!(resp.status, 308);
        assert_eq!(resp.header("location"), Some(location));
    }
}

#[test]
fn manifest_body_faults_replace_the_manifest() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[1], 1);
    let url = format!("{}/v2/ns/m/manifests/t", reg.url());
    let big = Bytes::from(vec![b' '; 5 << 20]);
    for body in [
        Bytes::new(),
        Bytes::from_static(b"null"),
        Bytes::from_static(b"!!!"),
        Bytes::from_static(br#"{"layers":[{"digest":"sha256:00","size":-1}]}"#),
        big,
    ] {
        reg.inject(Fault::new(
            Target::Manifest,
            FaultKind::ManifestBody { body: body.clone() },
        ));
        let resp = get(&url);
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, body);
        assert_eq!(
            resp.header("docker-content-digest"),
            Some(common::digest_of(&body).as_str())
        );
    }
    assert_eq!(get(&url).body, model.manifest);
    // Works for a manifest that does not exist, too.
    reg.inject(Fault::new(
        Target::Manifest,
        FaultKind::ManifestBody {
            body: Bytes::from_static(b"{}"),
        },
    ));
    assert_eq!(
        get(&format!("{}/v2/no/such/manifests/x", reg.url())).body,
        b"{}"
    );
}

#[test]
fn corrupt_and_drop_apply_to_manifests_too() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[1], 1);
    let url = format!("{}/v2/ns/m/manifests/t", reg.url());
    reg.inject(Fault::new(
        Target::Manifest,
        FaultKind::Corrupt { offset: 0 },
    ));
    let resp = get(&url);
    assert_eq!(resp.body[0], model.manifest[0] ^ 0xff);
    assert_eq!(
        resp.header("docker-content-digest"),
        Some(model.digest.as_str())
    );
    reg.inject(Fault::new(Target::Manifest, FaultKind::ShortBody));
    let resp: Resp = get(&url);
    assert!(!resp.complete);
}

#[test]
fn upload_faults_hit_posts_and_puts() {
    let reg = TestRegistry::start(Options::default());
    let digest = common::digest_of(b"blob");
    let post = format!("{}/v2/ns/m/blobs/uploads/?digest={digest}", reg.url());
    reg.inject(Fault::new(
        Target::Upload,
        FaultKind::UploadLocation {
            location: "::not a url::".into(),
        },
    ));
    let resp = Req::new("POST", &post).send();
    assert_eq!(resp.status, 202);
    assert_eq!(resp.header("location"), Some("::not a url::"));

    let resp = Req::new("POST", &post).send();
    let location = resp.header("location").expect("Location").to_string();
    reg.inject(Fault::status(Target::UploadPut, 500, ErrorBody::Empty));
    // The body is read before the injected answer, so this is a clean 500.
    assert_eq!(
        Req::new("PUT", &location).body(&b"blob"[..]).send().status,
        500
    );
    assert_eq!(
        Req::new("PUT", &location).body(&b"blob"[..]).send().status,
        200
    );
    assert_eq!(reg.blob(&digest).as_deref(), Some(&b"blob"[..]));

    reg.inject(Fault::status(Target::ManifestPut, 503, ErrorBody::Empty));
    let resp = Req::new("PUT", &format!("{}/v2/ns/m/manifests/t", reg.url()))
        .body(r#"{"layers":[]}"#)
        .send();
    assert_eq!(resp.status, 503);
}

#[test]
fn faults_round_trip_as_json() {
    let fault = Fault::new(
        Target::BlobStore { digest: None },
        FaultKind::Stall {
            after_bytes: 1,
            millis: 2,
        },
    )
    .after(3);
    let json = serde_json::to_string(&fault).expect("serialize");
    assert_eq!(
        json,
        r#"{"target":{"blob_store":{"digest":null}},"kind":{"stall":{"after_bytes":1,"millis":2}},"times":1,"after":3}"#
    );
    assert_eq!(serde_json::from_str::<Fault>(&json).expect("parse"), fault);
}
