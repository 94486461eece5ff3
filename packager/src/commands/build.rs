//! `forge-pack build`: render, package and store a release in a local OCI layout store.

use forge_release::reference::StoreRoot;

use crate::access::Access;
use crate::cli::{GlobalArgs, ReleaseArgs};
use crate::commands::release;
use crate::error::Error;
use crate::output::Output;

/// Runs `build`: always a local store (`--registry oci:<dir>`, else the embedded one), and
/// whatever `release.on` says.
pub async fn run(args: &ReleaseArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    let access = Access::from_args(global)?;
    let root = match access.default_root(None)? {
        StoreRoot::Registry(host) => {
            return Err(Error::usage_hint(
                format!(
                    "build stores releases locally, but --registry names the registry `{host}`"
                ),
                "use `forge-pack push` for registries, or --registry oci:<dir>",
            ));
        }
        local => local,
    };
    let (config, ctx) = release::context(args, release::Purpose::Build)?;
    let prepared = release::prepare(args, config, ctx, &access, output).await?;
    release::publish(prepared, root, &access, output, global.timeout, None).await
}
