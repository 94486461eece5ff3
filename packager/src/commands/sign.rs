//! `forge-pack sign`: sign a release already in its registry.

use serde::Serialize;

use crate::access::Access;
use crate::cli::{GlobalArgs, SignArgs};
use crate::error::{Error, exit};
use crate::output::Output;
use crate::signing;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SignReport {
    digest: String,
    key: String,
    forms: Vec<forge_store::signatures::SignatureForm>,
}

/// Runs `sign`.
pub async fn run(args: &SignArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    use forge_sign::Signer as _;
    let signer = signing::load_signer(&args.key)?;
    let resolved = Access::from_args(global)?.resolve(&args.reference).await?;
    let forms = args.signature_format.forms();
    let target = signing::Target::read(&resolved.store, &resolved.digest).await?;
    signing::sign(&resolved.store, &target, &signer, &forms).await?;
    let report = SignReport {
        digest: resolved.digest.to_string(),
        key: signer.public_key().fingerprint(),
        forms,
    };
    if output.json() {
        output.print_json(&report)?;
    } else {
        output.print(&format!(
            "Signed {} in {} with key {}\n",
            report.digest, resolved.location, report.key
        ))?;
    }
    Ok(exit::OK)
}
