//! The release's source context: commit, people, branch, tags and trigger, from flags, then
//! CI variables (see [`ci`]), then the git checkout; and whether the branch it claims is
//! verified (see [`provenance`]).

mod ci;
mod provenance;

pub use ci::{CiContext, ci_context};

use std::path::{Path, PathBuf};

use forge_release::aliases::is_commit_sha;
use forge_release::metadata::{Person, SourceInfo, Trigger, TriggerKind};
use forge_release::timefmt;

use crate::cli::{SourceFlags, TriggerArg};
use crate::git::{self, GitCommit};

/// Why the release's source facts cannot be settled.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// git could not tell.
    #[error(transparent)]
    Git(#[from] crate::git::GitError),
    /// No commit: not a checkout, and none given.
    #[error("{} is not in a git checkout and no commit was given", .0.display())]
    NoCommit(PathBuf),
    /// `--commit` (or CI) gave something else than a full SHA.
    #[error("`{0}` is not a full commit SHA (40 or 64 hex characters)")]
    NotASha(String),
    /// The commit is not HEAD here, and no time was given.
    #[error("commit {0} is not HEAD of a checkout, so its time is unknown")]
    UnknownTime(String),
    /// `--commit-time` is neither RFC 3339 nor epoch seconds.
    #[error("`{0}` is not a time: expected RFC 3339 (2024-05-01T12:00:00Z) or epoch seconds")]
    BadTime(String),
    /// The time cannot be written as a date.
    #[error("commit time {0} is out of range")]
    TimeOutOfRange(i64),
    /// Nothing says what caused the release.
    #[error("cannot tell what triggered this release: {}", match .0 {
        Some(ci) => format!("{ci} names no branch or tag for this build"),
        None => "the checkout is on no branch (a detached HEAD) and no CI forge-pack knows says more".into(),
    })]
    UnknownTrigger(Option<&'static str>),
    /// The checkout is not at the commit CI or --commit names.
    #[error(
        "{by} names commit {commit}, but the checkout is at {head}: a release is made from the checkout"
    )]
    NotTheCheckout {
        /// `--commit`, or the CI.
        by: &'static str,
        /// The commit named.
        commit: String,
        /// HEAD of the checkout.
        head: String,
    },
    /// `--author` is not `Name <email>`.
    #[error("`{0}` is not `Name <email>`")]
    BadPerson(String),
    /// Files the release is made from differ from the commit it would claim.
    #[error("{} has uncommitted changes to files the release is made from ({}): the release would not match commit {commit}",
        dir.display(), files.join(", "))]
    Uncommitted {
        /// The project directory.
        dir: PathBuf,
        /// The files, as git names them.
        files: Vec<String>,
        /// The commit, shortened.
        commit: String,
    },
}

impl SourceError {
    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            SourceError::Git(e) => return e.hint(),
            SourceError::NoCommit(_) => {
                "run inside the project's git checkout, or pass --commit <SHA> --commit-time <TIME>"
            }
            SourceError::UnknownTime(_) => {
                "pass --commit-time (RFC 3339 or epoch seconds); releases use it for reproducible bytes"
            }
            SourceError::Uncommitted { .. } => {
                "commit the changes, or pass --allow-dirty for a local experiment"
            }
            SourceError::NotTheCheckout { .. } => {
                "check out that commit first (git checkout <commit>); outside a checkout, --commit with --commit-time names any commit"
            }
            SourceError::UnknownTrigger(_) => {
                "pass --branch <name> or --tag <tag> (what the CI builds), or --manual for a release by hand"
            }
            _ => return None,
        };
        Some(hint.to_owned())
    }
}

/// The resolved source of a release.
#[derive(Debug, Clone)]
pub struct ReleaseContext {
    /// Source facts for the metadata.
    pub source: SourceInfo,
    /// Commit time in seconds.
    pub commit_time: i64,
    /// The trigger.
    pub trigger: Trigger,
    /// Whether the commit is HEAD of the checkout at the project directory (only then can
    /// uncommitted changes make the release differ from the commit).
    pub is_checkout_head: bool,
}

/// Combines flags, CI and the checkout at `project_dir`.
pub fn resolve(
    project_dir: &Path,
    flags: &SourceFlags,
    ci: Option<&CiContext>,
    config_url: Option<&str>,
) -> Result<ReleaseContext, SourceError> {
    let head = git::read_head(project_dir)?;
    resolve_with_head(project_dir, flags, ci, config_url, head)
}

