//! One module per command. Each takes parsed arguments and returns an exit code.

pub mod approve;
pub mod build;
pub mod completions;
pub mod copy;
pub mod deploy;
pub mod diff;
pub mod inspect;
pub mod list;
pub mod login;
pub mod pull;
pub mod push;
pub mod release;
pub mod render;
pub mod rollback;
pub mod sign;
pub mod status;
pub mod transfer;
pub mod verify;

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::output::Output;

/// Runs the parsed command line, within its deadline (`--timeout`).
pub async fn run(cli: Cli) -> Result<u8, Error> {
    let deadline = cli.global.timeout;
    tokio::time::timeout(deadline, run_command(cli))
        .await
        .unwrap_or(Err(Error::Deadline { seconds: deadline.as_secs() }))
}

async fn run_command(cli: Cli) -> Result<u8, Error> {
    let output = Output::new(&cli.global);
    match cli.command {
        Command::Render(args) => render::run(&args, &cli.global, &output).await,
        Command::Build(args) => build::run(&args, &cli.global, &output).await,
        Command::Push(args) => push::run(&args, &cli.global, &output).await,
        Command::Inspect(args) => inspect::run(&args, &cli.global, &output).await,
        Command::List(args) => list::run(&args, &cli.global, &output).await,
        Command::Pull(args) => pull::run(&args, &cli.global, &output).await,
        Command::Copy(args) => copy::run(&args, &cli.global, &output).await,
        Command::Export(args) => transfer::export(&args, &cli.global, &output).await,
        Command::Import(args) => transfer::import(&args, &cli.global, &output).await,
        Command::Diff(args) => diff::run(&args, &cli.global, &output).await,
        Command::Deploy(args) => deploy::run(&args, &cli.global, &output).await,
        Command::Rollback(args) => rollback::run(&args, &cli.global, &output).await,
        Command::Approve(args) => approve::run(&args, &cli.global, &output).await,
        Command::Status(args) => status::run(&args, &output),
        Command::Login(args) => login::login(&args, &cli.global, &output).await,
        Command::Logout(args) => login::logout(&args, &output),
        Command::Sign(args) => sign::run(&args, &cli.global, &output).await,
        Command::Verify(args) => verify::run(&args, &cli.global, &output).await,
        Command::Completion(args) => completions::run(&args),
    }
}

/// The image checks `inputs` asks for (see [`crate::render::digests::check_images`]), saying
/// how many images were pinned.
pub async fn check_images(
    objects: &mut [crate::render::RenderedObject],
    inputs: &crate::cli::ArtifactArgs,
    access: &crate::access::Access,
    output: &Output,
) -> Result<(), Error> {
    let pinned = crate::render::digests::check_images(objects, inputs, access).await?;
    if inputs.resolve_digests {
        let plural = if pinned == 1 { "" } else { "s" };
        output.note(&format!("pinned {pinned} image{plural} by digest"));
    }
    Ok(())
}
