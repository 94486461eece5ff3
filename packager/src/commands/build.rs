//! `forge-pack build`: render, package and store a release in a local OCI layout store.

use crate::access::Access;
use crate::cli::{GlobalArgs, ReleaseArgs};
use crate::commands::release_flow::{self, Target};
use crate::error::Error;
use crate::output::Output;

/// Runs `build`.
pub async fn run(args: &ReleaseArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    release_flow::run(args, &Access::from_args(global)?, output, Target::Local).await
}
