//! Model names: `[scheme://][host/][namespace/]model[:tag][@digest]`.
//!
//! A name is parsed from the right (docs/design.md §3), each part is checked
//! against its character rules, and missing parts are filled in from a mask
//! (`registry.ollama.ai/library/_:latest` by default). A [`Name`] that exists
//! is valid: every part is safe to use as a single path component and inside
//! a URL path, which is what keeps hostile names out of the file system.

use std::fmt;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// The default mask: ollama.com's registry, the `library` namespace, `latest`.
pub const DEFAULT_MASK: &str = "registry.ollama.ai/library/_:latest";

const MAX_HOST: usize = 350;
const MAX_PART: usize = 80;

/// How to reach a registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// TLS with certificate verification (the default).
    Https,
    /// Plain HTTP, for registries on loopback or a private network.
    Http,
    /// TLS that accepts any certificate.
    HttpsInsecure,
}

impl Scheme {
    fn parse(s: &str, whole: &str) -> Result<Scheme> {
        match s.to_ascii_lowercase().as_str() {
            "https" => Ok(Scheme::Https),
            "http" => Ok(Scheme::Http),
            "https+insecure" => Ok(Scheme::HttpsInsecure),
            _ => Err(Error::invalid_name(
                whole,
                format!("unknown scheme {s:?} (use https, http or https+insecure)"),
            )),
        }
    }

    /// The scheme as written in a name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
            Scheme::HttpsInsecure => "https+insecure",
        }
    }

    /// The scheme of the URLs sent on the wire.
    pub fn wire(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https | Scheme::HttpsInsecure => "https",
        }
    }
}

/// A complete, validated model name.
#[derive(Clone, Debug)]
pub struct Name {
    scheme: Scheme,
    host: String,
    namespace: String,
    model: String,
    tag: String,
    digest: Option<Digest>,
}

/// The parts filled in when a name leaves them out.
#[derive(Clone, Debug)]
pub struct NameMask {
    scheme: Scheme,
    host: String,
    namespace: String,
    tag: String,
}

/// The parts a string spelled out, before the mask fills in the rest.
struct Parts<'a> {
    scheme: Option<&'a str>,
    host: Option<&'a str>,
    namespace: Option<&'a str>,
    model: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

fn split(s: &str) -> Result<Parts<'_>> {
    if s.is_empty() {
        return Err(Error::invalid_name(s, "empty name"));
    }
    let (scheme, rest) = match s.find("://") {
        Some(i) => (Some(&s[..i]), &s[i + 3..]),
        None => (None, s),
    };
    let (rest, digest) = match rest.rfind('@') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let last_slash = rest.rfind('/');
    let (rest, tag) = match rest.rfind(':') {
        Some(i) if last_slash.is_none_or(|slash| i > slash) => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let (host, namespace, model) = match parts.as_slice() {
        [model] => (None, None, *model),
        [namespace, model] => (None, Some(*namespace), *model),
        [host, namespace, model] => (Some(*host), Some(*namespace), *model),
        _ => {
            return Err(Error::invalid_name(
                s,
                "too many parts: expected [host/][namespace/]model[:tag]",
            ))
        }
    };
    if scheme.is_some() && host.is_none() {
        return Err(Error::invalid_name(
            s,
            "a name with a scheme needs a host, a namespace and a model",
        ));
    }
    Ok(Parts {
        scheme,
        host,
        namespace,
        model,
        tag,
        digest,
    })
}

fn check_part(whole: &str, what: &str, part: &str, extra: &[u8], max: usize) -> Result<()> {
    if part.is_empty() {
        return Err(Error::invalid_name(whole, format!("empty {what}")));
    }
    if part.len() > max {
        return Err(Error::invalid_name(
            whole,
            format!("{what} longer than {max} characters"),
        ));
    }
    let bytes = part.as_bytes();
    let first_ok = bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_';
    let rest_ok = bytes
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || extra.contains(&c));
    if !first_ok || !rest_ok {
        let allowed = String::from_utf8_lossy(extra);
        return Err(Error::invalid_name(
            whole,
            format!(
                "{what} {part:?} must start with a letter, digit or '_' and contain only those and {allowed:?}"
            ),
        ));
    }
    Ok(())
}

