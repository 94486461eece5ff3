//! `forge-pack completions <shell>`.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::{Error, exit};

/// Prints completions for the shell to stdout.
pub fn run(args: &CompletionsArgs) -> Result<u8, Error> {
    clap_complete::generate(args.shell, &mut Cli::command(), "forge-pack", &mut std::io::stdout());
    Ok(exit::OK)
}
