//! What `build` and `push` share: render the project at its commit, check it, package its
//! resources once, publish into a store and report.

use std::path::{Path, PathBuf};

use forge_release::metadata::{SourceFile, ToolInfo};
use forge_release::package::{ReleaseInput, ResourcesLayer};
use forge_release::reference::{ProjectLocation, StoreRoot};
use forge_store::publish::{self, Published};
use serde::Serialize;

use crate::access::Access;
use crate::cli::ReleaseArgs;
use crate::config::{self, ProjectConfig};
use crate::context::{self, ReleaseContext, SourceError};
use crate::error::{Error, exit};
use crate::git;
use crate::output::{Output, table};
use crate::render::{self, Keep, RenderedSet};

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
    /// The key that signed it, when `--sign-key` was given (its fingerprint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
}

/// A key to sign a published release with, and the forms to write.
#[derive(Debug)]
pub struct Signing {
    /// The key.
    pub signer: forge_sign::KeySigner,
    /// The forms.
    pub forms: Vec<forge_store::signatures::SignatureForm>,
    /// The artifact files the release used, with their digests (for its provenance).
    pub artifact_files: Vec<(String, forge_release::Digest)>,
}

/// A project rendered at its commit and packaged, ready to publish.
#[derive(Debug)]
pub struct Prepared {
    /// forge.yaml.
    pub config: ProjectConfig,
    /// The source context.
    pub context: ReleaseContext,
    /// Everything but the number and aliases.
    pub input: ReleaseInput,
}

/// What a release is made for: a push to a store (its trigger decides whether it releases),
/// or a local build (a release by hand when nothing says otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `build`.
    Build,
    /// `push`.
    Push,
}

/// The project's configuration and the release's source context (flags, CI, git).
pub fn context(
    args: &ReleaseArgs,
    purpose: Purpose,
) -> Result<(ProjectConfig, ReleaseContext), Error> {
    let project_dir = &args.project.project_dir;
    let config = ProjectConfig::load(project_dir)?;
    let ci = context::ci_context(|name| std::env::var(name).ok());
    let mut source = args.source.clone();
    if args.manual {
        source.trigger = Some(crate::cli::TriggerArg::Manual);
    }
    let head = crate::git::read_head(project_dir).map_err(context::SourceError::from)?;
    let resolve = |source: &crate::cli::SourceFlags| {
        let (ci, url) = (ci.as_ref(), config.source_url.as_deref());
        context::resolve_with_head(project_dir, source, ci, url, head.clone())
    };
    let ctx = match resolve(&source) {
        // A local build need not say what triggered it: it is made by hand.
        Err(context::SourceError::UnknownTrigger(_)) if purpose == Purpose::Build => {
            source.trigger = Some(crate::cli::TriggerArg::Manual);
            resolve(&source)?
        }
        other => other?,
    };
    Ok((config, ctx))
}

/// Renders the project at the context's commit, checks its images, refuses uncommitted
/// changes, and builds the resources layer.
pub async fn prepare(
    args: &ReleaseArgs,
    config: ProjectConfig,
    ctx: ReleaseContext,
    access: &Access,
    output: &Output,
) -> Result<Prepared, Error> {
    let project_dir = &args.project.project_dir;
    let keep = if args.artifacts.resolve_digests { Keep::Unpinned } else { Keep::None };
    let mut rendered = render::render_project(
        project_dir,
        &config,
        &args.artifacts,
        Some(&ctx.source.commit),
        keep,
        Some(ctx.commit_time),
    )?;
    crate::commands::check_images(&mut rendered.objects, &args.artifacts, access, output).await?;
    check_clean(project_dir, &rendered, &ctx, args.allow_dirty)?;
    let artifacts = std::mem::take(&mut rendered.artifacts);
    let manifests = std::mem::take(&mut rendered.manifests);
    let mut source = ctx.source.clone();
    source.files = rendered
        .inputs
        .iter()
        .map(|(path, blob)| SourceFile { path: path.clone(), blob: blob.clone() })
        .collect();
    let images = crate::images::inventory(&rendered.objects);
    // The layer written while the templates were parsed, if it holds exactly these objects;
    // else written now.
    let early = rendered.early_layer.take().and_then(|layer| layer.finish(&rendered.objects));
    tracing::debug!(
        "the resources layer {}",
        if early.is_some() {
            "was written while the templates were parsed"
        } else {
            "is written now"
        }
    );
    let resources = match early {
        Some(written) => ResourcesLayer::written(
            written.bytes,
            written.info,
            written.objects,
            written.lengths.into_iter(),
        ),
        None => ResourcesLayer::build(rendered.into_files()?, ctx.commit_time),
    }
    .map_err(crate::render::RenderError::from)?;
    let input = ReleaseInput {
        repository: config.repository.clone(),
        project: config.project.clone(),
        trigger: ctx.trigger.clone(),
        source,
        commit_time: ctx.commit_time,
        artifacts,
        manifests,
        resources,
        images,
        tool: ToolInfo { name: "forge-pack".into(), version: env!("CARGO_PKG_VERSION").into() },
    };
    Ok(Prepared { config, context: ctx, input })
}

