//! Image indexes (OCI) and manifest lists (Docker): a manifest of
//! manifests, one per platform. olreg follows the entry for the platform it
//! was asked for and stores that child, an ordinary manifest; the index
//! itself is not kept.
//!
//! Parsing is as strict as a manifest's: bounded body and entry count,
//! sha256 digests, entry sizes no larger than a manifest may be. Platform
//! names from the registry are shown only when they are plain short words.

use serde::Deserialize;
use serde_json::Value;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{Limits, Manifest};
use crate::platform::Platform;

/// The media type of OCI image indexes.
pub const OCI_INDEX_V1: &str = "application/vnd.oci.image.index.v1+json";
/// The media type of Docker manifest lists.
pub const DOCKER_MANIFEST_LIST_V2: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";

/// The most platforms named in the error for an index without a match.
const MAX_LISTED: usize = 16;

/// One entry of an index: a child manifest and the platform it is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    /// `None` when the entry names no platform, or one that is not made of
    /// plain names (it is then never chosen).
    pub platform: Option<Platform>,
}

/// A parsed image index or manifest list.
#[derive(Clone, Debug)]
pub struct Index {
    digest: Digest,
    entries: Vec<IndexEntry>,
}

/// What a manifest request answered: a manifest, or an index of them.
#[derive(Debug)]
pub(crate) enum Document {
    Manifest(Manifest),
    Index(Index),
}

impl Document {
    /// Parses a manifest response. It is an index when its `mediaType` says
    /// so or, having none (OCI allows that), when it lists `manifests` and
    /// no `layers`.
    pub(crate) fn parse(bytes: Vec<u8>, limits: &Limits) -> Result<Document> {
        if is_index(&bytes) {
            Index::parse(&bytes, limits).map(Document::Index)
        } else {
            Manifest::parse(bytes, limits).map(Document::Manifest)
        }
    }
}

fn is_index(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Shape {
        #[serde(rename = "mediaType")]
        media_type: Option<Value>,
        manifests: Option<serde::de::IgnoredAny>,
        layers: Option<serde::de::IgnoredAny>,
    }
    // Anything that is not even this shape is left to the manifest parser,
    // which says what is wrong with it.
    let Ok(shape) = serde_json::from_slice::<Shape>(bytes) else {
        return false;
    };
    match shape.media_type {
        Some(Value::String(t)) => t == OCI_INDEX_V1 || t == DOCKER_MANIFEST_LIST_V2,
        _ => shape.manifests.is_some() && shape.layers.is_none(),
    }
}

impl Index {
    /// Parses and checks an index against `limits`.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Index> {
        let invalid = |why: String| Error::invalid_manifest(format!("image index: {why}"));
        if bytes.len() > limits.max_manifest_bytes {
            return Err(invalid(format!(
                "{} bytes, over the {} byte limit",
                bytes.len(),
                limits.max_manifest_bytes
            )));
        }
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
        let items = match value.get("manifests") {
            Some(Value::Array(items)) if !items.is_empty() => items,
            Some(Value::Array(_)) | None | Some(Value::Null) => {
                return Err(invalid("no manifests".into()))
            }
            Some(_) => return Err(invalid("manifests is not an array".into())),
        };
        if items.len() > limits.max_layers {
            return Err(invalid(format!(
                "{} entries, over the limit of {}",
                items.len(),
                limits.max_layers
            )));
        }
        let entries = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                parse_entry(item, limits).map_err(|why| invalid(format!("entry {i} {why}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Index {
            digest: Digest::of(bytes),
            entries,
        })
    }

    /// The digest of the index's bytes.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The entries, in index order.
    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    /// The first entry for `wanted`; when there is none, a `NotFound` error
    /// that says this is an index and lists its platforms.
    pub fn select(&self, wanted: &Platform) -> Result<&IndexEntry> {
        if let Some(entry) = self
            .entries
            .iter()
            .find(|e| e.platform.as_ref().is_some_and(|p| wanted.accepts(p)))
        {
            return Ok(entry);
        }
        let mut offered: Vec<String> = Vec::new();
        for entry in &self.entries {
            let name = entry
                .platform
                .as_ref()
                .map_or_else(|| "(no usable platform)".to_owned(), Platform::to_string);
            if !offered.contains(&name) {
                offered.push(name);
            }
        }
        let more = offered.len().saturating_sub(MAX_LISTED);
        offered.truncate(MAX_LISTED);
        let mut list = offered.join(", ");
        if more > 0 {
            list.push_str(&format!(" and {more} more"));
        }
        Err(Error::not_found(format!(
            "a manifest for {wanted} in this image index {} (its platforms: {list}; choose one with the platform option)",
            self.digest.short()
        )))
    }
}

