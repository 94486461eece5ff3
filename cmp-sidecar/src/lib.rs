//! forge-cmp: the Argo CD Config Management Plugin for forge-pack releases.
//!
//! Argo CD runs `forge-cmp generate` in an application directory of the GitOps repository.
//! It reads the ReleasePointer there, fetches the release (cache first), verifies every
//! digest and file, and prints the objects on stdout. stdout carries manifests and nothing
//! else: any other byte there would break Argo CD's parsing.
#![deny(clippy::print_stdout)]

pub mod cache;
pub mod cached_stream;
pub mod discover;
pub mod emit;
pub mod error;
pub mod generate;
pub mod plain_yaml;
pub mod pointer;
pub mod seal;
pub mod settings;
pub mod tenancy;
pub mod trust;
pub mod unpacking;

pub use error::CmpError;
pub use generate::generate;
pub use settings::Settings;
