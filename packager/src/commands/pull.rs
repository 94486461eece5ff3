//! `forge-pack pull`: extract a release's verified files into a new directory.

use forge_release::tarball::Limits;
use serde::Serialize;

use crate::access::Access;
use crate::cli::{GlobalArgs, PullArgs};
use crate::error::{Error, exit};
use crate::fsutil;
use crate::output::Output;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PullReport {
    digest: String,
    id: String,
    number: u64,
    directory: String,
    files: usize,
}

/// Runs `pull`.
pub async fn run(args: &PullArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    let resolved = Access::from_args(global)?.resolve(&args.reference).await?;
    let spinner = output.spinner(&format!("downloading and verifying {}", resolved.digest));
    let release = resolved.store.fetch_release(&resolved.digest, &Limits::default()).await;
    spinner.finish_and_clear();
    let release = release?;
    fsutil::write_new_dir(
        &args.out,
        release.files.iter().map(|f| (f.path.as_str(), f.content.as_slice())),
    )?;
    let metadata = &release.head.metadata;
    let report = PullReport {
        digest: resolved.digest.to_string(),
        id: metadata.release.id.clone(),
        number: metadata.release.number,
        directory: args.out.display().to_string(),
        files: release.files.len(),
    };
    if output.json() {
        output.print_json(&report)?;
    } else {
        output.note(&format!(
            "pulled release {} ({}) — {} verified files in {}",
            report.number, report.digest, report.files, report.directory
        ));
    }
    Ok(exit::OK)
}
