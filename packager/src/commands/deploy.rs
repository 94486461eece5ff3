//! `forge-pack deploy`: point an environment at a release, under the environment policy.

use forge_release::reference::{ProjectLocation, ReleaseRef, ReleaseSelector};

use crate::access::Access;
use crate::cli::{DeployArgs, GlobalArgs};
use crate::deploy::{self, Action, Chosen};
use crate::error::Error;
use crate::gitops::{GitopsError, GitopsRepo};
use crate::output::Output;

/// Runs `deploy`.
pub async fn run(args: &DeployArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    let repo = GitopsRepo::open(&args.change.dir.gitops)?;
    deploy::check_segment("environment", &args.environment)?;
    let access = Access::from_args(global)?;
    let (location, image) = project_location(&repo, &args.project, &access)?;
    let selector = ReleaseSelector::Id(args.release.clone());
    let chosen = Chosen::fetch(&access, &location, image, selector).await?;
    if is_bare_name(&args.project) && chosen.metadata.release.project != args.project {
        return Err(GitopsError::WrongProject {
            location: location.to_string(),
            holds: chosen.metadata.release.project.clone(),
            wanted: args.project.clone(),
        }
        .into());
    }
    deploy::apply(&repo, &args.environment, &chosen, Action::Deploy, &args.change, output)
}

pub fn is_bare_name(project: &str) -> bool {
    !project.contains('/') && !project.starts_with("oci:")
}

/// Where the project's releases are, and what the pointer's `spec.image` should say: the
/// location as given, or for a bare name the image the GitOps repository already uses.
pub fn project_location(
    repo: &GitopsRepo,
    project: &str,
    access: &Access,
) -> Result<(ProjectLocation, String), Error> {
    let root = access.default_root(None)?;
    if !is_bare_name(project) {
        let reference = ReleaseRef::parse(project, &root)?;
        if reference.release.is_some() {
            return Err(GitopsError::NamesARelease(project.to_owned()).into());
        }
        let image = reference.project.to_string();
        return Ok((reference.project, image));
    }
    deploy::check_segment("project", project)?;
    // The image comes from a pointer: whoever writes the GitOps repository must not be able
    // to send the command's credentials to a host of their choosing.
    access.bind_no_further();
    let mut images: Vec<(String, String)> = Vec::new();
    for entry in repo.pointer_files()? {
        if entry.project == project
            && let Some(pointer) = repo.read_pointer(&entry.rel)?
            && !images.iter().any(|(image, _)| *image == pointer.spec.image)
        {
            images.push((pointer.spec.image, entry.rel));
        }
    }
    match images.as_slice() {
        [(image, rel)] => {
            let reference = ReleaseRef::parse(image, &root).map_err(|e| {
                GitopsError::InvalidPointer { rel: rel.clone(), reason: format!("spec.image: {e}") }
            })?;
            Ok((reference.project, image.clone()))
        }
        [] => Err(GitopsError::UnknownLocation {
            project: project.to_owned(),
            root: repo.root().to_owned(),
        }
        .into()),
        many => Err(GitopsError::SeveralImages {
            project: project.to_owned(),
            images: many.iter().map(|(image, rel)| format!("{image} ({rel})")).collect(),
        }
        .into()),
    }
}
