//! Synthetic models: deterministic pseudo-random layers, a small config blob
//! and an Ollama-style manifest.
//!
//! Benchmarks need gigabyte layers made in about a second, and tests need
//! the same seed to give the same bytes in every language's test suite, so
//! the generator is a plain xorshift seeded per 1 MiB block (which also lets
//! the blocks be filled on several threads).

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::digest::{finish, sha256_digest};

/// Media type of every synthetic layer.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.ollama.image.model";
/// Media type of the config blob.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.docker.container.image.v1+json";
/// Media type of the manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// A model created by [`TestRegistry::add_model`](super::TestRegistry::add_model).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    /// `ns/model:tag` as given.
    pub name: String,
    /// `ns/model`.
    pub repo: String,
    /// The tag.
    pub tag: String,
    /// The manifest's exact bytes.
    #[serde(with = "super::text_bytes")]
    pub manifest: Bytes,
    /// `sha256:<hex>` of the manifest bytes.
    pub digest: String,
    /// The config blob.
    pub config: BlobInfo,
    /// The layers, in manifest order.
    pub layers: Vec<BlobInfo>,
}

/// A blob as a manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobInfo {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// The manifest's `mediaType` for it.
    pub media_type: String,
}

/// A generated model plus the blobs the registry must hold for it.
pub(crate) struct Generated {
    pub model: Model,
    /// `(digest, bytes)` of every layer and the config.
    pub blobs: Vec<(String, Bytes)>,
}

/// Splits `ns/model:tag` (tag defaults to `latest`, namespace to `library`).
pub(crate) fn split_name(name: &str) -> Result<(String, String), String> {
    let (repo, tag) = match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => (&name[..i], &name[i + 1..]),
        _ => (name, "latest"),
    };
    let repo = if repo.contains('/') {
        repo.to_string()
    } else {
        format!("library/{repo}")
    };
    let segments: Vec<&str> = repo.split('/').collect();
    if segments.len() != 2 || segments.iter().any(|s| s.is_empty()) || tag.is_empty() {
        return Err(format!("model name {name:?} is not ns/model[:tag]"));
    }
    Ok((repo, tag.to_string()))
}

/// Builds a model: layer `i` is filled from `seed` and `i`, so two models
/// with the same seed share their first layers (handy for mount and
/// "already exists" tests).
pub(crate) fn generate(name: &str, layer_sizes: &[u64], seed: u64) -> Result<Generated, String> {
    let (repo, tag) = split_name(name)?;
    let mut blobs = Vec::with_capacity(layer_sizes.len() + 1);
    let mut layers = Vec::with_capacity(layer_sizes.len());
    for (index, &size) in layer_sizes.iter().enumerate() {
        let size = usize::try_from(size).map_err(|_| format!("layer size {size} too large"))?;
        let (data, digest) = pseudo_random(size, mix(seed, index as u64));
        layers.push(BlobInfo {
            digest: digest.clone(),
            size: data.len() as u64,
            media_type: LAYER_MEDIA_TYPE.to_string(),
        });
        blobs.push((digest, data));
    }
    let config = config_json(seed, &layers);
    let config_info = BlobInfo {
        digest: sha256_digest(&config),
        size: config.len() as u64,
        media_type: CONFIG_MEDIA_TYPE.to_string(),
    };
    blobs.push((config_info.digest.clone(), config));
    let manifest = manifest_json(&config_info, &layers);
    let model = Model {
        name: name.to_string(),
        repo,
        tag,
        digest: sha256_digest(&manifest),
        manifest,
        config: config_info,
        layers,
    };
    Ok(Generated { model, blobs })
}

fn config_json(seed: u64, layers: &[BlobInfo]) -> Bytes {
    let config = serde_json::json!({
        "model_format": "gguf",
        "model_family": "testreg",
        "model_families": ["testreg"],
        "model_type": format!("seed-{seed}"),
        "file_type": "F16",
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>(),
        },
    });
    Bytes::from(config.to_string())
}

