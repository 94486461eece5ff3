//! Whether the branch a release claims is the branch it came from. `--branch main` is only a
//! claim; a policy that restricts branches needs evidence: the CI building that branch at that
//! commit, or the branch in the checkout (local or remote-tracking) containing the commit.

use std::path::Path;

use super::CiContext;
use crate::git::{Git, GitError};

/// How `branch` was verified to contain `commit`, if it was.
pub fn verify_branch(
    dir: &Path,
    commit: &str,
    branch: &str,
    ci: Option<&CiContext>,
) -> Result<Option<String>, GitError> {
    if let Some(ci) = ci
        && !ci.pull_request
        && ci.branch.as_deref() == Some(branch)
        && ci.commit.as_deref().is_some_and(|c| c.eq_ignore_ascii_case(commit))
    {
        return Ok(Some(format!("{} builds {branch} at this commit", ci.name)));
    }
    let git = Git::new(dir.to_path_buf());
    let Ok(listed) = git.raw(&[
        "for-each-ref",
        "--format=%(refname)",
        &format!("refs/heads/{branch}"),
        &format!("refs/remotes/*/{branch}"),
    ]) else {
        return Ok(None);
    };
    if !listed.status.success() {
        return Ok(None);
    }
    for reference in String::from_utf8_lossy(&listed.stdout).lines() {
        let contains = git.raw(&["merge-base", "--is-ancestor", commit, reference])?;
        if contains.status.success() {
            return Ok(Some(format!("{reference} contains the commit")));
        }
    }
    Ok(None)
}
