//! What rendering may read, and what it did read.
//!
//! A release claims to be its commit, so rendering reads only the project directory and the
//! library paths configured inside the repository (kustomize's load restrictor is the model;
//! `--load-restrictor none` lifts it), and every file it reads is recorded with its git blob
//! id: the release's metadata lists them, and a file git does not hold as committed refuses
//! the release.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use sha1::Digest as _;

/// Where rendering may read, and the files it read.
#[derive(Debug, jrsonnet_gcmodule::Acyclic)]
pub struct ReadScope {
    /// The repository's top directory (the project directory outside git).
    pub repository: PathBuf,
    /// Directories reads may come from (canonical); none when unrestricted.
    allowed: Option<Vec<PathBuf>>,
    /// Canonical path of each file read → its git blob id.
    read: Mutex<BTreeMap<PathBuf, String>>,
}

impl ReadScope {
    /// Reads restricted to `project_dir` and `library_paths` (which must lie inside
    /// `repository`), or not restricted at all.
    pub fn new(
        repository: &Path,
        project_dir: &Path,
        library_paths: &[PathBuf],
        restricted: bool,
    ) -> Result<Self, String> {
        let canonical =
            |path: &Path| path.canonicalize().map_err(|e| format!("{}: {e}", path.display()));
        let repository = canonical(repository)?;
        let allowed = if restricted {
            let mut allowed = vec![canonical(project_dir)?];
            for library in library_paths {
                let resolved = canonical(library)?;
                if !resolved.starts_with(&repository) {
                    return Err(format!(
                        "library path {} is outside the repository {}: a release must not depend on files its commit does not hold (--load-restrictor none to allow it)",
                        library.display(),
                        repository.display()
                    ));
                }
                allowed.push(resolved);
            }
            Some(allowed)
        } else {
            None
        };
        Ok(ReadScope { repository, allowed, read: Mutex::default() })
    }

    /// Checks that `path` may be read, and gives its canonical form.
    pub fn check(&self, path: &Path) -> Result<PathBuf, String> {
        let resolved = path.canonicalize().map_err(|e| format!("{}: {e}", path.display()))?;
        match &self.allowed {
            Some(allowed) if !allowed.iter().any(|dir| resolved.starts_with(dir)) => Err(format!(
                "{} is outside the project directory and its library paths: rendering reads only \
                 what the release's commit holds (--load-restrictor none to allow it)",
                path.display()
            )),
            _ => Ok(resolved),
        }
    }

    /// Reads a file the scope allows, recording it.
    pub fn read(&self, path: &Path) -> Result<Vec<u8>, String> {
        let resolved = self.check(path)?;
        let bytes = std::fs::read(&resolved).map_err(|e| format!("{}: {e}", path.display()))?;
        self.record(resolved, &bytes);
        Ok(bytes)
    }

    /// Records a file read elsewhere.
    pub fn record(&self, resolved: PathBuf, bytes: &[u8]) {
        self.read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(resolved, git_blob_id(bytes));
    }

    /// Every file read: its path relative to the repository (absolute if outside it) and its
    /// git blob id.
    pub fn files(&self) -> Vec<(String, String)> {
        let read = self.read.lock().unwrap_or_else(PoisonError::into_inner);
        read.iter()
            .map(|(path, blob)| {
                let shown = path.strip_prefix(&self.repository).unwrap_or(path);
                (shown.display().to_string(), blob.clone())
            })
            .collect()
    }
}

/// The id git gives a file's content: SHA-1 of `blob <size>\0<content>`.
pub fn git_blob_id(bytes: &[u8]) -> String {
    let mut hasher = sha1::Sha1::new();
    hasher.update(format!("blob {}\0", bytes.len()).as_bytes());
    hasher.update(bytes);
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_ids_are_gits() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(git_blob_id(b"hello\n"), "ce013625030ba8dba906f756967f9e9ca394464a");
    }

    #[test]
    fn reads_stay_inside_the_project_and_its_libraries() {
        let repo = tempfile::tempdir().expect("dir");
        let project = repo.path().join("services/app");
        let library = repo.path().join("lib");
        std::fs::create_dir_all(&project).expect("mkdir");
        std::fs::create_dir_all(&library).expect("mkdir");
        std::fs::write(project.join("a.yaml"), "a").expect("write");
        std::fs::write(library.join("l.libsonnet"), "{}").expect("write");
        std::fs::write(repo.path().join("secret"), "s").expect("write");
        let scope = ReadScope::new(repo.path(), &project, std::slice::from_ref(&library), true)
            .expect("scope");
        assert!(scope.read(&project.join("a.yaml")).is_ok());
        assert!(scope.read(&library.join("l.libsonnet")).is_ok());
        let refused = scope.read(&project.join("../../secret")).expect_err("outside");
        assert!(refused.contains("outside the project directory"), "{refused}");
        let files: Vec<String> = scope.files().into_iter().map(|(path, _)| path).collect();
        assert_eq!(files, ["lib/l.libsonnet", "services/app/a.yaml"]);
        let outside = ReadScope::new(repo.path(), &project, &[PathBuf::from("/etc")], true)
            .expect_err("a library outside the repository");
        assert!(outside.contains("outside the repository"), "{outside}");
    }
}
