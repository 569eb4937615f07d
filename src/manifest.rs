//! Manifests: the exact bytes a registry sent, and the blobs they list.
//!
//! A manifest is kept byte for byte (its digest is the digest of those
//! bytes), and parsed only to learn its blobs. Parsing is strict about what
//! could hurt: every digest must be a sha256 digest, sizes must be
//! non-negative and under a cap, one digest may not be listed with two
//! sizes, the layer count and the body are bounded, and a layer may not be
//! `null`. Anything else in the JSON is left alone.

use serde::Deserialize;
use serde_json::Value;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// The media type of Docker/Ollama image manifests.
pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The media type of OCI image manifests.
pub const OCI_MANIFEST_V1: &str = "application/vnd.oci.image.manifest.v1+json";
/// The `Accept` header for manifest requests: OCI registries answer 400, or
/// rewrite the manifest, without it. Indexes and manifest lists are listed
/// too: without them Distribution answers an index with 404 and narrows a
/// manifest list to its amd64 entry.
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// Bounds on what a manifest may claim, so a hostile registry cannot make
/// the client allocate, download or pre-allocate without limit.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest manifest body accepted, in bytes.
    pub max_manifest_bytes: usize,
    /// Largest single blob accepted, in bytes.
    pub max_blob_size: u64,
    /// Most layers accepted in one manifest.
    pub max_layers: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_manifest_bytes: 4 << 20,
            max_blob_size: 1 << 40,
            max_layers: 1000,
        }
    }
}

/// One blob a manifest refers to: a layer or the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

/// A parsed manifest with its exact bytes.
#[derive(Clone, Debug)]
pub struct Manifest {
    bytes: Vec<u8>,
    digest: Digest,
    media_type: Option<String>,
    config: Option<Layer>,
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct RawManifest {
    #[serde(rename = "mediaType")]
    media_type: Option<Value>,
    config: Option<Value>,
    layers: Option<Value>,
}

impl Manifest {
    /// Parses and checks `bytes` against `limits`.
    pub fn parse(bytes: Vec<u8>, limits: &Limits) -> Result<Manifest> {
        if bytes.len() > limits.max_manifest_bytes {
            return Err(Manifest::too_large(bytes.len() as u64, limits));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::invalid_manifest("empty body"));
        }
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::invalid_manifest(format!("not JSON: {e}")))?;
        if !value.is_object() {
            return Err(Error::invalid_manifest(format!(
                "expected a JSON object, got {}",
                json_kind(&value)
            )));
        }
        let raw: RawManifest = serde_json::from_value(value)
            .map_err(|e| Error::invalid_manifest(format!("unexpected structure: {e}")))?;

        let media_type = match raw.media_type {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                return Err(Error::invalid_manifest(format!(
                    "mediaType is {}, not a string",
                    json_kind(&other)
                )))
            }
        };
        let config = match raw.config {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_layer(&v, "config", limits)?),
        };
        let layers = match raw.layers {
            Some(Value::Array(items)) => items,
            Some(other) => {
                return Err(Error::invalid_manifest(format!(
                    "layers is {}, not an array",
                    json_kind(&other)
                )))
            }
            None => return Err(Error::invalid_manifest("no layers")),
        };
        if layers.is_empty() {
            return Err(Error::invalid_manifest("no layers"));
        }
        if layers.len() > limits.max_layers {
            return Err(Error::invalid_manifest(format!(
                "{} layers, over the limit of {}",
                layers.len(),
                limits.max_layers
            )));
        }
        let layers = layers
            .iter()
            .enumerate()
            .map(|(i, v)| parse_layer(v, &format!("layer {i}"), limits))
            .collect::<Result<Vec<_>>>()?;
        check_sizes_agree(config.iter().chain(&layers))?;
        let digest = Digest::of(&bytes);
        Ok(Manifest {
            bytes,
            digest,
            media_type,
            config,
            layers,
        })
    }

    /// The error for a manifest of `len` bytes, over the limit.
    pub(crate) fn too_large(len: u64, limits: &Limits) -> Error {
        Error::invalid_manifest(format!(
            "{len} bytes, over the {} byte limit",
            limits.max_manifest_bytes
        ))
    }

    /// The exact bytes, as received or as stored.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The digest of [`Manifest::bytes`].
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The manifest's own `mediaType`, sent as `Content-Type` when pushed.
    /// Docker's v2 schema requires the field and OCI's leaves it optional,
    /// so a manifest without one is OCI.
    pub fn media_type(&self) -> &str {
        self.media_type.as_deref().unwrap_or(OCI_MANIFEST_V1)
    }

    /// The config blob, if the manifest names one.
    pub fn config(&self) -> Option<&Layer> {
        self.config.as_ref()
    }

    /// The layers, in manifest order.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Every distinct blob the manifest needs: the config first, then the
    /// layers in order, each digest once.
    pub fn blobs(&self) -> Vec<Layer> {
        let mut out: Vec<Layer> = Vec::with_capacity(self.layers.len() + 1);
        for layer in self.config.iter().chain(&self.layers) {
            if !out.iter().any(|l| l.digest == layer.digest) {
                out.push(layer.clone());
            }
        }
        out
    }

    /// The sum of the sizes of [`Manifest::blobs`].
    pub fn total_size(&self) -> u64 {
        self.blobs().iter().map(|l| l.size).sum()
    }
}

