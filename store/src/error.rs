//! What can go wrong in a store, shared by the layout and registry stores and publishing.

use std::path::PathBuf;

use forge_release::{Digest, FormatError};

/// Failures of a release store; each names the location, digest or tag concerned.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Filesystem I/O failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A blob is missing.
    #[error("blob {digest} not found in {location}")]
    BlobNotFound {
        /// The missing digest.
        digest: Digest,
        /// The store.
        location: String,
    },
    /// Stored content does not match its digest.
    #[error(
        "content of {digest} in {location} hashes to {actual}: the store is corrupt or was tampered with"
    )]
    Tampered {
        /// The digest the content is stored under.
        digest: Digest,
        /// What it hashes to.
        actual: Digest,
        /// Where.
        location: String,
    },
    /// Store bookkeeping could not be read.
    #[error("corrupt store at {location}: {reason}")]
    Corrupt {
        /// The file or address.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// Content is not a valid release.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// A registry request failed.
    #[error("{location}: {operation} failed: {reason}")]
    Registry {
        /// `host/repository`.
        location: String,
        /// What was being done.
        operation: String,
        /// The registry's answer or the transport error.
        reason: String,
    },
    /// The registry refused the credentials (or their absence).
    #[error("{location}: access denied {}", if *anonymous { "(no credentials were found)" } else { "with the configured credentials" })]
    Unauthorized {
        /// `host/repository`.
        location: String,
        /// Whether the request was anonymous.
        anonymous: bool,
    },
    /// Store settings are invalid.
    #[error("{reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
}

/// The outcome of asking for a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagClaim {
    /// The tag now names our manifest.
    Claimed,
    /// The tag already named our manifest.
    AlreadyOurs,
    /// The tag names another manifest.
    Taken(Digest),
}
