//! Mirrors: registries tried before the one a name points at, for pulls.
//! A mirror is spelled `URL` (it stands in for every host) or `HOST=URL`
//! (for that host only), URL being `scheme://host[:port]`. Models pulled
//! through a mirror are still filed under their own names.

use crate::error::{Error, Result};
use crate::name::{Name, NameMask, Scheme};

/// The environment variable naming mirrors (comma-separated `URL` or
/// `HOST=URL`), used when no mirror is set in the options.
pub const MIRRORS_ENV: &str = "OLREG_MIRRORS";

/// A registry tried before the one a name points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mirror {
    /// The registry host it stands in for; `None` for every host.
    pub for_host: Option<String>,
    pub scheme: Scheme,
    pub host: String,
}

impl Mirror {
    /// Parses `URL` or `HOST=URL`.
    pub(crate) fn parse(spec: &str) -> Result<Mirror> {
        let bad = |why: &str| Error::invalid_argument(format!("mirror {spec:?}: {why}"));
        let (for_host, url) = match spec.split_once('=') {
            Some((host, url)) => (Some(host.trim().to_owned()), url.trim()),
            None => (None, spec.trim()),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected scheme://host[:port]"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            "https+insecure" => Scheme::HttpsInsecure,
            _ => return Err(bad("the scheme must be https, http or https+insecure")),
        };
        let host = rest.trim_end_matches('/');
        // Validate the host as a name would be.
        Name::parse(&format!("{host}/ns/m"), &NameMask::default())
            .map_err(|_| bad("invalid host"))?;
        Ok(Mirror {
            for_host,
            scheme,
            host: host.to_owned(),
        })
    }

    /// `name` as this mirror serves it, if the mirror stands in for its host.
    pub(crate) fn serve(&self, name: &Name) -> Option<Name> {
        let applies = self
            .for_host
            .as_deref()
            .is_none_or(|h| h.eq_ignore_ascii_case(name.host()));
        if !applies {
            return None;
        }
        name.with_host(self.scheme, &self.host).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let m = Mirror::parse("http://127.0.0.1:5000").unwrap();
        assert_eq!(
            (m.for_host, m.scheme, m.host.as_str()),
            (None, Scheme::Http, "127.0.0.1:5000")
        );
        let m = Mirror::parse("registry.ollama.ai=https://mirror.example/").unwrap();
        assert_eq!(m.for_host.as_deref(), Some("registry.ollama.ai"));
        assert_eq!(m.host, "mirror.example");
        assert!(Mirror::parse("mirror.example").is_err());
        assert!(Mirror::parse("ftp://mirror.example").is_err());
        assert!(Mirror::parse("http://mirror.example/path").is_err());
    }

    #[test]
    fn a_host_mirror_serves_only_its_host() {
        let mask = NameMask::default();
        let m = Mirror::parse("registry.ollama.ai=http://10.0.0.5:5000").unwrap();
        let served = m.serve(&Name::parse("llama3.2", &mask).unwrap()).unwrap();
        assert_eq!(served.host(), "10.0.0.5:5000");
        assert_eq!(served.repository(), "library/llama3.2");
        assert!(m
            .serve(&Name::parse("example.com/ns/m", &mask).unwrap())
            .is_none());
    }
}
