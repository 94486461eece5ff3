//! Writing to the checkout: one writer at a time, commits of exactly one pointer, and pushes
//! that catch up with a remote that moved on.

use std::fs::{File, TryLockError};
use std::time::{Duration, Instant};

use super::{GitUser, GitopsError, GitopsRepo, write_atomically};
use crate::fsutil::LocalError;

/// How long a writer waits for another to finish with the checkout, and for git's own lock.
const WAIT: Duration = Duration::from_secs(60);

/// The exclusive right to write to one checkout, held until dropped (or the process ends,
/// however it ends: the operating system releases it).
#[derive(Debug)]
pub struct CheckoutLock {
    _file: File,
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
    /// Waits (a minute at most) for other forge-pack writers to this checkout to finish, and
    /// takes the lock they took: writers to one checkout go one at a time.
    pub fn lock(&self) -> Result<CheckoutLock, GitopsError> {
        let path = self.git_dir()?.join("forge-pack.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| LocalError::io(&path, e))?;
        let deadline = Instant::now() + WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(CheckoutLock { _file: file }),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(25));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(GitopsError::Busy {
                        root: self.root().to_owned(),
                        what: "another forge-pack".into(),
                        waited: WAIT.as_secs(),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(LocalError::io(&path, e).into()),
            }
        }
    }

