//! Resume across restarts and crash consistency under SIGKILL.

mod common;

use std::time::{Duration, Instant};

use common::*;
use olreg::Watch;

/// Bytes the blob store was asked for, summed over its requests' ranges
/// (whole-blob requests count the blob's size).
fn bytes_requested(reg: &TestRegistry, model: &Model) -> u64 {
    let sizes: Vec<(String, u64)> = model
        .layers
        .iter()
        .chain([&model.config])
        .map(|b| (b.digest.clone(), b.size))
        .collect();
    requests_on(reg, Server::BlobStore)
        .iter()
        .map(|r| {
            let size = sizes
                .iter()
                .find(|(d, _)| r.path_and_query.contains(d.as_str()))
                .map_or(0, |(_, s)| *s);
            match r.header("range").and_then(|v| v.strip_prefix("bytes=")) {
                Some(range) => {
                    let (a, b) = range.split_once('-').unwrap();
                    let a: u64 = a.parse().unwrap();
                    let b: u64 = if b.is_empty() {
                        size - 1
                    } else {
                        b.parse().unwrap()
                    };
                    b - a + 1
                }
                None => size,
            }
        })
        .sum()
}

/// Bytes recorded as present in the partial state files of a store.
fn bytes_recorded(store: &TempStore) -> u64 {
    let dir = store.root().join(".olreg/partial");
    let mut total = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().extension().is_some_and(|x| x == "state") {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
            for r in v["done"].as_array().unwrap() {
                total += r[1].as_u64().unwrap() - r[0].as_u64().unwrap();
            }
        }
    }
    total
}

#[test]
fn a_failed_pull_costs_only_the_bytes_it_did_not_have() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[8 << 20, 3 << 20], 21);
    // After 6 chunk answers the blob store fails for good.
    reg.inject(
        Fault::new(
            Target::BlobStore { digest: None },
            FaultKind::Status {
                code: 500,
                body: ErrorBody::Empty,
                retry_after: None,
            },
        )
        .forever()
        .after(9),
    );
    let store = TempStore::new();
    let client = builder(&store)
        .chunk_threshold(1 << 20)
        .chunk_size(1 << 20)
        .streams(2)
        .retry_attempts(2)
        .retry_base_delay(Duration::from_millis(1))
        .build()
        .unwrap();
    client
        .pull(&name_of(&reg, &model), Watch::default())
        .unwrap_err();
    // Complete blobs, and the ranges recorded for partial ones.
    let complete: u64 = model
        .layers
        .iter()
        .chain([&model.config])
        .filter(|b| has_verified_blob(store.root(), &b.digest))
        .map(|b| b.size)
        .sum();
    let kept = bytes_recorded(&store) + complete;
    assert!(
        kept >= 3 << 20,
        "the chunks that arrived are recorded: {kept}"
    );
    assert_store_consistent(store.root());

    reg.clear_faults();
    reg.clear_requests();
    // A new client, as after a restart.
    let client = builder(&store)
        .chunk_threshold(1 << 20)
        .chunk_size(1 << 20)
        .build()
        .unwrap();
    client
        .pull(&name_of(&reg, &model), Watch::default())
        .expect("resumed pull");
    assert_store_consistent(store.root());
    let total = (11 << 20) + model.config.size;
    let fetched = bytes_requested(&reg, &model);
    assert!(
        fetched <= total - kept + 2,
        "fetched {fetched} bytes again, {} were missing",
        total - kept
    );
    assert!(
        files_under(&store.root().join(".olreg/partial")).is_empty(),
        "partials are gone once complete"
    );
}

#[test]
fn a_full_size_partial_file_without_state_is_not_trusted() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/m:t", &[100_000], 22);
    let store = TempStore::new();
    let partial_dir = store.root().join(".olreg/partial");
    std::fs::create_dir_all(&partial_dir).unwrap();
    let layer = &model.layers[0];
    std::fs::write(
        partial_dir.join(format!("{}.part", layer.digest.replace(':', "-"))),
        vec![0u8; layer.size as usize],
    )
    .unwrap();
    client(&store)
        .pull(&name_of(&reg, &model), Watch::default())
        .expect("pull");
    assert_store_consistent(store.root());
    assert_eq!(
        bytes_requested(&reg, &model),
        layer.size + model.config.size,
        "everything was fetched"
    );
}

/// Runs inside the child processes of `crash_consistency_under_sigkill`.
#[test]
fn crash_child() {
    run_pull_child();
}

/// A small seeded generator, so a failing trial can be replayed.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn crash_consistency_under_sigkill() {
    let seed: u64 = std::env::var("OLREG_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0012);
    let trials: usize = std::env::var("OLREG_CRASH_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut rng = XorShift(seed);
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("ns/crash:t", &[12 << 20, 3 << 20, 100_000, 1000], 23);
    let name = name_of(&reg, &model);

    // How long an undisturbed pull takes in a child process.
    let probe = TempStore::new();
    let started = Instant::now();
    assert!(spawn_pull_child("crash_child", &name, probe.root())
        .wait()
        .unwrap()
        .success());
    let full = started.elapsed();
    assert_store_consistent(probe.root());

    for trial in 0..trials {
        let store = TempStore::new();
        for kill in 0..2 {
            let delay = Duration::from_micros(rng.next() % (full.as_micros() as u64 + 1));
            let mut child = spawn_pull_child("crash_child", &name, store.root());
            std::thread::sleep(delay);
            let _ = child.kill();
            let _ = child.wait();
            let blobs = assert_store_consistent(store.root());
            eprintln!(
                "seed {seed:#x} trial {trial} kill {kill} after {delay:?}: {blobs} blobs in place"
            );
        }
        client(&store)
            .pull(&name, Watch::default())
            .unwrap_or_else(|e| panic!("seed {seed:#x} trial {trial}: {e}"));
        assert_eq!(assert_store_consistent(store.root()), 5);
        assert_eq!(olreg::Store::new(store.root()).list().unwrap().len(), 1);
    }
}
