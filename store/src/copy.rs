//! Copying a release between stores byte for byte: its blobs (only those the destination
//! lacks), its manifest (same digest), its tags (number and commit first, as a push writes
//! them), and its signatures and attestations (the `.sig` image and the
//! referrers, with the destination's referrers index kept). Every step is idempotent, so a
//! copy run again after a failure goes on where it stopped.

use forge_release::Digest;
use forge_release::aliases;
use forge_release::manifest::{Descriptor, Manifest};
use forge_sign::{bundle, classic};
use serde::Serialize;

use crate::error::{StoreError, TagClaim};
use crate::signatures;
use crate::store::Store;

/// What a copy did for one release.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Copied {
    /// The release.
    pub digest: String,
    /// Tags the destination did not have.
    pub tags_added: Vec<String>,
    /// Blobs uploaded (the others were there).
    pub blobs_uploaded: usize,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
    /// Signature images and referrers copied.
    pub signatures: usize,
    /// Aliases left out because the destination names another release with them.
    pub warnings: Vec<String>,
}

/// Why a copy cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The destination has another release under the release's number or commit.
    #[error("{location} already has release {existing} under `{tag}`; this release is {digest}")]
    Conflict {
        /// The destination.
        location: String,
        /// The tag.
        tag: String,
        /// What it names there.
        existing: Digest,
        /// The release being copied.
        digest: Digest,
    },
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A release whose blobs and manifest are in the destination, its tags not yet written.
#[derive(Debug)]
pub struct Uploaded {
    digest: Digest,
    bytes: Vec<u8>,
    number: String,
    commit: String,
    copied: Copied,
}

/// Copies the release `digest` from `from` to `to`, with `tags` (those naming it in `from`).
pub async fn copy_release(
    from: &Store,
    to: &Store,
    digest: &Digest,
    tags: &[String],
) -> Result<Copied, CopyError> {
    let uploaded = upload_release(from, to, digest).await?;
    tag_release(from, to, uploaded, tags).await
}

/// The first half of a copy, which copies of several releases may run at once: the release's
/// blobs (those missing) and its manifest, untagged, after checking that the destination
/// has no other release under its number or commit.
pub async fn upload_release(
    from: &Store,
    to: &Store,
    digest: &Digest,
) -> Result<Uploaded, CopyError> {
    let bytes = from.fetch_manifest(digest).await?;
    let manifest = Manifest::parse_release(&bytes, Some(digest)).map_err(StoreError::from)?;
    // Sizes no reader accepts are refused before a byte is fetched.
    crate::store::check_sizes(&manifest, &forge_release::tarball::Limits::default())
        .map_err(StoreError::from)?;
    let number = manifest
        .annotation(forge_release::manifest::annotations::FORGE_NUMBER)
        .unwrap_or_default()
        .to_owned();
    let commit = manifest
        .annotation(forge_release::manifest::annotations::REVISION)
        .unwrap_or_default()
        .to_owned();
    // The number and the commit are the release's: another release under either is refused
    // before anything is written.
    for tag in [&number, &commit] {
        if let Some(existing) = to.resolve_tag(tag).await?
            && existing != *digest
        {
            return Err(CopyError::Conflict {
                location: to.location(),
                tag: tag.clone(),
                existing,
                digest: digest.clone(),
            });
        }
    }
    let mut copied = Copied { digest: digest.to_string(), ..Copied::default() };
    let descriptors: Vec<&Descriptor> =
        std::iter::once(&manifest.config).chain(&manifest.layers).collect();
    copy_blobs(from, to, &descriptors, &mut copied).await?;
    to.put_manifest(digest, &bytes).await?;
    Ok(Uploaded { digest: digest.clone(), bytes, number, commit, copied })
}

/// The second half: tags (number and commit first), the tagged marker, signatures.
pub async fn tag_release(
    from: &Store,
    to: &Store,
    uploaded: Uploaded,
    tags: &[String],
) -> Result<Copied, CopyError> {
    let Uploaded { digest, bytes, number, commit, mut copied } = uploaded;
    let digest = &digest;
    let mut ordered: Vec<&String> = vec![&number, &commit];
    ordered.extend(tags.iter().filter(|t| **t != number && **t != commit));
    for tag in ordered.into_iter().filter(|t| !t.is_empty()) {
        match to.claim_tag(tag, digest, &bytes).await? {
            TagClaim::Claimed => copied.tags_added.push(tag.clone()),
            TagClaim::AlreadyOurs => {}
            // Another writer got the number or commit in since it was checked: the release
            // cannot be whole there.
            TagClaim::Taken(existing) if *tag == number || *tag == commit => {
                return Err(CopyError::Conflict {
                    location: to.location(),
                    tag: tag.clone(),
                    existing,
                    digest: digest.clone(),
                });
            }
            TagClaim::Taken(other) => copied
                .warnings
                .push(format!("alias `{tag}` already names another release ({other}); left out")),
        }
    }
    // The record that a tag pipeline tagged it travels with it (see aliases::tagged_marker).
    let marker = aliases::tagged_marker(&commit);
    if from.resolve_tag(&marker).await?.as_ref() == Some(digest) {
        to.set_tag(&marker, digest, &bytes).await?;
    }
    copy_signatures(from, to, digest, &mut copied).await?;
    Ok(copied)
}

