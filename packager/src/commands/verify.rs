//! `forge-pack verify`: check a release's signatures (forge-pack's or cosign's) and the
//! signed statements about it against trusted public keys.

use serde::Serialize;

use crate::access::Access;
use crate::cli::{GlobalArgs, VerifyArgs};
use crate::error::{Error, exit};
use crate::output::{Output, table};
use crate::signing;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct VerifyReport {
    digest: String,
    location: String,
    #[serde(flatten)]
    verification: forge_store::signatures::Verification,
}

/// Runs `verify`: exit 0 when a trusted key signed the release, 5 when none did.
pub async fn run(args: &VerifyArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    let keys = signing::load_public_keys(&args.key)?;
    let resolved = Access::from_args(global)?.resolve(&args.reference).await?;
    let verification = signing::verify(&resolved.store, &resolved.digest, &keys).await?;
    let report = VerifyReport {
        digest: resolved.digest.to_string(),
        location: resolved.location.clone(),
        verification,
    };
    if output.json() {
        output.print_json(&report)?;
        return Ok(exit::OK);
    }
    let mut rows = vec![vec!["FORM".to_owned(), "KEY".to_owned()]];
    for signature in &report.verification.signatures {
        let form = serde_json::to_value(signature.form).unwrap_or_default();
        rows.push(vec![form.as_str().unwrap_or_default().to_owned(), signature.key.clone()]);
    }
    let mut text = format!("Verified {} in {}\n", report.digest, report.location);
    text.push_str(&table(&rows));
    for statement in &report.verification.statements {
        text.push_str(&format!(
            "signed statement {} by {}\n",
            statement.predicate_type, statement.key
        ));
    }
    for rejected in &report.verification.rejected {
        text.push_str(&format!("not counted: {rejected}\n"));
    }
    output.print(&text)?;
    Ok(exit::OK)
}
