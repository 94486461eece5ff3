//! The GitOps repository checkout: ReleasePointer files under `envs/<env>/` (see [`layout`]),
//! their git history (the audit trail), and committing and pushing changes to them (see
//! [`writer`]).

mod error;
mod history;
mod layout;
mod writer;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use forge_release::pointer::ReleasePointer;

use crate::fsutil::LocalError;
use crate::git::Git;
pub use error::GitopsError;
pub use history::{Change, HistoryEntry};
pub use layout::{PointerEntry, PointerLayout};
pub use writer::{CheckoutLock, PushOutcome};

/// Where pointers live in the GitOps repository.
pub const ENVS_DIR: &str = "envs";
/// A pointer's file name.
pub const POINTER_FILE: &str = "release.yaml";

/// A GitOps repository checkout.
#[derive(Debug)]
pub struct GitopsRepo {
    git: Git,
    /// Read again after catching up with the remote.
    layout: std::cell::Cell<PointerLayout>,
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

impl GitopsRepo {
    /// Opens the checkout containing `dir`.
    pub fn open(dir: &Path) -> Result<Self, GitopsError> {
        let git = Git::new(dir.to_path_buf());
        let top = git
            .output(&["rev-parse", "--show-toplevel"])?
            .ok_or_else(|| GitopsError::NotACheckout(dir.to_owned()))?;
        let root = PathBuf::from(top.trim_end());
        let layout = PointerLayout::of_checkout(&root);
        Ok(GitopsRepo { git: Git::new(root), layout: std::cell::Cell::new(layout) })
    }

    /// The checkout's top directory.
    pub fn root(&self) -> &Path {
        &self.git.dir
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

    /// Writes a file of the checkout atomically (its directories made as needed).
    pub fn write_file(&self, rel: &str, bytes: &[u8]) -> Result<(), GitopsError> {
        write_atomically(&self.root().join(rel), bytes)
    }

    /// A file of the working tree, if it exists.
    pub fn read_file(&self, rel: &str) -> Result<Option<Vec<u8>>, GitopsError> {
        let path = self.root().join(rel);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(LocalError::io(path, e).into()),
        }
    }

    /// A git setting of the checkout (`user.signingkey`, say), if set.
    pub fn git_config(&self, key: &str) -> Result<Option<String>, GitopsError> {
        let value = self.git.output(&["config", key])?;
        Ok(value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()))
    }

    /// Writes a pointer file atomically (a crash leaves the old file or the new one).
    pub fn write_pointer(&self, rel: &str, pointer: &ReleasePointer) -> Result<(), GitopsError> {
        write_atomically(&self.root().join(rel), pointer.to_yaml().as_bytes())
    }

    /// git's configured identity in this checkout.
    pub fn git_user(&self) -> Result<GitUser, GitopsError> {
        let config = |key: &str| -> Result<Option<String>, GitopsError> {
            let value = self.git.output(&["config", key])?;
            Ok(value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()))
        };
        Ok(GitUser { name: config("user.name")?, email: config("user.email")? })
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
