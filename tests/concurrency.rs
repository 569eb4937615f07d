//! Several pulls, threads, processes and prunes sharing one store.

mod common;

use std::sync::Arc;

use common::*;
use olreg::{ProgressEvent, Watch};

#[test]
fn two_threads_pulling_one_model_write_each_blob_once() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[300_000, 200_000, 1000], 31);
    // Slow every blob down so the two pulls surely overlap.
    stall_every_blob(&reg, 100, 300);
    let store = TempStore::new();
    let client = Arc::new(client(&store));
    let name = name_of(&reg, &model);
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (client, name) = (client.clone(), name.clone());
            std::thread::spawn(move || {
                let mut waited = false;
                let mut cb = |p: &olreg::Progress| {
                    waited |= p.event == ProgressEvent::Waiting;
                    true
                };
                client
                    .pull(
                        &name,
                        Watch {
                            progress: Some(&mut cb),
                            cancel: None,
                        },
                    )
                    .map(|_| waited)
            })
        })
        .collect();
    let waited: Vec<bool> = threads
        .into_iter()
        .map(|t| t.join().unwrap().expect("both pulls succeed"))
        .collect();
    assert!(
        waited.iter().any(|w| *w),
        "one pull waited for the other's blobs"
    );
    assert_eq!(
        fetches_per_blob(&reg, &model),
        vec![1, 1, 1, 1],
        "each blob was downloaded once"
    );
    assert_store_consistent(store.root());
}

/// Runs inside the child processes of `two_processes_pulling_one_model_both_succeed`.
#[test]
fn concurrent_child() {
    run_pull_child();
}

#[test]
fn two_processes_pulling_one_model_both_succeed() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[400_000, 100_000], 32);
    stall_every_blob(&reg, 100, 400);
    let store = TempStore::new();
    let children: Vec<_> = (0..2)
        .map(|_| spawn_pull_child("concurrent_child", &name_of(&reg, &model), store.root()))
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a pulling process failed");
    }
    assert_eq!(
        fetches_per_blob(&reg, &model),
        vec![1, 1, 1],
        "each blob was downloaded once"
    );
    assert_store_consistent(store.root());
}

#[test]
fn prune_keeps_what_a_running_pull_needs_and_what_it_does_not_own() {
    let reg = TestRegistry::start(Options::default());
    let first = reg.add_model("ns/a:t", &[50_000, 60_000], 33);
    let second = reg.add_model("ns/b:t", &[50_000, 70_000], 33);
    assert_eq!(first.layers[0].digest, second.layers[0].digest);
    let store = TempStore::new();
    let client = Arc::new(client(&store));
    client
        .pull(&name_of(&reg, &first), Watch::default())
        .unwrap();
    // Files that are not olreg's.
    std::fs::write(store.root().join("blobs/notes.txt"), "mine").unwrap();
    std::fs::write(store.root().join("blobs/sha256-short"), "mine").unwrap();
    std::fs::write(store.root().join("README"), "mine").unwrap();

    // `a` goes away; `b` (sharing a's first layer) is being pulled, slowly.
    client.remove(&name_of(&reg, &first)).unwrap();
    stall_every_blob(&reg, 10, 600);
    let puller = {
        let (client, name) = (client.clone(), name_of(&reg, &second));
        std::thread::spawn(move || client.pull(&name, Watch::default()))
    };
    std::thread::sleep(std::time::Duration::from_millis(250));
    let report = client.prune().unwrap();
    puller.join().unwrap().expect("the pull survives a prune");
    // a's second layer and config are gone; the shared layer was pinned.
    assert!(!store.blob_path(&first.layers[1].digest).exists());
    assert!(store.blob_path(&first.layers[0].digest).exists());
    assert!(report.blobs_removed >= 1, "{report:?}");
    for f in ["blobs/notes.txt", "blobs/sha256-short", "README"] {
        assert!(store.root().join(f).exists(), "prune deleted {f}");
    }
    assert_store_consistent_except(store.root(), &["notes.txt", "sha256-short"]);
    assert_eq!(client.list().unwrap().len(), 1);
}

/// Like `assert_store_consistent`, tolerating named foreign files in blobs/.
fn assert_store_consistent_except(root: &std::path::Path, foreign: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    for f in foreign {
        std::fs::rename(root.join("blobs").join(f), tmp.path().join(f)).unwrap();
    }
    assert_store_consistent(root);
    for f in foreign {
        std::fs::rename(tmp.path().join(f), root.join("blobs").join(f)).unwrap();
    }
}

#[test]
fn lock_files_do_not_pile_up() {
    let reg = TestRegistry::start(Options::default());
    let good = reg.add_model("ns/good:t", &[300_000, 2000], 34);
    let bad = reg.add_model("ns/bad:t", &[100_000, 3000], 35);
    fail_blob(&reg, &bad.layers[0].digest, 404);
    let store = TempStore::new();
    let client = Arc::new(client(&store));
    // Two threads pull the same model (one waits on the other's blob locks),
    // a third fails part-way.
    let pulls: Vec<_> = [&good, &good, &bad]
        .into_iter()
        .map(|m| {
            let (client, name) = (client.clone(), name_of(&reg, m));
            std::thread::spawn(move || client.pull(&name, Watch::default()).is_ok())
        })
        .collect();
    let ok: Vec<bool> = pulls.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(ok, vec![true, true, false]);
    client.verify(None, Watch::default()).unwrap();
    let locks = files_under(&store.root().join(".olreg/locks"));
    assert_eq!(
        locks,
        vec!["gc.lock".to_owned()],
        "one lock file per blob ever handled"
    );
    assert_store_consistent(store.root());
}

#[test]
fn closing_a_client_cancels_its_running_operations_and_refuses_new_ones() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[2 << 20], 5);
    stall_every_blob(&reg, 65536, 20_000);
    let store = TempStore::new();
    let client = Arc::new(client(&store));
    let (pulling, started) =
        pull_in_background(&client, name_of(&reg, &model), ProgressEvent::Bytes);
    started
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the pull is under way");
    let begun = std::time::Instant::now();
    client.close().unwrap();
    assert!(begun.elapsed() < std::time::Duration::from_secs(2));
    let err = pulling.join().unwrap().unwrap_err();
    assert_eq!(err.status(), olreg::Status::Cancelled, "{err}");
    let refused = client.list().unwrap_err();
    assert!(
        matches!(refused.kind(), olreg::ErrorKind::Closed),
        "{refused}"
    );
    client.close().unwrap();
}
