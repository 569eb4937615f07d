//! `index.json` and `oci-layout` of an OCI image layout (image-spec v1.1):
//! parsing, choosing an entry, adding one. Pure: no I/O.
//!
//! An index is kept as JSON so that whatever another tool wrote into it
//! (annotations, fields of later spec versions, other entries) survives an
//! export into the same layout.

use serde_json::{json, Map, Value};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{DOCKER_MANIFEST_V2, OCI_MANIFEST_V1};

/// The annotation that names an entry: the tag (`v1`, `latest`).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd writes with the full image name; olreg writes
/// it too (`host/namespace/model:tag`), so several models with one tag can
/// share a layout and still be told apart.
pub const FULL_NAME: &str = "io.containerd.image.name";
pub use crate::index::OCI_INDEX_V1;
/// The only `oci-layout` version there is.
pub const LAYOUT_VERSION: &str = "1.0.0";
/// Largest `oci-layout` file read.
pub const MAX_LAYOUT_FILE: usize = 4 << 10;

/// The `oci-layout` file's bytes.
pub fn layout_file() -> Vec<u8> {
    format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}").into_bytes()
}

/// Checks an `oci-layout` file.
pub fn check_layout_file(bytes: &[u8]) -> std::result::Result<(), String> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("oci-layout is not JSON: {e}"))?;
    match value.get("imageLayoutVersion").and_then(Value::as_str) {
        Some(LAYOUT_VERSION) => Ok(()),
        Some(other) => Err(format!("unsupported imageLayoutVersion {other:?}")),
        None => Err("oci-layout has no imageLayoutVersion".into()),
    }
}

/// One entry of an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// `org.opencontainers.image.ref.name`.
    pub ref_name: Option<String>,
    /// `io.containerd.image.name`.
    pub full_name: Option<String>,
}

impl Entry {
    /// How the entry is named in messages: its full name, else its ref name,
    /// else its digest.
    pub fn label(&self) -> String {
        match (&self.full_name, &self.ref_name) {
            (Some(full), _) => full.clone(),
            (None, Some(r)) => r.clone(),
            (None, None) => self.digest.to_string(),
        }
    }

    /// Whether `reference` names this entry (its ref name or full name).
    pub fn answers_to(&self, reference: &str) -> bool {
        self.ref_name.as_deref() == Some(reference) || self.full_name.as_deref() == Some(reference)
    }

    /// Whether the entry is an image manifest olreg can import.
    pub fn is_manifest(&self) -> bool {
        self.media_type == OCI_MANIFEST_V1 || self.media_type == DOCKER_MANIFEST_V2
    }
}

/// A parsed `index.json`.
#[derive(Clone, Debug)]
pub struct Index {
    json: Map<String, Value>,
    entries: Vec<Entry>,
}

impl Default for Index {
    fn default() -> Index {
        let json = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX_V1,
            "manifests": [],
        });
        let Value::Object(json) = json else {
            unreachable!("a literal object")
        };
        Index {
            json,
            entries: Vec::new(),
        }
    }
}

impl Index {
    /// Parses and checks an `index.json`: every entry needs a media type, a
    /// `sha256:` digest (the only kind whose path olreg forms) and a size.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Index, String> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("index.json is not JSON: {e}"))?;
        let Value::Object(json) = value else {
            return Err("index.json is not a JSON object".into());
        };
        if json.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
            return Err("index.json: schemaVersion is not 2".into());
        }
        let items = match json.get("manifests") {
            Some(Value::Array(items)) => items,
            _ => return Err("index.json has no manifests array".into()),
        };
        let entries = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                parse_entry(item).map_err(|why| format!("index.json entry {i}: {why}"))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Index { json, entries })
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry `reference` names, or the only entry when `reference` is
    /// `None`. Errors list the references there are.
    pub fn choose(&self, reference: Option<&str>) -> Result<&Entry> {
        let matching: Vec<&Entry> = match reference {
            Some(r) => self.entries.iter().filter(|e| e.answers_to(r)).collect(),
            None => self.entries.iter().collect(),
        };
        match (matching.as_slice(), reference) {
            ([one], _) => Ok(one),
            ([], None) => Err(Error::not_found("an image in the layout's index.json")),
            ([], Some(r)) => Err(Error::not_found(format!(
                "reference {r:?} in the layout (it has: {})",
                self.references()
            ))),
            (_, None) => Err(Error::invalid_argument(format!(
                "the layout holds several images; choose one with a reference: {}",
                self.references()
            ))),
            (_, Some(r)) => Err(Error::invalid_argument(format!(
                "reference {r:?} names several images in the layout; use a full name: {}",
                self.references()
            ))),
        }
    }

    /// Every entry's label, comma-separated.
    pub fn references(&self) -> String {
        let labels: Vec<String> = self.entries.iter().map(Entry::label).collect();
        if labels.is_empty() {
            "nothing".into()
        } else {
            labels.join(", ")
        }
    }

    /// Adds `entry`, replacing the entry of the same full name, and entries
    /// of the same ref name that carry no full name (one tag written by
    /// another tool means the same thing).
    pub fn add(&mut self, entry: Entry) {
        let replaced = |e: &Entry| match (&e.full_name, &entry.full_name) {
            (Some(old), Some(new)) => old == new,
            (None, _) => e.ref_name.is_some() && e.ref_name == entry.ref_name,
            (Some(_), None) => false,
        };
        let items = self
            .json
            .get_mut("manifests")
            .and_then(Value::as_array_mut)
            .expect("parse and default guarantee the array");
        let mut kept = Vec::with_capacity(items.len() + 1);
        let mut kept_entries = Vec::with_capacity(items.len() + 1);
        for (item, e) in items.drain(..).zip(self.entries.drain(..)) {
            if !replaced(&e) {
                kept.push(item);
                kept_entries.push(e);
            }
        }
        kept.push(entry_json(&entry));
        kept_entries.push(entry);
        *items = kept;
        self.entries = kept_entries;
    }

    /// The JSON text, two-space indented like oras and crane write it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(&self.json).expect("JSON values serialise");
        out.push(b'\n');
        out
    }
}

