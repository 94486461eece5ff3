//! Moving a GitOps pointer (`deploy`, `rollback`): a pure plan (the policy decision, the
//! pointer's new content and the commit message) and its execution in the checkout (git).

mod execute;
mod plan;

use forge_release::Digest;
use forge_release::aliases;
use forge_release::metadata::{ReleaseMetadata, TriggerKind};
use forge_release::pointer::{ReleasePointer, describe_release};
use forge_release::reference::{ProjectLocation, ReleaseSelector};
use serde::Serialize;

pub use execute::{Done, apply, apply_quietly};
pub use plan::{Facts, Plan, plan};

use crate::access::Access;
use crate::error::Error;
use crate::gitops::GitopsError;

/// Which command is moving the pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// `deploy`.
    Deploy,
    /// `rollback`.
    Rollback,
}

/// A release chosen for an environment.
#[derive(Debug)]
pub struct Chosen {
    /// What the pointer's `spec.image` will say.
    pub image: String,
    /// Manifest digest.
    pub digest: Digest,
    /// The release's metadata.
    pub metadata: ReleaseMetadata,
    /// Every event that released it (see [`triggers_of`]).
    pub triggers: Vec<TriggerKind>,
    /// Its store.
    pub store: forge_store::Store,
    /// Its signatures under the keys the policy names (see [`Chosen::check_signatures`]).
    pub verification: Option<forge_store::signatures::Verification>,
}

/// Which blob of the release `head` its store lacks (the resources layer, the config), if any.
async fn missing_blob(
    store: &forge_store::Store,
    head: &forge_release::verify::ReleaseHead,
) -> Result<Option<String>, Error> {
    let (config, layer) = (&head.manifest.config, head.manifest.resources());
    let (has_config, has_layer) = futures_util::future::try_join(
        store.has_blob(&config.digest),
        store.has_blob(&layer.digest),
    )
    .await?;
    Ok(match (has_config, has_layer) {
        (_, false) => Some(format!("resources layer ({})", layer.digest)),
        (false, _) => Some(format!("config blob ({})", config.digest)),
        _ => None,
    })
}

impl Chosen {
    /// Resolves `selector` in `location` and reads the release's metadata (not its resources).
    pub async fn fetch(
        access: &Access,
        location: &ProjectLocation,
        image: String,
        selector: ReleaseSelector,
    ) -> Result<Self, Error> {
        let resolved = access.resolve_in(location, selector).await?;
        let head = resolved.store.fetch_head(&resolved.digest).await?;
        // Both become directories of the GitOps repository (pointers, approvals).
        check_segment("project", &head.metadata.release.project)?;
        for segment in head.metadata.release.repository.split('/') {
            check_segment("repository", segment)?;
        }
        // A release its commit tag does not name is one forge-cmp would refuse.
        let (state, why) =
            crate::commands::list::state_of(&resolved.store, &resolved.digest, &head.manifest)
                .await?;
        if state != crate::commands::list::State::Complete {
            return Err(crate::access::LookupError::NotWhole {
                location: location.to_string(),
                number: head.metadata.release.number,
                commit: head.metadata.source.commit.clone(),
                what: why.unwrap_or_default(),
            }
            .into());
        }
        // Every blob must be there too: reading the head fetched the metadata only, while
        // forge-cmp fetches the layer, and Argo CD's and Flux's own readers the config as well.
        if let Some(what) = missing_blob(&resolved.store, &head).await? {
            return Err(crate::access::LookupError::MissingBlob {
                location: location.to_string(),
                number: head.metadata.release.number,
                what,
            }
            .into());
        }
        let marker = aliases::tagged_marker(&head.metadata.source.commit);
        let tagged = resolved.store.resolve_tag(&marker).await?.as_ref() == Some(&resolved.digest);
        let triggers = triggers_of(&head.metadata, tagged);
        Ok(Chosen {
            image,
            digest: resolved.digest,
            metadata: head.metadata,
            triggers,
            store: resolved.store,
            verification: None,
        })
    }

    /// Reads the release's signatures under the keys the environments `envs` name in
    /// `signed_by:` (the policy as HEAD has it); nothing when none does, so that one
    /// environment's keys cannot hold up deploys elsewhere.
    pub async fn check_signatures(
        &mut self,
        repo: &crate::gitops::GitopsRepo,
        envs: &[&str],
    ) -> Result<(), Error> {
        let policy = crate::policy::Policy::load_committed(repo)?;
        let mut paths = std::collections::BTreeSet::new();
        for env in envs {
            if let Ok(rules) = policy.environment(env) {
                paths.extend(rules.signed_by.iter().map(String::as_str));
            }
        }
        let keys: Vec<forge_sign::PublicKey> =
            paths.into_iter().map(|path| committed_key(repo, path)).collect::<Result<_, _>>()?;
        if keys.is_empty() {
            return Ok(());
        }
        self.verification = Some(match &self.store {
            forge_store::Store::Registry(registry) => {
                forge_store::signatures::verify(registry, &self.digest, &keys).await?
            }
            // Signatures live in registries: a layout's release carries none.
            forge_store::Store::Layout(_) => forge_store::signatures::Verification::default(),
        });
        Ok(())
    }

