//! Hostile names never reach a path or a request.

mod common;

use common::*;
use olreg::{Status, Watch};

fn hostile(host: &str) -> Vec<String> {
    let long = "a".repeat(81);
    vec![
        "..".into(),
        ".".into(),
        "../../etc/passwd".into(),
        format!("http://{host}/../m:t"),
        format!("http://{host}/ns/..:t"),
        format!("http://{host}/ns/m:.."),
        format!("http://{host}/ns/m:."),
        format!("http://{host}/./m:t"),
        format!("http://{host}//m:t"),
        format!("http://{host}/ns/:t"),
        format!("http://{host}/ns/m:"),
        format!("http://{host}/ns/m\0x:t"),
        format!("http://{host}/ns/m:t\0"),
        format!("http://{host}/ns/m/x:t"),
        format!("http://{host}/ns/m:a/b"),
        format!("http://{host}/ns/{long}:t"),
        format!("http://{host}/ns/m:{long}"),
        format!("http://{}/ns/m:t", "h".repeat(351)),
        format!("ftp://{host}/ns/m:t"),
        format!("file://{host}/ns/m:t"),
        format!("gopher://{host}/ns/m:t"),
        format!("http://{host}/ns/m t:t"),
        format!("http://{host}/ns/m%2F..:t"),
        format!("http://{host}/ns/m:t@sha256:../../../etc/passwd"),
        format!("http://{host}/-ns/m:t"),
        "/absolute/path".into(),
        "".into(),
    ]
}

#[test]
fn hostile_names_are_invalid_and_touch_nothing() {
    let reg = TestRegistry::start(Options::default());
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("store");
    std::fs::create_dir(&root).unwrap();
    let client = olreg::Client::builder()
        .models_dir(&root)
        .no_key()
        .no_docker_config()
        .build()
        .unwrap();
    let cwd_before = files_under(&std::env::current_dir().unwrap().join("tests"));
    let names = hostile(&reg.host());
    assert!(names.len() >= 20);
    for name in &names {
        let results = [
            ("pull", client.pull(name, Watch::default()).map(drop)),
            ("push", client.push(name, None, Watch::default()).map(drop)),
            (
                "push --from",
                client
                    .push(
                        &format!("http://{}/ns/m:t", reg.host()),
                        Some(name),
                        Watch::default(),
                    )
                    .map(drop),
            ),
            ("show", client.show(name).map(drop)),
            ("rm", client.remove(name)),
            ("resolve", client.resolve(name, Watch::default()).map(drop)),
        ];
        for (op, result) in results {
            let err = result.expect_err(name);
            assert_eq!(err.status(), Status::InvalidName, "{op} {name:?}: {err}");
        }
    }
    assert!(
        reg.requests().is_empty(),
        "requests were made: {:?}",
        reg.requests()
    );
    assert!(
        files_under(&root).is_empty(),
        "the store changed: {:?}",
        files_under(&root)
    );
    assert_eq!(files_under(base.path()), Vec::<String>::new());
    assert_eq!(
        files_under(&std::env::current_dir().unwrap().join("tests")),
        cwd_before
    );
}
