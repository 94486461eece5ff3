//! forge-cmp errors. Argo CD shows stderr in its UI, so every message names the pointer file,
//! image or digest concerned and never includes credentials.

use std::path::PathBuf;

use forge_release::Digest;
use forge_store::StoreError;

/// Why `generate` failed.
#[derive(Debug, thiserror::Error)]
pub enum CmpError {
    /// No pointer in the app directory.
    #[error("no ReleasePointer found in {}: refusing to render zero objects (Argo CD would prune the application)", dir.display())]
    NoPointer {
        /// The app directory.
        dir: PathBuf,
    },
    /// The named pointer file does not exist or is unreadable.
    #[error("cannot read pointer file {}: {source}", path.display())]
    ReadPointer {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A pointer file is malformed.
    #[error("invalid ReleasePointer {}: {reason}", path.display())]
    InvalidPointer {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A named pointer file outside the application directory.
    #[error("pointer file {} must be a path inside the application directory", path.display())]
    PointerOutside {
        /// The name given.
        path: PathBuf,
    },
    /// The pointer names a release its Argo CD project may not deploy.
    #[error("{}: {reason}", path.display())]
    NotAllowed {
        /// The pointer file.
        path: PathBuf,
        /// Which rule, for which project and image.
        reason: String,
    },
    /// The release carries no signature by a key its project trusts.
    #[error("release {digest} of {image} is not signed by a key trusted for it ({}){}: refusing to render it",
        keys.join(", "), if rejected.is_empty() { "; it has no signatures".to_owned() } else { format!("; found: {}", rejected.join("; ")) })]
    NotSigned {
        /// The image.
        image: String,
        /// The release.
        digest: Digest,
        /// The trusted keys tried, by fingerprint.
        keys: Vec<String>,
        /// Why each signature found does not count.
        rejected: Vec<String>,
    },
    /// The sidecar's configuration file cannot be used.
    #[error("sidecar configuration {}: {reason}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Two pointers name the same release stream.
    #[error("{} and {} both point at {image}: one pointer per project", first.display(), second.display())]
    DuplicatePointer {
        /// First file.
        first: PathBuf,
        /// Second file.
        second: PathBuf,
        /// The image.
        image: String,
    },
    /// The commit has no release in the store.
    #[error("no release for commit {commit} in {image}")]
    ReleaseNotFound {
        /// The image.
        image: String,
        /// The commit.
        commit: String,
    },
    /// The pinned digest and the release disagree.
    #[error("{image}: pinned digest {pinned} does not match {what}")]
    PinMismatch {
        /// The image.
        image: String,
        /// The pinned digest.
        pinned: Digest,
        /// What it disagrees with.
        what: String,
    },
    /// A release's object files are not what the metadata says.
    #[error("release {digest} is malformed: {reason}")]
    BadObject {
        /// The release.
        digest: Digest,
        /// What is wrong.
        reason: String,
    },
    /// Two releases deploy the same object.
    #[error("object {object} is in both {first} and {second}")]
    DuplicateObject {
        /// The object.
        object: String,
        /// First image.
        first: String,
        /// Second image.
        second: String,
    },
    /// The store failed or content did not verify.
    #[error("{image}: {source}")]
    Store {
        /// The image.
        image: String,
        /// The failure.
        source: StoreError,
    },
    /// The cache could not be used.
    #[error("cache {}: {reason}", dir.display())]
    Cache {
        /// The cache directory.
        dir: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A cached output did not match its release while it was written (the output is then
    /// incomplete, and the exit status tells Argo CD to discard it).
    #[error(
        "the cached output {} does not match its release (damaged or altered): it has been removed, and the next generate fetches the release again",
        path.display()
    )]
    CacheDamaged {
        /// The cache file.
        path: PathBuf,
    },
    /// Writing the output failed.
    #[error("writing stdout: {0}")]
    Output(std::io::Error),
    /// The time budget ran out.
    #[error(
        "gave up after {seconds} s (FORGE_CMP_TIMEOUT_SECONDS) fetching releases; Argo CD's own deadline is near"
    )]
    Timeout {
        /// The budget.
        seconds: u64,
    },
    /// A setting is invalid.
    #[error("invalid setting {name}=`{value}`: {reason}")]
    Setting {
        /// Variable name.
        name: String,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
}
