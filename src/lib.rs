//! olreg moves Ollama models — a manifest plus content-addressed blobs —
//! between registries (ollama.com's protocol and OCI distribution
//! registries) and Ollama's own on-disk store.
//!
//! ```no_run
//! use olreg::{Client, Watch};
//!
//! let client = Client::builder().models_dir("/tmp/models").build()?;
//! let manifest = client.pull("llama3.2:1b", Watch::default())?;
//! println!("pulled {}", manifest.digest());
//! for name in client.list()? {
//!     println!("{name}");
//! }
//! # Ok::<(), olreg::Error>(())
//! ```
//!
//! The layers, from the bottom: pure value types ([`name`], [`digest`],
//! [`manifest`], [`index`], [`platform`]); the [`store`]; the registry
//! protocol ([`remote`]); the engines (`pull`, `push`, `copy`, `verify`);
//! the [`Client`] that runs them; and `ffi`, the C ABI.

mod cancel;
mod client;
mod context;
mod copy;
pub mod digest;
pub mod error;
pub mod index;
pub mod layout;
pub mod manifest;
mod mirror;
pub mod name;
pub mod platform;
pub mod progress;
mod pull;
mod push;
pub mod remote;
mod spans;
pub mod store;
mod verify;

pub use cancel::CancelToken;
pub use client::{
    Client, ClientBuilder, LogFn, Watch, DEFAULT_MIN_SPEED, MAX_STREAMS, MIN_CHUNK_SIZE,
    SIGNED_HOSTS_ENV, STREAMS_ENV,
};
pub use digest::Digest;
pub use error::{Error, ErrorKind, Result, Status};
pub use manifest::{Layer, Limits, Manifest};
pub use mirror::MIRRORS_ENV;
pub use name::{Name, NameMask, Scheme};
pub use platform::Platform;
pub use progress::{LogLevel, Progress, ProgressEvent};
pub use remote::rate::{parse_rate, RATE_LIMIT_ENV};
pub use store::{BlobProblem, PruneReport, Store, VerifyIssue};

pub mod ffi;
