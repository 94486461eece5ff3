//! The forge-pack release format (v1).
//!
//! A release is an OCI image manifest with a small config blob, a deterministic tar+gzip of
//! rendered Kubernetes objects (layer 0) and a metadata JSON document (layer 1). This crate
//! builds releases byte-for-byte reproducibly and verifies fetched ones. It does no I/O: no
//! network, no filesystem, nothing async (stores are `forge-store`).

pub mod aliases;
pub mod digest;
pub mod error;
pub mod image;
pub mod index;
pub mod manifest;
pub mod metadata;
pub mod objects;
pub mod package;
pub mod pointer;
pub mod reference;
pub mod tarball;
pub mod timefmt;
pub mod verify;
pub mod yaml;

pub use digest::Digest;
pub use error::FormatError;

/// This crate's version, recorded in releases as the tool version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