fn check_host(whole: &str, host: &str) -> Result<()> {
    check_part(whole, "host", host, b"_.:-", MAX_HOST)
}

fn check_namespace(whole: &str, namespace: &str) -> Result<()> {
    check_part(whole, "namespace", namespace, b"_-", MAX_PART)
}

fn check_model(whole: &str, model: &str) -> Result<()> {
    check_part(whole, "model", model, b"_.-", MAX_PART)
}

fn check_tag(whole: &str, tag: &str) -> Result<()> {
    check_part(whole, "tag", tag, b"_.-", MAX_PART)
}

impl NameMask {
    /// Parses a mask such as `registry.ollama.ai/library/_:latest`. Its model
    /// part must be `_`: the model is never filled in.
    pub fn parse(s: &str) -> Result<NameMask> {
        let parts = split(s)?;
        let (Some(host), Some(namespace), Some(tag)) = (parts.host, parts.namespace, parts.tag)
        else {
            return Err(Error::invalid_name(
                s,
                "a name mask needs a host, a namespace, '_' as the model and a tag",
            ));
        };
        if parts.model != "_" || parts.digest.is_some() {
            return Err(Error::invalid_name(
                s,
                "a name mask has '_' as its model and no digest",
            ));
        }
        check_host(s, host)?;
        check_namespace(s, namespace)?;
        check_tag(s, tag)?;
        let scheme = match parts.scheme {
            Some(scheme) => Scheme::parse(scheme, s)?,
            None => Scheme::Https,
        };
        Ok(NameMask {
            scheme,
            host: host.to_owned(),
            namespace: namespace.to_owned(),
            tag: tag.to_owned(),
        })
    }

    /// The host names are completed with.
    pub fn host(&self) -> &str {
        &self.host
    }
}

impl Default for NameMask {
    fn default() -> NameMask {
        NameMask::parse(DEFAULT_MASK).expect("the default mask is valid")
    }
}

impl fmt::Display for NameMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scheme != Scheme::Https {
            write!(f, "{}://", self.scheme.as_str())?;
        }
        write!(f, "{}/{}/_:{}", self.host, self.namespace, self.tag)
    }
}

impl Name {
    /// Parses `s`, validates every part and fills in missing ones from `mask`.
    pub fn parse(s: &str, mask: &NameMask) -> Result<Name> {
        let parts = split(s)?;
        let host = parts.host.unwrap_or(&mask.host);
        let namespace = parts.namespace.unwrap_or(&mask.namespace);
        let tag = parts.tag.unwrap_or(&mask.tag);
        check_host(s, host)?;
        check_namespace(s, namespace)?;
        check_model(s, parts.model)?;
        check_tag(s, tag)?;
        let scheme = match parts.scheme {
            Some(scheme) => Scheme::parse(scheme, s)?,
            // A host written out without a scheme is reached over TLS, whatever the mask says.
            None if parts.host.is_some() => Scheme::Https,
            None => mask.scheme,
        };
        let digest = match parts.digest {
            Some(d) => Some(Digest::parse(d).map_err(|_| {
                Error::invalid_name(s, format!("{d:?} after '@' is not a sha256 digest"))
            })?),
            None => None,
        };
        Ok(Name {
            scheme,
            host: host.to_owned(),
            namespace: namespace.to_owned(),
            model: parts.model.to_owned(),
            tag: tag.to_owned(),
            digest,
        })
    }