fn parse_entry(item: &Value) -> std::result::Result<Entry, String> {
    let field = |k: &str| item.get(k);
    let media_type = field("mediaType")
        .and_then(Value::as_str)
        .ok_or("no mediaType")?
        .to_owned();
    let digest_text = field("digest").and_then(Value::as_str).ok_or("no digest")?;
    if !digest_text.starts_with("sha256:") {
        return Err(format!("digest {digest_text:?} is not a sha256 digest"));
    }
    let digest = Digest::parse(digest_text).map_err(|e| e.to_string())?;
    let size = field("size").and_then(Value::as_u64).ok_or("no size")?;
    let annotation = |k: &str| {
        field("annotations")
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Ok(Entry {
        media_type,
        digest,
        size,
        ref_name: annotation(REF_NAME),
        full_name: annotation(FULL_NAME),
    })
}

fn entry_json(entry: &Entry) -> Value {
    let mut annotations = Map::new();
    if let Some(full) = &entry.full_name {
        annotations.insert(FULL_NAME.into(), Value::String(full.clone()));
    }
    if let Some(r) = &entry.ref_name {
        annotations.insert(REF_NAME.into(), Value::String(r.clone()));
    }
    json!({
        "mediaType": entry.media_type,
        "digest": entry.digest.to_string(),
        "size": entry.size,
        "annotations": annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(full: Option<&str>, tag: &str, data: &[u8]) -> Entry {
        Entry {
            media_type: OCI_MANIFEST_V1.into(),
            digest: Digest::of(data),
            size: data.len() as u64,
            ref_name: Some(tag.into()),
            full_name: full.map(str::to_owned),
        }
    }

    #[test]
    fn entries_are_added_replaced_and_chosen() {
        let mut index = Index::default();
        index.add(entry(Some("h/ns/a:v1"), "v1", b"a1"));
        index.add(entry(Some("h/ns/b:v1"), "v1", b"b1"));
        index.add(entry(Some("h/ns/a:v1"), "v1", b"a2"));
        let again = Index::parse(&index.to_bytes()).unwrap();
        assert_eq!(again.entries().len(), 2);
        assert_eq!(
            again.choose(Some("h/ns/a:v1")).unwrap().digest,
            Digest::of(b"a2")
        );
        let err = again.choose(Some("v1")).unwrap_err().to_string();
        assert!(
            err.contains("h/ns/a:v1") && err.contains("h/ns/b:v1"),
            "{err}"
        );
        let err = again.choose(None).unwrap_err().to_string();
        assert!(err.contains("several"), "{err}");
        let err = again.choose(Some("v2")).unwrap_err();
        assert_eq!(err.status(), crate::Status::NotFound);
    }

    #[test]
    fn another_tools_fields_survive_and_its_tag_is_replaced() {
        let text = br#"{"schemaVersion":2,"x-extra":1,"manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0,"annotations":{"org.opencontainers.image.ref.name":"v1"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0,"annotations":{"org.opencontainers.image.ref.name":"v2"}}]}"#;
        let mut index = Index::parse(text).unwrap();
        index.add(entry(Some("h/ns/a:v1"), "v1", b"a"));
        let out = String::from_utf8(index.to_bytes()).unwrap();
        assert!(out.contains("x-extra"), "{out}");
        let again = Index::parse(out.as_bytes()).unwrap();
        let labels: Vec<String> = again.entries().iter().map(Entry::label).collect();
        assert_eq!(labels, ["v2", "h/ns/a:v1"]);
    }

    #[test]
    fn hostile_indexes_are_refused() {
        for bad in [
            &br#"[]"#[..],
            br#"{"schemaVersion":2}"#,
            br#"{"schemaVersion":1,"manifests":[]}"#,
            br#"{"schemaVersion":2,"manifests":[{"mediaType":"m","digest":"sha512:00","size":1}]}"#,
            br#"{"schemaVersion":2,"manifests":[{"mediaType":"m","digest":"sha256:../../etc/passwd","size":1}]}"#,
            br#"{"schemaVersion":2,"manifests":[{"mediaType":"m","digest":"sha256-e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":1}]}"#,
            br#"{"schemaVersion":2,"manifests":[{"mediaType":"m","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":-1}]}"#,
        ] {
            assert!(Index::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(check_layout_file(&layout_file()).is_ok());
        assert!(check_layout_file(br#"{"imageLayoutVersion":"2.0.0"}"#).is_err());
    }
}
