//! The bandwidth cap: the whole client moves no more than it allows, in
//! pulls and pushes, whatever the number of streams.

mod common;

use std::time::Instant;

use common::*;
use olreg::Watch;

const MIB: u64 = 1 << 20;

/// Seconds that moving `bytes` under a cap of `rate` takes at least: the
/// bucket starts with an eighth of a second saved.
fn least_secs(bytes: u64, rate: u64) -> f64 {
    (bytes as f64 - rate as f64 / 8.0) / rate as f64
}

#[test]
fn pulls_and_pushes_keep_to_the_cap() {
    let reg = TestRegistry::start(Options::default());
    // One chunked blob and several small ones: 6 MiB in all.
    let model = reg.add_model(
        "library/capped:v1",
        &[3 * MIB, MIB, MIB, MIB / 2, MIB / 2],
        17,
    );
    let rate = 2 * MIB;
    let store = TempStore::new();
    let client = builder(&store)
        .chunk_threshold(2 * MIB)
        .chunk_size(MIB)
        .streams(4)
        .rate_limit(rate)
        .build()
        .unwrap();
    let total: u64 = model.layers.iter().map(|l| l.size).sum();

    let started = Instant::now();
    client
        .pull(&name_of(&reg, &model), Watch::default())
        .expect("pull");
    let secs = started.elapsed().as_secs_f64();
    let least = least_secs(total, rate);
    assert!(
        secs >= least,
        "6 MiB pulled in {secs:.2} s under a 2 MiB/s cap"
    );
    // Generous: the cap must not cost much more than it asks for.
    assert!(secs < 3.0 * least + 2.0, "pull took {secs:.2} s");
    assert_store_consistent(store.root());

    // To another registry, which has none of the blobs.
    let other = TestRegistry::start(Options::default());
    let target = format!("http://{}/library/copy:v1", other.host());
    let started = Instant::now();
    client
        .push(&target, Some(&name_of(&reg, &model)), Watch::default())
        .expect("push");
    let secs = started.elapsed().as_secs_f64();
    assert!(
        secs >= least,
        "6 MiB pushed in {secs:.2} s under a 2 MiB/s cap"
    );
    assert!(secs < 3.0 * least + 2.0, "push took {secs:.2} s");
    for layer in &model.layers {
        assert!(
            other.blob(&layer.digest).is_some(),
            "{} arrived",
            layer.digest
        );
    }
}

#[test]
fn no_cap_by_default_and_zero_means_none() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("library/free:v1", &[8 * MIB], 18);
    let store = TempStore::new();
    let client = builder(&store).rate_limit(0).build().unwrap();
    let started = Instant::now();
    client
        .pull(&name_of(&reg, &model), Watch::default())
        .expect("pull");
    // Under any cap worth having this would take seconds.
    assert!(started.elapsed().as_secs_f64() < least_secs(8 * MIB, MIB));
}
