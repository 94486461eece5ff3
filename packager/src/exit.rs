//! Process exit codes (documented in the README), and those of the stores' failures, which
//! several concerns report.

use forge_store::StoreError;

/// Success.
pub const OK: u8 = 0;
/// A negative answer: `diff` found differences.
pub const DIFFERENT: u8 = 1;
/// Usage or input error: bad flags, configuration, templates or references.
pub const INPUT: u8 = 2;
/// The release, project or store asked for does not exist.
pub const NOT_FOUND: u8 = 3;
/// The store, registry or GitOps remote failed (network, authentication).
pub const STORE: u8 = 4;
/// Verification failed: wrong digest, tampered content, unsafe tarball, unknown format.
pub const VERIFY: u8 = 5;
/// Refused: the commit already has a release with different content.
pub const REFUSED: u8 = 6;
/// Denied: the environment policy does not allow this deploy.
pub const DENIED: u8 = 7;
/// `git push` of a deploy was rejected; the commit is kept locally.
pub const PUSH_REJECTED: u8 = 8;
/// A local file or directory could not be read or written, or git failed.
pub const LOCAL: u8 = 9;

/// The exit code of a store failure.
pub fn of_store(e: &StoreError) -> u8 {
    match e {
        StoreError::BlobNotFound { .. } => NOT_FOUND,
        StoreError::Tampered { .. } | StoreError::Format(_) => VERIFY,
        StoreError::Io { .. } | StoreError::Corrupt { .. } => STORE,
        StoreError::Registry { .. } | StoreError::Unauthorized { .. } => STORE,
        StoreError::Config { .. } => INPUT,
    }
}

/// How to fix a store failure, when there is an obvious way.
pub fn store_hint(e: &StoreError) -> Option<String> {
    let hint = match e {
        StoreError::Unauthorized { anonymous: true, .. } => {
            "log in (docker login), set FORGE_REGISTRY_USERNAME/FORGE_REGISTRY_PASSWORD, or pass --username with --password-stdin"
        }
        StoreError::Unauthorized { anonymous: false, .. } => {
            "check the user name, password or token and its permissions"
        }
        StoreError::Tampered { .. } => {
            "the stored content is not what was written; rebuild or re-push the release"
        }
        _ => return None,
    };
    Some(hint.to_owned())
}
