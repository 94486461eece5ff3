//! The GitOps repository checkout: ReleasePointer files under `envs/<env>/<project>/`, their
//! git history (the audit trail), and committing and pushing changes to them.

mod history;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use forge_release::pointer::ReleasePointer;

use crate::error::{Error, exit};
use crate::git::Git;
pub use history::{Change, HistoryEntry};

/// Where pointers live in the GitOps repository.
pub const ENVS_DIR: &str = "envs";
/// A pointer's file name.
pub const POINTER_FILE: &str = "release.yaml";

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
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let git = Git::new(dir.to_path_buf());
        let top = git.output(&["rev-parse", "--show-toplevel"])?.ok_or_else(|| {
            Error::input(format!("{} is not a git checkout", dir.display())).with_hint(
                "pass --gitops <dir> (or set FORGE_GITOPS) to a clone of the GitOps repository",
            )
        })?;
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
    pub fn read_pointer(&self, rel: &str) -> Result<Option<ReleasePointer>, Error> {
        Ok(self.read_pointer_file(rel)?.map(|file| file.pointer))
    }

    /// [`Self::read_pointer`], keeping the file's bytes (to put back if a commit fails).
    pub fn read_pointer_file(&self, rel: &str) -> Result<Option<PointerFile>, Error> {
        let path = self.root().join(rel);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::new(
                    exit::STORE,
                    format!("cannot read {}: {e}", path.display()),
                ));
            }
        };
        let pointer = parse_pointer(&String::from_utf8_lossy(&bytes))
            .map_err(|reason| Error::input(format!("invalid ReleasePointer {rel}: {reason}")))?;
        Ok(Some(PointerFile { bytes, pointer }))
    }

    /// Every pointer file in the working tree as `(env, project, relative path)`, sorted.
    pub fn pointer_files(&self) -> Result<Vec<(String, String, String)>, Error> {
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
    pub fn is_dirty(&self, rel: &str) -> Result<bool, Error> {
        Ok(!self.changed_paths(rel)?.is_empty())
    }

    /// Files under `pathspec` that differ from HEAD (edited, staged or untracked), in one
    /// `git status`.
    pub fn changed_paths(&self, pathspec: &str) -> Result<BTreeSet<String>, Error> {
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
    pub fn write_pointer(&self, rel: &str, pointer: &ReleasePointer) -> Result<(), Error> {
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
    ) -> Result<String, Error> {
        let identity = user.identity_args(actor);
        let mut args: Vec<&str> = identity.iter().map(String::as_str).collect();
        args.extend(["commit", "--quiet", "--message", message, "--", rel]);
        let result = self.git.checked(&["add", "--", rel]).and_then(|_| self.git.checked(&args));
        if let Err(error) = result {
            let path = self.root().join(rel);
            let restored = match previous {
                Some(bytes) => write_atomically(&path, bytes),
                None => std::fs::remove_file(&path).map_err(|e| Error::input(e.to_string())),
            };
            let _ = self.git.output(&["reset", "--quiet", "--", rel]);
            if let Err(e) = restored {
                tracing::warn!("could not restore {rel}: {e}");
            }
            return Err(error);
        }
        Ok(self.git.checked(&["rev-parse", "HEAD"])?.trim().to_owned())
    }

    /// git's configured identity in this checkout.
    pub fn git_user(&self) -> Result<GitUser, Error> {
        let config = |key: &str| -> Result<Option<String>, Error> {
            let value = self.git.output(&["config", key])?;
            Ok(value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()))
        };
        Ok(GitUser { name: config("user.name")?, email: config("user.email")? })
    }

    /// Pushes HEAD to the current branch's upstream (`origin/<branch>` when none is set).
    pub fn push(&self) -> Result<PushOutcome, Error> {
        let branch = self.git.output(&["symbolic-ref", "--quiet", "--short", "HEAD"])?;
        let branch = branch.map(|b| b.trim().to_owned()).ok_or_else(|| {
            Error::input("the GitOps checkout has a detached HEAD; cannot push")
                .with_hint("check out the branch Argo CD follows, e.g. `git switch main`")
        })?;
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
        Err(Error::new(
            exit::STORE,
            format!(
                "git push to {target} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        ))
    }
}

/// Parses a pointer's YAML and checks its fixed fields (the image is checked by its user).
pub fn parse_pointer(text: &str) -> Result<ReleasePointer, String> {
    let pointer = ReleasePointer::from_yaml(text)?;
    let root = forge_release::reference::StoreRoot::Layouts(PathBuf::from("/"));
    pointer.validate(&root)?;
    Ok(pointer)
}

fn sorted_dirs(dir: &Path) -> Result<Vec<String>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::new(exit::STORE, format!("cannot read {}: {e}", dir.display())));
        }
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

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent).map_err(|e| Error::new(exit::STORE, e.to_string()))?;
    }
    forge_store::atomic::write_file(path, bytes)
        .map_err(|e| Error::new(exit::STORE, format!("cannot write {}: {e}", path.display())))
}
