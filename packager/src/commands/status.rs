//! `forge-pack status`: which release every environment runs, read from the GitOps checkout
//! alone (pointers and their git history; no registry).

use serde::Serialize;

use crate::cli::StatusArgs;
use crate::error::{Error, exit};
use crate::gitops::{ENVS_DIR, GitopsError, GitopsRepo};
use crate::output::{Output, table};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Deployment {
    environment: String,
    project: String,
    release: Option<u64>,
    aliases: Vec<String>,
    commit: String,
    digest: Option<String>,
    image: String,
    pointer: String,
    /// The GitOps commit that last changed the pointer; none while uncommitted.
    git_commit: Option<String>,
    deployed_at: Option<String>,
    deployed_by: Option<String>,
    /// Who approved that deploy, each with the justification.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    approved_by: Vec<String>,
}

/// Runs `status`.
pub fn run(args: &StatusArgs, output: &Output) -> Result<u8, Error> {
    let repo = GitopsRepo::open(&args.dir.gitops)?;
    let changes = repo.last_changes(ENVS_DIR)?;
    let uncommitted = repo.changed_paths(ENVS_DIR)?;
    let mut deployments = Vec::new();
    for entry in repo.pointer_files()? {
        let (env, rel) = (entry.env.clone(), entry.rel.clone());
        let project = entry.name();
        if args.environment.as_ref().is_some_and(|e| *e != env)
            || args.project.as_ref().is_some_and(|p| *p != project && *p != entry.project)
        {
            continue;
        }
        let Some(pointer) = repo.read_pointer(&rel)? else { continue };
        let change = if uncommitted.contains(&rel) { None } else { changes.get(&rel) };
        deployments.push(Deployment {
            environment: env,
            project,
            release: pointer.spec.release,
            aliases: pointer.aliases(),
            commit: pointer.spec.commit.clone(),
            digest: pointer.spec.digest.as_ref().map(ToString::to_string),
            image: pointer.spec.image.clone(),
            pointer: rel,
            git_commit: change.map(|c| c.git_commit.clone()),
            deployed_at: change.map(|c| c.time.clone()),
            deployed_by: change.map(|c| c.actor.clone()),
            approved_by: change.map(|c| c.approvals.clone()).unwrap_or_default(),
        });
    }
    if deployments.is_empty()
        && let (Some(env), Some(project)) = (&args.environment, &args.project)
    {
        return Err(GitopsError::NotDeployed {
            project: project.clone(),
            env: env.clone(),
            rel: None,
        }
        .into());
    }
    if output.json() {
        output.print_json(&deployments)?;
        return Ok(exit::OK);
    }
    if deployments.is_empty() {
        output.note(&format!("nothing deployed under {}/{ENVS_DIR}", repo.root().display()));
        return Ok(exit::OK);
    }
    let mut rows = vec![
        ["ENVIRONMENT", "PROJECT", "RELEASE", "ALIASES", "COMMIT", "DEPLOYED", "BY"]
            .map(String::from)
            .to_vec(),
    ];
    for d in &deployments {
        let number = d.release.map_or("-".to_owned(), |n| n.to_string());
        let aliases: Vec<&str> =
            d.aliases.iter().map(String::as_str).filter(|a| *a != number).collect();
        rows.push(vec![
            d.environment.clone(),
            d.project.clone(),
            number,
            if aliases.is_empty() { "-".into() } else { aliases.join(", ") },
            d.commit.chars().take(12).collect(),
            d.deployed_at.clone().unwrap_or_else(|| "uncommitted".into()),
            d.deployed_by.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    output.print(&table(&rows))?;
    for d in deployments.iter().filter(|d| !d.approved_by.is_empty()) {
        output.print(&format!(
            "{} in {} approved by {}\n",
            d.project,
            d.environment,
            d.approved_by.join("; ")
        ))?;
    }
    Ok(exit::OK)
}
