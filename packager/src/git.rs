//! Reading commit facts from a git checkout (by running `git`, which every CI image has).

use std::path::Path;
use std::process::Command;

use forge_release::metadata::Person;

use crate::error::Error;

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

fn git(dir: &Path, args: &[&str]) -> Result<Option<String>, Error> {
    let output = Command::new("git").arg("-C").arg(dir).args(args).output().map_err(|e| {
        Error::input(format!("cannot run git: {e}"))
            .with_hint("install git, or pass --commit and --commit-time")
    })?;
    if !output.status.success() {
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(&output.stdout).into_owned()))
}

/// Reads HEAD of the checkout containing `dir`; `None` when `dir` is not in a git checkout.
pub fn read_head(dir: &Path) -> Result<Option<GitCommit>, Error> {
    let Some(log) =
        git(dir, &["log", "-1", "--format=%H%x00%an%x00%ae%x00%cn%x00%ce%x00%ct%x00%B"])?
    else {
        return Ok(None);
    };
    let fields: Vec<&str> = log.splitn(7, '\0').collect();
    let [sha, an, ae, cn, ce, ct, message] = fields.as_slice() else {
        return Err(Error::input(format!("unexpected `git log` output in {}", dir.display())));
    };
    let time = ct
        .trim()
        .parse()
        .map_err(|_| Error::input(format!("unexpected commit time `{ct}` from git")))?;
    let branch = git(dir, &["symbolic-ref", "-q", "--short", "HEAD"])?.map(|b| b.trim().to_owned());
    let mut tags: Vec<String> = git(dir, &["tag", "--points-at", "HEAD"])?
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .filter(|t| !t.is_empty())
        .collect();
    tags.sort();
    let remote_url =
        git(dir, &["remote", "get-url", "origin"])?.map(|u| strip_credentials(u.trim()));
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

/// Whether files under `paths` (relative to `dir`) differ from HEAD.
pub fn is_dirty(dir: &Path, paths: &[&Path]) -> Result<bool, Error> {
    let mut args = vec!["status", "--porcelain", "--"];
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    args.extend(shown.iter().map(String::as_str));
    Ok(git(dir, &args)?.is_some_and(|out| !out.trim().is_empty()))
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
