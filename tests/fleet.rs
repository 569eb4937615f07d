//! A fleet behind a pull-through cache: Docker Distribution in proxy mode in
//! front of an origin Distribution (token auth, with a password only the
//! cache holds). One node warms the cache; then six nodes — separate processes
//! with separate stores — pull at once through olreg's mirror option, get
//! identical models, and the origin serves them no blob.

mod common;

use common::*;
use olreg::Watch;
use olreg_testreg::distribution::{Distribution, DistributionAuth, DistributionOptions, ProxyOf};

const NODES: usize = 6;

fn start(options: DistributionOptions) -> Distribution {
    Distribution::start_with(options).unwrap_or_else(|e| {
        panic!("Docker Distribution must be installed (apt-get install docker-registry): {e}")
    })
}

/// `GET`s of blobs, whole or ranged, in a Distribution's access log.
fn blob_gets(dist: &Distribution) -> usize {
    dist.log_contents()
        .lines()
        .filter(|l| {
            l.contains("\"GET /v2/")
                && l.contains("/blobs/sha256:")
                && (l.contains("\" 200 ") || l.contains("\" 206 "))
        })
        .count()
}

/// Whether a Distribution holds blob `digest` in its own storage.
fn cached(dist: &Distribution, digest: &str) -> bool {
    let hex = digest.trim_start_matches("sha256:");
    dist.dir()
        .join("storage/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
        .is_file()
}

/// Runs inside the child processes of `six_nodes_pull_through_a_warm_cache`.
#[test]
fn fleet_node() {
    run_pull_child();
}

#[test]
fn six_nodes_pull_through_a_warm_cache() {
    let origin = start(DistributionOptions {
        // Token auth, as public registries use: Distribution 2.8's proxy
        // mode uses its credentials only with token realms.
        auth: DistributionAuth::Token {
            user: "fleet".into(),
            password: "origin-pw".into(),
            ttl_secs: 300,
        },
        ..DistributionOptions::default()
    });
    let cache = start(DistributionOptions {
        proxy: Some(ProxyOf {
            remote_url: origin.url(),
            credentials: Some(("fleet".into(), "origin-pw".into())),
        }),
        ..DistributionOptions::default()
    });

    // Publish a model on the origin.
    let reg = TestRegistry::start(Options::default());
    let model = reg.add_model("library/fleet:v1", &[3 << 20, 200_000, 64], 91);
    let publisher = TempStore::new();
    let p = builder(&publisher)
        .credential(&origin.host(), "fleet", "origin-pw")
        .build()
        .unwrap();
    p.pull(&name_of(&reg, &model), Watch::default()).unwrap();
    let name = format!("http://{}/library/fleet:v1", origin.host());
    p.push(&name, Some(&name_of(&reg, &model)), Watch::default())
        .unwrap();

    // Nodes know the origin's name and the cache's address, and no password.
    let mirror = format!("{}={}", origin.host(), cache.url());
    let warm = TempStore::new();
    builder(&warm)
        .mirror(&mirror)
        .build()
        .unwrap()
        .pull(&name, Watch::default())
        .expect("the first node warms the cache");
    // On a miss Distribution 2.8 fetches a blob twice from its origin (one
    // stream for the client, one for its own storage, finished in the
    // background): wait until the cache has stored every blob.
    let digests: Vec<String> = model
        .layers
        .iter()
        .chain([&model.config])
        .map(|b| b.digest.clone())
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !digests.iter().all(|d| cached(&cache, d)) {
        assert!(
            std::time::Instant::now() < deadline,
            "the cache never stored the blobs"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let served_before = blob_gets(&origin);
    assert!(
        served_before >= 4,
        "the cache fetched every blob from the origin"
    );

    let stores: Vec<TempStore> = (0..NODES).map(|_| TempStore::new()).collect();
    let children: Vec<_> = stores
        .iter()
        .map(|s| spawn_pull_child_via("fleet_node", &name, s.root(), &mirror))
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a node failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let expected = files_under(warm.root().join("blobs").as_path());
    for store in stores.iter().chain([&warm]) {
        let c = client(store);
        assert_eq!(
            c.show(&name).unwrap(),
            model.manifest.to_vec(),
            "identical manifest"
        );
        assert_eq!(files_under(store.root().join("blobs").as_path()), expected);
        assert_eq!(assert_store_consistent(store.root()), 4);
    }
    assert_eq!(
        blob_gets(&origin),
        served_before,
        "the origin served the fleet no blob"
    );
    assert!(
        blob_gets(&cache) >= 4 * (NODES + 1),
        "the cache served every node: {}",
        blob_gets(&cache)
    );
}
