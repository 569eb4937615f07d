//! olreg pulling into a store that a running Ollama server prunes: Ollama
//! deletes every blob no manifest references when it starts, on `ollama rm`
//! and when a pull or create replaces a name. A pull in progress must not
//! lose its finished blobs to that, nor pay for them twice.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use common::*;
use olreg::{ProgressEvent, Watch};

/// What Ollama's server does to a store (`PruneLayers`): every file in
/// `blobs/` that no manifest under `manifests/` lists as its config or a
/// layer is deleted, files not named like a blob included. Returns how many
/// it deleted.
fn ollama_prune(root: &Path) -> usize {
    fn walk(dir: &Path, referenced: &mut HashSet<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, referenced);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let Ok(m) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                    continue;
                };
                let layers = m["layers"].as_array().cloned().unwrap_or_default();
                for blob in layers.iter().chain([&m["config"]]) {
                    if let Some(d) = blob["digest"].as_str() {
                        referenced.insert(d.replace(':', "-"));
                    }
                }
            }
        }
    }
    let mut referenced = HashSet::new();
    walk(&root.join("manifests"), &mut referenced);
    let mut deleted = 0;
    for e in std::fs::read_dir(root.join("blobs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().into_string().unwrap_or_default();
        if !referenced.contains(&name) && std::fs::remove_file(e.path()).is_ok() {
            deleted += 1;
        }
    }
    deleted
}

/// Holds back the first bytes of `digest` for a while, so that the rest of
/// a pull finishes well before it.
fn slow_down(reg: &TestRegistry, digest: &str, millis: u64) {
    reg.inject(
        Fault::new(
            Target::BlobStore {
                digest: Some(digest.to_owned()),
            },
            FaultKind::Stall {
                after_bytes: 10,
                millis,
            },
        )
        .forever(),
    );
}

/// Pulls `model` with its first layer held back, and cancels (as Ctrl-C
/// would) once every other blob is done.
fn pull_all_but_the_first_layer(client: &olreg::Client, reg: &TestRegistry, model: &Model) {
    slow_down(reg, &model.layers[0].digest, 2000);
    let others = model.layers.len();
    let mut done = 0;
    let mut cb = |p: &olreg::Progress| {
        done += usize::from(p.event == ProgressEvent::Done);
        done < others
    };
    let err = client
        .pull(
            &name_of(reg, model),
            Watch {
                progress: Some(&mut cb),
                cancel: None,
            },
        )
        .unwrap_err();
    assert_eq!(err.status(), olreg::Status::Cancelled, "{err}");
    reg.clear_faults();
}

#[test]
fn ollama_pruning_during_a_pull_costs_no_download() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[400_000, 20_000, 30_000, 1000], 91);
    slow_down(&reg, &model.layers[0].digest, 1500);
    let store = TempStore::new();
    let client = client(&store);
    // Ollama starts (and prunes) as soon as the first blob is finished.
    let mut pruned = None;
    let mut cb = |p: &olreg::Progress| {
        if p.event == ProgressEvent::Done && pruned.is_none() {
            pruned = Some(ollama_prune(store.root()));
        }
        true
    };
    client
        .pull(
            &name_of(&reg, &model),
            Watch {
                progress: Some(&mut cb),
                cancel: None,
            },
        )
        .expect("the pull survives Ollama's prune");
    assert_eq!(pruned, Some(0), "no finished blob was in Ollama's sight");
    assert_eq!(
        fetches_per_blob(&reg, &model),
        vec![1; 5],
        "no blob fetched twice"
    );
    assert_eq!(assert_store_consistent(store.root()), 5);
    assert_eq!(
        ollama_prune(store.root()),
        0,
        "the linked model keeps every blob"
    );
}

#[test]
fn a_blob_deleted_before_the_model_is_linked_is_fetched_again() {
    let reg = TestRegistry::start(Options::default());
    let first = reg.add_model("ns/a:t", &[50_000, 60_000], 92);
    let second = reg.add_model("ns/b:t", &[50_000, 300_000], 92);
    let shared = first.layers[0].digest.clone();
    assert_eq!(second.layers[0].digest, shared);
    let store = TempStore::new();
    let client = client(&store);
    client
        .pull(&name_of(&reg, &first), Watch::default())
        .unwrap();
    client.remove(&name_of(&reg, &first)).unwrap();
    // The shared blob is in place but unreferenced; Ollama deletes it once
    // the pull has counted it as present.
    slow_down(&reg, &second.layers[1].digest, 1000);
    reg.clear_requests();
    let mut deleted = None;
    let mut cb = |p: &olreg::Progress| {
        if p.event == ProgressEvent::Cached && deleted.is_none() {
            let digest = p.digest.map(|d| d.to_string()).unwrap_or_default();
            deleted = Some((
                std::fs::remove_file(store.blob_path(&digest)).is_ok(),
                digest,
            ));
        }
        true
    };
    client
        .pull(
            &name_of(&reg, &second),
            Watch {
                progress: Some(&mut cb),
                cancel: None,
            },
        )
        .expect("the vanished blob is fetched again");
    assert_eq!(deleted, Some((true, shared)));
    assert_eq!(fetches_per_blob(&reg, &second), vec![1, 1, 1]);
    assert_store_consistent(store.root());
    assert_eq!(olreg::Store::new(store.root()).list().unwrap().len(), 1);
}

