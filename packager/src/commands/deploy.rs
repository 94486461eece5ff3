//! `forge-pack deploy`: point an environment at a release, under the environment policy.

use forge_release::reference::{ProjectLocation, ReleaseRef, ReleaseSelector};

use crate::access::Access;
use crate::cli::{DeployArgs, GlobalArgs};
use crate::deploy::{self, Action, Chosen};
use crate::error::Error;
use crate::gitops::{GitopsError, GitopsRepo};
use crate::output::Output;

mod auto {
    //! `deploy --auto`: every environment whose policy says `auto_deploy: true` and admits the
    //! release gets it; the others are left as they are, and the output says which.

    use serde::Serialize;

    use crate::cli::PointerChangeArgs;
    use crate::deploy::{self, Action, Chosen};
    use crate::error::{Error, exit};
    use crate::gitops::GitopsRepo;
    use crate::output::Output;
    use crate::policy::{Policy, PolicyError};

    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    struct AutoReport {
        deployed: Vec<String>,
        unchanged: Vec<String>,
        denied: Vec<Denied>,
    }

    #[derive(Debug, Serialize)]
    struct Denied {
        environment: String,
        reasons: Vec<String>,
    }

    pub fn run(
        repo: &GitopsRepo,
        chosen: &Chosen,
        change: &PointerChangeArgs,
        output: &Output,
    ) -> Result<u8, Error> {
        let policy = Policy::load_committed(repo)?;
        let mut report = AutoReport { deployed: vec![], unchanged: vec![], denied: vec![] };
        let mut lines = Vec::new();
        for env in policy.auto_environments() {
            // A pointer this run just moved has not run anywhere yet: `requires` waits for
            // the next run, not a few milliseconds.
            let just: Vec<&String> = policy
                .environment(env)?
                .requires
                .iter()
                .filter(|required| report.deployed.contains(required))
                .collect();
            if let Some(required) = just.first() {
                let reason = format!(
                    "requires: {required} got this release in this same run; run deploy --auto again once it runs there"
                );
                lines.push(format!("{env}: not deployed ({reason})"));
                report.denied.push(Denied { environment: env.to_owned(), reasons: vec![reason] });
                continue;
            }
            match deploy::apply_quietly(repo, env, chosen, Action::Deploy, change, output) {
                Ok(done) if done.changed() => {
                    lines.push(format!("{env}: {}", done.headline));
                    report.deployed.push(env.to_owned());
                }
                Ok(done) => {
                    lines.push(format!("{env}: {}", done.headline));
                    report.unchanged.push(env.to_owned());
                }
                Err(Error::Policy(PolicyError::Denied { violations, .. })) => {
                    let reasons: Vec<String> =
                        violations.iter().map(|v| format!("{}: {}", v.rule, v.detail)).collect();
                    lines.push(format!("{env}: not deployed ({})", reasons.join("; ")));
                    report.denied.push(Denied { environment: env.to_owned(), reasons });
                }
                Err(other) => return Err(other),
            }
        }
        if output.json() {
            output.print_json(&report)?;
        } else if lines.is_empty() {
            output.note("no environment of the policy says auto_deploy: true");
        } else {
            output.print(&(lines.join("\n") + "\n"))?;
        }
        Ok(exit::OK)
    }
}

/// Runs `deploy`.
pub async fn run(args: &DeployArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    let (env, project, release) = args.parts().map_err(Error::usage)?;
    let repo = GitopsRepo::open(&args.change.dir.gitops)?;
    if let Some(env) = env {
        deploy::check_segment("environment", env)?;
    }
    let access = Access::from_args(global)?;
    let (location, image) = project_location(&repo, project, &access)?;
    let selector = ReleaseSelector::Id(release.to_owned());
    let mut chosen = Chosen::fetch(&access, &location, image, selector).await?;
    let envs: Vec<String> = match env {
        Some(env) => vec![env.to_owned()],
        None => crate::policy::Policy::load_committed(&repo)?
            .auto_environments()
            .into_iter()
            .map(str::to_owned)
            .collect(),
    };
    let envs: Vec<&str> = envs.iter().map(String::as_str).collect();
    chosen.check_signatures(&repo, &envs).await?;
    if is_bare_name(project) && chosen.metadata.release.project != project {
        return Err(GitopsError::WrongProject {
            location: location.to_string(),
            holds: chosen.metadata.release.project.clone(),
            wanted: project.to_owned(),
        }
        .into());
    }
    match env {
        Some(env) => deploy::apply(&repo, env, &chosen, Action::Deploy, &args.change, output),
        None => auto::run(&repo, &chosen, &args.change, output),
    }
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
