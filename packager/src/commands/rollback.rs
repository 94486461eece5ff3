//! `forge-pack rollback`: deploy the release an environment ran before (or a named one) again,
//! as a new forward commit.

use forge_release::reference::{ReleaseRef, ReleaseSelector};

use crate::access::Access;
use crate::cli::{GlobalArgs, RollbackArgs};
use crate::deploy::{self, Action, Chosen};
use crate::error::Error;
use crate::gitops::{GitopsError, GitopsRepo};
use crate::output::Output;

/// Runs `rollback`.
pub async fn run(args: &RollbackArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    let repo = GitopsRepo::open(&args.change.dir.gitops)?;
    let (env, project) = (&args.environment, &args.project);
    deploy::check_segment("environment", env)?;
    for segment in project.split('/') {
        deploy::check_segment("project", segment)?;
    }
    let access = Access::from_args(global)?;
    // The image comes from the pointer and its history: it binds no credentials.
    access.bind_no_further();
    let root = access.default_root(None)?;
    let entry = repo.find_pointer(env, project)?;
    let (rel, project) = (entry.rel, &entry.project);
    let current = repo.read_pointer(&rel)?.ok_or_else(|| GitopsError::NotDeployed {
        project: project.clone(),
        env: env.clone(),
        rel: Some(rel.clone()),
    })?;
    let (image, selector) = match &args.release {
        Some(id) => (current.spec.image.clone(), ReleaseSelector::Id(id.clone())),
        None => {
            let history = repo.pointer_history(&rel)?;
            let earlier = history
                .into_iter()
                .find(|entry| !entry.pointer.same_release_as(&current))
                .ok_or_else(|| GitopsError::NothingToRollBack {
                    env: env.clone(),
                    project: project.clone(),
                    current: current.describe(),
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
        .map_err(|e| GitopsError::InvalidPointer {
            rel: rel.clone(),
            reason: format!("spec.image: {e}"),
        })?
        .project;
    let mut chosen = Chosen::fetch(&access, &location, image, selector).await?;
    chosen.check_signatures(&repo, &[env.as_str()]).await?;
    if chosen.metadata.release.project != *project {
        return Err(GitopsError::WrongProject {
            location: location.to_string(),
            holds: chosen.metadata.release.project.clone(),
            wanted: project.clone(),
        }
        .into());
    }
    deploy::apply(&repo, env, &chosen, Action::Rollback, &args.change, output)
}
