//! A release as bytes: its manifest and three blobs, as packaged or as fetched from a store.

use bytes::Bytes;

use crate::digest::Digest;
use crate::error::FormatError;
use crate::manifest::{Descriptor, Manifest};
use crate::tarball::{Limits, TarFile};
use crate::verify::{self, ReleaseHead, VerifiedRelease};

/// A release's manifest and blobs. Packaging makes one; a store fetches one, each part
/// checked against its digest; [`ReleaseImage::verify`] checks the rest.
#[derive(Debug, Clone)]
pub struct ReleaseImage {
    /// The manifest digest: the release's content identity.
    pub digest: Digest,
    /// The manifest's exact bytes.
    pub manifest_bytes: Vec<u8>,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// Config blob.
    pub config: Vec<u8>,
    /// Metadata blob (layer 1).
    pub metadata: Vec<u8>,
    /// Resources layer (layer 0, tar+gzip); shared, not copied, between releases made from
    /// one layer.
    pub resources: Bytes,
}

impl ReleaseImage {
    /// The blobs with their descriptors, config first.
    pub fn blobs(&self) -> [(&Descriptor, &[u8]); 3] {
        [
            (&self.manifest.config, &self.config),
            (self.manifest.resources(), &self.resources),
            (self.manifest.metadata(), &self.metadata),
        ]
    }

    /// Checks versions, metadata and every file.
    pub fn verify(&self, limits: &Limits) -> Result<VerifiedRelease, FormatError> {
        self.verify_inspecting(limits, |_| ()).map(|(release, _)| release)
    }

    /// Like [`ReleaseImage::verify`], also handing each file to `inspect` as it is unpacked
    /// (see [`verify::verify_resources_inspecting`]).
    pub fn verify_inspecting<R>(
        &self,
        limits: &Limits,
        inspect: impl FnMut(&TarFile) -> R,
    ) -> Result<(VerifiedRelease, Vec<R>), FormatError> {
        verify::verify_resources_inspecting(self.verify_head()?, &self.resources, limits, inspect)
    }

    /// Checks the config and metadata against the manifest (see [`verify::verify_head`]).
    pub fn verify_head(&self) -> Result<ReleaseHead, FormatError> {
        verify::verify_head(
            self.digest.clone(),
            self.manifest.clone(),
            &self.config,
            &self.metadata,
        )
    }
}
