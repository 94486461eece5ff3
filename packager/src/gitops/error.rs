//! What can go wrong in the GitOps checkout.

use std::path::PathBuf;

use crate::exit;
use crate::fsutil::LocalError;
use crate::git::GitError;

/// Why the GitOps checkout cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum GitopsError {
    /// git failed in the checkout.
    #[error(transparent)]
    Git(#[from] GitError),
    /// A file of the checkout could not be read or written.
    #[error(transparent)]
    Local(#[from] LocalError),
    /// `--gitops` is not a git checkout.
    #[error("{} is not a git checkout", .0.display())]
    NotACheckout(PathBuf),
    /// A pointer file is malformed.
    #[error("invalid ReleasePointer {rel}: {reason}")]
    InvalidPointer {
        /// The pointer file.
        rel: String,
        /// What is wrong.
        reason: String,
    },
    /// A pointer has uncommitted edits, which a deploy would overwrite.
    #[error("{rel} has uncommitted changes")]
    Uncommitted {
        /// The pointer file.
        rel: String,
        /// The checkout.
        root: PathBuf,
    },
    /// An environment or project name that cannot be a directory.
    #[error("{what} name `{name}` cannot be a directory name in the GitOps repository")]
    BadName {
        /// `environment` or `project`.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// Nobody to record as the deployer.
    #[error("cannot tell who is deploying")]
    UnknownActor,
    /// Pushing needs a branch.
    #[error("the GitOps checkout has a detached HEAD; cannot push")]
    DetachedHead,
    /// The push failed (network, authentication, hooks).
    #[error("git push to {target} failed: {stderr}")]
    PushFailed {
        /// `origin/main`, say.
        target: String,
        /// What git said.
        stderr: String,
    },
    /// The remote moved on; the commit is kept locally.
    #[error(
        "committed {what} locally as {sha}, but {target} rejected the push: someone else pushed first"
    )]
    PushRejected {
        /// `auth-service release 2 to production`, say.
        what: String,
        /// The local commit.
        sha: String,
        /// `origin/main`, say.
        target: String,
        /// The checkout.
        root: PathBuf,
    },
    /// Someone else holds the checkout.
    #[error("{} is busy: {what} has held it for {waited} s", root.display())]
    Busy {
        /// The checkout.
        root: PathBuf,
        /// Who holds it.
        what: String,
        /// How long we waited.
        waited: u64,
    },
    /// HEAD is no longer the commit this deploy made.
    #[error("HEAD of {} moved away from {sha} while deploying", root.display())]
    Moved {
        /// The deploy's commit.
        sha: String,
        /// The checkout.
        root: PathBuf,
    },
    /// The remote moved on and the checkout could not be rebased onto it.
    #[error("could not catch up with {target}: {stderr}")]
    CatchUpFailed {
        /// `origin/main`, say.
        target: String,
        /// What git said.
        stderr: String,
        /// The checkout.
        root: PathBuf,
    },
    /// Deploying a release of another repository than the pointer names.
    #[error(
        "{rel} deploys {existing}, of another repository than {new}: refusing to replace one repository's project with another's"
    )]
    OtherRepository {
        /// The pointer file.
        rel: String,
        /// The image the pointer names now.
        existing: String,
        /// The release's repository and project.
        new: String,
    },
    /// A bare project name the checkout has never deployed, so its location is unknown.
    #[error("{project} is not deployed anywhere in {}, so its registry is unknown", root.display())]
    UnknownLocation {
        /// The project.
        project: String,
        /// The checkout.
        root: PathBuf,
    },
    /// A bare project name deployed from several images.
    #[error("{project} is deployed from more than one image: {}", images.join(", "))]
    SeveralImages {
        /// The project.
        project: String,
        /// `<image> (<pointer>)` of each.
        images: Vec<String>,
    },
    /// The project is not deployed in the environment.
    #[error("{project} is not deployed to {env}{}", rel.as_ref().map(|r| format!(": no {r}")).unwrap_or_default())]
    NotDeployed {
        /// The project.
        project: String,
        /// The environment.
        env: String,
        /// The pointer file that would say so.
        rel: Option<String>,
    },
    /// No earlier release to roll back to.
    #[error("{env} has run no other release of {project} than {current}: nothing to roll back to")]
    NothingToRollBack {
        /// The environment.
        env: String,
        /// The project.
        project: String,
        /// The release it runs.
        current: String,
    },
    /// The location holds another project's releases.
    #[error("{location} holds releases of `{holds}`, not `{wanted}`")]
    WrongProject {
        /// The release stream.
        location: String,
        /// The project its releases are of.
        holds: String,
        /// The project named.
        wanted: String,
    },
    /// A project argument that names a release.
    #[error("`{0}` names a release; give the project and the release id separately")]
    NamesARelease(String),
}

impl GitopsError {
    /// The exit code.
    pub fn code(&self) -> u8 {
        match self {
            GitopsError::Git(_) | GitopsError::Local(_) => exit::LOCAL,
            GitopsError::PushFailed { .. } => exit::STORE,
            GitopsError::PushRejected { .. } | GitopsError::CatchUpFailed { .. } => {
                exit::PUSH_REJECTED
            }
            GitopsError::Busy { .. } | GitopsError::Moved { .. } => exit::LOCAL,
            GitopsError::UnknownLocation { .. }
            | GitopsError::NotDeployed { .. }
            | GitopsError::NothingToRollBack { .. } => exit::NOT_FOUND,
            _ => exit::INPUT,
        }
    }

    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            GitopsError::Git(e) => return e.hint(),
            GitopsError::NotACheckout(_) => {
                "pass --gitops <dir> (or set FORGE_GITOPS) to a clone of the GitOps repository"
                    .into()
            }
            GitopsError::Uncommitted { rel, root } => format!(
                "commit or discard them first (`git -C {} checkout -- {rel}`)",
                root.display()
            ),
            GitopsError::BadName { .. } => {
                "use letters, digits, `.`, `_` and `-`, not starting with `.`".into()
            }
            GitopsError::UnknownActor => {
                "pass --actor <name> (or set FORGE_ACTOR, or git config user.name)".into()
            }
            GitopsError::DetachedHead => {
                "check out the branch Argo CD follows, e.g. `git switch main`".into()
            }
            GitopsError::PushRejected { root, .. } => format!(
                "the remote kept moving on; your commit is kept: run `git -C {} pull --rebase` and push again (the policy is checked only when forge-pack runs)",
                root.display()
            ),
            GitopsError::CatchUpFailed { root, .. } => format!(
                "the checkout is as it was: commit or stash its changes, or resolve the conflict by hand, in {}",
                root.display()
            ),
            GitopsError::Busy { .. } => "try again once the other writer is done".into(),
            GitopsError::OtherRepository { .. } => "pass --replace to deploy it there anyway, or lay pointers out by repository (`pointers: by-repository` in policy.yaml) so that each repository's projects have their own".into(),
            GitopsError::UnknownLocation { project, .. } => format!(
                "name its location the first time: forge-pack deploy <env> <registry>/<repository>/{project} <release-id>"
            ),
            GitopsError::SeveralImages { .. } => {
                "give the project's full location instead of its name".into()
            }
            GitopsError::NotDeployed { env, .. } => {
                format!("`forge-pack status {env}` shows what is deployed there")
            }
            GitopsError::NothingToRollBack { env, project, .. } => {
                format!("name the release: forge-pack rollback {env} {project} <release-id>")
            }
            GitopsError::NamesARelease(_) => {
                "forge-pack deploy <env> <registry>/<repository>/<project> <release-id>".into()
            }
            _ => return None,
        })
    }
}
