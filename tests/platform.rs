//! Store behaviour that differs by platform (README, "Platforms"): file
//! names under `manifests/`, case-insensitive file systems, and replacing a
//! manifest another program holds open. These run natively on Linux and,
//! built for Windows, under Wine (`make test-wine`), whose file system is
//! case-insensitive as Windows' is.

mod common;

use common::*;
use olreg::{Status, Watch};

#[test]
fn one_model_keeps_its_first_spelling_whatever_case_later_names_use() {
    let reg = TestRegistry::start(Options::default());
    let first = reg.add_model("ns/Mixed:Tag", &[2000], 1);
    let store = TempStore::new();
    let client = client(&store);
    client
        .pull(&name_of(&reg, &first), Watch::default())
        .unwrap();

    // The registry's model changes; it is pulled under another spelling.
    let second = reg.add_model("ns/mixed:TAG", &[3000], 2);
    assert_ne!(second.digest, first.digest);
    client
        .pull(&name_of(&reg, &second), Watch::default())
        .unwrap();

    let listed: Vec<String> = client
        .list()
        .unwrap()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(listed, [format!("{}/ns/Mixed:Tag", reg.host())]);
    let model_dir = store.manifest_path(&reg.host(), "ns", "Mixed");
    assert_eq!(
        names_in(model_dir.parent().unwrap()),
        ["Mixed"],
        "one directory"
    );
    assert_eq!(
        names_in(&model_dir),
        ["Tag"],
        "one manifest, first spelling"
    );
    let stored = std::fs::read(model_dir.join("Tag")).unwrap();
    assert_eq!(stored, second.manifest.to_vec(), "the newer manifest");
    for spelling in ["ns/MIXED:tag", "ns/mixed:tag"] {
        let shown = client
            .show(&format!("http://{}/{spelling}", reg.host()))
            .unwrap();
        assert_eq!(shown, second.manifest.to_vec(), "{spelling}");
    }
    assert_store_consistent(store.root());
}

#[test]
fn a_host_with_a_port_is_a_file_name_on_every_platform() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("library/m:v1", &[1000], 3);
    let store = TempStore::new();
    client(&store)
        .pull(&name_of(&reg, &model), Watch::default())
        .unwrap();
    // `:` separates a stream name on Windows: the port is written `+` there.
    let expected = if cfg!(windows) {
        reg.host().replace(':', "+")
    } else {
        reg.host()
    };
    assert_eq!(names_in(&store.root().join("manifests")), [expected]);
    let listed = client(&store).list().unwrap();
    assert_eq!(
        listed[0].to_string(),
        format!("{}/library/m:v1", reg.host())
    );
}

#[test]
fn names_windows_cannot_store_are_refused_there_with_the_reason() {
    let reg = TestRegistry::start(Options::default());
    let store = TempStore::new();
    let client = client(&store);
    for (name, why) in [
        ("library/con:latest", "device"),
        ("library/m:nul", "device"),
        ("library/lpt1.q4:v1", "device"),
        ("library/m:v1.", "drops"),
    ] {
        let model = reg.add_model(name, &[500], 4);
        let result = client.pull(&name_of(&reg, &model), Watch::default());
        if cfg!(windows) {
            let err = result.unwrap_err();
            assert_eq!(err.status(), Status::InvalidName, "{name}: {err}");
            assert!(err.to_string().contains(why), "{name}: {err}");
        } else {
            // Unix file systems store these names as they are, as Ollama does.
            result.unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    if cfg!(windows) {
        assert!(client.list().unwrap().is_empty());
    }
}

/// Ollama (Go) opens files without sharing delete: while it reads a
/// manifest, Windows refuses to rename another over it. olreg waits for
/// the reader to finish rather than failing the pull.
#[cfg(windows)]
#[test]
fn a_manifest_another_program_reads_is_replaced_once_it_lets_go() {
    use std::os::windows::fs::OpenOptionsExt;
    use std::time::{Duration, Instant};
    const FILE_SHARE_READ: u32 = 1;

    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("library/m:v1", &[1000], 5);
    let store = TempStore::new();
    let client = client(&store);
    client
        .pull(&name_of(&reg, &model), Watch::default())
        .unwrap();
    let path = store.manifest_path(&reg.host(), "library/m", "v1");
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .share_mode(FILE_SHARE_READ)
        .open(&path)
        .unwrap();
    let held = Duration::from_millis(500);
    let letting_go = std::thread::spawn(move || {
        std::thread::sleep(held);
        drop(reader);
    });

    let newer = reg.add_model("library/m:v1", &[2000], 6);
    let started = Instant::now();
    client
        .pull(&name_of(&reg, &newer), Watch::default())
        .unwrap();
    letting_go.join().unwrap();
    assert!(started.elapsed() >= held, "it waited for the reader");
    assert_eq!(std::fs::read(&path).unwrap(), newer.manifest.to_vec());
}
