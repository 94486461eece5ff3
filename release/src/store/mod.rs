//! Release stores: where one project's releases live. An OCI image layout directory today;
//! the same interface fronts OCI registries.

mod layout;

use std::path::PathBuf;

pub use layout::LayoutStore;

use crate::digest::Digest;
use crate::error::FormatError;
use crate::manifest::{Descriptor, Manifest};
use crate::reference::{ProjectLocation, StoreRoot};
use crate::registry::{RegistryOptions, RegistryStore};
use crate::tarball::{Limits, TarFile};
use crate::verify::{self, ReleaseHead, VerifiedRelease};

/// Failures of a release store; each names the location, digest or tag concerned.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Filesystem I/O failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A blob is missing.
    #[error("blob {digest} not found in {location}")]
    BlobNotFound {
        /// The missing digest.
        digest: Digest,
        /// The store.
        location: String,
    },
    /// Stored content does not match its digest.
    #[error(
        "content of {digest} in {location} hashes to {actual}: the store is corrupt or was tampered with"
    )]
    Tampered {
        /// The digest the content is stored under.
        digest: Digest,
        /// What it hashes to.
        actual: Digest,
        /// Where.
        location: String,
    },
    /// Store bookkeeping could not be read.
    #[error("corrupt store at {location}: {reason}")]
    Corrupt {
        /// The file or address.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// Content is not a valid release.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The store kind is not available in this build.
    /// A registry request failed.
    #[error("{location}: {operation} failed: {reason}")]
    Registry {
        /// `host/repository`.
        location: String,
        /// What was being done.
        operation: String,
        /// The registry's answer or the transport error.
        reason: String,
    },
    /// The registry refused the credentials (or their absence).
    #[error("{location}: access denied {}", if *anonymous { "(no credentials were found)" } else { "with the configured credentials" })]
    Unauthorized {
        /// `host/repository`.
        location: String,
        /// Whether the request was anonymous.
        anonymous: bool,
    },
    /// Store settings are invalid.
    #[error("{reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
}

/// The outcome of asking for a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagClaim {
    /// The tag now names our manifest.
    Claimed,
    /// The tag already named our manifest.
    AlreadyOurs,
    /// The tag names another manifest.
    Taken(Digest),
}

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
            Store::Layout(layout) => layout.read_blob(digest),
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
        let bytes = match self {
            Store::Layout(layout) => layout.read_blob(&descriptor.digest)?,
            Store::Registry(registry) => registry.fetch_blob(descriptor).await?,
        };
        descriptor.verify(&bytes)?;
        Ok(bytes)
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

    /// Points `tag` at manifest `digest` unless it already names another manifest.
    pub async fn claim_tag(&self, tag: &str, digest: &Digest) -> Result<TagClaim, StoreError> {
        match self {
            Store::Layout(layout) => layout.claim_tag(tag, digest),
            Store::Registry(registry) => registry.claim_tag(tag, digest).await,
        }
    }

    /// Points `tag` at manifest `digest`, replacing what it named (only for tags this
    /// publisher owns, such as its own commit tag).
    pub async fn set_tag(&self, tag: &str, digest: &Digest) -> Result<(), StoreError> {
        match self {
            Store::Layout(layout) => layout.set_tag(tag, digest),
            Store::Registry(registry) => registry.set_tag(tag, digest).await,
        }
    }

    /// Fetches and checks a release's manifest, config and metadata (never the resources).
    pub async fn fetch_head(&self, digest: &Digest) -> Result<ReleaseHead, StoreError> {
        let bytes = self.fetch_manifest(digest).await?;
        let manifest = Manifest::parse_release(&bytes, Some(digest))?;
        let config = self.fetch_blob(&manifest.config).await?;
        let metadata = self.fetch_blob(manifest.metadata()).await?;
        Ok(verify::verify_head(digest.clone(), manifest, &config, &metadata)?)
    }

    /// Fetches and fully verifies a release.
    pub async fn fetch_release(
        &self,
        digest: &Digest,
        limits: &Limits,
    ) -> Result<VerifiedRelease, StoreError> {
        self.fetch_raw(digest, limits).await?.verify(limits)
    }

    /// Fetches a release's manifest and blobs, each checked against its digest, without
    /// unpacking; [`RawRelease::verify`] does the rest.
    pub async fn fetch_raw(
        &self,
        digest: &Digest,
        limits: &Limits,
    ) -> Result<RawRelease, StoreError> {
        let manifest_bytes = self.fetch_manifest(digest).await?;
        let manifest = Manifest::parse_release(&manifest_bytes, Some(digest))?;
        if manifest.resources().size > limits.max_layer_bytes {
            return Err(FormatError::LimitExceeded {
                what: "compressed bytes",
                limit: limits.max_layer_bytes,
            }
            .into());
        }
        // All three at once: the small blobs ride alongside the resources layer, which is
        // asked for first (on the connection already open).
        let (resources, config, metadata) = futures_util::future::try_join3(
            self.fetch_blob(manifest.resources()),
            self.fetch_blob(&manifest.config),
            self.fetch_blob(manifest.metadata()),
        )
        .await?;
        Ok(RawRelease {
            digest: digest.clone(),
            manifest_bytes,
            manifest,
            config,
            metadata,
            resources,
        })
    }
}

