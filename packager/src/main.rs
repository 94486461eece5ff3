//! The `forge-pack` binary: parse arguments, run the command, report errors in one place.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use forge_pack::cli::{Cli, OutputFormat};
use forge_pack::error::{Error, exit};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose, cli.global.quiet);
    let format = cli.global.output;
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::LOCAL);
        }
    };
    match runtime.block_on(forge_pack::commands::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            report(&error, format);
            ExitCode::from(error.code())
        }
    }
}

/// Errors go to stderr: as `error:` and `hint:` lines, or with `--output json` as one JSON
/// object, `{"error": {"code", "message", "hint"}}`, so scripts read it as they read data.
fn report(error: &Error, format: OutputFormat) {
    if format == OutputFormat::Json {
        let report = serde_json::json!({ "error": error.report() });
        eprintln!("{report}");
        return;
    }
    eprintln!("error: {error}");
    for hint in error.hint().iter().flat_map(|h| h.lines().map(str::to_owned).collect::<Vec<_>>()) {
        eprintln!("  hint: {hint}");
    }
}

/// Log lines on stderr: colours only on a terminal, and no timestamps (CI logs add their own).
fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FORGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .with_target(false)
        .init();
}
