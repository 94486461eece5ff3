//! One project's release stream, in an OCI image layout directory or a registry repository.

use bytes::Bytes;
use forge_release::Digest;
use forge_release::FormatError;
use forge_release::image::ReleaseImage;
use forge_release::manifest::{Descriptor, Manifest};
use forge_release::metadata::ReleaseConfig;
use forge_release::reference::{ProjectLocation, StoreRoot};
use forge_release::tarball::Limits;
use forge_release::verify::{self, ReleaseHead, VerifiedRelease};

use crate::error::{StoreError, TagClaim};
use crate::layout::LayoutStore;
use crate::registry::options::limits;
use crate::registry::{RegistryOptions, RegistryStore};

/// One project's release stream in some store.
#[derive(Debug, Clone)]
pub enum Store {
    /// An OCI image layout directory.
    Layout(LayoutStore),
    /// A repository in an OCI registry.
    Registry(RegistryStore),
}

impl Store {
    /// Opens one project's release stream.
    pub fn open(
        location: &ProjectLocation,
        options: &RegistryOptions,
    ) -> Result<Store, StoreError> {
        match location {
            ProjectLocation::LayoutDir(dir) => Ok(Store::Layout(LayoutStore::new(dir))),
            ProjectLocation::InRoot { root: StoreRoot::Layouts(root), path } => {
                Ok(Store::Layout(LayoutStore::new(root.join(path))))
            }
            ProjectLocation::InRoot { root: StoreRoot::Registry(registry), path } => {
                // `registry` may carry a path prefix: `host/prefix`.
                let (host, prefix) = registry.split_once('/').unwrap_or((registry, ""));
                let repository =
                    if prefix.is_empty() { path.clone() } else { format!("{prefix}/{path}") };
                Ok(Store::Registry(RegistryStore::new(host, &repository, options)?))
            }
        }
    }

    /// Where this store is, for messages.
    pub fn location(&self) -> String {
        match self {
            Store::Layout(layout) => format!("oci:{}", layout.dir().display()),
            Store::Registry(registry) => registry.location(),
        }
    }

    /// Every tag, sorted.
    pub async fn list_tags(&self) -> Result<Vec<String>, StoreError> {
        match self {
            Store::Layout(layout) => {
                Ok(layout.list_tags()?.into_iter().map(|(tag, _)| tag).collect())
            }
            Store::Registry(registry) => registry.list_tags().await,
        }
    }

    /// The manifest digest a tag names, if the tag exists.
    pub async fn resolve_tag(&self, tag: &str) -> Result<Option<Digest>, StoreError> {
        match self {
            Store::Layout(layout) => layout.resolve_tag(tag),
            Store::Registry(registry) => registry.resolve_tag(tag).await,
        }
    }

    /// Fetches raw manifest bytes, verified against `digest`.
    pub async fn fetch_manifest(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        match self {
            Store::Layout(layout) => layout.read_blob(digest, limits::MANIFEST_BYTES),
            Store::Registry(registry) => registry.fetch_manifest(digest).await,
        }
    }

    /// Fetches the manifest a tag names and its digest (computed from the bytes).
    pub async fn fetch_manifest_by_tag(
        &self,
        tag: &str,
    ) -> Result<Option<(Vec<u8>, Digest)>, StoreError> {
        match self {
            Store::Layout(_) => match self.resolve_tag(tag).await? {
                Some(digest) => Ok(Some((self.fetch_manifest(&digest).await?, digest))),
                None => Ok(None),
            },
            Store::Registry(registry) => registry.fetch_manifest_by_tag(tag).await,
        }
    }

    /// Fetches a blob, verified against its descriptor (digest and size).
    pub async fn fetch_blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>, StoreError> {
        match self {
            // Hashed as it is read; its size is the descriptor's concern.
            Store::Layout(layout) => {
                let bytes = layout.read_blob(&descriptor.digest, descriptor.size)?;
                if bytes.len() as u64 != descriptor.size {
                    return Err(FormatError::SizeMismatch {
                        digest: descriptor.digest.clone(),
                        expected: descriptor.size,
                        actual: bytes.len() as u64,
                    }
                    .into());
                }
                Ok(bytes)
            }
            // Hashed and sized as it streamed in.
            Store::Registry(registry) => registry.fetch_blob(descriptor).await,
        }
    }