#[test]
fn an_interrupted_pull_keeps_its_blobs_through_an_ollama_restart() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[200_000, 100_000, 1000], 93);
    let store = TempStore::new();
    let client = client(&store);
    pull_all_but_the_first_layer(&client, &reg, &model);
    assert!(has_verified_blob(store.root(), &model.layers[1].digest));

    // Ollama starts, prunes, and the pull is tried again.
    ollama_prune(store.root());
    reg.clear_requests();
    client
        .pull(&name_of(&reg, &model), Watch::default())
        .expect("the second pull completes");
    assert_eq!(
        fetches_per_blob(&reg, &model),
        vec![1, 0, 0, 0],
        "only the blob that never arrived is fetched"
    );
    assert_eq!(assert_store_consistent(store.root()), 4);
    assert!(files_under(&store.root().join(".olreg/staged")).is_empty());
}

#[test]
fn prune_deletes_the_staged_blobs_of_abandoned_pulls_only() {
    let reg = TestRegistry::start(Options::default());
    let abandoned = reg.add_model("ns/a:t", &[40_000, 50_000], 94);
    let running = reg.add_model("ns/r:t", &[30_000, 300_000], 95);
    let store = TempStore::new();
    let client = std::sync::Arc::new(client(&store));
    pull_all_but_the_first_layer(&client, &reg, &abandoned);
    let staged = |d: &str| {
        store
            .root()
            .join(".olreg/staged")
            .join(d.replace(':', "-"))
            .is_file()
    };
    assert!(staged(&abandoned.layers[1].digest));

    // A pull is running, with a blob staged, while prune runs.
    slow_down(&reg, &running.layers[1].digest, 1500);
    let (puller, rx) = pull_in_background(&client, name_of(&reg, &running), ProgressEvent::Done);
    rx.recv_timeout(Duration::from_secs(60))
        .expect("a blob of the running pull is staged");
    let report = client.prune().unwrap();
    assert!(!staged(&abandoned.layers[1].digest), "abandoned: deleted");
    assert!(report.partials_removed >= 1, "{report:?}");
    puller
        .join()
        .unwrap()
        .expect("the running pull keeps its blobs");
    assert_eq!(fetches_per_blob(&reg, &running), vec![1, 1, 1]);
    assert_store_consistent(store.root());
    assert!(files_under(&store.root().join(".olreg/staged")).is_empty());
}

/// Runs inside the child process of `ollama_pruning_in_a_loop_beside_a_pull`:
/// prunes the store the way Ollama does, over and over, until the stop file
/// appears (so that it never stops in the middle of a pass).
#[test]
fn ollama_prune_child() {
    let (Ok(root), Ok(stop)) = (
        std::env::var("OLREG_OLLAMA_PRUNE_ROOT"),
        std::env::var("OLREG_OLLAMA_PRUNE_STOP"),
    ) else {
        return;
    };
    while !Path::new(&stop).exists() {
        ollama_prune(Path::new(&root));
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ollama_pruning_in_a_loop_beside_a_pull() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[3 << 20, 200_000, 100_000, 50_000, 1000], 96);
    slow_down(&reg, &model.layers[0].digest, 800);
    slow_down(&reg, &model.layers[1].digest, 400);
    let store = TempStore::new();
    let client = builder(&store)
        .chunk_threshold(1 << 20)
        .chunk_size(1 << 20)
        .build()
        .unwrap();
    // Another model first, so the store is one Ollama would prune.
    let other = reg.add_model("ns/other:t", &[1000], 97);
    client
        .pull(&name_of(&reg, &other), Watch::default())
        .unwrap();
    let stop = tempfile::tempdir().unwrap();
    let stop_file = stop.path().join("stop");
    let mut pruner = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "ollama_prune_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("OLREG_OLLAMA_PRUNE_ROOT", store.root())
        .env("OLREG_OLLAMA_PRUNE_STOP", &stop_file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let result = client.pull(&name_of(&reg, &model), Watch::default());
    std::fs::write(&stop_file, "").unwrap();
    let stopped = pruner.wait().unwrap();
    result.expect("the pull completes beside a pruning Ollama");
    assert!(stopped.success());
    // Blobs are in Ollama's sight only while the model is being linked, and
    // one deleted then is put back from its staged copy: none is fetched
    // twice (the chunked first layer makes several requests).
    assert_eq!(fetches_per_blob(&reg, &model)[1..], [1; 5]);

    // A pass that read the manifests just before the link can still delete
    // a blob after the pull looked for the last time (as it can after any
    // pull, Ollama's own included): pulling again restores the model.
    client
        .pull(&name_of(&reg, &model), Watch::default())
        .unwrap();
    assert_eq!(assert_store_consistent(store.root()), 6 + 2, "both models");
    assert!(fetches_per_blob(&reg, &model)[1..].iter().all(|n| *n <= 2));
}
