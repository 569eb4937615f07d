//! The registry protocol: HTTP clients, requests with retries and
//! redirects ([`session`]), the protocol's verbs ([`registry`]), and what
//! goes into `Authorization`: the Ed25519 [`signer`], user [`credentials`]
//! and bearer [`token`]s.

pub mod challenge;
pub mod content_range;
pub(crate) mod credential_helper;
pub(crate) mod credentials;
pub mod error_body;
pub mod rate;
pub(crate) mod redact;
pub mod redirect;
pub(crate) mod registry;
pub mod retry;
pub(crate) mod session;
pub(crate) mod signer;
pub mod tls;
pub(crate) mod token;
pub(crate) mod user_file;
#[cfg(target_os = "linux")]
pub(crate) mod zero_copy;

use std::time::Duration;

use rustls::pki_types::CertificateDer;

use crate::error::{Error, Result};
use credentials::Credentials;
use retry::RetryPolicy;
use signer::{SignedHosts, Signer};
use token::TokenCache;

/// Network settings of a client.
#[derive(Clone, Debug)]
pub(crate) struct NetConfig {
    pub user_agent: String,
    pub connect_timeout: Duration,
    pub stall_timeout: Duration,
    /// Bytes per second a response body must average over each stall
    /// timeout's worth of waiting (0: no minimum).
    pub min_speed: u64,
    pub retry: RetryPolicy,
    /// Accept any certificate for every registry (as `https+insecure` does
    /// for one name).
    pub insecure: bool,
    pub proxy: Proxy,
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Bytes per second for the whole client; 0: no cap.
    pub rate_limit: u64,
}

/// Where requests go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Proxy {
    /// As the usual `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` variables say.
    #[default]
    FromEnvironment,
    /// Straight to the registry, whatever the environment says.
    Direct,
    /// Through this proxy (`NO_PROXY` still applies).
    Url(String),
}

/// The HTTP clients and credentials a client's operations share.
pub(crate) struct Transport {
    secure: reqwest::Client,
    insecure: reqwest::Client,
    pub(crate) config: NetConfig,
    pub(crate) signer: Option<Signer>,
    /// Where the signer's per-request token goes unasked.
    pub(crate) signed_hosts: SignedHosts,
    pub(crate) credentials: Credentials,
    pub(crate) tokens: TokenCache,
    /// The bandwidth cap every operation's bytes count against.
    pub(crate) rate: Option<rate::RateLimit>,
}

impl Transport {
    pub(crate) fn new(
        config: NetConfig,
        signer: Option<Signer>,
        signed_hosts: SignedHosts,
        credentials: Credentials,
    ) -> Result<Transport> {
        let secure = build_client(&config, tls::verifying_config(&config.extra_roots)?)?;
        let insecure = build_client(&config, tls::insecure_config()?)?;
        let rate = (config.rate_limit > 0).then(|| rate::RateLimit::new(config.rate_limit));
        Ok(Transport {
            secure,
            insecure,
            rate,
            config,
            signer,
            signed_hosts,
            credentials,
            tokens: TokenCache::default(),
        })
    }

    /// Whether a file body to `url` may go with `sendfile(2)`: plain HTTP
    /// straight to the server (a proxy, configured or from the environment,
    /// gets the ordinary path). Linux only: macOS's `sendfile` and Windows'
    /// `TransmitFile` are other calls, not written yet.
    #[cfg(target_os = "linux")]
    pub(crate) fn zero_copy_to(&self, url: &reqwest::Url) -> bool {
        if url.scheme() != "http" {
            return false;
        }
        match &self.config.proxy {
            Proxy::Direct => true,
            Proxy::Url(_) => false,
            Proxy::FromEnvironment => ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
                .iter()
                .all(|v| std::env::var_os(v).is_none_or(|x| x.is_empty())),
        }
    }

    /// The client that verifies certificates, or the one that does not.
    pub(crate) fn client(&self, insecure: bool) -> &reqwest::Client {
        if insecure || self.config.insecure {
            &self.insecure
        } else {
            &self.secure
        }
    }
}

/// Blocks `SIGPIPE` on the calling thread; every thread of a client's
/// runtime calls it as it starts. A peer that closes a connection while
/// olreg writes to it must make the write fail (`EPIPE`), not raise a
/// signal whose default action ends the host process: the HTTP stack's
/// vectored writes cannot ask the kernel not to. Blocked, not ignored, so
/// the host's own disposition stays as it set it; a blocked `SIGPIPE` raised
/// by a write stays pending on that thread and is never delivered.
pub(crate) fn block_sigpipe() {
    #[cfg(unix)]
    // SAFETY: plain signal-mask calls on a set this function owns.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

fn build_client(config: &NetConfig, tls: rustls::ClientConfig) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(config.user_agent.clone())
        .connect_timeout(config.connect_timeout)
        // olreg follows redirects itself (see redirect.rs).
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .tcp_keepalive(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(60));
    match &config.proxy {
        Proxy::FromEnvironment => {}
        Proxy::Direct => builder = builder.no_proxy(),
        Proxy::Url(proxy) => {
            let proxy = reqwest::Proxy::all(proxy)
                .map_err(|e| {
                    let shown = redact::redact_text(proxy);
                    Error::invalid_argument(format!("bad proxy URL {shown:?}: {e}"))
                })?
                .no_proxy(reqwest::NoProxy::from_env());
            builder = builder.proxy(proxy);
        }
    }
    builder
        .build()
        .map_err(|e| Error::invalid_argument(format!("cannot set up the HTTP client: {e}")))
}
