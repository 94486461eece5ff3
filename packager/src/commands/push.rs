//! `forge-pack push`: render, package and publish a release to the configured registry (or
//! layout store), if `release.on` admits the git/CI context.

use crate::access::Access;
use crate::cli::{GlobalArgs, ReleaseArgs};
use crate::commands::release_flow::{self, Target};
use crate::error::Error;
use crate::output::Output;

/// Runs `push`.
pub async fn run(args: &ReleaseArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    release_flow::run(args, &Access::from_args(global)?, output, Target::Configured).await
}
