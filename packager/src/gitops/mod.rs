//! The GitOps repository checkout: ReleasePointer files under `envs/<env>/<project>/`, their
//! git history (the audit trail), and committing and pushing changes to them.

mod history;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use forge_release::pointer::ReleasePointer;

use crate::exit;
use crate::fsutil::LocalError;
use crate::git::Git;
use crate::git::GitError;
pub use history::{Change, HistoryEntry};

/// Where pointers live in the GitOps repository.
pub const ENVS_DIR: &str = "envs";
/// A pointer's file name.
pub const POINTER_FILE: &str = "release.yaml";

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
            GitopsError::PushRejected { .. } => exit::PUSH_REJECTED,
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
                "your commit is kept; run `git -C {} pull --rebase` and push again (the policy is checked only when forge-pack runs)",
                root.display()
            ),
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

/// A GitOps repository checkout.
#[derive(Debug)]
pub struct GitopsRepo {
    git: Git,
}

/// A pointer file as read from the working tree.
#[derive(Debug, Clone)]
pub struct PointerFile {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// The checked pointer.
    pub pointer: ReleasePointer,
}

/// git's configured identity (`user.name`, `user.email`), if any.
#[derive(Debug, Clone, Default)]
pub struct GitUser {
    /// `user.name`.
    pub name: Option<String>,
    /// `user.email`.
    pub email: Option<String>,
}

impl GitUser {
    /// `-c user.name=… -c user.email=…` for what git lacks (as in many CI jobs), so the commit
    /// is made in the actor's name instead of failing.
    fn identity_args(&self, actor: &str) -> Vec<String> {
        let mut args = Vec::new();
        if self.name.is_none() {
            args.extend(["-c".to_owned(), format!("user.name={actor}")]);
        }
        if self.email.is_none() {
            args.extend(["-c".to_owned(), "user.email=forge-pack@users.noreply.invalid".into()]);
        }
        args
    }
}

/// What `git push` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The remote took the commit.
    Pushed {
        /// `origin/main`, for messages.
        target: String,
    },
    /// Someone else pushed first.
    Rejected {
        /// `origin/main`, for messages.
        target: String,
    },
}

impl GitopsRepo {
    /// Opens the checkout containing `dir`.
    pub fn open(dir: &Path) -> Result<Self, GitopsError> {
        let git = Git::new(dir.to_path_buf());
        let top = git
            .output(&["rev-parse", "--show-toplevel"])?
            .ok_or_else(|| GitopsError::NotACheckout(dir.to_owned()))?;
        Ok(GitopsRepo { git: Git::new(PathBuf::from(top.trim_end())) })
    }

    /// The checkout's top directory.
    pub fn root(&self) -> &Path {
        &self.git.dir
    }

    /// `envs/<env>/<project>/release.yaml`, relative to the root.
    pub fn pointer_path(env: &str, project: &str) -> String {
        format!("{ENVS_DIR}/{env}/{project}/{POINTER_FILE}")
    }

    /// Reads and checks a pointer file in the working tree; `None` when it does not exist.
    pub fn read_pointer(&self, rel: &str) -> Result<Option<ReleasePointer>, GitopsError> {
        Ok(self.read_pointer_file(rel)?.map(|file| file.pointer))
    }