fn manifest_json(config: &BlobInfo, layers: &[BlobInfo]) -> Bytes {
    // Built by hand to fix the key order (Ollama's: mediaType, digest,
    // size): a manifest's digest is the digest of its exact bytes.
    let entry = |b: &BlobInfo| {
        format!(
            "{{\"mediaType\":{},\"digest\":{},\"size\":{}}}",
            serde_json::Value::from(b.media_type.as_str()),
            serde_json::Value::from(b.digest.as_str()),
            b.size
        )
    };
    let layers: Vec<String> = layers.iter().map(entry).collect();
    Bytes::from(format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{MANIFEST_MEDIA_TYPE}\",\"config\":{},\"layers\":[{}]}}",
        entry(config),
        layers.join(",")
    ))
}

const BLOCK: usize = 1 << 20;

/// `size` pseudo-random bytes and their digest; block `b` (1 MiB) is an
/// xorshift64 stream seeded with `mix(seed, b)`.
///
/// Worker threads fill interleaved blocks and hand each one back as soon as
/// it is done, while this thread hashes them in order: generation overlaps
/// hashing, which is the sequential part.
pub(crate) fn pseudo_random(size: usize, seed: u64) -> (Bytes, String) {
    let mut data = vec![0u8; size];
    // One core is left to the hashing thread.
    let workers = std::thread::available_parallelism()
        .map(|n| n.get().saturating_sub(1).max(1))
        .unwrap_or(1)
        .min(size / (16 * BLOCK) + 1);
    let mut hasher = Sha256::new();
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = std::sync::mpsc::channel::<(usize, &[u8])>();
        let mut shares: Vec<Vec<(usize, &mut [u8])>> = (0..workers).map(|_| Vec::new()).collect();
        for (index, block) in data.chunks_mut(BLOCK).enumerate() {
            shares[index % workers].push((index, block));
        }
        for share in shares {
            let done_tx = done_tx.clone();
            scope.spawn(move || {
                for (index, block) in share {
                    fill_block(block, mix(seed, index as u64));
                    // The receiver only stops early if this thread panicked.
                    let _ = done_tx.send((index, block));
                }
            });
        }
        drop(done_tx);
        let mut waiting = BTreeMap::new();
        let mut next = 0;
        for (index, block) in done_rx {
            waiting.insert(index, block);
            while let Some(block) = waiting.remove(&next) {
                hasher.update(block);
                next += 1;
            }
        }
    });
    let digest = finish(hasher);
    (Bytes::from(data), digest)
}

fn fill_block(block: &mut [u8], seed: u64) {
    let mut state = seed | 1;
    let mut words = block.chunks_exact_mut(8);
    for word in &mut words {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        word.copy_from_slice(&state.to_le_bytes());
    }
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    let tail = words.into_remainder();
    let len = tail.len();
    tail.copy_from_slice(&state.to_le_bytes()[..len]);
}

/// SplitMix64 of `a` combined with `b`: well-spread seeds from small inputs.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a
        .wrapping_add(b.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split() {
        assert_eq!(
            split_name("a/b:c"),
            Ok(("a/b".to_string(), "c".to_string()))
        );
        assert_eq!(
            split_name("b"),
            Ok(("library/b".to_string(), "latest".to_string()))
        );
        assert!(split_name("a/b/c:d").is_err());
        assert!(split_name("a/:d").is_err());
    }

    #[test]
    fn generation_is_deterministic_and_seed_dependent() {
        let a = generate("x/y:z", &[3, 5_000_000], 7).expect("generate");
        let b = generate("x/y:z", &[3, 5_000_000], 7).expect("generate");
        let c = generate("x/y:z", &[3, 5_000_000], 8).expect("generate");
        assert_eq!(a.model, b.model);
        assert_ne!(a.model.layers[1].digest, c.model.layers[1].digest);
        assert_eq!(a.blobs[1].1.len(), 5_000_000);
        assert_eq!(a.blobs[1].0, sha256_digest(&a.blobs[1].1));
        let manifest: serde_json::Value =
            serde_json::from_slice(&a.model.manifest).expect("manifest is JSON");
        assert_eq!(manifest["layers"][1]["size"], 5_000_000);
        assert_eq!(manifest["config"]["digest"], a.model.config.digest.as_str());
        let text = std::str::from_utf8(&a.model.manifest).expect("UTF-8");
        assert!(text.starts_with(
            "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"config\":{\"mediaType\":"
        ));
    }
}
