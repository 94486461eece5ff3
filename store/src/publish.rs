//! Publishing a release into a store: numbering, immutability, idempotency and aliases.
//!
//! Order matters for readers: blobs, then the manifest, then the number tag (which claims the
//! number), then the commit tag, then the other aliases. No tag ever names incomplete content.

use forge_release::Digest;
use forge_release::aliases::{self, TagStrategy};
use forge_release::image::ReleaseImage;
use forge_release::manifest::{Manifest, annotations};
use forge_release::package::{self, PackageError, ReleaseInput};

use crate::error::{StoreError, TagClaim};
use crate::store::{Store, UploadProgress};

/// How many times a number claim is retried when concurrent publishers take numbers first.
const NUMBER_ATTEMPTS: usize = 20;

/// What publishing did.
#[derive(Debug, Clone)]
pub struct Published {
    /// Manifest digest of the release.
    pub digest: Digest,
    /// Release number.
    pub number: u64,
    /// Commit SHA (also a tag).
    pub commit: String,
    /// Whether the release already existed with the same content.
    pub existed: bool,
    /// Tags this run added.
    pub tags_added: Vec<String>,
    /// Things the user should know (rejected git tags, aliases held by other releases).
    pub warnings: Vec<String>,
    /// Bytes uploaded (blobs and manifest the store did not have).
    pub bytes_uploaded: u64,
}

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The commit already has a release with different resources.
    #[error(
        "commit {commit} already has release {number} ({existing}) with different resources \
         ({existing_resources}, now {new_resources}); releases are immutable"
    )]
    ContentChanged {
        /// The commit.
        commit: String,
        /// Its release number.
        number: u64,
        /// Manifest digest of the existing release.
        existing: Digest,
        /// Resources layer digest of the existing release.
        existing_resources: Digest,
        /// Resources layer digest of what was rendered now.
        new_resources: Digest,
    },
    /// The commit tag names something that is not a readable release.
    #[error("tag {commit} exists but is not a readable release: {reason}")]
    ExistingUnreadable {
        /// The commit tag.
        commit: String,
        /// What went wrong reading it.
        reason: String,
    },
    /// Another publisher released the same commit at the same time.
    #[error("commit {commit} was released concurrently by another publisher as {other}")]
    ConcurrentCommit {
        /// The commit.
        commit: String,
        /// The other manifest.
        other: Digest,
    },
    /// No release number could be claimed.
    #[error(
        "could not claim a release number after {NUMBER_ATTEMPTS} attempts: too many concurrent publishers"
    )]
    NumberContention,
    /// Packaging failed.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Aliases for a release numbered `number`, plus warnings for git names that cannot be used.
fn aliases_for(
    input: &ReleaseInput,
    strategy: TagStrategy,
    number: u64,
) -> (Vec<String>, Vec<String>) {
    let mut list = vec![number.to_string()];
    let mut warnings = Vec::new();
    let (tag_aliases, rejected) =
        aliases::tag_aliases(strategy, &input.project, &input.source.tags);
    list.extend(tag_aliases);
    for r in rejected {
        warnings.push(format!("git tag `{}` is not used as an alias: {}", r.name, r.reason));
    }
    if let Some(branch) = &input.source.branch {
        match aliases::branch_alias(branch, number) {
            Ok(alias) => list.push(alias),
            Err(r) => warnings.push(format!("branch `{}` gives no alias: {}", r.name, r.reason)),
        }
    }
    (list, warnings)
}

/// The release numbered `number`, with its aliases and the warnings about them. Only the
/// metadata, config and manifest are made: the resources layer is the input's.
fn package_numbered(
    input: &ReleaseInput,
    strategy: TagStrategy,
    number: u64,
) -> Result<(ReleaseImage, Vec<String>, Vec<String>), PackageError> {
    let (aliases, warnings) = aliases_for(input, strategy, number);
    let release = package::package(input, number, &aliases)?;
    Ok((release, aliases, warnings))
}

/// Publishes `input` into `store`, numbering it and giving it its aliases.
pub async fn publish(
    store: &Store,
    input: ReleaseInput,
    strategy: TagStrategy,
) -> Result<Published, PublishError> {
    publish_with_progress(store, input, strategy, &|_, _| {}).await
}

