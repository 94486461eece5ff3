//! The forge-pack release format (v1) and release stores.
//!
//! A release is an OCI image manifest with a small config blob, a deterministic tar+gzip of
//! rendered Kubernetes objects (layer 0) and a metadata JSON document (layer 1). This crate
//! builds releases byte-for-byte reproducibly, verifies fetched ones, and stores them.

pub mod aliases;
pub mod atomic;
pub mod digest;
pub mod error;
pub mod manifest;
pub mod metadata;
pub mod objects;
pub mod package;
pub mod pointer;
pub mod publish;
pub mod reference;
pub mod registry;
pub mod store;
pub mod tarball;
pub mod timefmt;
pub mod verify;
pub mod yaml;

pub use digest::Digest;
pub use error::FormatError;

/// This crate's version, recorded in releases as the tool version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