fn parse_layer(v: &Value, what: &str, limits: &Limits) -> Result<Layer> {
    let obj = match v {
        Value::Object(obj) => obj,
        other => {
            return Err(Error::invalid_manifest(format!(
                "{what} is {}, not an object",
                json_kind(other)
            )))
        }
    };
    let digest = match obj.get("digest") {
        Some(Value::String(s)) => Digest::parse(s)
            .map_err(|e| Error::invalid_manifest(format!("{what}: {}", e.kind())))?,
        _ => return Err(Error::invalid_manifest(format!("{what} has no digest"))),
    };
    let size = match obj.get("size") {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(size) => size,
            None => {
                return Err(Error::invalid_manifest(format!(
                    "{what} has size {n}, not a non-negative integer"
                )))
            }
        },
        _ => return Err(Error::invalid_manifest(format!("{what} has no size"))),
    };
    if size > limits.max_blob_size {
        return Err(Error::invalid_manifest(format!(
            "{what} claims {size} bytes, over the {} byte limit",
            limits.max_blob_size
        )));
    }
    let media_type = match obj.get("mediaType") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => {
            return Err(Error::invalid_manifest(format!(
                "{what} has a mediaType that is {}, not a string",
                json_kind(other)
            )))
        }
    };
    Ok(Layer {
        digest,
        size,
        media_type,
    })
}

