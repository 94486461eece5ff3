//! What `build` and `push` share: render, read the source context, package, publish, report.

use std::path::Path;

use forge_release::metadata::{ToolInfo, TriggerKind};
use forge_release::package::{ReleaseInput, ResourcesLayer};
use forge_release::reference::{ProjectLocation, StoreRoot};
use forge_store::publish::{self, Published};
use serde::Serialize;

use crate::access::Access;
use crate::cli::ReleaseArgs;
use crate::commands::render_project;
use crate::config::{self, ProjectConfig};
use crate::context::{self, ReleaseContext};
use crate::error::{Error, exit};
use crate::git;
use crate::output::{Output, table};

/// Where a release goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A local OCI layout store (`build`).
    Local,
    /// The configured store: `--registry`, the project's `registry:`, else embedded (`push`).
    Configured,
}

/// The result, as printed with `--output json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseReport {
    /// Whether a release exists now (false when `release.on` declined).
    pub released: bool,
    /// Why not, when declined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Canonical release id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Release number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<u64>,
    /// Manifest digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Reference to the release by commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Whether the release already existed with the same content.
    pub existed: bool,
    /// Tags this run added.
    pub tags_added: Vec<String>,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
    /// Objects in the release.
    pub objects: usize,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// Renders, packages and publishes the project.
pub async fn run(
    args: &ReleaseArgs,
    access: &Access,
    output: &Output,
    target: Target,
) -> Result<u8, Error> {
    let project_dir = &args.project.project_dir;
    let config = ProjectConfig::load(project_dir)?;
    let ci = context::ci_context(|name| std::env::var(name).ok());
    let mut source = args.source.clone();
    if args.manual {
        source.trigger = Some(crate::cli::TriggerArg::Manual);
    }
    let ctx = context::resolve(project_dir, &source, ci.as_ref(), config.source_url.as_deref())?;
    let rendered = render_project(project_dir, &config, &args.artifacts, Some(&ctx.source.commit))?;
    let mut files = rendered.files;
    crate::commands::check_images(&mut files, &args.artifacts, access, output).await?;
    if target == Target::Configured
        && let Err(reason) = release_allowed(&config, &ctx)
    {
        return declined(output, &reason);
    }
    check_clean(project_dir, &config, &ctx, args.allow_dirty)?;
    let root = match target {
        Target::Configured => access.default_root(config.registry.as_deref())?,
        Target::Local => match access.default_root(None)? {
            StoreRoot::Registry(host) => {
                return Err(Error::input(format!(
                    "build stores releases locally, but --registry names the registry `{host}`"
                ))
                .with_hint("use `forge-pack push` for registries, or --registry oci:<dir>"));
            }
            local => local,
        },
    };
    let location =
        ProjectLocation::InRoot { root, path: format!("{}/{}", config.repository, config.project) };
    let store = access.open(&location)?;
    let objects = files.len();
    output.note(&format!(
        "publishing {objects} objects of {}/{} to {location}",
        config.repository, config.project
    ));
    let input = ReleaseInput {
        repository: config.repository.clone(),
        project: config.project.clone(),
        trigger: ctx.trigger.clone(),
        source: ctx.source.clone(),
        commit_time: ctx.commit_time,
        artifacts: rendered.artifacts,
        resources: ResourcesLayer::build(files, ctx.commit_time)
            .map_err(|e| Error::input(e.to_string()))?,
        tool: ToolInfo { name: "forge-pack".into(), version: forge_release::VERSION.into() },
    };
    let bar = output.bytes_bar("uploading", 0);
    let published =
        publish::publish_with_progress(&store, input, config.tag_strategy, &|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .await;
    bar.finish_and_clear();
    let published = published?;
    let report = report(&config, &location, &published, objects);
    for warning in &report.warnings {
        output.warn(warning);
    }
    if output.json() {
        output.print_json(&report)?;
    } else {
        output.note(&summary(&published, objects, &ctx));
        let rows = vec![
            vec!["release".into(), report.id.clone().unwrap_or_default()],
            vec!["number".into(), published.number.to_string()],
            vec!["digest".into(), published.digest.to_string()],
            vec!["reference".into(), report.reference.clone().unwrap_or_default()],
        ];
        output.print(&table(&rows))?;
    }
    Ok(exit::OK)
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
        };
        output.print_json(&report)?;
    }
    output.note(&format!("not releasing: {reason} (pass --manual to release anyway)"));
    Ok(exit::OK)
}

/// Whether `release.on` in forge.yaml admits this context.
pub fn release_allowed(config: &ProjectConfig, ctx: &ReleaseContext) -> Result<(), String> {
    use crate::config::ReleaseOn;
    let rules = &config.release.on;
    if rules.is_empty() || ctx.trigger.kind == TriggerKind::Manual {
        return Ok(());
    }
    match ctx.trigger.kind {
        TriggerKind::Tag if rules.iter().any(|r| matches!(r, ReleaseOn::Tag(true))) => Ok(()),
        TriggerKind::Tag => Err("release.on does not release tags (add `- tag: true`)".into()),
        _ => {
            let branch = ctx.trigger.branch.as_deref().unwrap_or_default();
            let patterns: Vec<&str> = rules
                .iter()
                .filter_map(|r| if let ReleaseOn::Branch(p) = r { Some(p.as_str()) } else { None })
                .collect();
            let matched = patterns
                .iter()
                .any(|p| regex_lite::Regex::new(p).is_ok_and(|re| re.is_match(branch)));
            if matched {
                Ok(())
            } else if branch.is_empty() {
                Err("the branch is unknown (detached HEAD outside CI); pass --branch".into())
            } else {
                Err(format!(
                    "branch `{branch}` matches no release.on branch pattern ({})",
                    patterns.join(", ")
                ))
            }
        }
    }
}

fn report(
    config: &ProjectConfig,
    location: &ProjectLocation,
    published: &Published,
    objects: usize,
) -> ReleaseReport {
    ReleaseReport {
        released: true,
        reason: None,
        id: Some(format!("{}/{}/{}", config.repository, config.project, published.commit)),
        number: Some(published.number),
        digest: Some(published.digest.to_string()),
        reference: Some(format!("{location}:{}", published.commit)),
        existed: published.existed,
        tags_added: published.tags_added.clone(),
        bytes_uploaded: published.bytes_uploaded,
        objects,
        warnings: published.warnings.clone(),
    }
}

fn summary(published: &Published, objects: usize, ctx: &ReleaseContext) -> String {
    if published.existed {
        let added = if published.tags_added.is_empty() {
            String::new()
        } else {
            format!("; added aliases {}", published.tags_added.join(", "))
        };
        format!(
            "release {} already exists with the same content (unchanged{added})",
            published.number
        )
    } else {
        format!(
            "released {} ({objects} objects, {}), tags: {}",
            published.number,
            ctx.trigger.kind.as_str(),
            published.tags_added.join(", ")
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
    if allow_dirty || !ctx.is_checkout_head {
        return Ok(());
    }
    if !git::is_dirty(dir, &[config.templates.as_path(), Path::new(config::FILE_NAME)])? {
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