/// One entry; the error text completes "entry N …".
fn parse_entry(item: &Value, limits: &Limits) -> std::result::Result<IndexEntry, String> {
    let Value::Object(obj) = item else {
        return Err("is not an object".into());
    };
    let digest = match obj.get("digest") {
        Some(Value::String(s)) => Digest::parse(s).map_err(|e| format!("has {}", e.kind()))?,
        _ => return Err("has no digest".into()),
    };
    let size = match obj.get("size").and_then(Value::as_u64) {
        Some(size) => size,
        None => return Err("has no size that is a non-negative integer".into()),
    };
    if size > limits.max_manifest_bytes as u64 {
        return Err(format!(
            "claims {size} bytes, over the {} byte manifest limit",
            limits.max_manifest_bytes
        ));
    }
    let media_type = match obj.get("mediaType") {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let platform = obj.get("platform").and_then(|p| {
        let text = |key: &str| p.get(key).and_then(Value::as_str);
        Platform::from_entry(text("os")?, text("architecture")?, text("variant"))
    });
    Ok(IndexEntry {
        digest,
        size,
        media_type,
        platform,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Status;
    use crate::manifest::OCI_MANIFEST_V1;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    fn entry(n: u8, platform: &str) -> String {
        format!(
            r#"{{"mediaType":"{OCI_MANIFEST_V1}","digest":"{}","size":{},"platform":{platform}}}"#,
            d(n),
            100 + n as u32
        )
    }

    fn index(entries: &[String]) -> Vec<u8> {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX_V1}","manifests":[{}]}}"#,
            entries.join(",")
        )
        .into_bytes()
    }

    fn parse(bytes: &[u8]) -> Result<Index> {
        Index::parse(bytes, &Limits::default())
    }

    fn platform(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn selects_the_entry_for_a_platform() {
        let bytes = index(&[
            entry(1, r#"{"os":"linux","architecture":"amd64"}"#),
            entry(2, r#"{"os":"linux","architecture":"arm64","variant":"v8"}"#),
            entry(3, r#"{"os":"unknown","architecture":"unknown"}"#),
        ]);
        let idx = parse(&bytes).unwrap();
        assert_eq!(idx.digest(), Digest::of(&bytes));
        assert_eq!(idx.select(&platform("linux/amd64")).unwrap().digest, d(1));
        let arm = idx.select(&platform("linux/arm64")).unwrap();
        assert_eq!((arm.digest, arm.size), (d(2), 102));
        let err = idx.select(&platform("windows/amd64")).unwrap_err();
        assert_eq!(err.status(), Status::NotFound);
        let text = err.to_string();
        for part in [
            "windows/amd64",
            "image index",
            "linux/amd64, linux/arm64/v8, unknown/unknown",
        ] {
            assert!(text.contains(part), "{text}");
        }
    }

    #[test]
    fn documents_are_told_apart() {
        let limits = Limits::default();
        let is_index = |bytes: Vec<u8>| match Document::parse(bytes, &limits) {
            Ok(Document::Index(_)) => true,
            Ok(Document::Manifest(_)) => false,
            Err(e) => panic!("{e}"),
        };
        let amd64 = entry(1, r#"{"os":"linux","architecture":"amd64"}"#);
        assert!(is_index(index(std::slice::from_ref(&amd64))));
        let list = format!(r#"{{"mediaType":"{DOCKER_MANIFEST_LIST_V2}","manifests":[{amd64}]}}"#);
        assert!(is_index(list.into_bytes()));
        // Without mediaType the shape decides.
        assert!(is_index(
            format!(r#"{{"manifests":[{amd64}]}}"#).into_bytes()
        ));
        let layers = format!(r#"[{{"digest":"{}","size":1}}]"#, d(0));
        assert!(!is_index(format!(r#"{{"layers":{layers}}}"#).into_bytes()));
        assert!(!is_index(
            format!(r#"{{"manifests":[{amd64}],"layers":{layers}}}"#).into_bytes()
        ));
        // Garbage goes to the manifest parser, which says what is wrong.
        let err = Document::parse(b"!!!".to_vec(), &limits).unwrap_err();
        assert!(err.to_string().contains("not JSON"), "{err}");
    }

    #[test]
    fn manifest_requests_accept_indexes() {
        use crate::manifest::{DOCKER_MANIFEST_V2, MANIFEST_ACCEPT};
        let accepted: Vec<&str> = MANIFEST_ACCEPT.split(", ").collect();
        for t in [
            DOCKER_MANIFEST_V2,
            OCI_MANIFEST_V1,
            OCI_INDEX_V1,
            DOCKER_MANIFEST_LIST_V2,
        ] {
            assert!(accepted.contains(&t), "{t} in {MANIFEST_ACCEPT}");
        }
    }

    #[test]
    fn hostile_indexes_are_refused() {
        let limits = Limits {
            max_layers: 3,
            max_manifest_bytes: 4096,
            ..Limits::default()
        };
        let linux = r#"{"os":"linux","architecture":"amd64"}"#;
        let many = index(&vec![entry(1, linux); 4]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (many, "4 entries, over the limit of 3"),
            (index(&[]), "no manifests"),
            (br#"{"manifests":{}}"#.to_vec(), "not an array"),
            (index(&["null".into()]), "entry 0 is not an object"),
            (
                index(&[r#"{"digest":"sha256:abc","size":1}"#.into()]),
                "entry 0 has invalid digest",
            ),
            (
                index(&[format!(r#"{{"digest":"{}","size":-1}}"#, d(1))]),
                "non-negative integer",
            ),
            (
                index(&[format!(r#"{{"digest":"{}","size":5000}}"#, d(1))]),
                "claims 5000 bytes, over the 4096 byte manifest limit",
            ),
        ];
        for (bytes, why) in cases {
            let err = Index::parse(&bytes, &limits).unwrap_err();
            assert_eq!(err.status(), Status::InvalidManifest);
            assert!(err.to_string().contains(why), "{why}: {err}");
        }
        let big = format!(r#"{{"pad":"{}","manifests":[]}}"#, "x".repeat(5000));
        assert!(Index::parse(big.as_bytes(), &limits)
            .unwrap_err()
            .to_string()
            .contains("byte limit"));
    }

    #[test]
    fn registry_text_is_never_shown_raw() {
        let bytes = index(&[entry(
            1,
            r#"{"os":"linux\u001b[31m","architecture":"amd64"}"#,
        )]);
        let idx = parse(&bytes).unwrap();
        assert_eq!(idx.entries()[0].platform, None);
        let text = idx
            .select(&platform("linux/amd64"))
            .unwrap_err()
            .to_string();
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains("(no usable platform)"), "{text}");
    }
}
