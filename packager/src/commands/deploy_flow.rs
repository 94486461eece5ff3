//! What `deploy` and `rollback` share: check the environment policy, write the pointer, commit
//! with a message that tells the story, optionally push, report.

use std::collections::BTreeSet;

use forge_release::Digest;
use forge_release::metadata::ReleaseMetadata;
use forge_release::pointer::{ReleasePointer, describe_release};
use forge_release::reference::{ProjectLocation, ReleaseSelector};
use serde::Serialize;

use crate::access::Access;
use crate::cli::PointerChangeArgs;
use crate::error::{Error, exit};
use crate::gitops::{GitopsRepo, PushOutcome};
use crate::output::{Output, table};
use crate::policy::{Candidate, Policy, Violation};

/// Which command is moving the pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// `deploy`.
    Deploy,
    /// `rollback`.
    Rollback,
}

/// A release chosen for an environment.
#[derive(Debug)]
pub struct Chosen {
    /// What the pointer's `spec.image` will say.
    pub image: String,
    /// Manifest digest.
    pub digest: Digest,
    /// The release's metadata.
    pub metadata: ReleaseMetadata,
}

impl Chosen {
    /// Resolves `selector` in `location` and reads the release's metadata (not its resources).
    pub async fn fetch(
        access: &Access,
        location: &ProjectLocation,
        image: String,
        selector: ReleaseSelector,
    ) -> Result<Self, Error> {
        let resolved = access.resolve_in(location, selector).await?;
        let head = resolved.store.fetch_head(&resolved.digest).await?;
        check_segment("project", &head.metadata.release.project)?;
        Ok(Chosen { image, digest: resolved.digest, metadata: head.metadata })
    }

    fn project(&self) -> &str {
        &self.metadata.release.project
    }

    fn pointer(&self) -> ReleasePointer {
        let release = &self.metadata.release;
        ReleasePointer::new(
            &release.project,
            &self.image,
            &self.metadata.source.commit,
            self.digest.clone(),
            release.number,
        )
        .with_aliases(&release.aliases)
    }

    /// `release 42 (v1.2.3)`.
    fn describe(&self) -> String {
        let release = &self.metadata.release;
        format!("release {}", describe_release(&release.number.to_string(), &release.aliases))
    }
}

/// Environment and project names become directories in the GitOps repository.
pub fn check_segment(what: &str, name: &str) -> Result<(), Error> {
    let valid = !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(Error::input(format!(
            "{what} name `{name}` cannot be a directory name in the GitOps repository"
        ))
        .with_hint("use letters, digits, `.`, `_` and `-`, not starting with `.`"))
    }
}

/// Who is deploying: `--actor`/FORGE_ACTOR, then the CI user (GitHub Actions, GitLab CI),
/// then git's user.name in the GitOps checkout.
pub fn actor(
    flag: Option<&str>,
    var: impl Fn(&str) -> Option<String>,
    git_user: Option<String>,
) -> Option<String> {
    let set = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    set(flag.map(str::to_owned))
        .or_else(|| set(var("GITHUB_ACTOR")))
        .or_else(|| set(var("GITLAB_USER_LOGIN")))
        .or_else(|| set(git_user))
}

/// The result, as printed with `--output json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ChangeReport {
    action: Action,
    environment: String,
    project: String,
    /// False when the environment already ran this release.
    changed: bool,
    pointer: String,
    release: PointerSummary,
    previous: Option<PointerSummary>,
    git_commit: Option<String>,
    pushed_to: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PointerSummary {
    number: Option<u64>,
    aliases: Vec<String>,
    commit: String,
    digest: Option<String>,
    image: String,
}

impl From<&ReleasePointer> for PointerSummary {
    fn from(p: &ReleasePointer) -> Self {
        PointerSummary {
            number: p.spec.release,
            aliases: p.aliases(),
            commit: p.spec.commit.clone(),
            digest: p.spec.digest.as_ref().map(ToString::to_string),
            image: p.spec.image.clone(),
        }
    }
}

