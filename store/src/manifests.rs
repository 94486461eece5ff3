//! Manifests beside a release, in either kind of store: signature images, referrers and
//! their index, container images carried for an air-gapped site. Their bytes are small
//! (signatures) or bounded like any manifest (images), and verified against their digest.

use forge_release::Digest;

use crate::error::StoreError;
use crate::registry::SMALL_MANIFEST_BYTES;
use crate::store::Store;

/// The manifest media types a container image may have (OCI and Docker, single and
/// multi-platform); `&'static` because a registry upload names one.
pub const IMAGE_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// The media type `bytes` declare (an OCI manifest may leave it out: an index is known by
/// its `manifests`), if it is one of [`IMAGE_MEDIA_TYPES`].
pub fn image_media_type(bytes: &[u8]) -> Option<&'static str> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let declared = match value.get("mediaType").and_then(serde_json::Value::as_str) {
        Some(declared) => declared,
        None if value.get("manifests").is_some() => IMAGE_MEDIA_TYPES[1],
        None => IMAGE_MEDIA_TYPES[0],
    };
    IMAGE_MEDIA_TYPES.into_iter().find(|known| *known == declared)
}

impl Store {
    /// A small manifest (at most [`SMALL_MANIFEST_BYTES`]) by digest, verified; `None` if
    /// the store has none.
    pub async fn fetch_small_manifest(
        &self,
        digest: &Digest,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Store::Layout(layout) if !layout.has_blob(digest) => Ok(None),
            Store::Layout(layout) => layout.read_blob(digest, SMALL_MANIFEST_BYTES).map(Some),
            Store::Registry(registry) => registry.fetch_small_manifest(digest).await,
        }
    }

    /// A small manifest (at most [`SMALL_MANIFEST_BYTES`]) by tag; `None` if the tag is not
    /// there.
    pub async fn fetch_small_manifest_by_tag(
        &self,
        tag: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Store::Layout(layout) => match layout.resolve_tag(tag)? {
                Some(digest) => layout.read_blob(&digest, SMALL_MANIFEST_BYTES).map(Some),
                None => Ok(None),
            },
            Store::Registry(registry) => registry.fetch_small_manifest_by_tag(tag).await,
        }
    }

    /// Stores a manifest of `media_type` under `reference`: its digest, or a tag.
    pub async fn put_manifest_as(
        &self,
        reference: &str,
        bytes: &[u8],
        media_type: &'static str,
    ) -> Result<(), StoreError> {
        match self {
            Store::Layout(layout) => {
                let digest = Digest::of(bytes);
                layout.write_blob(&digest, bytes)?;
                if reference != digest.as_str() {
                    layout.set_tag_as(reference, &digest, media_type)?;
                }
                Ok(())
            }
            Store::Registry(registry) => {
                registry.put_manifest_as(reference, bytes, media_type).await
            }
        }
    }

    /// The referrers of `digest` as the registry's referrers API lists them; `None` where
    /// there is no such API (a layout keeps the tag schema's index, as older registries do).
    pub async fn referrers(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Store::Layout(_) => Ok(None),
            Store::Registry(registry) => registry.referrers(digest).await,
        }
    }
}
