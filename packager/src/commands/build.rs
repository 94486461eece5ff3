//! `forge-pack build`: render, package and store a release in a local OCI layout store.

use std::path::Path;

use forge_release::metadata::{ToolInfo, TriggerKind};
use forge_release::package::ReleaseInput;
use forge_release::publish::{self, Published};
use forge_release::reference::{ProjectLocation, StoreRoot};
use serde::Serialize;

use crate::cli::{BuildArgs, GlobalArgs};
use crate::commands::{render_project, stdout_result};
use crate::config::{self, ProjectConfig};
use crate::context::{self, ReleaseContext};
use crate::error::{Error, exit};
use crate::git;
use crate::output::{Output, table};
use crate::stores;

/// The result of `build`, as printed with `--output json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildReport {
    /// Canonical release id.
    pub id: String,
    /// Release number.
    pub number: u64,
    /// Manifest digest.
    pub digest: String,
    /// Reference to the release by commit.
    pub reference: String,
    /// Whether the release already existed with the same content.
    pub existed: bool,
    /// Tags this run added.
    pub tags_added: Vec<String>,
    /// Objects in the release.
    pub objects: usize,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// Runs `build`.
pub async fn run(args: &BuildArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    let project_dir = &args.project.project_dir;
    let (config, files) = render_project(project_dir)?;
    let ci = context::ci_context(|name| std::env::var(name).ok());
    let ctx =
        context::resolve(project_dir, &args.source, ci.as_ref(), config.source_url.as_deref())?;
    check_clean(project_dir, &config, &ctx, args.allow_dirty)?;
    let root = stores::default_root(global.registry.as_deref(), config.registry.as_deref())?;
    if let StoreRoot::Registry(host) = &root {
        return Err(Error::input(format!(
            "build stores releases locally, but the configured store is the registry `{host}`"
        ))
        .with_hint("pass --registry oci:<dir> to build into a layout directory"));
    }
    let location =
        ProjectLocation::InRoot { root, path: format!("{}/{}", config.repository, config.project) };
    let store = stores::open(&location)?;
    let objects = files.len();
    let input = ReleaseInput {
        repository: config.repository.clone(),
        project: config.project.clone(),
        number: 0,
        aliases: Vec::new(),
        trigger: ctx.trigger.clone(),
        source: ctx.source.clone(),
        commit_time: ctx.commit_time,
        artifacts: Vec::new(),
        files,
        tool: ToolInfo { name: "forge-pack".into(), version: forge_release::VERSION.into() },
    };
    let published = publish::publish(&store, input, config.tag_strategy).await?;
    let report = report(&config, &location, &published, objects);
    for warning in &report.warnings {
        output.warn(warning);
    }
    if output.json() {
        stdout_result(output.print_json(&report))?;
    } else {
        output.note(&summary(&report, &ctx));
        let rows = vec![
            vec!["release".into(), report.id.clone()],
            vec!["number".into(), report.number.to_string()],
            vec!["digest".into(), report.digest.clone()],
            vec!["reference".into(), report.reference.clone()],
        ];
        stdout_result(output.print(&table(&rows)))?;
    }
    Ok(exit::OK)
}

fn report(
    config: &ProjectConfig,
    location: &ProjectLocation,
    published: &Published,
    objects: usize,
) -> BuildReport {
    BuildReport {
        id: format!("{}/{}/{}", config.repository, config.project, published.commit),
        number: published.number,
        digest: published.digest.to_string(),
        reference: format!("{location}:{}", published.commit),
        existed: published.existed,
        tags_added: published.tags_added.clone(),
        objects,
        warnings: published.warnings.clone(),
    }
}

fn summary(report: &BuildReport, ctx: &ReleaseContext) -> String {
    let trigger = match ctx.trigger.kind {
        TriggerKind::BranchPush => "branch push",
        TriggerKind::Tag => "tag",
        TriggerKind::Manual => "manual",
    };
    if report.existed {
        let added = if report.tags_added.is_empty() {
            String::new()
        } else {
            format!("; added aliases {}", report.tags_added.join(", "))
        };
        format!("release {} already exists with the same content (unchanged{added})", report.number)
    } else {
        format!(
            "built release {} ({} objects, {trigger}), tags: {}",
            report.number,
            report.objects,
            report.tags_added.join(", ")
        )
    }
}

/// A release claims to be a commit; uncommitted template changes would make that a lie.
fn check_clean(
    dir: &Path,
    config: &ProjectConfig,
    ctx: &ReleaseContext,
    allow_dirty: bool,
) -> Result<(), Error> {
    let head = git::read_head(dir)?;
    if head.as_ref().is_none_or(|h| h.sha != ctx.source.commit) {
        return Ok(());
    }
    let config_file = Path::new(config::FILE_NAME);
    if !git::is_dirty(dir, &[config.templates.as_path(), config_file])? {
        return Ok(());
    }
    if allow_dirty {
        return Ok(());
    }
    Err(Error::input(format!(
        "{} has uncommitted changes to {} or {}: the release would not match commit {}",
        dir.display(),
        config.templates.display(),
        config::FILE_NAME,
        &ctx.source.commit[..12]
    ))
    .with_hint("commit the changes, or pass --allow-dirty for a local experiment"))
}
