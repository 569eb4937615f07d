//! olreg moves Ollama models between registries and Ollama's model store.

pub mod digest;
pub mod error;
pub mod manifest;
pub mod name;
pub mod store;
