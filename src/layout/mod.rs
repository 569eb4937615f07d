//! OCI image layouts (image-spec v1.1): models leave the store as a layout
//! — a directory or a tar archive — and come back from one, for machines
//! without a registry. A layout holds `oci-layout`, `index.json` (one entry
//! per image, named by `org.opencontainers.image.ref.name`) and
//! `blobs/sha256/<hex>`, the manifest among them; oras, crane, skopeo and
//! containerd read and write the same thing.

mod export;
mod import;
pub mod index;
mod source;

pub(crate) use export::export;
pub(crate) use import::import;