/// Publishes a prepared release into the project's stream under `root`, and reports it.
pub async fn publish(
    prepared: Prepared,
    root: StoreRoot,
    access: &Access,
    output: &Output,
    lifetime: std::time::Duration,
    signing: Option<&Signing>,
) -> Result<u8, Error> {
    let Prepared { config, context: ctx, input } = prepared;
    let location =
        ProjectLocation::InRoot { root, path: format!("{}/{}", config.repository, config.project) };
    let store = access.open_release(&location)?;
    let objects = input.resources.objects.len();
    output.note(&format!(
        "publishing {objects} objects of {}/{} to {location}",
        config.repository, config.project
    ));
    let bar = output.bytes_bar("uploading", 0);
    let progress = |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    };
    // What this push built, to tell whether a release found already made is the same build.
    let built = (input.source.clone(), input.artifacts.clone());
    // The claims this push makes lapse once it has certainly given up: at its deadline.
    let published =
        publish::publish_with_progress(&store, input, config.tag_strategy, &progress, lifetime)
            .await;
    bar.finish_and_clear();
    let published = published?;
    let mut report = report(&config, &location, &published, objects);
    if let Some(signing) = signing {
        use forge_sign::Signer as _;
        output.note("signing the release");
        let target = crate::signing::Target::read(&store, &published.digest).await?;
        // A release another push made is signed only if it is this build: same source facts
        // (repository, commit, the files read and their blobs) and the same artifacts.
        if published.existed {
            crate::signing::same_build(&target.metadata, &built.0, &built.1, &published.digest)?;
        }
        crate::signing::sign(&store, &target, &signing.signer, &signing.forms).await?;
        let predicate = crate::attestation::predicate(
            &target.metadata,
            &ctx.source,
            &ctx.trigger,
            &signing.artifact_files,
        );
        let predicate_type = forge_sign::bundle::PROVENANCE_PREDICATE;
        crate::signing::attest(&store, &target, &signing.signer, predicate_type, predicate).await?;
        report.signed_by = Some(signing.signer.public_key().fingerprint());
    }
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
        signed_by: None,
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

/// A release claims to be a commit: every file it was rendered from (templates, libraries,
/// imported data, forge.yaml) must be what the commit holds.
fn check_clean(
    dir: &Path,
    rendered: &RenderedSet,
    ctx: &ReleaseContext,
    allow_dirty: bool,
) -> Result<(), Error> {
    if allow_dirty || !ctx.is_checkout_head {
        return Ok(());
    }
    let mut read: Vec<PathBuf> =
        rendered.inputs.iter().map(|(path, _)| rendered.repository.join(path)).collect();
    read.push(dir.join(config::FILE_NAME));
    let files = git::changed(&rendered.repository, &read).map_err(SourceError::from)?;
    if files.is_empty() {
        return Ok(());
    }
    Err(SourceError::Uncommitted {
        dir: dir.to_owned(),
        files,
        commit: ctx.source.commit[..12].to_owned(),
    }
    .into())
}
