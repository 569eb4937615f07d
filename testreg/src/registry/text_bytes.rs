//! Serde for byte bodies that are almost always text (manifests, injected
//! manifest bodies): a JSON string when the bytes are UTF-8, otherwise
//! `{"base64": "..."}`. The control API is used from C, Go and Python, where
//! an array of numbers would be painful and a manifest as a string is what a
//! human wants to read.

use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Repr {
    Text(String),
    Base64 { base64: String },
}

/// Serializes `bytes` as a string, or as `{"base64": …}` if not UTF-8.
pub(crate) fn serialize<S: Serializer>(bytes: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => s.serialize_str(text),
        Err(_) => Repr::Base64 {
            base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
        .serialize(s),
    }
}

/// Accepts either representation written by [`serialize`].
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
    match Repr::deserialize(d)? {
        Repr::Text(text) => Ok(Bytes::from(text)),
        Repr::Base64 { base64 } => base64::engine::general_purpose::STANDARD
            .decode(base64)
            .map(Bytes::from)
            .map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Wrap(#[serde(with = "super")] Bytes);

    #[test]
    fn text_and_binary_round_trip() {
        for body in [
            Bytes::from_static(b"{\"a\":1}"),
            Bytes::from_static(&[0xff, 0, 1]),
        ] {
            let json = serde_json::to_string(&Wrap(body.clone())).expect("serialize");
            let back: Wrap = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back.0, body);
        }
        let json = serde_json::to_string(&Wrap(Bytes::from_static(b"!!!"))).expect("serialize");
        assert_eq!(json, "\"!!!\"");
    }
}
