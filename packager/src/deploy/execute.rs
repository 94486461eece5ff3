//! Carrying out a plan in the GitOps checkout: gather the facts, write the pointer, commit,
//! push, report.

use std::collections::BTreeSet;

use forge_release::pointer::ReleasePointer;
use serde::Serialize;

use super::plan::{Facts, Plan, plan};
use super::{Action, Chosen, actor, check_segment};
use crate::approvals;
use crate::cli::PointerChangeArgs;
use crate::error::{Error, exit};
use crate::gitops::{GitopsError, GitopsRepo, PushOutcome};
use crate::output::{Output, table};
use crate::policy::Policy;
use crate::policy::same_person;

/// The result, as printed with `--output json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeReport {
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
pub struct PointerSummary {
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

/// How many times a push that the remote rejects (it moved on) is tried again.
const PUSH_ATTEMPTS: usize = 5;

/// Moves `env`'s pointer for the chosen release's project, if the policy allows it: one
/// writer at a time in the checkout; a push the remote rejects catches up with it (fetch,
/// rebase), checks the policy again against the new history, and pushes again.
pub fn apply(
    repo: &GitopsRepo,
    env: &str,
    chosen: &Chosen,
    action: Action,
    change: &PointerChangeArgs,
    output: &Output,
) -> Result<u8, Error> {
    let done = apply_quietly(repo, env, chosen, action, change, output)?;
    print_report(&done.report, &done.headline, done.previous.as_ref(), output)
}

/// [`apply`], returning what it did instead of printing it.
pub fn apply_quietly(
    repo: &GitopsRepo,
    env: &str,
    chosen: &Chosen,
    action: Action,
    change: &PointerChangeArgs,
    output: &Output,
) -> Result<Done, Error> {
    check_segment("environment", env)?;
    let _lock = repo.lock()?;
    for attempt in 1..=PUSH_ATTEMPTS {
        let mut done = change_pointer(repo, env, chosen, action, change)?;
        let (Some(committed), true) = (&done.committed, change.push) else {
            return Ok(done);
        };
        match repo.push()? {
            PushOutcome::Pushed { target } => {
                done.report.pushed_to = Some(target);
                return Ok(done);
            }
            PushOutcome::Rejected { target } if attempt < PUSH_ATTEMPTS => {
                output.note(&format!(
                    "{target} moved on: catching up and checking the policy again ({attempt} of {})",
                    PUSH_ATTEMPTS - 1
                ));
                repo.uncommit(&committed.sha, &done.report.pointer, committed.previous.as_deref())?;
                repo.catch_up()?;
            }
            PushOutcome::Rejected { target } => {
                return Err(GitopsError::PushRejected {
                    what: format!("{} {} to {env}", chosen.project(), chosen.describe()),
                    sha: committed.sha.clone(),
                    target,
                    root: repo.root().to_owned(),
                }
                .into());
            }
        }
    }
    unreachable!("the last attempt returns")
}

/// What a deploy did.
#[derive(Debug)]
pub struct Done {
    /// What `--output json` prints.
    pub report: ChangeReport,
    /// What it says first.
    pub headline: String,
    previous: Option<ReleasePointer>,
    committed: Option<Committed>,
}

impl Done {
    /// Whether it moved the pointer (else the environment ran the release already).
    pub fn changed(&self) -> bool {
        self.report.changed
    }
}

/// A commit this deploy made, and the pointer file as it was before it.
#[derive(Debug)]
struct Committed {
    sha: String,
    previous: Option<Vec<u8>>,
}

/// Plans against the checkout as it is (policy, pointers, history) and, if the plan changes
/// the pointer, writes and commits it.
fn change_pointer(
    repo: &GitopsRepo,
    env: &str,
    chosen: &Chosen,
    action: Action,
    change: &PointerChangeArgs,
) -> Result<Done, Error> {
    let project = chosen.project();
    let repository = &chosen.metadata.release.repository;
    let rel = repo.pointer_path(env, repository, project);
    let policy = Policy::load_committed(repo)?;
    let rules = policy.environment(env)?;
    let current_file = repo.read_pointer_file(&rel)?;
    let current = current_file.as_ref().map(|f| &f.pointer);
    let next = chosen.pointer();
    let report = ChangeReport {
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
    // Two repositories' projects of one name must not silently take each other's place.
    let name = format!("{repository}/{project}");
    if let Some(current) = current
        && !change.replace
        && match current.identity() {
            // Recorded by a deploy: the releases' own identities.
            Some(identity) => identity != name,
            // Written by hand or by an earlier forge-pack: the image path says what it can.
            None => {
                current.spec.image != name && !current.spec.image.ends_with(&format!("/{name}"))
            }
        }
    {
        return Err(GitopsError::OtherRepository {
            rel,
            existing: current.spec.image.clone(),
            new: name,
        }
        .into());
    }
    let mut deployed_in = BTreeSet::new();
    for required in &rules.requires {
        if has_run(repo, required, repository, project, &next)? {
            deployed_in.insert(required.clone());
        }
    }
    let user = repo.git_user()?;
    let actor = actor(change.actor.as_deref(), |k| std::env::var(k).ok(), user.name.clone())
        .ok_or(GitopsError::UnknownActor)?;
    let mut names: Vec<String> = [Some(actor.clone()), user.name.clone(), user.email.clone()]
        .into_iter()
        .flatten()
        .collect();
    let (approvals, deployer_keys, deployer_signed) = match &rules.approval {
        Some(_) => {
            let signers = approvals::AllowedSigners::committed(repo, policy.allowed_signers())?;
            let found =
                approvals::found(repo, env, repository, project, &chosen.digest, signers.as_ref())?;
            let key = match &change.key {
                Some(key) => Some(key.clone()),
                None => repo.git_config("user.signingkey")?.map(Into::into),
            };
            let deployer = match (key, &signers) {
                (Some(key), Some(signers)) => {
                    let message = format!("deploy {} to {env} by {actor}\n", chosen.digest);
                    let deployer =
                        approvals::identify(&key, message.as_bytes(), signers).map_err(|why| {
                            approvals::ApprovalError::Missing(format!(
                                "cannot tell who deploys by their key: {why}"
                            ))
                        })?;
                    Some(deployer)
                }
                _ => None,
            };
            if let Some(deployer) = &deployer {
                names.extend(deployer.principals.iter().cloned());
            }
            let mut keys = signers
                .map(|s| s.keys_of(|p| names.iter().any(|d| same_person(d, p))))
                .unwrap_or_default();
            let signed = deployer.is_some();
            keys.extend(deployer.map(|d| d.key));
            (found, keys, signed)
        }
        None => (Vec::new(), Vec::new(), false),
    };
    let deployers: Vec<&str> = names.iter().map(String::as_str).collect();
    let signed = if rules.signed_by.is_empty() {
        None
    } else {
        Some(super::signed_facts(repo, chosen, &rules.signed_by)?)
    };
    let facts = Facts {
        action,
        env,
        rel: &rel,
        chosen,
        current,
        rules,
        deployed_in: &deployed_in,
        approvals: &approvals,
        actor: &actor,
        deployers: &deployers,
        deployer_keys: &deployer_keys,
        deployer_signed,
        signed: signed.as_ref(),
    };
    let previous = current.cloned();
    let (pointer, message) = match plan(&facts)? {
        Plan::Unchanged => {
            let headline =
                format!("{project} in {env} already runs {}; nothing to do", chosen.describe());
            return Ok(Done { report, headline, previous, committed: None });
        }
        Plan::Change { pointer, message } => (pointer, message),
    };
    let description = chosen.describe();
    repo.write_pointer(&rel, &pointer)?;
    let previous_bytes = current_file.map(|f| f.bytes);
    let sha = repo.commit_file(&rel, previous_bytes.as_deref(), &message, &user, &actor)?;
    let headline = match action {
        Action::Deploy => format!("Deployed {project} {description} to {env}"),
        Action::Rollback => format!("Rolled back {project} in {env} to {description}"),
    };
    let report = ChangeReport { changed: true, git_commit: Some(sha.clone()), ..report };
    Ok(Done {
        report,
        headline,
        previous,
        committed: Some(Committed { sha, previous: previous_bytes }),
    })
}

/// Whether `env` runs `release` now or ran it at some point of the GitOps history: committed
/// pointers only (an uncommitted or untracked file is nobody's deploy).
fn has_run(
    repo: &GitopsRepo,
    env: &str,
    repository: &str,
    project: &str,
    release: &ReleasePointer,
) -> Result<bool, Error> {
    let rel = repo.pointer_path(env, repository, project);
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