/// [`resolve`] with the checkout's HEAD already read (a caller resolving twice reads it once).
pub fn resolve_with_head(
    project_dir: &Path,
    flags: &SourceFlags,
    ci: Option<&CiContext>,
    config_url: Option<&str>,
    head: Option<git::GitCommit>,
) -> Result<ReleaseContext, SourceError> {
    // A release is made from the checkout: a commit named by CI or --commit that is not the
    // checkout's HEAD would label other code (a workflow_run building a pull request's head,
    // a laptop on another branch) with it.
    if let Some(head) = head.as_ref() {
        let named = match (&flags.commit, ci.and_then(|c| c.commit.as_ref())) {
            (Some(flag), _) => Some(("--commit", flag)),
            (None, Some(ci_commit)) => Some((ci.map_or("CI", |c| c.name), ci_commit)),
            (None, None) => None,
        };
        if let Some((by, named)) = named
            && !named.eq_ignore_ascii_case(&head.sha)
        {
            return Err(SourceError::NotTheCheckout {
                by,
                commit: named.clone(),
                head: head.sha.clone(),
            });
        }
    }
    let commit = flags
        .commit
        .clone()
        .or_else(|| ci.and_then(|c| c.commit.clone()))
        .or_else(|| head.as_ref().map(|h| h.sha.clone()))
        .ok_or_else(|| SourceError::NoCommit(project_dir.to_owned()))?
        .to_ascii_lowercase();
    if !is_commit_sha(&commit) {
        return Err(SourceError::NotASha(commit));
    }
    // Git facts only describe this commit if HEAD is that commit.
    let head = head.filter(|h| h.sha == commit);
    let commit_time = match &flags.commit_time {
        Some(text) => parse_time(text)?,
        None => {
            head.as_ref().map(|h| h.time).ok_or_else(|| SourceError::UnknownTime(commit.clone()))?
        }
    };
    let author = match &flags.author {
        Some(text) => parse_person(text)?,
        None => head.as_ref().map(|h| h.author.clone()).unwrap_or_else(unknown_person),
    };
    let committer = head.as_ref().map(|h| h.committer.clone()).unwrap_or_else(|| author.clone());
    let message = flags
        .message
        .clone()
        .or_else(|| head.as_ref().map(|h| h.message.clone()))
        .unwrap_or_default();
    let branch = flags
        .branch
        .clone()
        .or_else(|| ci.and_then(|c| c.branch.clone()))
        .or_else(|| head.as_ref().and_then(|h| h.branch.clone()));
    let mut tags: Vec<String> = flags.tags.clone();
    tags.extend(ci.and_then(|c| c.tag.clone()));
    tags.extend(head.as_ref().map(|h: &GitCommit| h.tags.clone()).unwrap_or_default());
    tags.sort();
    tags.dedup();
    let ci_tag = ci.and_then(|c| c.tag.clone());
    let kind = match flags.trigger {
        Some(TriggerArg::BranchPush) => TriggerKind::BranchPush,
        Some(TriggerArg::Tag) => TriggerKind::Tag,
        Some(TriggerArg::Manual) => TriggerKind::Manual,
        Some(TriggerArg::PullRequest) => TriggerKind::PullRequest,
        None => match ci {
            Some(c) if c.manual => TriggerKind::Manual,
            Some(c) if c.pull_request => TriggerKind::PullRequest,
            Some(c) if c.tag.is_some() => TriggerKind::Tag,
            Some(c) if c.branch.is_some() || flags.branch.is_some() => TriggerKind::BranchPush,
            Some(c) => return Err(SourceError::UnknownTrigger(Some(c.name))),
            // Outside CI a branch checkout is treated like a push of that branch, so
            // release.on applies; `--manual` says otherwise.
            None if branch.is_some() => TriggerKind::BranchPush,
            None if !flags.tags.is_empty() => TriggerKind::Tag,
            // A detached HEAD in a CI forge-pack does not know: guessing `manual` would skip
            // release.on and the branch rules.
            None => return Err(SourceError::UnknownTrigger(None)),
        },
    };
    let trigger_tag = match kind {
        TriggerKind::Tag => {
            ci_tag.or_else(|| flags.tags.first().cloned()).or_else(|| tags.first().cloned())
        }
        _ => None,
    };
    let branch_verified = match &branch {
        Some(branch) => provenance::verify_branch(project_dir, &commit, branch, ci)?.is_some(),
        None => false,
    };
    let trigger = Trigger {
        branch_verified,
        actor: ci.and_then(|c| c.actor.clone()),
        run_url: ci.and_then(|c| c.run_url.clone()),
        ..Trigger::new(kind, branch.clone(), trigger_tag)
    };
    let repository_url = flags
        .source_url
        .clone()
        .or_else(|| config_url.map(str::to_owned))
        .or_else(|| ci.and_then(|c| c.url.clone()))
        .or_else(|| head.as_ref().and_then(|h| h.remote_url.clone()))
        .map(|u| git::strip_credentials(&u));
    let commit_time_text =
        timefmt::rfc3339(commit_time).ok_or(SourceError::TimeOutOfRange(commit_time))?;
    Ok(ReleaseContext {
        source: SourceInfo {
            repository_url,
            commit: commit.clone(),
            author,
            committer,
            commit_time: commit_time_text,
            message,
            branch: branch.clone(),
            tags,
            files: Vec::new(),
        },
        commit_time,
        trigger,
        is_checkout_head: head.is_some(),
    })
}

fn unknown_person() -> Person {
    Person { name: "unknown".into(), email: String::new() }
}

fn parse_time(text: &str) -> Result<i64, SourceError> {
    text.parse::<i64>()
        .ok()
        .or_else(|| timefmt::parse_rfc3339(text))
        .ok_or_else(|| SourceError::BadTime(text.to_owned()))
}

fn parse_person(text: &str) -> Result<Person, SourceError> {
    match text.trim_end().strip_suffix('>').and_then(|t| t.rsplit_once('<')) {
        Some((name, email)) => {
            Ok(Person { name: name.trim().to_owned(), email: email.trim().to_owned() })
        }
        None => Err(SourceError::BadPerson(text.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_and_times_parse_or_fail_clearly() {
        assert_eq!(
            parse_person("Ada Lovelace <ada@example.com>").ok(),
            Some(Person { name: "Ada Lovelace".into(), email: "ada@example.com".into() })
        );
        assert!(parse_person("ada").is_err());
        assert_eq!(parse_time("1700000000").ok(), Some(1_700_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z").ok(), Some(1_700_000_000));
        assert!(parse_time("yesterday").is_err());
    }
}
