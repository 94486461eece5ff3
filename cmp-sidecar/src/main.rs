//! The `forge-cmp` binary, run by Argo CD's cmp-server in the application directory.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// The system allocator, not mimalloc (forge-pack's): forge-cmp is a short-lived process whose
// warm run is mostly first touches of fresh memory, and mimalloc's huge-page arenas zero 2 MiB
// for the first small allocation of each thread and size class (measured: 15 % slower warm,
// 3 % faster cold).

/// Argo CD Config Management Plugin: renders the release a ReleasePointer names.
#[derive(Debug, Parser)]
#[command(name = "forge-cmp", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the manifests of the release(s) the pointer(s) in the current directory name.
    Generate,
}

fn main() -> ExitCode {
    let Cli { command: Command::Generate } = Cli::parse();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("forge-cmp: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Warnings (a retried request, an unusable credential entry) go to stderr, which Argo CD
/// logs; plain text, no timestamps: Argo CD stamps its log lines.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FORGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .init();
}

fn run() -> Result<(), String> {
    init_logging();
    let settings = forge_cmp::Settings::from_env(|name| std::env::var(name).ok())
        .map_err(|e| e.to_string())?;
    let app_dir =
        std::env::current_dir().map_err(|e| format!("cannot read the working directory: {e}"))?;
    // A warm generate reads the cache only: no async runtime to start.
    let generated = match forge_cmp::generate::generate_warm(&app_dir, &settings) {
        Ok(Some(generated)) => generated,
        Ok(None) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?
            .block_on(forge_cmp::generate(&app_dir, &settings))
            .map_err(|e| e.to_string())?,
        Err(error) => return Err(error.to_string()),
    };
    // Written only once every release is ready: Argo CD sees all objects or, on error, none
    // (a cached stream that turns out altered while it is written is an error, and Argo CD
    // discards the output of a failed generate). Buffered: documents come in many parts, and
    // stdout alone flushes at every newline.
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let written = generated
        .write_to(&mut stdout)
        .and_then(|()| stdout.flush().map_err(forge_cmp::CmpError::Output))
        .map_err(|e| e.to_string());
    generated.finish();
    written
}