    /// Waits (a minute at most) for a git command someone else runs in the checkout to
    /// release git's index lock.
    pub fn wait_for_git(&self) -> Result<(), GitopsError> {
        let index_lock = self.git_dir()?.join("index.lock");
        let deadline = Instant::now() + WAIT;
        while index_lock.exists() {
            if Instant::now() > deadline {
                return Err(GitopsError::Busy {
                    root: self.root().to_owned(),
                    what: format!("git ({} exists)", index_lock.display()),
                    waited: WAIT.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Ok(())
    }

    fn git_dir(&self) -> Result<std::path::PathBuf, GitopsError> {
        let dir = self.git.checked(&["rev-parse", "--absolute-git-dir"])?;
        Ok(std::path::PathBuf::from(dir.trim_end()))
    }

    /// Undoes this writer's commit `sha` (HEAD), putting `rel` back as it was (`previous`; no
    /// file when none): after a rejected push, before catching up.
    pub fn uncommit(
        &self,
        sha: &str,
        rel: &str,
        previous: Option<&[u8]>,
    ) -> Result<(), GitopsError> {
        let head = self.git.checked(&["rev-parse", "HEAD"])?;
        if head.trim() != sha {
            return Err(GitopsError::Moved { sha: sha.to_owned(), root: self.root().to_owned() });
        }
        self.wait_for_git()?;
        self.git.checked(&["reset", "--quiet", "--soft", "HEAD~1"])?;
        self.git.checked(&["reset", "--quiet", "--", rel])?;
        self.restore(rel, previous)
    }

    /// Puts files back as they were, as far as it can (after a failed attempt).
    pub fn restore_files(&self, files: &[(&str, Option<&[u8]>)]) {
        for (rel, previous) in files {
            if let Err(e) = self.restore(rel, *previous) {
                tracing::warn!("could not restore {rel}: {e}");
            }
        }
    }

    /// Puts `rel` back as `previous` (removing it when `None`).
    fn restore(&self, rel: &str, previous: Option<&[u8]>) -> Result<(), GitopsError> {
        let path = self.root().join(rel);
        match previous {
            Some(bytes) => write_atomically(&path, bytes),
            None => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(LocalError::io(&path, e).into())
                }
                _ => Ok(()),
            },
        }
    }

    /// Brings the branch up to its upstream: fetch, then rebase any local commits onto it. A
    /// checkout with uncommitted changes is left alone (an error), and on a conflict the
    /// rebase is undone: either way the checkout is as it was.
    pub fn catch_up(&self) -> Result<(), GitopsError> {
        let (remote, merge, target) = self.upstream()?;
        self.wait_for_git()?;
        // Someone's uncommitted work is not ours to move: a stash that does not apply back
        // leaves conflicts behind.
        let dirty = self.git.checked(&["status", "--porcelain", "--untracked-files=no"])?;
        if !dirty.trim().is_empty() {
            return Err(GitopsError::CatchUpFailed {
                target,
                stderr: format!("the checkout has uncommitted changes:\n{}", dirty.trim_end()),
                root: self.root().to_owned(),
            });
        }
        let fetched = self.git.raw(&["fetch", "--quiet", &remote, &merge])?;
        if !fetched.status.success() {
            return Err(GitopsError::PushFailed {
                target,
                stderr: String::from_utf8_lossy(&fetched.stderr).trim().to_owned(),
            });
        }
        let rebased = self.git.raw(&["rebase", "--quiet", "FETCH_HEAD"])?;
        if !rebased.status.success() {
            let _ = self.git.raw(&["rebase", "--abort"]);
            return Err(GitopsError::CatchUpFailed {
                target,
                stderr: String::from_utf8_lossy(&rebased.stderr).trim().to_owned(),
                root: self.root().to_owned(),
            });
        }
        // The remote may have laid its pointers out anew.
        self.layout.set(super::PointerLayout::of_checkout(self.root()));
        Ok(())
    }

    /// The branch's upstream: remote, merge ref, and `remote/branch` for messages.
    fn upstream(&self) -> Result<(String, String, String), GitopsError> {
        let branch = self.git.output(&["symbolic-ref", "--quiet", "--short", "HEAD"])?;
        let branch = branch.map(|b| b.trim().to_owned()).ok_or(GitopsError::DetachedHead)?;
        let config = |key: &str| self.git.output(&["config", &format!("branch.{branch}.{key}")]);
        let remote = config("remote")?.map(|r| r.trim().to_owned()).unwrap_or("origin".into());
        let merge = config("merge")?
            .map(|m| m.trim().to_owned())
            .unwrap_or_else(|| format!("refs/heads/{branch}"));
        let target = format!("{remote}/{}", merge.trim_start_matches("refs/heads/"));
        Ok((remote, merge, target))
    }

    /// Commits exactly `rel` (other staged changes stay staged, not committed) and returns the
    /// new commit's SHA. On failure the file is put back as it was (`previous`; no file when
    /// none).
    pub fn commit_file(
        &self,
        rel: &str,
        previous: Option<&[u8]>,
        message: &str,
        user: &GitUser,
        actor: &str,
    ) -> Result<String, GitopsError> {
        self.commit_files(&[(rel, previous)], message, user, actor)
    }

    /// [`Self::commit_file`] for several files at once, each with what it was before.
    pub fn commit_files(
        &self,
        files: &[(&str, Option<&[u8]>)],
        message: &str,
        user: &GitUser,
        actor: &str,
    ) -> Result<String, GitopsError> {
        let identity = user.identity_args(actor);
        let rels: Vec<&str> = files.iter().map(|(rel, _)| *rel).collect();
        let mut add = vec!["add", "--"];
        add.extend(&rels);
        let mut commit: Vec<&str> = identity.iter().map(String::as_str).collect();
        commit.extend(["commit", "--quiet", "--message", message, "--"]);
        commit.extend(&rels);
        self.wait_for_git()?;
        let result = self.git.checked(&add).and_then(|_| self.git.checked(&commit));
        if let Err(error) = result {
            // Nothing of the attempt stays: the index entries and the files are as they were.
            let mut reset = vec!["reset", "--quiet", "--"];
            reset.extend(&rels);
            let _ = self.git.output(&reset);
            for (rel, previous) in files {
                if let Err(e) = self.restore(rel, *previous) {
                    tracing::warn!("could not restore {rel}: {e}");
                }
            }
            return Err(error.into());
        }
        Ok(self.git.checked(&["rev-parse", "HEAD"])?.trim().to_owned())
    }

    /// Pushes HEAD, catching up (fetch, rebase) and pushing again when the remote moved on,
    /// up to `attempts` times: for commits that stay right whatever others pushed (an
    /// approval record is a file of its own).
    pub fn push_catching_up(&self, attempts: usize) -> Result<PushOutcome, GitopsError> {
        let mut outcome = self.push()?;
        for _ in 1..attempts {
            if !matches!(outcome, PushOutcome::Rejected { .. }) {
                break;
            }
            self.catch_up()?;
            outcome = self.push()?;
        }
        Ok(outcome)
    }

    /// Pushes HEAD to the current branch's upstream (`origin/<branch>` when none is set).
    pub fn push(&self) -> Result<PushOutcome, GitopsError> {
        let (remote, merge, target) = self.upstream()?;
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
