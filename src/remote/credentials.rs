//! User names and passwords for registries (DESIGN.md §3): from the client
//! options or Docker's `config.json`, used for `Basic` challenges and for
//! token services, and only ever for the host they were given for.
//!
//! Nothing here does I/O except reading the config file.

use std::collections::HashMap;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::Url;
use serde::Deserialize;

use super::user_file;
use crate::error::{Error, Result};

/// The largest Docker config file read (they hold a few logins).
const MAX_DOCKER_CONFIG: u64 = 1 << 20;

/// A user name and password for one registry host.
#[derive(Clone)]
pub(crate) struct Credential {
    /// `host[:port]`, compared ignoring case.
    pub host: String,
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("host", &self.host)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// `Authorization: Basic …`.
    pub(crate) fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", self.user, self.password))
        )
    }
}

/// The `host[:port]` a URL addresses, as credentials are keyed.
pub(crate) fn host_key(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{}:{p}", h.to_ascii_lowercase()),
        (Some(h), None) => h.to_ascii_lowercase(),
        _ => String::new(),
    }
}

/// Whether a password for `registry` may go to the token `realm` it named:
/// over TLS, or to the registry's own host (a token service beside it).
pub(crate) fn realm_may_get_password(registry: &Url, realm: &Url) -> bool {
    realm.scheme() == "https"
        || registry
            .host_str()
            .zip(realm.host_str())
            .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
}

/// Reads the `auths` of a Docker `config.json`: `{"auths":{"host":{"auth":
/// base64("user:pass")}}}` (or `username`/`password` fields). Keys may be
/// URLs (`https://host/v1/`); they are reduced to `host[:port]`. A missing
/// file means no credentials; a malformed one is an error naming it.
pub(crate) fn docker_config_credentials(path: &Path) -> Result<Vec<Credential>> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(default)]
        auths: HashMap<String, Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        auth: Option<String>,
        username: Option<String>,
        password: Option<String>,
    }
    let Some((text, _)) = user_file::read(path, MAX_DOCKER_CONFIG, "Docker config")? else {
        return Ok(Vec::new());
    };
    let config: Config = serde_json::from_slice(&text).map_err(|e| {
        Error::invalid_argument(format!(
            "{} is not a Docker config file: {e}",
            path.display()
        ))
    })?;
    let mut out = Vec::new();
    for (key, entry) in config.auths {
        let host = key
            .split_once("://")
            .map_or(key.as_str(), |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let pair = match (entry.auth, entry.username, entry.password) {
            (Some(auth), _, _) if !auth.is_empty() => STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned()))),
            (_, Some(u), Some(p)) => Some((u, p)),
            _ => None,
        };
        if let (false, Some((user, password))) = (host.is_empty(), pair) {
            out.push(Credential {
                host,
                user,
                password,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_go_to_tls_realms_or_the_registry_host() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(realm_may_get_password(
            &u("http://127.0.0.1:5/"),
            &u("http://127.0.0.1:6/token")
        ));
        assert!(realm_may_get_password(
            &u("https://r.example/"),
            &u("https://auth.example/token")
        ));
        assert!(!realm_may_get_password(
            &u("https://r.example/"),
            &u("http://auth.example/token")
        ));
    }

    #[test]
    fn docker_config_auths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"https://Reg.Example:5000/v1/":{{"auth":"{}"}},"other.example":{{"username":"u","password":"p"}},"empty.example":{{}}}},"credsStore":"x"}}"#,
                STANDARD.encode("alice:s3cr:et")
            ),
        )
        .unwrap();
        let mut creds = docker_config_credentials(&path).unwrap();
        creds.sort_by(|a, b| a.host.cmp(&b.host));
        assert_eq!(creds.len(), 2);
        assert_eq!(
            (
                creds[1].host.as_str(),
                creds[1].user.as_str(),
                creds[1].password.as_str()
            ),
            ("reg.example:5000", "alice", "s3cr:et")
        );
        assert_eq!(creds[0].host, "other.example");
        assert!(docker_config_credentials(&dir.path().join("none"))
            .unwrap()
            .is_empty());
        std::fs::write(&path, "{").unwrap();
        assert!(docker_config_credentials(&path).is_err());
    }
}
