//! Slow-tail rescue: one connection that slows to a crawl does not hold the
//! pull; the rest of its range moves to other connections.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::*;
use olreg::{LogLevel, Watch};

const MIB: u64 = 1 << 20;

#[test]
fn a_crawling_connection_gives_its_range_to_others() {
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("library/slow:v1", &[32 * MIB], 91);
    // The first chunk's connection (the redirect's one-byte probe comes
    // first) serves at 2 MiB/s from then on: alone it would need 2 s for
    // its 4 MiB chunk, and as long for each chunk after it.
    reg.inject(
        Fault::new(
            Target::BlobStore { digest: None },
            FaultKind::Throttle {
                bytes_per_sec: 2 * MIB,
            },
        )
        .after(1),
    );
    let store = TempStore::new();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let client = builder(&store)
        .chunk_threshold(MIB)
        .chunk_size(4 * MIB)
        .streams(4)
        .log(
            LogLevel::Info,
            Arc::new(move |_, m| sink.lock().unwrap().push(m.to_owned())),
        )
        .build()
        .unwrap();
    let started = Instant::now();
    client
        .pull(&name_of(&reg, &model), Watch::default())
        .expect("pull");
    let took = started.elapsed();

    // The bytes verify: the pull hashed them, and they are the registry's.
    assert_store_consistent(store.root());
    let layer = &model.layers[0];
    let stored = std::fs::read(store.blob_path(&layer.digest)).unwrap();
    assert!(stored == reg.blob(&layer.digest).unwrap()[..]);

    // A range that does not start on a chunk boundary (nor right after the
    // one-byte probe) was asked for: the crawling chunk's tail, re-split
    // onto another connection.
    let split_starts: Vec<u64> = requests_on(&reg, Server::BlobStore)
        .iter()
        .filter_map(|r| r.header("range"))
        .filter_map(|r| r.strip_prefix("bytes=")?.split('-').next()?.parse().ok())
        .filter(|start: &u64| *start > 1 && start % (4 * MIB) != 0)
        .collect();
    assert!(
        !split_starts.is_empty(),
        "no range was re-split (took {took:?})"
    );
    let lines = lines.lock().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("moving them to another connection")),
        "the rescue is logged: {lines:?}"
    );
}