/// A digest names one content, so it has one size: a manifest that lists a
/// digest twice with two sizes is refused (which size would be fetched,
/// checked and reported would otherwise depend on the order of the list).
fn check_sizes_agree<'a>(blobs: impl Iterator<Item = &'a Layer>) -> Result<()> {
    let mut seen: std::collections::HashMap<Digest, u64> = std::collections::HashMap::new();
    for blob in blobs {
        match seen.insert(blob.digest, blob.size) {
            Some(size) if size != blob.size => {
                return Err(Error::invalid_manifest(format!(
                    "{} is listed with two sizes, {size} and {} bytes",
                    blob.digest, blob.size
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Status;

    fn d(n: u8) -> String {
        Digest::of(&[n]).to_string()
    }

    fn good() -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_V2}",
            "config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{}","size":10}},
            "layers":[{{"mediaType":"application/vnd.ollama.image.model","digest":"{}","size":1000}},
                      {{"mediaType":"application/vnd.ollama.image.license","digest":"{}","size":20}}]}}"#,
            d(0),
            d(1),
            d(2)
        )
    }

    fn parse(s: &str) -> Result<Manifest> {
        Manifest::parse(s.as_bytes().to_vec(), &Limits::default())
    }

    #[test]
    fn parses_blobs_and_keeps_bytes() {
        let text = good();
        let m = parse(&text).unwrap();
        assert_eq!(m.bytes(), text.as_bytes());
        assert_eq!(m.digest(), Digest::of(text.as_bytes()));
        assert_eq!(m.layers().len(), 2);
        assert_eq!(m.config().unwrap().size, 10);
        assert_eq!(m.blobs().len(), 3);
        assert_eq!(m.total_size(), 1030);
        assert_eq!(m.media_type(), DOCKER_MANIFEST_V2);
    }

    #[test]
    fn repeated_digests_are_fetched_once() {
        let text = format!(
            r#"{{"config":{{"digest":"{0}","size":1}},"layers":[{{"digest":"{0}","size":1}},{{"digest":"{1}","size":1}},{{"digest":"{1}","size":1}}]}}"#,
            d(0),
            d(1)
        );
        let m = parse(&text).unwrap();
        assert_eq!(m.blobs().len(), 2);
        assert_eq!(m.media_type(), OCI_MANIFEST_V1, "no mediaType: OCI");
    }

    #[test]
    fn one_digest_with_two_sizes_is_refused() {
        let cases = [
            format!(
                r#"{{"layers":[{{"digest":"{0}","size":1}},{{"digest":"{0}","size":2}}]}}"#,
                d(0)
            ),
            format!(
                r#"{{"config":{{"digest":"{0}","size":5}},"layers":[{{"digest":"{0}","size":1}}]}}"#,
                d(0)
            ),
        ];
        for text in cases {
            let err = parse(&text).unwrap_err();
            assert_eq!(err.status(), Status::InvalidManifest);
            assert!(err.to_string().contains("listed with two sizes"), "{err}");
        }
    }

    #[test]
    fn invalid_manifests_say_why() {
        let cases = [
            ("", "empty body"),
            ("  ", "empty body"),
            ("null", "expected a JSON object, got null"),
            ("!!!", "not JSON"),
            ("[]", "expected a JSON object"),
            ("{}", "no layers"),
            (r#"{"layers":[]}"#, "no layers"),
            (r#"{"layers":null}"#, "no layers"),
            (r#"{"layers":{}}"#, "not an array"),
            (r#"{"layers":[null]}"#, "layer 0 is null"),
            (r#"{"layers":[{"size":1}]}"#, "layer 0 has no digest"),
            (
                r#"{"layers":[{"digest":"sha256:abc","size":1}]}"#,
                "layer 0: invalid digest",
            ),
            (
                r#"{"layers":[{"digest":"sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":1}]}"#,
                "not a sha256 digest",
            ),
            (
                r#"{"layers":[{"digest":"sha256:../../../../../../../../../../../../../../../../../../etc/passwd","size":1}]}"#,
                "invalid digest",
            ),
        ];
        for (text, why) in cases {
            let err = parse(text).expect_err(text);
            assert_eq!(err.status(), Status::InvalidManifest, "{text}");
            assert!(err.to_string().contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn sizes_are_bounded() {
        let e = |size: &str| {
            parse(&format!(
                r#"{{"layers":[{{"digest":"{}","size":{size}}}]}}"#,
                d(0)
            ))
            .unwrap_err()
            .to_string()
        };
        assert!(e("-1").contains("not a non-negative integer"));
        assert!(e("1.5").contains("not a non-negative integer"));
        assert!(e("1e300").contains("not a non-negative integer"));
        assert!(e("\"10\"").contains("has no size"));
        assert!(e("1099511627777").contains("over the 1099511627776 byte limit"));
    }

    #[test]
    fn layer_count_and_body_are_bounded() {
        let layer = format!(r#"{{"digest":"{}","size":1}}"#, d(0));
        let many = format!(r#"{{"layers":[{}]}}"#, vec![layer; 1001].join(","));
        assert!(parse(&many)
            .unwrap_err()
            .to_string()
            .contains("1001 layers"));
        let big = format!(r#"{{"pad":"{}","layers":[]}}"#, "x".repeat(4 << 20));
        assert!(parse(&big).unwrap_err().to_string().contains("byte limit"));
    }
}
