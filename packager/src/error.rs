//! forge-pack's errors: one type per concern (configuration, artifacts, rendering, the source
//! context, git, local files, the policy, the GitOps checkout, release lookups, stores), each
//! naming the file, reference or digest that failed. Each error's exit code is decided here,
//! once; [`Error::hint`] suggests the fix where there is an obvious one.

use forge_release::FormatError;
use forge_release::aliases::ResolveError;
use forge_release::reference::ReferenceError;
use forge_store::StoreError;
use forge_store::publish::PublishError;
use serde::Serialize;

use crate::access::LookupError;
use crate::artifacts::ArtifactsError;
use crate::config::ConfigError;
use crate::context::SourceError;
pub use crate::exit;
use crate::exit::{of_store, store_hint};
pub use crate::fsutil::LocalError;
use crate::git::GitError;
use crate::gitops::GitopsError;
use crate::policy::PolicyError;
use crate::render::RenderError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Flags or arguments that cannot work as given.
    #[error("{message}")]
    Usage {
        /// What is wrong.
        message: String,
        /// How to say it right.
        hint: Option<String>,
    },
    /// forge.yaml.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Artifact sources.
    #[error(transparent)]
    Artifacts(#[from] ArtifactsError),
    /// Templates, rendered objects, image checks.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The release's source context (commit, time, people, uncommitted changes).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Running git.
    #[error(transparent)]
    Git(#[from] GitError),
    /// Local files and stdout.
    #[error(transparent)]
    Local(#[from] LocalError),
    /// The environment policy, including denials.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The GitOps checkout and its pointers.
    #[error(transparent)]
    Gitops(#[from] GitopsError),
    /// An approval could not be made.
    #[error(transparent)]
    Approval(#[from] crate::approvals::ApprovalError),
    /// Finding a release, project or object.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// A reference that cannot be parsed.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// A release id that names no release, or several.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// A store or registry.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Publishing a release.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// A release that does not verify.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// A copy the destination refuses (another release under its number or commit).
    #[error(transparent)]
    Copy(forge_store::copy::CopyError),
    /// Signing keys and signatures.
    #[error(transparent)]
    Signing(#[from] crate::signing::SigningError),
    /// The command ran out of time (`--timeout`).
    #[error("gave up after {seconds} s (--timeout): a registry or remote did not answer in time")]
    Deadline {
        /// The deadline.
        seconds: u64,
    },
    /// Any failure of `diff`, which exits 2 on every error as diff(1) does.
    #[error(transparent)]
    Compare(Box<Error>),
}

impl Error {
    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage { message: message.into(), hint: None }
    }

    /// A usage error with a hint.
    pub fn usage_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Usage { message: message.into(), hint: Some(hint.into()) }
    }

    /// The process exit code.
    pub fn code(&self) -> u8 {
        match self {
            Error::Source(SourceError::Git(_)) => exit::LOCAL,
            Error::Usage { .. }
            | Error::Config(_)
            | Error::Artifacts(_)
            | Error::Source(_)
            | Error::Reference(_)
            | Error::Compare(_) => exit::INPUT,
            Error::Render(e) => e.code(),
            // A directory already in use is the user's choice of path, not a failure.
            Error::Local(LocalError::NotEmpty(_)) => exit::INPUT,
            Error::Git(_) | Error::Local(_) => exit::LOCAL,
            Error::Policy(e) => e.code(),
            Error::Gitops(e) => e.code(),
            Error::Approval(e) => e.code(),
            Error::Lookup(e) => e.code(),
            Error::Resolve(_) => exit::NOT_FOUND,
            Error::Store(e) => of_store(e),
            Error::Publish(PublishError::Store(e)) => of_store(e),
            Error::Publish(PublishError::ContentChanged { .. }) => exit::REFUSED,
            Error::Publish(PublishError::Package(_)) => exit::INPUT,
            Error::Publish(_) => exit::STORE,
            Error::Format(_) => exit::VERIFY,
            Error::Signing(e) => e.code(),
            Error::Copy(forge_store::copy::CopyError::Store(e)) => of_store(e),
            Error::Copy(_) => exit::REFUSED,
            Error::Deadline { .. } => exit::STORE,
        }
    }

    /// How to fix it, when there is an obvious way.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Usage { hint, .. } => hint.clone(),
            Error::Config(e) => e.hint(),
            Error::Render(e) => e.hint(),
            Error::Source(e) => e.hint(),
            Error::Git(e) => e.hint(),
            Error::Local(LocalError::NotEmpty(_)) => {
                Some("choose a new directory, or remove the old one first".into())
            }
            Error::Policy(e) => e.hint(),
            Error::Gitops(e) => e.hint(),
            Error::Approval(e) => e.hint(),
            Error::Lookup(e) => e.hint(),
            Error::Resolve(ResolveError::NotFound { .. }) => {
                Some("`forge-pack list <repository>/<project>` shows the releases there".into())
            }
            Error::Resolve(ResolveError::Ambiguous { .. }) => {
                Some("give more characters of the commit SHA".into())
            }
            Error::Store(e) | Error::Publish(PublishError::Store(e)) => store_hint(e),
            Error::Publish(PublishError::ContentChanged { .. }) => Some(
                "a commit's release never changes; commit the change and release the new commit"
                    .into(),
            ),
            Error::Compare(inner) => inner.hint(),
            Error::Signing(e) => e.hint(),
            Error::Copy(forge_store::copy::CopyError::Conflict { .. }) => Some(
                "a number or commit names one release per repository: copy into another repository, or remove the other release there first".into(),
            ),
            Error::Copy(forge_store::copy::CopyError::Store(e)) => store_hint(e),
            Error::Deadline { .. } => {
                Some("check that the registry is reachable, or pass a longer --timeout".into())
            }
            Error::Artifacts(_)
            | Error::Local(_)
            | Error::Reference(_)
            | Error::Publish(_)
            | Error::Format(_) => None,
        }
    }

    /// The error as `--output json` reports it.
    pub fn report(&self) -> ErrorReport {
        ErrorReport { code: self.code(), message: self.to_string(), hint: self.hint() }
    }
}

/// An error as JSON: `{"error": {"code": 3, "message": "...", "hint": "..."}}`.
#[derive(Debug, Serialize)]
pub struct ErrorReport {
    /// The exit code.
    pub code: u8,
    /// What went wrong.
    pub message: String,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}