    /// The release's project.
    pub fn project(&self) -> &str {
        &self.metadata.release.project
    }

    /// The pointer that deploys it.
    pub fn pointer(&self) -> ReleasePointer {
        let release = &self.metadata.release;
        ReleasePointer::new(
            &release.project,
            &self.image,
            &self.metadata.source.commit,
            self.digest.clone(),
            release.number,
        )
        .with_aliases(&release.aliases)
        .with_identity(&release.repository, &release.project)
    }

    /// `release 42 (v1.2.3)`.
    pub fn describe(&self) -> String {
        let release = &self.metadata.release;
        format!("release {}", describe_release(&release.number.to_string(), &release.aliases))
    }
}

/// Every event that released a release: the trigger that made it, and `tag` when a tag
/// pipeline re-tagged it later (`tagged`: its marker names the release, see
/// [`aliases::tagged_marker`]). Merge, then tag, then promote: the tag pipeline adds its
/// aliases and the marker, which leaves the release's bytes (and digest) as they were. Other
/// aliases (another branch's `hotfix-1`) are no evidence of a tag.
pub fn triggers_of(metadata: &ReleaseMetadata, tagged: bool) -> Vec<TriggerKind> {
    let mut triggers = vec![metadata.release.trigger.kind];
    if tagged && !triggers.contains(&TriggerKind::Tag) {
        triggers.push(TriggerKind::Tag);
    }
    triggers
}

/// A public key file (`signed_by:`) as HEAD of the GitOps repository has it.
pub fn committed_key(
    repo: &crate::gitops::GitopsRepo,
    path: &str,
) -> Result<forge_sign::PublicKey, Error> {
    let bad =
        |reason: String| crate::signing::SigningError::Key { path: repo.root().join(path), reason };
    let bytes = repo
        .committed_file(path)?
        .ok_or_else(|| bad("HEAD has no such file (policy keys are read as committed)".into()))?;
    Ok(forge_sign::PublicKey::from_pem(&String::from_utf8_lossy(&bytes))
        .map_err(|e| bad(e.to_string()))?)
}

/// What the release's signatures say under the keys `paths` (an environment's `signed_by:`).
pub fn signed_facts(
    repo: &crate::gitops::GitopsRepo,
    chosen: &Chosen,
    paths: &[String],
) -> Result<crate::policy::SignedFacts, Error> {
    let mut fingerprints = Vec::new();
    for path in paths {
        fingerprints.push(committed_key(repo, path)?.fingerprint());
    }
    let Some(verification) = &chosen.verification else {
        return Ok(crate::policy::SignedFacts::default());
    };
    let signed = verification.signatures.iter().any(|s| fingerprints.contains(&s.key));
    let attested = verification
        .statements
        .iter()
        .filter(|s| {
            fingerprints.contains(&s.key)
                && s.predicate_type == forge_sign::bundle::PROVENANCE_PREDICATE
        })
        .filter_map(|s| crate::attestation::attested(&s.predicate))
        .collect();
    Ok(crate::policy::SignedFacts { signed, attested })
}

/// Environment and project names become directories in the GitOps repository.
pub fn check_segment(what: &'static str, name: &str) -> Result<(), Error> {
    let valid = !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid { Ok(()) } else { Err(GitopsError::BadName { what, name: name.to_owned() }.into()) }
}

/// Who is deploying: `--actor`/FORGE_ACTOR, then the CI user (GitHub Actions, GitLab CI),
/// then git's user.name in the GitOps checkout.
pub fn actor(
    flag: Option<&str>,
    var: impl Fn(&str) -> Option<String>,
    git_user: Option<String>,
) -> Option<String> {
    let set = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    set(flag.map(str::to_owned))
        .or_else(|| set(var("GITHUB_ACTOR")))
        .or_else(|| set(var("GITLAB_USER_LOGIN")))
        .or_else(|| set(git_user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_actor_comes_from_the_flag_then_ci_then_git() {
        let ci = |k: &str| (k == "GITLAB_USER_LOGIN").then(|| "gitlab-user".to_owned());
        let none = |_: &str| None;
        assert_eq!(actor(Some("alice"), ci, Some("git".into())).as_deref(), Some("alice"));
        assert_eq!(actor(None, ci, Some("git".into())).as_deref(), Some("gitlab-user"));
        assert_eq!(actor(Some(" "), none, Some("git".into())).as_deref(), Some("git"));
        assert_eq!(actor(None, none, None), None);
    }

    #[test]
    fn names_that_are_not_plain_directory_names_are_refused() {
        for good in ["production", "eu-west-1", "auth_service", "v1.2"] {
            assert!(check_segment("environment", good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "../prod", "a/b", ".hidden", "prod env"] {
            assert!(check_segment("environment", bad).is_err(), "{bad}");
        }
    }
}
