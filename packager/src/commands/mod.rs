//! One module per command. Each takes parsed arguments and returns an exit code.

pub mod build;
pub mod completions;
pub mod deploy;
pub mod deploy_flow;
pub mod diff;
pub mod inspect;
pub mod list;
pub mod pull;
pub mod push;
pub mod release_flow;
pub mod render;
pub mod rollback;
pub mod status;

use std::path::Path;

use crate::artifacts::ArtifactSet;
use crate::cli::{ArtifactArgs, Cli, Command};
use crate::config::ProjectConfig;
use crate::error::Error;
use crate::output::Output;
use crate::render::{JsonnetInputs, RenderedSet};

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<u8, Error> {
    let output = Output::new(&cli.global);
    match cli.command {
        Command::Render(args) => render::run(&args, &cli.global, &output).await,
        Command::Build(args) => build::run(&args, &cli.global, &output).await,
        Command::Push(args) => push::run(&args, &cli.global, &output).await,
        Command::Inspect(args) => inspect::run(&args, &cli.global, &output).await,
        Command::List(args) => list::run(&args, &cli.global, &output).await,
        Command::Pull(args) => pull::run(&args, &cli.global, &output).await,
        Command::Diff(args) => diff::run(&args, &cli.global, &output).await,
        Command::Deploy(args) => deploy::run(&args, &cli.global, &output).await,
        Command::Rollback(args) => rollback::run(&args, &cli.global, &output).await,
        Command::Status(args) => status::run(&args, &output),
        Command::Completions(args) => completions::run(&args),
    }
}

/// Loads the artifact sources and renders the project's templates; `commit` is what
/// `forge.commit` says in Jsonnet.
pub fn render_project(
    project_dir: &Path,
    config: &ProjectConfig,
    inputs: &ArtifactArgs,
    commit: Option<&str>,
) -> Result<RenderedSet, Error> {
    let artifacts = ArtifactSet::load(&inputs.files, &inputs.values)?;
    let jsonnet = JsonnetInputs {
        library_paths: config.library_paths.iter().map(|p| project_dir.join(p)).collect(),
        ext_str: inputs.ext_str.clone(),
        ext_code: inputs.ext_code.clone(),
        tla_str: inputs.tla_str.clone(),
        tla_code: inputs.tla_code.clone(),
        artifacts: Default::default(),
        project: config.project.clone(),
        commit: commit.unwrap_or_default().to_owned(),
    };
    crate::render::render_dir(project_dir, &config.templates_dir(project_dir), artifacts, &jsonnet)
}

/// `--resolve-digests` then `--require-digests` on the rendered files.
pub async fn check_images(
    files: &mut [forge_release::objects::ResourceFile],
    inputs: &ArtifactArgs,
    access: &crate::access::Access,
    output: &Output,
) -> Result<(), Error> {
    if inputs.resolve_digests {
        let pinned = crate::digests::pin_images(files, access).await?;
        output.note(&format!(
            "pinned {pinned} image{} by digest",
            if pinned == 1 { "" } else { "s" }
        ));
    }
    if inputs.require_digests {
        crate::digests::require_pinned(files)?;
    }
    Ok(())
}
