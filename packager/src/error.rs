//! The one error type of the forge-pack commands, with an exit code and an optional hint.

use std::fmt;

use forge_release::aliases::ResolveError;
use forge_release::reference::ReferenceError;
use forge_store::StoreError;
use forge_store::publish::PublishError;

/// Process exit codes (documented in the README).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A negative answer: `diff` found differences.
    pub const DIFFERENT: u8 = 1;
    /// Usage or input error: bad flags, configuration, templates or references.
    pub const INPUT: u8 = 2;
    /// The release, project or store asked for does not exist.
    pub const NOT_FOUND: u8 = 3;
    /// The store or registry failed (I/O, network, authentication).
    pub const STORE: u8 = 4;
    /// Verification failed: wrong digest, tampered content, unsafe tarball, unknown format.
    pub const VERIFY: u8 = 5;
    /// Refused: the commit already has a release with different content.
    pub const REFUSED: u8 = 6;
    /// Denied: the environment policy does not allow this deploy.
    pub const DENIED: u8 = 7;
    /// `git push` of a deploy was rejected; the commit is kept locally.
    pub const PUSH_REJECTED: u8 = 8;
}

/// A failed command: what went wrong, the exit code, and how to fix it when obvious.
#[derive(Debug)]
pub struct Error {
    /// Exit code for the process.
    pub code: u8,
    /// The message, naming the file, reference or digest concerned.
    pub message: String,
    /// A suggested fix.
    pub hint: Option<String>,
}

impl Error {
    /// An error with an explicit exit code.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Error { code, message: message.into(), hint: None }
    }

    /// A usage or input error (exit 2).
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(exit::INPUT, message)
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        let code = match &e {
            StoreError::BlobNotFound { .. } => exit::NOT_FOUND,
            StoreError::Tampered { .. } | StoreError::Format(_) => exit::VERIFY,
            StoreError::Io { .. } | StoreError::Corrupt { .. } => exit::STORE,
            StoreError::Registry { .. } | StoreError::Unauthorized { .. } => exit::STORE,
            StoreError::Config { .. } => exit::INPUT,
        };
        let hint = match &e {
            StoreError::Unauthorized { anonymous: true, .. } => Some(
                "log in (docker login), set FORGE_REGISTRY_USERNAME/FORGE_REGISTRY_PASSWORD, or pass --username with --password-stdin",
            ),
            StoreError::Unauthorized { anonymous: false, .. } => {
                Some("check the user name, password or token and its permissions")
            }
            StoreError::Tampered { .. } => {
                Some("the stored content is not what was written; rebuild or re-push the release")
            }
            _ => None,
        };
        let error = Error::new(code, e.to_string());
        match hint {
            Some(hint) => error.with_hint(hint),
            None => error,
        }
    }
}

impl From<forge_release::FormatError> for Error {
    fn from(e: forge_release::FormatError) -> Self {
        Error::new(exit::VERIFY, e.to_string())
    }
}

impl From<ResolveError> for Error {
    fn from(e: ResolveError) -> Self {
        let hint = match &e {
            ResolveError::NotFound { .. } => {
                "`forge-pack list <repository>/<project>` shows the releases there"
            }
            ResolveError::Ambiguous { .. } => "give more characters of the commit SHA",
        };
        Error::new(exit::NOT_FOUND, e.to_string()).with_hint(hint)
    }
}

impl From<ReferenceError> for Error {
    fn from(e: ReferenceError) -> Self {
        Error::input(e.to_string())
    }
}

impl From<PublishError> for Error {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::Store(e) => e.into(),
            e @ PublishError::ContentChanged { .. } => Error::new(exit::REFUSED, e.to_string()).with_hint(
                "a commit's release never changes; commit the change and release the new commit",
            ),
            e @ PublishError::Package(_) => Error::input(e.to_string()),
            e => Error::new(exit::STORE, e.to_string()),
        }
    }
}
