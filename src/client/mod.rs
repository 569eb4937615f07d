//! The client: one store, the settings and HTTP transport its operations
//! share, and the runtime bridge they run on. [`ClientBuilder`] makes one;
//! the operations themselves are the engines `pull`, `push` and `verify`.

mod bridge;
mod builder;

pub use bridge::Watch;
pub use builder::{
    ClientBuilder, LogFn, DEFAULT_MIN_SPEED, MAX_STREAMS, MIN_CHUNK_SIZE, SIGNED_HOSTS_ENV,
    STREAMS_ENV,
};

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use crate::context::{Op, Settings};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::name::{Name, NameMask};
use crate::progress::LogLevel;
use crate::remote::session::Access;
use crate::remote::Transport;
use crate::store::{PruneReport, Store, VerifyIssue};
use crate::{copy, layout, pull, push, verify};
use bridge::Bridge;
use builder::Checked;

/// A registry client bound to one store. Safe to share between threads:
/// any number of operations may run at once.
pub struct Client {
    bridge: Bridge,
    transport: Arc<Transport>,
    store: Store,
    mask: NameMask,
    settings: Arc<Settings>,
}

impl Client {
    /// A client with the default settings.
    pub fn new() -> Result<Client> {
        ClientBuilder::new().build()
    }

    /// Starts configuring a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// Starts the runtime and the transport for checked settings.
    fn start(checked: Checked) -> Result<Client> {
        let bridge = Bridge::start(checked.log)?;
        // The TLS stack is built inside the runtime: the HTTP client spawns
        // its connection pool there.
        let transport = bridge.within(|| {
            Transport::new(
                checked.net,
                checked.signer,
                checked.signed_hosts,
                checked.credentials,
            )
            .map(Arc::new)
        })?;
        let client = Client {
            bridge,
            transport,
            store: Store::new(checked.root),
            mask: checked.mask,
            settings: Arc::new(checked.settings),
        };
        let streams = client.settings.streams;
        if checked.asked_streams > streams {
            client.bridge.log(
                LogLevel::Info,
                &format!(
                    "{} streams asked for, {streams} used (the most olreg opens)",
                    checked.asked_streams
                ),
            );
        }
        if let Some(warning) = client.transport.signer.as_ref().and_then(|s| s.warning()) {
            client.bridge.log(LogLevel::Warn, warning);
        }
        let key_note = match &client.transport.signer {
            Some(s) => format!(
                "signing with key {}…",
                &s.public_key()[..s.public_key().len().min(24)]
            ),
            None => "no key: requests are anonymous".to_owned(),
        };
        client.bridge.log(
            LogLevel::Info,
            &format!(
                "store {}, {streams} streams, {key_note}",
                client.store.root().display(),
            ),
        );
        Ok(client)
    }

    /// The store this client works on.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Parses and completes a name with this client's mask.
    pub fn parse_name(&self, name: &str) -> Result<Name> {
        Name::parse(name, &self.mask)
    }

    /// Parses a name that must be a tag, not `@digest` (`what` says whose,
    /// for the error).
    fn parse_tagged(&self, name: &str, what: &str) -> Result<Name> {
        let parsed = self.parse_name(name)?;
        if parsed.digest().is_some() {
            return Err(Error::invalid_name(
                name,
                format!("{what} is named by a tag, not @digest"),
            ));
        }
        Ok(parsed)
    }

    /// Downloads `name`'s manifest and every blob it needs into the store.
    pub fn pull(&self, name: &str, watch: Watch<'_>) -> Result<Manifest> {
        let name = self.parse_name(name)?;
        self.run(watch, move |op| pull::pull(op, name))
    }

    /// Uploads the local model `from` (default `name`) as `name`.
    pub fn push(&self, name: &str, from: Option<&str>, watch: Watch<'_>) -> Result<Manifest> {
        let target = self.parse_name(name)?;
        let source = match from {
            Some(from) => self.parse_name(from)?,
            None => target.clone(),
        };
        if target.digest().is_some() || source.digest().is_some() {
            return Err(Error::invalid_name(
                name,
                "a name with @digest cannot be pushed",
            ));
        }
        self.run(watch, move |op| push::push(op, target, source))
    }