/// A release as fetched: the manifest and its blobs, each matching its digest.
#[derive(Debug, Clone)]
pub struct RawRelease {
    /// Manifest digest.
    pub digest: Digest,
    /// Manifest bytes.
    pub manifest_bytes: Vec<u8>,
    /// Parsed manifest.
    pub manifest: Manifest,
    /// Config blob.
    pub config: Vec<u8>,
    /// Metadata blob.
    pub metadata: Vec<u8>,
    /// Resources layer.
    pub resources: Vec<u8>,
}

impl RawRelease {
    /// Checks versions, metadata and every file.
    pub fn verify(&self, limits: &Limits) -> Result<VerifiedRelease, StoreError> {
        self.verify_inspecting(limits, |_| ()).map(|(release, _)| release)
    }

    /// Like [`RawRelease::verify`], also handing each file to `inspect` as it is unpacked
    /// (see [`verify::verify_resources_inspecting`]).
    pub fn verify_inspecting<R>(
        &self,
        limits: &Limits,
        inspect: impl FnMut(&TarFile) -> R,
    ) -> Result<(VerifiedRelease, Vec<R>), StoreError> {
        let head = verify::verify_head(
            self.digest.clone(),
            self.manifest.clone(),
            &self.config,
            &self.metadata,
        )?;
        Ok(verify::verify_resources_inspecting(head, &self.resources, limits, inspect)?)
    }

    /// The blobs with their descriptors, config first (as [`PackagedRelease::blobs`]).
    ///
    /// [`PackagedRelease::blobs`]: crate::package::PackagedRelease::blobs
    pub fn blobs(&self) -> [(&Descriptor, &[u8]); 3] {
        [
            (&self.manifest.config, &self.config),
            (self.manifest.resources(), &self.resources),
            (self.manifest.metadata(), &self.metadata),
        ]
    }

    /// Writes the release into `store` (blobs, then the manifest), untagged.
    pub async fn copy_to(&self, store: &Store) -> Result<(), StoreError> {
        store.upload_release(&self.digest, &self.manifest_bytes, self.blobs(), &|_, _| {}).await?;
        Ok(())
    }
}

/// Told `(done, total)` bytes as blobs finish uploading (or turn out to be there already).
pub type UploadProgress<'a> = &'a (dyn Fn(u64, u64) + Sync);

impl Store {
    /// Uploads the blobs the store lacks, all at once (the small blobs ride alongside the
    /// resources layer), then the manifest; returns the bytes sent. Untagged.
    pub async fn upload_release(
        &self,
        digest: &Digest,
        manifest_bytes: &[u8],
        blobs: [(&Descriptor, &[u8]); 3],
        progress: UploadProgress<'_>,
    ) -> Result<u64, StoreError> {
        use std::sync::atomic::{AtomicU64, Ordering};
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
        self.put_manifest(digest, manifest_bytes).await?;
        Ok(sent.iter().sum::<u64>() + manifest_bytes.len() as u64)
    }
}
