//! Property tests of every parser that reads untrusted input: names,
//! digests, manifests, error bodies, Content-Range and auth challenges.
//! The number of cases is bounded (PROPTEST_CASES, default 256 each).

use olreg::remote::{challenge, content_range, error_body};
use olreg::{Digest, Limits, Manifest, Name, NameMask, Status};
use proptest::prelude::*;

fn part_ok(part: &str, extra: &str, max: usize) -> bool {
    let b = part.as_bytes();
    !b.is_empty()
        && part.len() <= max
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || extra.as_bytes().contains(c))
}

fn valid_part(extra: &'static str) -> impl Strategy<Value = String> {
    let pattern = format!("[A-Za-z0-9_][A-Za-z0-9_{}]{{0,20}}", regex_escape(extra));
    proptest::string::string_regex(&pattern).expect("a valid pattern")
}

fn regex_escape(s: &str) -> String {
    s.chars().map(|c| format!("\\{c}")).collect()
}

proptest! {
    #[test]
    fn names_never_panic_and_accepted_parts_are_safe(s in ".{0,120}") {
        if let Ok(n) = Name::parse(&s, &NameMask::default()) {
            prop_assert!(part_ok(n.host(), "_.:-", 350));
            prop_assert!(part_ok(n.namespace(), "_-", 80));
            prop_assert!(part_ok(n.model(), "_.-", 80));
            prop_assert!(part_ok(n.tag(), "_.-", 80));
            for p in n.store_parts() {
                prop_assert!(p != "." && p != ".." && !p.contains('/') && !p.contains('\0'));
            }
        } else {
            let err = Name::parse(&s, &NameMask::default()).unwrap_err();
            prop_assert_eq!(err.status(), Status::InvalidName);
        }
    }

    #[test]
    fn names_of_valid_parts_round_trip(
        host in valid_part("_.-"), ns in valid_part("_-"), model in valid_part("_.-"), tag in valid_part("_.-"),
        port in proptest::option::of(1u16..),
    ) {
        let host = match port { Some(p) => format!("{host}:{p}"), None => host };
        let text = format!("{host}/{ns}/{model}:{tag}");
        let n = Name::parse(&text, &NameMask::default()).unwrap();
        prop_assert_eq!(n.to_string(), text.clone());
        let again = Name::parse(&n.to_string(), &NameMask::default()).unwrap();
        prop_assert!(again.same_model(&n));
    }

    #[test]
    fn digests_never_panic(s in ".{0,100}") {
        if let Ok(d) = Digest::parse(&s) {
            prop_assert!(s == d.to_string() || s == d.file_name());
        }
    }

    #[test]
    fn digests_round_trip(bytes in proptest::array::uniform32(any::<u8>())) {
        let d = Digest::from_bytes(bytes);
        prop_assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
        prop_assert_eq!(Digest::from_file_name(&d.file_name()), Some(d));
    }

    #[test]
    fn manifests_never_panic_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = Manifest::parse(bytes, &Limits::default());
    }

    #[test]
    fn accepted_manifests_respect_the_limits(
        sizes in proptest::collection::vec(prop_oneof![any::<i64>().prop_map(|v| v.to_string()), "[0-9.e+-]{1,25}"], 0..8),
        digests in proptest::collection::vec(prop_oneof![
            proptest::array::uniform32(any::<u8>()).prop_map(|b| Digest::from_bytes(b).to_string()),
            "sha256:[0-9a-fA-F./]{0,70}",
            ".{0,20}",
        ], 8),
        max_blob in 1u64..u64::MAX,
        max_layers in 1usize..6,
    ) {
        let layers: Vec<String> = sizes
            .iter()
            .zip(&digests)
            .map(|(size, digest)| format!(r#"{{"digest":{},"size":{size}}}"#, serde_json::Value::String(digest.clone())))
            .collect();
        let text = format!(r#"{{"layers":[{}]}}"#, layers.join(","));
        let limits = Limits { max_blob_size: max_blob, max_layers, ..Limits::default() };
        match Manifest::parse(text.into_bytes(), &limits) {
            Ok(m) => {
                prop_assert!(!m.layers().is_empty() && m.layers().len() <= max_layers);
                prop_assert!(m.layers().iter().all(|l| l.size <= max_blob));
            }
            Err(e) => prop_assert_eq!(e.status(), Status::InvalidManifest),
        }
    }

    #[test]
    fn error_bodies_never_panic_and_stay_short(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
        let b = error_body::parse(&bytes);
        prop_assert!(b.message.chars().count() <= 2 * 513 + 3);
    }

    #[test]
    fn json_error_bodies_keep_their_code(code in "[A-Z_]{1,20}", message in ".{0,50}", detail in prop_oneof![
        Just(serde_json::Value::Null),
        ".{0,10}".prop_map(serde_json::Value::String),
        any::<i64>().prop_map(serde_json::Value::from),
        Just(serde_json::json!({"Tag": "x"})),
        Just(serde_json::json!([1, "two"])),
    ]) {
        let body = serde_json::json!({"errors": [{"code": code, "message": message, "detail": detail}]});
        let parsed = error_body::parse(body.to_string().as_bytes());
        prop_assert_eq!(parsed.code.as_deref(), Some(code.as_str()));
        prop_assert!(!parsed.message.chars().any(char::is_control));
        let ollama = serde_json::json!({"code": code, "error": message});
        // The message as shown: control characters become spaces.
        prop_assert_eq!(
            error_body::parse(ollama.to_string().as_bytes()).message,
            error_body::quoted(&message)
        );
    }

    #[test]
    fn content_ranges_never_panic(s in ".{0,60}") {
        if let Some(r) = content_range::parse(&s) {
            prop_assert!(r.first <= r.last);
            prop_assert!(r.total.is_none_or(|t| r.last < t));
        }
    }

    #[test]
    fn content_ranges_round_trip(first in 0u64..1 << 50, len in 1u64..1 << 30, extra in 0u64..1 << 20) {
        let last = first + len - 1;
        let total = last + 1 + extra;
        let r = content_range::parse(&format!("bytes {first}-{last}/{total}")).unwrap();
        prop_assert_eq!((r.first, r.last, r.total), (first, last, Some(total)));
    }

    #[test]
    fn challenges_never_panic(s in ".{0,200}") {
        for c in challenge::parse(&s) {
            if let challenge::Challenge::Bearer { realm, .. } = c {
                prop_assert!(!realm.is_empty() || s.contains("realm"));
            }
        }
    }
}
