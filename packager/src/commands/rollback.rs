//! `forge-pack rollback`: deploy the release an environment ran before (or a named one) again,
//! as a new forward commit.

use forge_release::reference::{ReleaseRef, ReleaseSelector};

use crate::access::Access;
use crate::cli::{GlobalArgs, RollbackArgs};
use crate::deploy::{self, Action, Chosen};
use crate::error::{Error, exit};
use crate::gitops::GitopsRepo;
use crate::output::Output;

/// Runs `rollback`.
pub async fn run(args: &RollbackArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    let repo = GitopsRepo::open(&args.change.dir.gitops)?;
    let (env, project) = (&args.environment, &args.project);
    deploy::check_segment("environment", env)?;
    deploy::check_segment("project", project)?;
    let access = Access::from_args(global)?;
    let root = access.default_root(None)?;
    let rel = GitopsRepo::pointer_path(env, project);
    let current = repo.read_pointer(&rel)?.ok_or_else(|| {
        Error::new(exit::NOT_FOUND, format!("{project} is not deployed to {env}: no {rel}"))
            .with_hint(format!("`forge-pack status {env}` shows what is deployed there"))
    })?;
    let (image, selector) = match &args.release {
        Some(id) => (current.spec.image.clone(), ReleaseSelector::Id(id.clone())),
        None => {
            let history = repo.pointer_history(&rel)?;
            let earlier = history
                .into_iter()
                .find(|entry| !entry.pointer.same_release_as(&current))
                .ok_or_else(|| {
                    Error::new(
                        exit::NOT_FOUND,
                        format!(
                            "{env} has run no other release of {project} than {}: nothing to roll back to",
                            current.describe()
                        ),
                    )
                    .with_hint(format!("name the release: forge-pack rollback {env} {project} <release-id>"))
                })?;
            let pointer = earlier.pointer;
            let selector = match pointer.spec.digest {
                Some(digest) => ReleaseSelector::Digest(digest),
                None => ReleaseSelector::Id(pointer.spec.commit),
            };
            (pointer.spec.image, selector)
        }
    };
    let location = ReleaseRef::parse(&image, &root)
        .map_err(|e| Error::input(format!("invalid ReleasePointer {rel}: spec.image: {e}")))?
        .project;
    let chosen = Chosen::fetch(&access, &location, image, selector).await?;
    if chosen.metadata.release.project != *project {
        return Err(Error::input(format!(
            "{location} holds releases of `{}`, not `{project}`",
            chosen.metadata.release.project
        )));
    }
    deploy::apply(&repo, env, &chosen, Action::Rollback, &args.change, output)
}