    /// Whether the store has a blob.
    pub async fn has_blob(&self, digest: &Digest) -> Result<bool, StoreError> {
        match self {
            Store::Layout(layout) => Ok(layout.has_blob(digest)),
            Store::Registry(registry) => registry.has_blob(digest).await,
        }
    }

    /// Stores a blob (or untagged manifest) under its digest.
    pub async fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        match self {
            Store::Layout(layout) => layout.write_blob(digest, bytes),
            Store::Registry(registry) => registry.put_blob(digest, bytes).await,
        }
    }

    /// Stores manifest bytes under their digest, without a tag.
    pub async fn put_manifest(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        match self {
            Store::Layout(layout) => layout.write_blob(digest, bytes),
            Store::Registry(registry) => registry.put_manifest(digest, bytes).await,
        }
    }

    /// Points `tag` at the manifest `manifest` (whose digest is `digest`, stored too) unless
    /// the tag already names another manifest. A registry tags by uploading the manifest again.
    pub async fn claim_tag(
        &self,
        tag: &str,
        digest: &Digest,
        manifest: &[u8],
    ) -> Result<TagClaim, StoreError> {
        match self {
            Store::Layout(layout) => {
                layout.write_blob(digest, manifest)?;
                layout.claim_tag(tag, digest)
            }
            Store::Registry(registry) => registry.claim_tag(tag, digest, manifest).await,
        }
    }

    /// Points `tag` at the manifest `manifest` (stored too), replacing what it named (only
    /// for tags this publisher owns, such as its own claims and numbers).
    pub async fn set_tag(
        &self,
        tag: &str,
        digest: &Digest,
        manifest: &[u8],
    ) -> Result<(), StoreError> {
        match self {
            Store::Layout(layout) => {
                layout.write_blob(digest, manifest)?;
                layout.set_tag(tag, digest)
            }
            Store::Registry(registry) => registry.set_tag(tag, manifest).await,
        }
    }

    /// Fetches and checks a release's manifest, config and metadata (never the resources).
    pub async fn fetch_head(&self, digest: &Digest) -> Result<ReleaseHead, StoreError> {
        let bytes = self.fetch_manifest(digest).await?;
        let manifest = Manifest::parse_release(&bytes, Some(digest))?;
        check_sizes(&manifest, &Limits::default())?;
        let (config, metadata) = self.fetch_config_and_metadata(&manifest).await?;
        Ok(verify::verify_head(digest.clone(), manifest, &config, &metadata)?)
    }

    /// The config and metadata blobs of `manifest`. The config follows from the metadata when
    /// forge-pack wrote both ([`ReleaseConfig::implied`]: a request saved, and each costs a
    /// registry milliseconds of work); else it is fetched once the metadata is in.
    async fn fetch_config_and_metadata(
        &self,
        manifest: &Manifest,
    ) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
        let metadata = self.fetch_blob(manifest.metadata()).await?;
        let config = match ReleaseConfig::implied(&manifest.config, &metadata) {
            Some(config) => config,
            None => self.fetch_blob(&manifest.config).await?,
        };
        Ok((config, metadata))
    }

    /// Fetches and fully verifies a release.
    pub async fn fetch_release(
        &self,
        digest: &Digest,
        limits: &Limits,
    ) -> Result<VerifiedRelease, StoreError> {
        Ok(self.fetch_image(digest, limits).await?.verify(limits)?)
    }

    /// Fetches a release's manifest and blobs, each checked against its digest, without
    /// unpacking; [`ReleaseImage::verify`] does the rest.
    pub async fn fetch_image(
        &self,
        digest: &Digest,
        limits: &Limits,
    ) -> Result<ReleaseImage, StoreError> {
        let manifest_bytes = self.fetch_manifest(digest).await?;
        self.fetch_blobs_of(manifest_bytes, digest, limits).await
    }

    /// [`Self::fetch_image`] for a manifest already fetched (by tag, say): its blobs.
    pub async fn fetch_blobs_of(
        &self,
        manifest_bytes: Vec<u8>,
        digest: &Digest,
        limits: &Limits,
    ) -> Result<ReleaseImage, StoreError> {
        let (image, ()) = self.fetch_blobs_with(manifest_bytes, digest, limits, |_| ()).await?;
        Ok(image)
    }

    /// [`Self::fetch_blobs_of`], handing the resources layer (checked against its digest) to
    /// `on_layer` as soon as it is in, while the other blobs may still be on their way: the
    /// layer is the bulk of the work on a release, and its unpacking need not wait for them.
    pub async fn fetch_blobs_with<T>(
        &self,
        manifest_bytes: Vec<u8>,
        digest: &Digest,
        limits: &Limits,
        on_layer: impl FnOnce(&Bytes) -> T,
    ) -> Result<(ReleaseImage, T), StoreError> {
        let manifest = Manifest::parse_release(&manifest_bytes, Some(digest))?;
        check_sizes(&manifest, limits)?;
        let layer = async {
            let layer = Bytes::from(self.fetch_blob(manifest.resources()).await?);
            let handed = on_layer(&layer);
            Ok::<_, StoreError>((layer, handed))
        };
        // The metadata rides alongside the resources layer, which is asked for first (on the
        // connection already open).
        let small = self.fetch_config_and_metadata(&manifest);
        let ((resources, handed), (config, metadata)) =
            futures_util::future::try_join(layer, small).await?;
        let image = ReleaseImage {
            digest: digest.clone(),
            manifest_bytes,
            manifest,
            config,
            metadata,
            resources,
        };
        Ok((image, handed))
    }
}

