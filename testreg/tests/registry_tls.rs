//! TLS on both hosts, trusted through the CA the registry exposes.

mod common;

use common::Req;
use olreg_testreg::{BlobMode, Options, TestRegistry};

#[test]
fn both_hosts_speak_tls_under_the_exposed_ca() {
    let reg = TestRegistry::start(Options::default().tls(true));
    let ca = reg.ca_pem();
    assert!(ca
        .as_deref()
        .is_some_and(|pem| pem.starts_with("-----BEGIN CERTIFICATE-----")));
    assert!(reg.url().starts_with("https://127.0.0.1:"));
    assert!(reg.blob_store_url().starts_with("https://127.0.0.2:"));

    let model = reg.add_model("ns/m:t", &[100_000], 2);
    let resp = Req::new("GET", &format!("{}/v2/", reg.url()))
        .ca(ca.clone())
        .send();
    assert_eq!(resp.status, 200);

    let blob = format!("{}/v2/ns/m/blobs/{}", reg.url(), model.layers[0].digest);
    let resp = Req::new("GET", &blob).ca(ca.clone()).send();
    assert_eq!(resp.status, 307);
    let location = resp.header("location").expect("Location").to_string();
    assert!(location.starts_with("https://127.0.0.2:"));
    let resp = Req::new("GET", &location)
        .header("Range", "bytes=10-20")
        .ca(ca.clone())
        .send();
    assert_eq!(resp.status, 206);
    assert_eq!(
        resp.body,
        reg.blob(&model.layers[0].digest).expect("blob")[10..=20]
    );

    // "localhost" is in the certificate too.
    let by_name = reg.url().replace("127.0.0.1", "localhost");
    let resp = Req::new("GET", &format!("{by_name}/v2/")).ca(ca).send();
    assert_eq!(resp.status, 200);
}

#[test]
fn direct_mode_serves_blobs_over_tls() {
    let reg = TestRegistry::start(Options::default().tls(true).blob_mode(BlobMode::Direct));
    let digest = reg.add_blob(vec![9u8; 3 << 20]);
    let resp = Req::new("GET", &format!("{}/v2/a/b/blobs/{digest}", reg.url()))
        .ca(reg.ca_pem())
        .send();
    assert_eq!(resp.status, 200);
    assert_eq!(common::digest_of(&resp.body), digest);
}