    /// [`Self::read_pointer`], keeping the file's bytes (to put back if a commit fails).
    pub fn read_pointer_file(&self, rel: &str) -> Result<Option<PointerFile>, GitopsError> {
        let path = self.root().join(rel);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LocalError::io(path, e).into()),
        };
        let pointer = parse_pointer(&String::from_utf8_lossy(&bytes))
            .map_err(|reason| GitopsError::InvalidPointer { rel: rel.to_owned(), reason })?;
        Ok(Some(PointerFile { bytes, pointer }))
    }

    /// Every pointer file in the working tree as `(env, project, relative path)`, sorted.
    pub fn pointer_files(&self) -> Result<Vec<(String, String, String)>, GitopsError> {
        let mut found = Vec::new();
        for env in sorted_dirs(&self.root().join(ENVS_DIR))? {
            for project in sorted_dirs(&self.root().join(ENVS_DIR).join(&env))? {
                let rel = Self::pointer_path(&env, &project);
                if self.root().join(&rel).is_file() {
                    found.push((env.clone(), project, rel));
                }
            }
        }
        Ok(found)
    }

    /// Whether `rel` differs from HEAD (edited, staged or untracked).
    pub fn is_dirty(&self, rel: &str) -> Result<bool, GitopsError> {
        Ok(!self.changed_paths(rel)?.is_empty())
    }

    /// Files under `pathspec` that differ from HEAD (edited, staged or untracked), in one
    /// `git status`.
    pub fn changed_paths(&self, pathspec: &str) -> Result<BTreeSet<String>, GitopsError> {
        let status = self.git.checked(&[
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--no-renames",
            "--",
            pathspec,
        ])?;
        // Each entry is `XY <path>`, NUL-terminated.
        Ok(status.split('\0').filter_map(|entry| entry.get(3..)).map(str::to_owned).collect())
    }

    /// Writes a pointer file atomically (a crash leaves the old file or the new one).
    pub fn write_pointer(&self, rel: &str, pointer: &ReleasePointer) -> Result<(), GitopsError> {
        write_atomically(&self.root().join(rel), pointer.to_yaml().as_bytes())
    }

    /// Commits exactly `rel` (other staged changes stay staged, not committed) and returns the
    /// new commit's SHA. On failure the file is put back as it was.
    pub fn commit_file(
        &self,
        rel: &str,
        previous: Option<&[u8]>,
        message: &str,
        user: &GitUser,
        actor: &str,
    ) -> Result<String, GitopsError> {
        let identity = user.identity_args(actor);
        let mut args: Vec<&str> = identity.iter().map(String::as_str).collect();
        args.extend(["commit", "--quiet", "--message", message, "--", rel]);
        let result = self.git.checked(&["add", "--", rel]).and_then(|_| self.git.checked(&args));
        if let Err(error) = result {
            let path = self.root().join(rel);
            let restored = match previous {
                Some(bytes) => write_atomically(&path, bytes),
                None => std::fs::remove_file(&path).map_err(|e| LocalError::io(&path, e).into()),
            };
            let _ = self.git.output(&["reset", "--quiet", "--", rel]);
            if let Err(e) = restored {
                tracing::warn!("could not restore {rel}: {e}");
            }
            return Err(error.into());
        }
        Ok(self.git.checked(&["rev-parse", "HEAD"])?.trim().to_owned())
    }

    /// git's configured identity in this checkout.
    pub fn git_user(&self) -> Result<GitUser, GitopsError> {
        let config = |key: &str| -> Result<Option<String>, GitopsError> {
            let value = self.git.output(&["config", key])?;
            Ok(value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()))
        };
        Ok(GitUser { name: config("user.name")?, email: config("user.email")? })
    }

    /// Pushes HEAD to the current branch's upstream (`origin/<branch>` when none is set).
    pub fn push(&self) -> Result<PushOutcome, GitopsError> {
        let branch = self.git.output(&["symbolic-ref", "--quiet", "--short", "HEAD"])?;
        let branch = branch.map(|b| b.trim().to_owned()).ok_or(GitopsError::DetachedHead)?;
        let config = |key: &str| self.git.output(&["config", &format!("branch.{branch}.{key}")]);
        let remote = config("remote")?.map(|r| r.trim().to_owned()).unwrap_or("origin".into());
        let merge = config("merge")?
            .map(|m| m.trim().to_owned())
            .unwrap_or_else(|| format!("refs/heads/{branch}"));
        let target = format!("{remote}/{}", merge.trim_start_matches("refs/heads/"));
        let refspec = format!("HEAD:{merge}");
        let output = self.git.raw(&["push", "--porcelain", &remote, &refspec])?;
        if output.status.success() {
            return Ok(PushOutcome::Pushed { target });
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        if stdout.lines().any(|l| l.starts_with('!') && l.contains("[rejected]")) {
            return Ok(PushOutcome::Rejected { target });
        }
        Err(GitopsError::PushFailed {
            target,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Parses a pointer's YAML and checks its fixed fields (the image is checked by its user).
pub fn parse_pointer(text: &str) -> Result<ReleasePointer, String> {
    let pointer = ReleasePointer::from_yaml(text)?;
    let root = forge_release::reference::StoreRoot::Layouts(PathBuf::from("/"));
    pointer.validate(&root)?;
    Ok(pointer)
}

fn sorted_dirs(dir: &Path) -> Result<Vec<String>, GitopsError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LocalError::io(dir, e).into()),
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    Ok(names)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), GitopsError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| LocalError::io(parent, e))?;
    }
    forge_store::atomic::write_file(path, bytes).map_err(|e| LocalError::io(path, e).into())
}
