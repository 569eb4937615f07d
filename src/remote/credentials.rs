//! User names and passwords for registries (docs/design.md §5), used for
//! `Basic` challenges and for token services, and only ever for the host
//! they were given for. They come, in this order, from the client options,
//! the `auths` of Docker's `config.json` (entries with a password), and the
//! credential helper the config names for the host (`credHelpers`, else
//! `credsStore`).
//!
//! Nothing here does I/O except reading the config file and running a
//! helper.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::Url;
use serde::Deserialize;

use super::credential_helper;
use super::user_file;
use crate::error::{Error, Result};

/// The largest Docker config file read (they hold a few logins).
const MAX_DOCKER_CONFIG: u64 = 1 << 20;

/// What proves who the user is to one registry host.
#[derive(Clone)]
pub(crate) struct Credential {
    /// `host[:port]`, compared ignoring case.
    pub host: String,
    pub secret: Secret,
}

/// A password, or a Docker identity token.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Secret {
    /// For `Basic` challenges and token services.
    Password { user: String, password: String },
    /// An OAuth2 refresh token (a credential helper's `<token>` user): only
    /// a token service takes it.
    IdentityToken(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("Credential");
        out.field("host", &self.host);
        if let Secret::Password { user, .. } = &self.secret {
            out.field("user", user);
        }
        out.finish_non_exhaustive()
    }
}

impl Credential {
    /// A user name and password for `host`.
    pub(crate) fn password(host: &str, user: &str, password: &str) -> Credential {
        Credential {
            host: host.to_ascii_lowercase(),
            secret: Secret::Password {
                user: user.to_owned(),
                password: password.to_owned(),
            },
        }
    }