/// Refuses a release whose blobs are said to be larger than any reader accepts, before a
/// byte of them is fetched.
pub(crate) fn check_sizes(manifest: &Manifest, limits: &Limits) -> Result<(), FormatError> {
    for (size, what, limit) in [
        (manifest.config.size, "config bytes", limits.max_config_bytes),
        (manifest.metadata().size, "metadata bytes", limits.max_metadata_bytes),
        (manifest.resources().size, "compressed bytes", limits.max_layer_bytes),
    ] {
        if size > limit {
            return Err(FormatError::LimitExceeded { what, limit });
        }
    }
    Ok(())
}

/// Told `(done, total)` bytes as blobs finish uploading (or turn out to be there already).
pub type UploadProgress<'a> = &'a (dyn Fn(u64, u64) + Sync);

impl Store {
    /// Uploads the blobs of `image` the store lacks, all at once (the small blobs ride
    /// alongside the resources layer), then its manifest; returns the bytes sent. Untagged.
    pub async fn put_image(
        &self,
        image: &ReleaseImage,
        progress: UploadProgress<'_>,
    ) -> Result<u64, StoreError> {
        let sent = self.put_blobs(image, progress).await?;
        self.put_manifest(&image.digest, &image.manifest_bytes).await?;
        Ok(sent + image.manifest_bytes.len() as u64)
    }

    /// Uploads the blobs of `image` the store lacks, all at once; returns the bytes sent.
    pub async fn put_blobs(
        &self,
        image: &ReleaseImage,
        progress: UploadProgress<'_>,
    ) -> Result<u64, StoreError> {
        use std::sync::atomic::{AtomicU64, Ordering};
        let blobs = image.blobs();
        let total: u64 = blobs.iter().map(|(_, bytes)| bytes.len() as u64).sum();
        let done = AtomicU64::new(0);
        progress(0, total);
        let sent = futures_util::future::try_join_all(blobs.into_iter().map(|(blob, bytes)| {
            let done = &done;
            async move {
                let missing = !self.has_blob(&blob.digest).await?;
                if missing {
                    self.put_blob(&blob.digest, bytes).await?;
                }
                let len = bytes.len() as u64;
                progress(done.fetch_add(len, Ordering::Relaxed) + len, total);
                Ok::<u64, StoreError>(if missing { len } else { 0 })
            }
        }))
        .await?;
        Ok(sent.iter().sum())
    }
}
