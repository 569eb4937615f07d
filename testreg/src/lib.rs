//! olreg's test peers: an Ollama-protocol registry with fault injection
//! (`registry`), and a harness for Docker Distribution with its token server
//! (`distribution`, `token`).
//!
//! Nothing in the `olreg` library depends on this crate: it exists so that the
//! library's tests, benchmarks and demos can run against real sockets without
//! the internet, and so that every failure a real registry or CDN can produce
//! (wrong ranges, dropped connections, bad manifests, auth challenges) can be
//! produced on purpose and repeatably.

pub mod distribution;
pub mod registry;
pub mod token;

pub use registry::{
    Auth, BlobInfo, BlobMode, ErrorBody, Fault, FaultKind, Model, Options, Realm, RequestRecord,
    Server, Target, TestRegistry, UploadMode,
};
