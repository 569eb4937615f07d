//! `olreg-testreg serve` as the C, Go and Python tests use it: one JSON
//! line on stdout, the control API, exit when stdin closes.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{get, Req};

fn spawn(args: &[&str]) -> (Child, serde_json::Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_olreg-testreg"))
        .arg("serve")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn olreg-testreg");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    (child, serde_json::from_str(&line).expect("ready JSON"))
}

fn wait_exit(child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().expect("try_wait").is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    false
}

#[test]
fn serve_prints_its_models_and_obeys_the_control_api() {
    let (mut child, ready) = spawn(&[
        "--model",
        "library/tiny:latest=1K,10",
        "--session-uploads",
        "--seed",
        "3",
    ]);
    let url = ready["url"].as_str().expect("url").to_string();
    assert!(ready["blob_store_url"]
        .as_str()
        .expect("store")
        .starts_with("http://127.0.0.2:"));
    assert!(ready["ca_pem"].is_null());
    let model = &ready["models"][0];
    assert_eq!(model["repo"], "library/tiny");
    assert_eq!(model["layers"][0]["size"], 1024);
    let manifest = model["manifest"].as_str().expect("manifest").to_string();

    let resp = get(&format!("{url}/v2/library/tiny/manifests/latest"));
    assert_eq!(resp.body, manifest.as_bytes());
    assert_eq!(
        resp.header("docker-content-digest"),
        model["digest"].as_str()
    );

    // Faults.
    let fault = r#"{"target":"manifest","kind":{"status":{"code":500,"body":{"ollama":{"code":"x","message":"y"}}}}}"#;
    assert_eq!(
        Req::new("POST", &format!("{url}/_testreg/faults"))
            .body(fault)
            .send()
            .status,
        204
    );
    assert_eq!(
        get(&format!("{url}/v2/library/tiny/manifests/latest")).status,
        500
    );
    assert_eq!(
        Req::new("POST", &format!("{url}/_testreg/faults"))
            .body("{")
            .send()
            .status,
        400
    );
    let forever = r#"{"target":"any","kind":{"status":{"code":503}},"times":0}"#;
    Req::new("POST", &format!("{url}/_testreg/faults"))
        .body(forever)
        .send();
    assert_eq!(get(&format!("{url}/v2/")).status, 503);
    assert_eq!(
        Req::new("DELETE", &format!("{url}/_testreg/faults"))
            .send()
            .status,
        204
    );
    assert_eq!(get(&format!("{url}/v2/")).status, 200);

    // The log, which does not include control requests.
    let log = get(&format!("{url}/_testreg/requests")).json();
    let log = log.as_array().expect("array");
    assert_eq!(log.len(), 4);
    assert_eq!(log[1]["status"], 500);
    assert_eq!(log[1]["server"], "registry");
    assert_eq!(
        log[0]["path_and_query"],
        "/v2/library/tiny/manifests/latest"
    );
    assert_eq!(
        Req::new("DELETE", &format!("{url}/_testreg/requests"))
            .send()
            .status,
        204
    );
    assert_eq!(
        get(&format!("{url}/_testreg/requests")).json(),
        serde_json::json!([])
    );

    // Models, blobs and manifests.
    let resp = Req::new("POST", &format!("{url}/_testreg/models"))
        .body(r#"{"name":"a/b:c","layer_sizes":[5,6],"seed":1}"#)
        .send();
    assert_eq!(resp.status, 200);
    let made = resp.json();
    let layer = made["layers"][1]["digest"].as_str().expect("digest");
    let resp = get(&format!("{url}/_testreg/blobs/{layer}"));
    assert_eq!((resp.status, resp.body.len()), (200, 6));
    let resp = get(&format!("{url}/_testreg/manifests/a/b/c"));
    assert_eq!(
        resp.body,
        made["manifest"].as_str().expect("manifest").as_bytes()
    );
    assert_eq!(
        get(&format!("{url}/_testreg/manifests/a/b/zzz")).status,
        404
    );
    let resp = Req::new("PUT", &format!("{url}/_testreg/manifests/a/b/raw"))
        .body("!!!")
        .send();
    assert_eq!(resp.json()["digest"], common::digest_of(b"!!!"));
    assert_eq!(get(&format!("{url}/v2/a/b/manifests/raw")).body, b"!!!");
    let resp = Req::new("POST", &format!("{url}/_testreg/blobs"))
        .body("xyz")
        .send();
    let digest = resp.json()["digest"].as_str().expect("digest").to_string();
    assert_eq!(get(&format!("{url}/_testreg/blobs/{digest}")).body, b"xyz");
    let bad = Req::new("POST", &format!("{url}/_testreg/models"))
        .body(r#"{"name":"a/b/c","layer_sizes":[1]}"#)
        .send();
    assert_eq!(bad.status, 400);
    assert_eq!(
        get(&format!("{url}/_testreg/info")).json()["url"],
        url.as_str()
    );

    // Closing stdin stops it.
    drop(child.stdin.take());
    assert!(wait_exit(&mut child), "serve did not exit on stdin EOF");
}

#[test]
fn serve_with_tls_and_auth_reports_its_ca() {
    let (mut child, ready) = spawn(&["--tls", "--auth", "basic:u:p", "--direct"]);
    let ca = ready["ca_pem"].as_str().expect("ca_pem").to_string();
    let url = ready["url"].as_str().expect("url").to_string();
    assert!(url.starts_with("https://"));
    let resp = Req::new("GET", &format!("{url}/v2/")).ca(Some(ca)).send();
    assert_eq!(resp.status, 401);
    child.kill().expect("kill");
    let _ = child.wait();
}

#[test]
fn serve_rejects_bad_arguments() {
    let status = Command::new(env!("CARGO_BIN_EXE_olreg-testreg"))
        .args(["serve", "--model", "x=1Q"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run");
    assert_eq!(status.code(), Some(2));
}
