//! olreg's test peers: an Ollama-protocol registry with fault injection
//! (`registry`), and a harness for Docker Distribution with its token server
//! (`distribution`, `token`).

pub mod distribution;
pub mod token;