/// Moves `env`'s pointer for the chosen release's project, if the policy allows it.
pub fn apply(
    repo: &GitopsRepo,
    env: &str,
    chosen: &Chosen,
    action: Action,
    change: &PointerChangeArgs,
    output: &Output,
) -> Result<u8, Error> {
    check_segment("environment", env)?;
    let project = chosen.project();
    let rel = GitopsRepo::pointer_path(env, project);
    let policy = Policy::load(&repo.root().join(crate::policy::FILE_NAME))?;
    let rules = policy.environment(env)?;
    let current_file = repo.read_pointer_file(&rel)?;
    let current = current_file.as_ref().map(|f| &f.pointer);
    let next = chosen.pointer();
    let mut report = ChangeReport {
        action,
        environment: env.to_owned(),
        project: project.to_owned(),
        changed: false,
        pointer: rel.clone(),
        release: PointerSummary::from(&next),
        previous: current.map(PointerSummary::from),
        git_commit: None,
        pushed_to: None,
    };
    // A hand edit in progress is neither overwritten nor mistaken for a deploy.
    if repo.is_dirty(&rel)? {
        return Err(Error::input(format!("{rel} has uncommitted changes")).with_hint(format!(
            "commit or discard them first (`git -C {} checkout -- {rel}`)",
            repo.root().display()
        )));
    }
    if let Some(current) = current
        && current.same_release_as(&next)
        && current.spec.image == next.spec.image
    {
        return print_report(
            &report,
            &format!("{project} in {env} already runs {}; nothing to do", chosen.describe()),
            Some(current),
            output,
        );
    }

    let mut deployed_in = BTreeSet::new();
    for required in &rules.requires {
        if has_run(repo, required, project, &next)? {
            deployed_in.insert(required.clone());
        }
    }
    let description = chosen.describe();
    let short = format!("release {}", chosen.metadata.release.number);
    let trigger = &chosen.metadata.release.trigger;
    let branch = trigger.branch.as_deref().or(chosen.metadata.source.branch.as_deref());
    let candidate = Candidate {
        description: &short,
        trigger: trigger.kind,
        branch,
        approved_by: change.approved_by.as_deref(),
        deployed_in: &deployed_in,
    };
    let violations = rules.violations(&candidate);
    if !violations.is_empty() {
        let missing: Vec<&String> =
            rules.requires.iter().filter(|r| !deployed_in.contains(*r)).collect();
        return Err(denial(action, env, &rel, chosen, &violations, &missing));
    }

    let user = repo.git_user()?;
    let actor = actor(change.actor.as_deref(), |k| std::env::var(k).ok(), user.name.clone())
        .ok_or_else(|| {
            Error::input("cannot tell who is deploying")
                .with_hint("pass --actor <name> (or set FORGE_ACTOR, or git config user.name)")
        })?;
    let message = commit_message(env, chosen, action, current, &actor, change);
    repo.write_pointer(&rel, &next)?;
    let previous_bytes = current_file.as_ref().map(|f| f.bytes.as_slice());
    let sha = repo.commit_file(&rel, previous_bytes, &message, &user, &actor)?;
    report.changed = true;
    report.git_commit = Some(sha.clone());
    if change.push {
        match repo.push()? {
            PushOutcome::Pushed { target } => report.pushed_to = Some(target),
            PushOutcome::Rejected { target } => {
                return Err(Error::new(
                    exit::PUSH_REJECTED,
                    format!(
                        "committed {project} {description} to {env} locally as {sha}, but {target} rejected the push: someone else pushed first"
                    ),
                )
                .with_hint(format!(
                    "your commit is kept; run `git -C {} pull --rebase` and push again (the policy is checked only when forge-pack runs)",
                    repo.root().display()
                )));
            }
        }
    }
    let headline = match action {
        Action::Deploy => format!("Deployed {project} {description} to {env}"),
        Action::Rollback => format!("Rolled back {project} in {env} to {description}"),
    };
    print_report(&report, &headline, current, output)
}

/// The error for a denied deploy: every broken rule, and how to satisfy the ones a person can.
fn denial(
    action: Action,
    env: &str,
    rel: &str,
    chosen: &Chosen,
    violations: &[Violation],
    missing_environments: &[&String],
) -> Error {
    let verb = match action {
        Action::Deploy => "deploying",
        Action::Rollback => "rolling back to",
    };
    let (project, description) = (chosen.project(), chosen.describe());
    let mut message = format!("the {env} policy denies {verb} {project} {description} ({rel}):");
    for v in violations {
        message.push_str(&format!("\n  {}: {}", v.rule, v.detail));
    }
    let mut hints = Vec::new();
    if violations.iter().any(|v| v.rule == "requires_approval") {
        hints.push("pass --approved-by <name> once the deploy is approved".to_owned());
    }
    for required in missing_environments {
        hints.push(format!(
            "deploy it to {required} first: forge-pack deploy {required} {project} {}",
            chosen.metadata.release.number
        ));
    }
    let error = Error::new(exit::DENIED, message);
    if hints.is_empty() { error } else { error.with_hint(hints.join("\n")) }
}

