//! Errors of the release format: each names the digest, path or field that failed.

use crate::digest::Digest;

/// A release that is malformed, tampered with, unsafe or of an unknown format version.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Content does not hash to the digest that names it.
    #[error("digest mismatch: expected {expected}, content hashes to {actual}")]
    DigestMismatch {
        /// The digest the content was fetched under.
        expected: Digest,
        /// What the content really hashes to.
        actual: Digest,
    },
    /// Content is not the size its descriptor says.
    #[error("size mismatch for {digest}: descriptor says {expected} bytes, got {actual}")]
    SizeMismatch {
        /// Digest of the content.
        digest: Digest,
        /// Size in the descriptor.
        expected: u64,
        /// Size received.
        actual: u64,
    },
    /// A JSON document could not be read.
    #[error("invalid {what}: {source}")]
    Json {
        /// Which document.
        what: &'static str,
        /// The parser's complaint.
        source: serde_json::Error,
    },
    /// The manifest is valid OCI but not a forge release.
    #[error("not a forge release: {reason}")]
    NotARelease {
        /// What did not match.
        reason: String,
    },
    /// The release was written by a newer forge-pack.
    #[error(
        "{what} version {found} is newer than this forge-pack understands (up to {supported}); \
         upgrade forge-pack to read it"
    )]
    UnsupportedVersion {
        /// Which document.
        what: &'static str,
        /// The version found.
        found: u64,
        /// The newest version this build reads.
        supported: u64,
    },
    /// The resources tarball breaks a safety rule.
    #[error("unsafe resources tarball: {reason} (entry `{path}`)")]
    UnsafeTarball {
        /// The offending entry.
        path: String,
        /// Which rule it broke.
        reason: String,
    },
    /// The release exceeds a size or count limit.
    #[error("the release exceeds the limit of {limit} {what}")]
    LimitExceeded {
        /// What was counted (bytes, entries).
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// The resources tarball could not be read.
    #[error("corrupt resources tarball: {0}")]
    CorruptTarball(#[source] std::io::Error),
    /// A file in the tarball differs from what the metadata records.
    #[error("resources do not match release metadata: {reason} (`{path}`)")]
    ContentMismatch {
        /// The file concerned.
        path: String,
        /// What differs.
        reason: String,
    },
}