    /// Builds a name from the four path components of a stored manifest.
    /// Returns `None` when any of them is not a valid part (files olreg
    /// must not interpret).
    pub fn from_store_parts(host: &str, namespace: &str, model: &str, tag: &str) -> Option<Name> {
        let whole = "";
        let ok = check_host(whole, host).is_ok()
            && check_namespace(whole, namespace).is_ok()
            && check_model(whole, model).is_ok()
            && check_tag(whole, tag).is_ok();
        ok.then(|| Name {
            scheme: Scheme::Https,
            host: host.to_owned(),
            namespace: namespace.to_owned(),
            model: model.to_owned(),
            tag: tag.to_owned(),
            digest: None,
        })
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }
    pub fn host(&self) -> &str {
        &self.host
    }
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
    pub fn model(&self) -> &str {
        &self.model
    }
    pub fn tag(&self) -> &str {
        &self.tag
    }
    /// The digest pinned with `@sha256:…`, if any.
    pub fn digest(&self) -> Option<Digest> {
        self.digest
    }

    /// `namespace/model`, the repository in registry URLs.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.namespace, self.model)
    }

    /// `scheme://host` as sent on the wire.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme.wire(), self.host)
    }

    /// The manifest's path components under `manifests/`: host, namespace,
    /// model, tag. Each is a validated single path component.
    pub fn store_parts(&self) -> [&str; 4] {
        [&self.host, &self.namespace, &self.model, &self.tag]
    }

    /// The same model reached through another host (a mirror), keeping every
    /// other part.
    pub fn with_host(&self, scheme: Scheme, host: &str) -> Result<Name> {
        check_host(host, host)?;
        Ok(Name {
            scheme,
            host: host.to_owned(),
            ..self.clone()
        })
    }

    /// The same name without its `@digest`.
    pub fn without_digest(&self) -> Name {
        Name {
            digest: None,
            ..self.clone()
        }
    }

    /// Case-insensitive equality of host, namespace, model and tag.
    pub fn same_model(&self, other: &Name) -> bool {
        self.store_parts()
            .iter()
            .zip(other.store_parts())
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }
}

