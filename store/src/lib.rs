//! forge-pack's release stores: where releases live and how they get there.
//!
//! One project's releases live in an OCI registry repository or an OCI image layout
//! directory ([`Store`]); [`publish`] numbers, uploads and tags a packaged release there. All
//! I/O of releases is here; the format itself (packaging, verification) is `forge-release`,
//! which does none.

pub mod atomic;
pub mod bounded;
pub mod copy;
pub mod error;
pub mod images;
pub mod layout;
pub mod manifests;
pub mod publish;
pub mod registry;
pub mod release_index;
pub mod root;
pub mod signatures;
pub mod store;

pub use error::{StoreError, TagClaim};
pub use layout::LayoutStore;
pub use store::{Store, UploadProgress};
