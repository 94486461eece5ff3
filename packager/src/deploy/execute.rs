//! Carrying out a plan in the GitOps checkout: gather the facts, write the pointer, commit,
//! push, report.

use std::collections::BTreeSet;

use forge_release::pointer::ReleasePointer;
use serde::Serialize;

use super::plan::{Facts, Plan, plan};
use super::{Action, Chosen, actor, check_segment};
use crate::cli::PointerChangeArgs;
use crate::error::{Error, exit};
use crate::gitops::{GitopsError, GitopsRepo, PushOutcome};
use crate::output::{Output, table};
use crate::policy::Policy;

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
        return Err(GitopsError::Uncommitted { rel, root: repo.root().to_owned() }.into());
    }
    let mut deployed_in = BTreeSet::new();
    for required in &rules.requires {
        if has_run(repo, required, project, &next)? {
            deployed_in.insert(required.clone());
        }
    }
    let user = repo.git_user()?;
    let actor = actor(change.actor.as_deref(), |k| std::env::var(k).ok(), user.name.clone())
        .ok_or(GitopsError::UnknownActor)?;
    let facts = Facts {
        action,
        env,
        rel: &rel,
        chosen,
        current,
        rules,
        deployed_in: &deployed_in,
        approved_by: change.approved_by.as_deref(),
        actor: &actor,
    };
    let (pointer, message) = match plan(&facts)? {
        Plan::Unchanged => {
            let headline =
                format!("{project} in {env} already runs {}; nothing to do", chosen.describe());
            return print_report(&report, &headline, current, output);
        }
        Plan::Change { pointer, message } => (pointer, message),
    };
    let description = chosen.describe();
    repo.write_pointer(&rel, &pointer)?;
    let previous_bytes = current_file.as_ref().map(|f| f.bytes.as_slice());
    let sha = repo.commit_file(&rel, previous_bytes, &message, &user, &actor)?;
    report.changed = true;
    report.git_commit = Some(sha.clone());
    if change.push {
        match repo.push()? {
            PushOutcome::Pushed { target } => report.pushed_to = Some(target),
            PushOutcome::Rejected { target } => {
                return Err(GitopsError::PushRejected {
                    what: format!("{project} {description} to {env}"),
                    sha,
                    target,
                    root: repo.root().to_owned(),
                }
                .into());
            }
        }
    }
    let headline = match action {
        Action::Deploy => format!("Deployed {project} {description} to {env}"),
        Action::Rollback => format!("Rolled back {project} in {env} to {description}"),
    };
    print_report(&report, &headline, current, output)
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