impl fmt::Display for Name {
    /// `host/namespace/model:tag[@digest]`, the form `list` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}:{}",
            self.host, self.namespace, self.model, self.tag
        )?;
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Status;

    fn parse(s: &str) -> Result<Name> {
        Name::parse(s, &NameMask::default())
    }

    fn full(s: &str) -> String {
        parse(s).unwrap().to_string()
    }

    #[test]
    fn model_alone_takes_everything_from_the_mask() {
        assert_eq!(
            full("llama3.2"),
            "registry.ollama.ai/library/llama3.2:latest"
        );
        assert_eq!(parse("llama3.2").unwrap().scheme(), Scheme::Https);
    }

    #[test]
    fn each_optional_part_is_recognised() {
        assert_eq!(
            full("llama3.2:1b"),
            "registry.ollama.ai/library/llama3.2:1b"
        );
        assert_eq!(full("me/llama3.2"), "registry.ollama.ai/me/llama3.2:latest");
        assert_eq!(
            full("me/llama3.2:q4_K_M"),
            "registry.ollama.ai/me/llama3.2:q4_K_M"
        );
        assert_eq!(full("example.com/me/m"), "example.com/me/m:latest");
        assert_eq!(full("example.com:5000/me/m:t"), "example.com:5000/me/m:t");
        assert_eq!(full("127.0.0.1:5000/me/m"), "127.0.0.1:5000/me/m:latest");
    }

    #[test]
    fn schemes() {
        let n = parse("http://127.0.0.1:5000/ns/model:tag").unwrap();
        assert_eq!(n.scheme(), Scheme::Http);
        assert_eq!(n.base_url(), "http://127.0.0.1:5000");
        assert_eq!(n.to_string(), "127.0.0.1:5000/ns/model:tag");
        let n = parse("https+insecure://h/ns/m").unwrap();
        assert_eq!(n.scheme(), Scheme::HttpsInsecure);
        assert_eq!(n.base_url(), "https://h");
        assert_eq!(parse("https://h/ns/m").unwrap().scheme(), Scheme::Https);
        assert_eq!(parse("HTTP://h/ns/m").unwrap().scheme(), Scheme::Http);
    }

    #[test]
    fn digest_form() {
        let d = Digest::empty();
        let n = parse(&format!("m@{d}")).unwrap();
        assert_eq!(n.digest(), Some(d));
        assert_eq!(n.tag(), "latest");
        let n = parse(&format!("h/ns/m:t@{d}")).unwrap();
        assert_eq!(n.digest(), Some(d));
        assert_eq!(n.tag(), "t");
        assert_eq!(n.without_digest().to_string(), "h/ns/m:t");
    }

    #[test]
    fn custom_mask() {
        let mask = NameMask::parse("http://127.0.0.1:9/testing/_:v1").unwrap();
        let n = Name::parse("m", &mask).unwrap();
        assert_eq!(n.to_string(), "127.0.0.1:9/testing/m:v1");
        assert_eq!(n.scheme(), Scheme::Http);
        // A host spelled out does not inherit the mask's plain-HTTP scheme.
        assert_eq!(
            Name::parse("other/ns/m", &mask).unwrap().scheme(),
            Scheme::Https
        );
        for bad in [
            "h/ns/m:t",
            "h/ns/_",
            "ns/_:t",
            "h/ns/_:t@sha256:x",
            "ftp://h/ns/_:t",
        ] {
            assert!(NameMask::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn comparison_ignores_case_and_keeps_it() {
        let a = parse("Example.COM/Me/Model:Tag").unwrap();
        let b = parse("example.com/me/model:tag").unwrap();
        assert!(a.same_model(&b));
        assert_eq!(a.to_string(), "Example.COM/Me/Model:Tag");
    }

    #[test]
    fn hostile_and_malformed_names_are_invalid() {
        let long = "a".repeat(81);
        let long_host = "h".repeat(351);
        let cases = vec![
            "".to_string(),
            "..".to_string(),
            ".".to_string(),
            "../m".to_string(),
            "ns/..".to_string(),
            "h/../m".to_string(),
            "h/ns/../m".to_string(),
            "../../etc/passwd".to_string(),
            "m:..".to_string(),
            "m:.".to_string(),
            "/m".to_string(),
            "ns//m".to_string(),
            "h//m".to_string(),
            "m:".to_string(),
            "m@".to_string(),
            "m@sha256:abc".to_string(),
            "a/b/c/d".to_string(),
            "m\0x".to_string(),
            "ns/m\0:t".to_string(),
            "m t".to_string(),
            "m\\x".to_string(),
            "ns:x/m".to_string(),
            "ftp://h/ns/m".to_string(),
            "file:///etc/passwd".to_string(),
            "http://ns/m".to_string(),
            "://h/ns/m".to_string(),
            long.clone(),
            format!("ns/m:{long}"),
            format!("{long}/m"),
            format!("{long_host}/ns/m"),
            "-m".to_string(),
            ".hidden".to_string(),
            "m:-t".to_string(),
            "h/ns/m:t/x".to_string(),
            "m%2e%2e".to_string(),
            "mödel".to_string(),
        ];
        for case in &cases {
            let err = parse(case).expect_err(case);
            assert_eq!(err.status(), Status::InvalidName, "{case:?}: {err}");
        }
    }

    #[test]
    fn longest_valid_parts_are_accepted() {
        let part = "a".repeat(80);
        let host = "h".repeat(350);
        assert!(parse(&format!("{host}/{part}/{part}:{part}")).is_ok());
    }

    #[test]
    fn store_parts_are_checked() {
        assert!(Name::from_store_parts("h", "ns", "m", "t").is_some());
        assert!(Name::from_store_parts("h", "ns", "m", ".t.tmp").is_none());
        assert!(Name::from_store_parts("h", "..", "m", "t").is_none());
    }
}