async fn copy_blobs(
    from: &Store,
    to: &Store,
    descriptors: &[&Descriptor],
    copied: &mut Copied,
) -> Result<(), StoreError> {
    let uploads = descriptors.iter().map(|descriptor| async move {
        if to.has_blob(&descriptor.digest).await? {
            return Ok::<_, StoreError>(0);
        }
        let bytes = from.fetch_blob(descriptor).await?;
        to.put_blob(&descriptor.digest, &bytes).await?;
        Ok(bytes.len() as u64)
    });
    for size in futures_util::future::try_join_all(uploads).await? {
        if size > 0 {
            copied.blobs_uploaded += 1;
            copied.bytes_uploaded += size;
        }
    }
    Ok(())
}

fn descriptor(digest: Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: "application/octet-stream".into(),
        digest,
        size,
        annotations: Default::default(),
    }
}

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn too_large(from: &Store, tag: &str) -> StoreError {
    StoreError::Registry {
        location: from.location(),
        operation: format!("copying {tag}"),
        reason: format!(
            "its signatures are larger, or more, than signatures are (payloads over {} bytes, or over {} of them)",
            classic::MAX_PAYLOAD_BYTES,
            classic::MAX_LAYERS
        ),
    }
}

/// The `.sig` image and every referrer of `digest`, with their blobs; the destination's
/// `.sig` image keeps its own signatures too, and its referrers index gains the copies.
async fn copy_signatures(
    from: &Store,
    to: &Store,
    digest: &Digest,
    copied: &mut Copied,
) -> Result<(), StoreError> {
    let tag = classic::tag(digest);
    if let Some(bytes) = from.fetch_small_manifest_by_tag(&tag).await? {
        let theirs = classic::layers(&bytes).unwrap_or_default();
        // Signature payloads are small: a layer claiming more is not copied, and the image
        // is not either (a registry cannot make a copy read without bound).
        let blobs: Vec<Descriptor> = theirs
            .iter()
            .filter_map(|l| {
                let digest = l.get("digest")?.as_str()?.parse().ok()?;
                Some(descriptor(digest, l.get("size")?.as_u64()?))
            })
            .collect();
        if blobs.iter().any(|b| b.size > classic::MAX_PAYLOAD_BYTES) {
            return Err(too_large(from, &tag));
        }
        let refs: Vec<&Descriptor> = blobs.iter().collect();
        copy_blobs(from, to, &refs, copied).await?;
        if signatures::add_classic_layers(to, &tag, theirs).await? {
            copied.signatures += 1;
        }
    }
    let fallback = bundle::fallback_tag(digest);
    let entries = signatures::referrer_entries(from, digest).await?;
    if entries.is_empty() {
        return Ok(());
    }
    let indexed_by_registry = to.referrers(digest).await?.is_some();
    let mut target_index =
        if indexed_by_registry { None } else { to.fetch_small_manifest_by_tag(&fallback).await? };
    let mut index_changed = false;
    for (referrer, _) in entries {
        let Some(bytes) = from.fetch_small_manifest(&referrer).await? else { continue };
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let blobs: Vec<Descriptor> = std::iter::once(&value["config"])
            .chain(value["layers"].as_array().into_iter().flatten())
            .filter_map(|d| {
                let digest = d.get("digest")?.as_str()?.parse().ok()?;
                Some(descriptor(digest, d.get("size")?.as_u64()?))
            })
            .collect();
        // Bundles are small: a referrer with a larger blob is not one to carry (an SBOM, say,
        // or a registry trying to make the copy read without bound).
        if blobs.iter().any(|b| b.size > bundle::MAX_BUNDLE_BYTES) {
            continue;
        }
        let refs: Vec<&Descriptor> = blobs.iter().collect();
        copy_blobs(from, to, &refs, copied).await?;
        to.put_manifest_as(referrer.as_str(), &bytes, MANIFEST).await?;
        if !indexed_by_registry
            && let Some(updated) =
                bundle::add_to_index(target_index.as_deref(), &referrer, bytes.len() as u64)
                    .map_err(|reason| StoreError::Registry {
                        location: to.location(),
                        operation: "copying signatures".into(),
                        reason,
                    })?
        {
            target_index = Some(updated);
            index_changed = true;
            copied.signatures += 1;
        }
    }
    if index_changed && let Some(index) = target_index {
        to.put_manifest_as(&fallback, &index, bundle::INDEX_MEDIA_TYPE).await?;
    }
    Ok(())
}