/// [`publish`], reporting upload progress.
pub async fn publish_with_progress(
    store: &Store,
    input: ReleaseInput,
    strategy: TagStrategy,
    progress: UploadProgress<'_>,
) -> Result<Published, PublishError> {
    let commit = input.source.commit.clone();
    let tags = store.list_tags().await?;
    if tags.contains(&commit) {
        return republish(store, &input, strategy, &tags).await;
    }
    let mut number = aliases::next_number(tags.iter().map(String::as_str));
    // Our manifest from an attempt that lost its number, whose commit tag we then move.
    let mut previous: Option<Digest> = None;
    for _ in 0..NUMBER_ATTEMPTS {
        let (release, aliases, mut warnings) = package_numbered(&input, strategy, number)?;
        let bytes_uploaded = store.put_image(&release, progress).await?;
        let (digest, manifest) = (&release.digest, release.manifest_bytes.as_slice());
        match store.claim_tag(&number.to_string(), digest, manifest).await? {
            TagClaim::Claimed | TagClaim::AlreadyOurs => {}
            TagClaim::Taken(_) => {
                number += 1;
                continue;
            }
        }
        match store.claim_tag(&commit, digest, manifest).await? {
            TagClaim::Claimed | TagClaim::AlreadyOurs => {}
            TagClaim::Taken(other) if previous.as_ref() == Some(&other) => {
                store.set_tag(&commit, digest, manifest).await?
            }
            TagClaim::Taken(other) => return Err(PublishError::ConcurrentCommit { commit, other }),
        }
        // Registries have no compare-and-swap: a publisher racing for the same number may
        // have overwritten it after our check. Look again before any alias is written.
        if store.resolve_tag(&number.to_string()).await?.as_ref() != Some(digest) {
            previous = Some(release.digest);
            number += 1;
            continue;
        }
        let mut tags_added = vec![number.to_string(), commit.clone()];
        for alias in aliases.iter().skip(1) {
            claim_alias(store, alias, digest, manifest, &mut tags_added, &mut warnings).await?;
        }
        return Ok(Published {
            digest: release.digest,
            number,
            commit,
            existed: false,
            tags_added,
            warnings,
            bytes_uploaded,
        });
    }
    Err(PublishError::NumberContention)
}

/// The commit already has a release: succeed if the resources are the same (adding any
/// missing aliases), refuse otherwise.
async fn republish(
    store: &Store,
    input: &ReleaseInput,
    strategy: TagStrategy,
    tags: &[String],
) -> Result<Published, PublishError> {
    let commit = input.source.commit.clone();
    let unreadable =
        |reason: String| PublishError::ExistingUnreadable { commit: commit.clone(), reason };
    let (bytes, existing) = store
        .fetch_manifest_by_tag(&commit)
        .await?
        .ok_or_else(|| unreadable("the tag disappeared while publishing".into()))?;
    let manifest =
        Manifest::parse_release(&bytes, Some(&existing)).map_err(|e| unreadable(e.to_string()))?;
    let number = manifest
        .annotation(annotations::FORGE_NUMBER)
        .and_then(aliases::release_number)
        .ok_or_else(|| unreadable("it has no release number annotation".into()))?;
    let (aliases, mut warnings) = aliases_for(input, strategy, number);
    let new_resources = input.resources.info.digest.clone();
    let existing_resources = manifest.resources().digest.clone();
    if new_resources != existing_resources {
        return Err(PublishError::ContentChanged {
            commit,
            number,
            existing,
            existing_resources,
            new_resources,
        });
    }
    // Only aliases the store lacks are written: an unchanged re-push costs no more requests.
    let mut tags_added = Vec::new();
    for alias in aliases.iter().filter(|a| !tags.contains(a)) {
        claim_alias(store, alias, &existing, &bytes, &mut tags_added, &mut warnings).await?;
    }
    Ok(Published {
        digest: existing,
        number,
        commit,
        existed: true,
        tags_added,
        warnings,
        bytes_uploaded: 0,
    })
}

async fn claim_alias(
    store: &Store,
    alias: &str,
    digest: &Digest,
    manifest: &[u8],
    added: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<(), StoreError> {
    match store.claim_tag(alias, digest, manifest).await? {
        TagClaim::Claimed => added.push(alias.to_owned()),
        TagClaim::AlreadyOurs => {}
        TagClaim::Taken(other) => warnings.push(format!(
            "alias `{alias}` already names another release ({other}); left unchanged"
        )),
    }
    Ok(())
}