/// Whether `env` runs `release` now or ran it at some point of the GitOps history.
fn has_run(
    repo: &GitopsRepo,
    env: &str,
    project: &str,
    release: &ReleasePointer,
) -> Result<bool, Error> {
    let rel = GitopsRepo::pointer_path(env, project);
    if repo.read_pointer(&rel)?.is_some_and(|p| p.same_release_as(release)) {
        return Ok(true);
    }
    Ok(repo.pointer_history(&rel)?.iter().any(|e| e.pointer.same_release_as(release)))
}

fn commit_message(
    env: &str,
    chosen: &Chosen,
    action: Action,
    previous: Option<&ReleasePointer>,
    actor: &str,
    change: &PointerChangeArgs,
) -> String {
    let project = chosen.project();
    let description = chosen.describe();
    let (subject, by) = match action {
        Action::Deploy => (format!("Deploy {project} {description} to {env}"), "Deployed by"),
        Action::Rollback => {
            (format!("Rollback {project} in {env} to {description}"), "Rolled back by")
        }
    };
    let previous = previous.map_or_else(|| "none".to_owned(), ReleasePointer::describe);
    let trigger = &chosen.metadata.release.trigger;
    let mut trigger_text = trigger.kind.as_str().to_owned();
    if let Some(detail) = trigger.tag.as_deref().or(trigger.branch.as_deref()) {
        trigger_text.push_str(&format!(" ({detail})"));
    }
    let mut lines = vec![subject, String::new(), format!("Previous release: {previous}")];
    lines.push(format!("{by}: {actor}"));
    if let Some(approver) = &change.approved_by {
        lines.push(format!("Approved by: {approver}"));
    }
    lines.extend([
        String::new(),
        format!("Project: {project}"),
        format!("Environment: {env}"),
        format!("Release id: {}", chosen.metadata.release.id),
        format!("Commit: {}", chosen.metadata.source.commit),
        format!("Digest: {}", chosen.digest),
        format!("Image: {}", chosen.image),
        format!("Trigger: {trigger_text}"),
    ]);
    lines.join("\n") + "\n"
}

fn print_report(
    report: &ChangeReport,
    headline: &str,
    previous: Option<&ReleasePointer>,
    output: &Output,
) -> Result<u8, Error> {
    if output.json() {
        output.print_json(report)?;
        return Ok(exit::OK);
    }
    let mut rows = vec![vec!["pointer".to_owned(), report.pointer.clone()]];
    if report.changed {
        let previous =
            previous.map_or_else(|| "none".into(), |p| format!("release {}", p.describe()));
        rows.push(vec!["previous".into(), previous]);
    }
    if let Some(sha) = &report.git_commit {
        rows.push(vec!["git commit".into(), sha.clone()]);
    }
    if let Some(target) = &report.pushed_to {
        rows.push(vec!["pushed to".into(), target.clone()]);
    }
    let body: String = table(&rows).lines().map(|l| format!("  {l}\n")).collect();
    output.print(&format!("{headline}\n{body}"))?;
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_actor_comes_from_the_flag_then_ci_then_git() {
        let ci = |k: &str| (k == "GITLAB_USER_LOGIN").then(|| "gitlab-user".to_owned());
        let none = |_: &str| None;
        assert_eq!(actor(Some("alice"), ci, Some("git".into())).as_deref(), Some("alice"));
        assert_eq!(actor(None, ci, Some("git".into())).as_deref(), Some("gitlab-user"));
        assert_eq!(actor(Some(" "), none, Some("git".into())).as_deref(), Some("git"));
        assert_eq!(actor(None, none, None), None);
    }

    #[test]
    fn names_that_are_not_plain_directory_names_are_refused() {
        for good in ["production", "eu-west-1", "auth_service", "v1.2"] {
            assert!(check_segment("environment", good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "../prod", "a/b", ".hidden", "prod env"] {
            assert!(check_segment("environment", bad).is_err(), "{bad}");
        }
    }
}
