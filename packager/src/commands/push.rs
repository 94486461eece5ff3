//! `forge-pack push`: render, package and publish a release to the configured registry (or
//! layout store), if `release.on` admits the git/CI context.

use forge_release::metadata::TriggerKind;

use crate::access::Access;
use crate::cli::{GlobalArgs, PushArgs};
use crate::commands::release::{self, ReleaseReport};
use crate::config::ProjectConfig;
use crate::context::ReleaseContext;
use crate::error::{Error, exit};
use crate::output::Output;

/// Runs `push`.
pub async fn run(push: &PushArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    let args = &push.release;
    // A key that cannot sign is found before anything is published.
    let signing = match &push.signing.sign_key {
        Some(key) => Some(release::Signing {
            signer: crate::signing::load_signer(key)?,
            forms: push.signing.signature_format.forms(),
            artifact_files: crate::attestation::artifact_files(&args.artifacts.files)?,
        }),
        None => None,
    };
    let access = Access::from_args(global)?;
    let (config, ctx) = release::context(args, release::Purpose::Push)?;
    // Rendered first, so a push that is not released still reports broken templates.
    let prepared = release::prepare(args, config, ctx, &access, output).await?;
    if let Err(reason) = release_allowed(&prepared.config, &prepared.context) {
        return declined(output, &reason);
    }
    let root = access.default_root(prepared.config.registry.as_deref())?;
    release::publish(prepared, root, &access, output, global.timeout, signing.as_ref()).await
}

fn declined(output: &Output, reason: &str) -> Result<u8, Error> {
    if output.json() {
        let report = ReleaseReport {
            released: false,
            reason: Some(reason.to_owned()),
            id: None,
            number: None,
            digest: None,
            reference: None,
            existed: false,
            tags_added: Vec::new(),
            bytes_uploaded: 0,
            objects: 0,
            warnings: Vec::new(),
            signed_by: None,
        };
        output.print_json(&report)?;
    }
    output.note(&format!("not releasing: {reason} (pass --manual to release anyway)"));
    Ok(exit::OK)
}

/// Whether forge.yaml's `release:` admits this context: releases on (`enabled`), and
/// `release.on` naming the trigger. A manual release is always admitted; a pull request only
/// where `pull_request: true` is listed, even when `release.on` is empty.
pub fn release_allowed(config: &ProjectConfig, ctx: &ReleaseContext) -> Result<(), String> {
    use crate::config::ReleaseOn;
    if !config.release.enabled {
        return Err("releases are turned off (release.enabled: false in forge.yaml)".into());
    }
    let rules = &config.release.on;
    match ctx.trigger.kind {
        TriggerKind::Manual => Ok(()),
        TriggerKind::PullRequest
            if rules.iter().any(|r| matches!(r, ReleaseOn::PullRequest(true))) =>
        {
            Ok(())
        }
        TriggerKind::PullRequest => {
            Err("pull request builds release only where release.on lists `- pull_request: true`"
                .into())
        }
        _ if rules.is_empty() => Ok(()),
        TriggerKind::Tag if rules.iter().any(|r| matches!(r, ReleaseOn::Tag(true))) => Ok(()),
        TriggerKind::Tag => Err("release.on does not release tags (add `- tag: true`)".into()),
        TriggerKind::BranchPush => {
            let branch = ctx.trigger.branch.as_deref().unwrap_or_default();
            let patterns: Vec<&str> = rules
                .iter()
                .filter_map(|r| if let ReleaseOn::Branch(p) = r { Some(p.as_str()) } else { None })
                .collect();
            if patterns.iter().any(|p| crate::config::branch_matches(p, branch)) {
                Ok(())
            } else if branch.is_empty() {
                Err("the branch is unknown (detached HEAD outside CI); pass --branch".into())
            } else {
                Err(format!(
                    "branch `{branch}` matches no release.on branch pattern ({}; whole names)",
                    patterns.join(", ")
                ))
            }
        }
    }
}
