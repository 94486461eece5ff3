//! Running `git` (which every CI image has): reading commit facts from a project's checkout,
//! and the GitOps checkout's reads, commits and pushes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use forge_release::metadata::Person;

/// Why git could not answer.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// git cannot be started.
    #[error("cannot run git: {0}")]
    Unavailable(#[source] std::io::Error),
    /// git ran and failed.
    #[error("git {verb} in {} failed: {stderr}", dir.display())]
    Failed {
        /// The git command (`commit`, `push`, ...).
        verb: String,
        /// Where it ran.
        dir: PathBuf,
        /// What git said.
        stderr: String,
    },
    /// git said something forge-pack cannot read.
    #[error("unexpected output from git {verb} in {}", dir.display())]
    Unexpected {
        /// The git command.
        verb: String,
        /// Where it ran.
        dir: PathBuf,
    },
}

impl GitError {
    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        match self {
            GitError::Unavailable(_) => Some(
                "install git (deploys are git commits; releases read their commit from it)".into(),
            ),
            _ => None,
        }
    }
}

/// `git -C <dir> …`.
#[derive(Debug, Clone)]
pub struct Git {
    /// The directory git runs in.
    pub dir: PathBuf,
}

impl Git {
    /// git in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Git { dir: dir.into() }
    }

    /// The command, stdin closed.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("git");
        command.arg("-C").arg(&self.dir).args(args).stdin(Stdio::null());
        command
    }

    /// Runs git and returns what it did, whatever the exit status.
    pub fn raw(&self, args: &[&str]) -> Result<Output, GitError> {
        self.command(args).output().map_err(GitError::Unavailable)
    }

    /// stdout when git succeeds, `None` when it fails (for questions such as "is this set").
    pub fn output(&self, args: &[&str]) -> Result<Option<String>, GitError> {
        let output = self.raw(args)?;
        Ok(output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned()))
    }

    /// stdout; a failure is an error carrying git's message.
    pub fn checked(&self, args: &[&str]) -> Result<String, GitError> {
        let output = self.raw(args)?;
        if !output.status.success() {
            return Err(GitError::Failed {
                verb: verb(args).to_owned(),
                dir: self.dir.clone(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// What a checkout says about its HEAD commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitCommit {
    /// Full commit SHA.
    pub sha: String,
    /// Author.
    pub author: Person,
    /// Committer.
    pub committer: Person,
    /// Committer time, seconds since the epoch.
    pub time: i64,
    /// Full message.
    pub message: String,
    /// Checked-out branch (none when detached, as in most CI checkouts).
    pub branch: Option<String>,
    /// Tags pointing at HEAD.
    pub tags: Vec<String>,
    /// URL of the `origin` remote, credentials removed.
    pub remote_url: Option<String>,
}

/// Reads HEAD of the checkout containing `dir`; `None` when `dir` is not in a git checkout.
pub fn read_head(dir: &Path) -> Result<Option<GitCommit>, GitError> {
    let git = Git::new(dir);
    let Some(log) =
        git.output(&["log", "-1", "--format=%H%x00%an%x00%ae%x00%cn%x00%ce%x00%ct%x00%B"])?
    else {
        return Ok(None);
    };
    let fields: Vec<&str> = log.splitn(7, '\0').collect();
    let [sha, an, ae, cn, ce, ct, message] = fields.as_slice() else {
        return Err(GitError::Unexpected { verb: "log".into(), dir: dir.to_owned() });
    };
    let time = ct
        .trim()
        .parse()
        .map_err(|_| GitError::Unexpected { verb: "log".into(), dir: dir.to_owned() })?;
    let branch =
        git.output(&["symbolic-ref", "-q", "--short", "HEAD"])?.map(|b| b.trim().to_owned());
    let mut tags: Vec<String> = git
        .output(&["tag", "--points-at", "HEAD"])?
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .filter(|t| !t.is_empty())
        .collect();
    tags.sort();
    let remote_url =
        git.output(&["remote", "get-url", "origin"])?.map(|u| strip_credentials(u.trim()));
    Ok(Some(GitCommit {
        sha: sha.to_string(),
        author: Person { name: an.to_string(), email: ae.to_string() },
        committer: Person { name: cn.to_string(), email: ce.to_string() },
        time,
        message: message.trim_end().to_owned(),
        branch: branch.filter(|b| !b.is_empty()),
        tags,
        remote_url: remote_url.filter(|u| !u.is_empty()),
    }))
}

/// The files among `paths` (relative to `dir`, or absolute) that differ from HEAD: edited,
/// staged, or not in git at all.
pub fn changed(dir: &Path, paths: &[PathBuf]) -> Result<Vec<String>, GitError> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let mut args =
        vec!["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames", "--"];
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    args.extend(shown.iter().map(String::as_str));
    let status = Git::new(dir).checked(&args)?;
    // Each entry is `XY <path>`, NUL-terminated; ignored files are not listed.
    Ok(status.split('\0').filter_map(|entry| entry.get(3..)).map(str::to_owned).collect())
}

/// The git command in `args` (`commit`, `push`, ...), skipping options.
pub fn verb<'a>(args: &[&'a str]) -> &'a str {
    args.iter().find(|a| !a.starts_with('-') && !a.contains('=')).copied().unwrap_or("")
}

/// Removes `user:password@` from a URL so a token in a remote never reaches a release.
pub fn strip_credentials(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && !userinfo.contains('/')
    {
        return format!("{scheme}://{host}");
    }
    url.to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_are_removed_from_remote_urls() {
        use super::strip_credentials;
        assert_eq!(
            strip_credentials("https://x-token:ghp_secret@github.com/a/b.git"),
            "https://github.com/a/b.git"
        );
        assert_eq!(strip_credentials("git@github.com:a/b.git"), "git@github.com:a/b.git");
        assert_eq!(strip_credentials("https://github.com/a/b"), "https://github.com/a/b");
    }
}