    /// Fetches `name`'s manifest from its registry without storing anything.
    pub fn resolve(&self, name: &str, watch: Watch<'_>) -> Result<Manifest> {
        let name = self.parse_name(name)?;
        self.run(watch, move |op| async move {
            let cancel = op.cancel.clone();
            pull::resolve(&op, &name, Access::Pull, &cancel)
                .await
                .map(|(_, manifest, _)| manifest)
        })
    }

    /// Copies `src` from its registry to `dst` on another (or the same)
    /// registry without touching the store: blobs stream through, checked
    /// against their digests on the way; blobs `dst` has are skipped, blobs
    /// on the same registry are mounted; the manifest's bytes are `PUT`
    /// unchanged, and only after every blob is in place.
    pub fn copy(&self, src: &str, dst: &str, watch: Watch<'_>) -> Result<Manifest> {
        let source = self.parse_name(src)?;
        let target = self.parse_tagged(dst, "a copy's destination")?;
        self.run(watch, move |op| copy::copy(op, source, target))
    }

    /// Writes the local model `name` into the OCI image layout `dest` (a
    /// directory, or a tar archive when the name ends in `.tar`), adding to
    /// the layout when it exists. Its index entry is named by the tag.
    pub fn export(&self, name: &str, dest: impl AsRef<Path>, watch: Watch<'_>) -> Result<Manifest> {
        let name = self.parse_tagged(name, "an exported model")?;
        let dest = dest.as_ref().to_owned();
        self.run(watch, move |op| layout::export(op, name, dest))
    }

    /// Reads an image from the OCI image layout `src` (a directory or a tar
    /// archive) into the store as `name`. `reference` picks the index entry
    /// (its ref name or full name) when the layout holds several.
    pub fn import(
        &self,
        src: impl AsRef<Path>,
        name: &str,
        reference: Option<&str>,
        watch: Watch<'_>,
    ) -> Result<Manifest> {
        let name = self.parse_tagged(name, "an imported model")?;
        let src = src.as_ref().to_owned();
        let reference = reference.map(str::to_owned);
        self.run(watch, move |op| layout::import(op, src, name, reference))
    }

    /// Every local model, sorted.
    pub fn list(&self) -> Result<Vec<Name>> {
        let _call = self.bridge.enter()?;
        self.store.list()
    }

    /// The exact bytes of the local manifest of `name`.
    pub fn show(&self, name: &str) -> Result<Vec<u8>> {
        let _call = self.bridge.enter()?;
        let name = self.parse_name(name)?;
        self.store
            .read_manifest(&name, &self.settings.limits)
            .map_err(|e| e.with_model(&name))
    }

    /// Removes `name` from the store; its blobs stay until `prune`.
    pub fn remove(&self, name: &str) -> Result<()> {
        let _call = self.bridge.enter()?;
        let name = self.parse_name(name)?;
        self.store
            .remove_manifest(&name)
            .map_err(|e| e.with_model(&name))
    }

    /// Deletes blobs no manifest or running operation needs.
    pub fn prune(&self) -> Result<PruneReport> {
        let _call = self.bridge.enter()?;
        self.store.prune()
    }

    /// Re-hashes every blob (or `name`'s) and returns the ones that are
    /// missing, damaged or of the wrong size.
    pub fn verify(&self, name: Option<&str>, watch: Watch<'_>) -> Result<Vec<VerifyIssue>> {
        let name = name.map(|n| self.parse_name(n)).transpose()?;
        self.run(watch, move |op| verify::verify(op, name))
    }

    /// Cancels every operation running on this client (from other threads)
    /// and waits for them to return; they fail with `Cancelled`. Later
    /// operations fail with `Closed` at once, and the client's worker
    /// threads stop (waited for, up to 5 s, unless called inside an async
    /// runtime, where blocking is not allowed). Calling it again does nothing. From inside one of
    /// olreg's callbacks it cannot wait (a call runs on that thread): it
    /// cancels and returns `Reentrant`.
    pub fn close(&self) -> Result<()> {
        self.bridge.close()
    }

    /// Runs an engine's job on the bridge with this client's context.
    fn run<T, F, Fut>(&self, watch: Watch<'_>, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Op>) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        self.bridge.run(watch, |reporter, cancel| {
            job(Arc::new(Op {
                transport: self.transport.clone(),
                store: self.store.clone(),
                settings: self.settings.clone(),
                reporter,
                cancel,
            }))
        })
    }
}
