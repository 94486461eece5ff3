//! The release's source context: commit, people, branch, tags and trigger, from flags, then
//! CI variables (GitHub Actions, GitLab CI), then the git checkout.

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
            _ => return None,
        };
        Some(hint.to_owned())
    }
}

/// What CI variables say, if running in a known CI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CiContext {
    /// Which CI.
    pub name: &'static str,
    /// Commit SHA.
    pub commit: Option<String>,
    /// Branch, for branch pipelines.
    pub branch: Option<String>,
    /// Tag, for tag pipelines.
    pub tag: Option<String>,
    /// Whether the pipeline was started by hand.
    pub manual: bool,
    /// Repository URL.
    pub url: Option<String>,
}

/// Reads GitHub Actions or GitLab CI variables through `var`.
pub fn ci_context(var: impl Fn(&str) -> Option<String>) -> Option<CiContext> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    if set("GITHUB_ACTIONS").as_deref() == Some("true") {
        let ref_name = set("GITHUB_REF_NAME");
        let is_tag = set("GITHUB_REF_TYPE").as_deref() == Some("tag");
        let url = match (set("GITHUB_SERVER_URL"), set("GITHUB_REPOSITORY")) {
            (Some(server), Some(repo)) => Some(format!("{server}/{repo}")),
            _ => None,
        };
        return Some(CiContext {
            name: "GitHub Actions",
            commit: set("GITHUB_SHA"),
            // Pull requests build a merge ref; the head branch is the meaningful one.
            branch: if is_tag { None } else { set("GITHUB_HEAD_REF").or(ref_name.clone()) },
            tag: if is_tag { ref_name } else { None },
            manual: set("GITHUB_EVENT_NAME").as_deref() == Some("workflow_dispatch"),
            url,
        });
    }
    if set("GITLAB_CI").as_deref() == Some("true") {
        return Some(CiContext {
            name: "GitLab CI",
            commit: set("CI_COMMIT_SHA"),
            branch: set("CI_COMMIT_BRANCH").or_else(|| set("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME")),
            tag: set("CI_COMMIT_TAG"),
            manual: matches!(set("CI_PIPELINE_SOURCE").as_deref(), Some("web" | "api" | "trigger")),
            url: set("CI_PROJECT_URL"),
        });
    }
    None
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
        None => match ci {
            Some(c) if c.manual => TriggerKind::Manual,
            Some(c) if c.tag.is_some() => TriggerKind::Tag,
            Some(_) => TriggerKind::BranchPush,
            // Outside CI a branch checkout is treated like a push of that branch, so
            // release.on applies; `--manual` says otherwise.
            None if branch.is_some() => TriggerKind::BranchPush,
            None => TriggerKind::Manual,
        },
    };
    let trigger_tag = match kind {
        TriggerKind::Tag => ci_tag.or_else(|| tags.first().cloned()),
        _ => None,
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
        trigger: Trigger { kind, branch, tag: trigger_tag },
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
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn github_tag_and_branch_pipelines() {
        let tag = ci_context(env(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SHA", "abc"),
            ("GITHUB_REF_TYPE", "tag"),
            ("GITHUB_REF_NAME", "auth/v1.2.3"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "company/monorepo"),
        ]))
        .expect("github");
        assert_eq!(tag.tag.as_deref(), Some("auth/v1.2.3"));
        assert_eq!(tag.branch, None);
        assert_eq!(tag.url.as_deref(), Some("https://github.com/company/monorepo"));
        let manual = ci_context(env(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REF_TYPE", "branch"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_EVENT_NAME", "workflow_dispatch"),
        ]))
        .expect("github");
        assert!(manual.manual);
        assert_eq!(manual.branch.as_deref(), Some("main"));
    }

    #[test]
    fn gitlab_pipelines_and_no_ci() {
        let ci = ci_context(env(&[
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_BRANCH", "release/2"),
            ("CI_PIPELINE_SOURCE", "push"),
        ]))
        .expect("gitlab");
        assert_eq!((ci.branch.as_deref(), ci.manual), (Some("release/2"), false));
        assert_eq!(ci_context(env(&[])), None);
    }

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
