//! One module per command. Each takes parsed arguments and returns an exit code.

pub mod build;
pub mod completions;
pub mod diff;
pub mod inspect;
pub mod list;
pub mod pull;
pub mod push;
pub mod release_flow;
pub mod render;

use std::path::Path;

use crate::artifacts::ArtifactSet;
use crate::cli::{ArtifactArgs, Cli, Command};
use crate::config::ProjectConfig;
use crate::error::Error;
use crate::output::Output;
use crate::render::RenderedSet;

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<u8, Error> {
    let output = Output::new(&cli.global);
    match cli.command {
        Command::Render(args) => render::run(&args, &output),
        Command::Build(args) => build::run(&args, &cli.global, &output).await,
        Command::Push(args) => push::run(&args, &cli.global, &output).await,
        Command::Inspect(args) => inspect::run(&args, &cli.global, &output).await,
        Command::List(args) => list::run(&args, &cli.global, &output).await,
        Command::Pull(args) => pull::run(&args, &cli.global, &output).await,
        Command::Diff(args) => diff::run(&args, &cli.global, &output).await,
        Command::Completions(args) => completions::run(&args),
    }
}

/// Loads `forge.yaml` and the artifact sources, and renders the project's templates.
pub fn render_project(
    project_dir: &Path,
    artifacts: &ArtifactArgs,
) -> Result<(ProjectConfig, RenderedSet), Error> {
    let config = ProjectConfig::load(project_dir)?;
    let artifacts = ArtifactSet::load(&artifacts.files, &artifacts.values)?;
    let rendered =
        crate::render::render_dir(project_dir, &config.templates_dir(project_dir), &artifacts)?;
    Ok((config, rendered))
}

/// Maps a failed write to stdout; a closed pipe (`| head`) is not an error.
pub fn stdout_result(result: std::io::Result<()>) -> Result<(), Error> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::new(crate::error::exit::STORE, format!("writing to stdout: {e}"))),
        Ok(()) => Ok(()),
    }
}