    /// `Authorization: Basic …`, when the secret is a password.
    pub(crate) fn basic_header(&self) -> Option<String> {
        match &self.secret {
            Secret::Password { user, password } => Some(format!(
                "Basic {}",
                STANDARD.encode(format!("{user}:{password}"))
            )),
            Secret::IdentityToken(_) => None,
        }
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

/// Every source of credentials a client has.
#[derive(Debug, Default)]
pub(crate) struct Credentials {
    /// From the options, then from `auths`: the first for a host wins.
    stored: Vec<Credential>,
    /// `credHelpers`: `host[:port]` → helper name.
    helpers: HashMap<String, String>,
    /// `credsStore`: the helper for every other host.
    store: Option<String>,
    /// How long a helper may take.
    helper_timeout: Duration,
}

impl Credentials {
    /// `options` first, then what `docker` holds.
    pub(crate) fn new(options: Vec<Credential>, docker: DockerConfig) -> Credentials {
        let mut stored = options;
        stored.extend(docker.auths);
        Credentials {
            stored,
            helpers: docker.helpers,
            store: docker.store,
            helper_timeout: credential_helper::TIMEOUT,
        }
    }

    /// The helper that would be asked for `host`, when nothing is stored.
    pub(crate) fn helper_for(&self, host: &str) -> Option<&str> {
        if self.stored_for(host).is_some() {
            return None;
        }
        self.helpers
            .get(&host.to_ascii_lowercase())
            .or(self.store.as_ref())
            .map(String::as_str)
    }

    /// The credential for `host` (`host[:port]`): stored, or from its
    /// helper. Blocks while a helper runs.
    pub(crate) fn lookup(&self, host: &str) -> Result<Option<Credential>> {
        if let Some(stored) = self.stored_for(host) {
            return Ok(Some(stored.clone()));
        }
        let Some(helper) = self.helper_for(host) else {
            return Ok(None);
        };
        let secret = credential_helper::get(helper, host, self.helper_timeout)?;
        Ok(secret.map(|secret| Credential {
            host: host.to_ascii_lowercase(),
            secret,
        }))
    }

    fn stored_for(&self, host: &str) -> Option<&Credential> {
        self.stored
            .iter()
            .find(|c| c.host.eq_ignore_ascii_case(host))
    }
}

/// What a Docker `config.json` says about credentials.
#[derive(Debug, Default)]
pub(crate) struct DockerConfig {
    /// `auths` entries that hold a user name and password.
    auths: Vec<Credential>,
    /// `credHelpers`, keys reduced to `host[:port]`.
    helpers: HashMap<String, String>,
    /// `credsStore`.
    store: Option<String>,
}

impl DockerConfig {
    /// Reads a Docker `config.json`: `{"auths":{"host":{"auth":
    /// base64("user:pass")}}}` (or `username`/`password` fields),
    /// `credHelpers` and `credsStore`. Keys may be URLs
    /// (`https://host/v1/`); they are reduced to `host[:port]`. A missing
    /// file means no credentials; a malformed one is an error naming it.
    pub(crate) fn read(path: &Path) -> Result<DockerConfig> {
        #[derive(Deserialize)]
        struct Config {
            #[serde(default)]
            auths: HashMap<String, Entry>,
            #[serde(default, rename = "credHelpers")]
            cred_helpers: HashMap<String, String>,
            #[serde(default, rename = "credsStore")]
            creds_store: Option<String>,
        }
        #[derive(Deserialize)]
        struct Entry {
            auth: Option<String>,
            username: Option<String>,
            password: Option<String>,
        }
        let Some((text, _)) = user_file::read(path, MAX_DOCKER_CONFIG, "Docker config")? else {
            return Ok(DockerConfig::default());
        };
        let config: Config = serde_json::from_slice(&text).map_err(|e| {
            Error::invalid_argument(format!(
                "{} is not a Docker config file: {e}",
                path.display()
            ))
        })?;
        let mut auths = Vec::new();
        for (key, entry) in config.auths {
            let host = config_host(&key);
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
                auths.push(Credential::password(&host, &user, &password));
            }
        }
        Ok(DockerConfig {
            auths,
            helpers: config
                .cred_helpers
                .into_iter()
                .map(|(key, helper)| (config_host(&key), helper))
                .collect(),
            store: config.creds_store.filter(|s| !s.is_empty()),
        })
    }
}

/// A config key (`host`, `host:port` or a URL) as `host[:port]`.
fn config_host(key: &str) -> String {
    key.split_once("://")
        .map_or(key, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
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

    /// A `config.json` holding `text`, in a directory kept while it lives.
    fn config_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn docker_config_auths() {
        let (dir, path) = config_file(&format!(
            r#"{{"auths":{{"https://Reg.Example:5000/v1/":{{"auth":"{}"}},"other.example":{{"username":"u","password":"p"}},"empty.example":{{}}}},"credsStore":"x"}}"#,
            STANDARD.encode("alice:s3cr:et")
        ));
        let mut creds = DockerConfig::read(&path).unwrap().auths;
        creds.sort_by(|a, b| a.host.cmp(&b.host));
        assert_eq!(creds.len(), 2);
        assert_eq!(creds[1].host, "reg.example:5000");
        assert!(
            creds[1].secret
                == Secret::Password {
                    user: "alice".into(),
                    password: "s3cr:et".into()
                }
        );
        assert_eq!(creds[0].host, "other.example");
        assert!(DockerConfig::read(&dir.path().join("none"))
            .unwrap()
            .auths
            .is_empty());
        std::fs::write(&path, "{").unwrap();
        assert!(DockerConfig::read(&path).is_err());
    }

    #[test]
    fn stored_credentials_come_before_helpers() {
        let (_dir, path) = config_file(
            r#"{"auths":{"inline.example":{"username":"u","password":"p"},"placeholder.example":{}},
                "credHelpers":{"https://Ecr.Example/":"ecr-login","inline.example":"never"},
                "credsStore":"desktop"}"#,
        );
        let creds = Credentials::new(Vec::new(), DockerConfig::read(&path).unwrap());
        assert_eq!(creds.helper_for("inline.example"), None);
        assert_eq!(creds.helper_for("ecr.example"), Some("ecr-login"));
        assert_eq!(creds.helper_for("placeholder.example"), Some("desktop"));
        assert_eq!(creds.helper_for("other.example:5000"), Some("desktop"));
        let found = creds.lookup("Inline.Example").unwrap().unwrap();
        assert!(found
            .basic_header()
            .is_some_and(|h| h == format!("Basic {}", STANDARD.encode("u:p"))));
    }
}
