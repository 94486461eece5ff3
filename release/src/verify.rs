//! Verification of a fetched release: every digest, size, media type, version and file.

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::error::FormatError;
use crate::manifest::Manifest;
use crate::metadata::{ReleaseConfig, ReleaseMetadata};
use crate::tarball::{self, Limits, TarFile, Unpacked};

/// The manifest, config and metadata of a release, checked; enough for `inspect` and `list`.
#[derive(Debug, Clone)]
pub struct ReleaseHead {
    /// Manifest digest.
    pub digest: Digest,
    /// The manifest.
    pub manifest: Manifest,
    /// The config blob.
    pub config: ReleaseConfig,
    /// The metadata.
    pub metadata: ReleaseMetadata,
}

/// A fully verified release: its head and its files, each checked against the metadata.
#[derive(Debug, Clone)]
pub struct VerifiedRelease {
    /// Manifest, config and metadata.
    pub head: ReleaseHead,
    /// Files in tarball (path) order.
    pub files: Vec<TarFile>,
}

/// Checks the config and metadata blobs against `manifest` and parses them.
pub fn verify_head(
    digest: Digest,
    manifest: Manifest,
    config: &[u8],
    metadata: &[u8],
) -> Result<ReleaseHead, FormatError> {
    manifest.config.verify(config)?;
    manifest.metadata().verify(metadata)?;
    let config = ReleaseConfig::parse(config)?;
    let metadata = ReleaseMetadata::parse(metadata)?;
    if metadata.source.commit != config.commit
        || metadata.release.project != config.project
        || metadata.release.repository != config.repository
    {
        return Err(FormatError::NotARelease {
            reason: "config and metadata disagree on repository, project or commit".into(),
        });
    }
    Ok(ReleaseHead { digest, manifest, config, metadata })
}

/// Checks the resources layer against the manifest and every file against the metadata.
pub fn verify_resources(
    head: ReleaseHead,
    layer: &[u8],
    limits: &Limits,
) -> Result<VerifiedRelease, FormatError> {
    verify_resources_inspecting(head, layer, limits, |_| ()).map(|(release, _)| release)
}

/// Like [`verify_resources`], also handing each file to `inspect` as it is unpacked (see
/// [`tarball::unpack_inspecting`]); what `inspect` returns is only to be trusted once this
/// returns `Ok`.
pub fn verify_resources_inspecting<R>(
    head: ReleaseHead,
    layer: &[u8],
    limits: &Limits,
    inspect: impl FnMut(&TarFile) -> R,
) -> Result<(VerifiedRelease, Vec<R>), FormatError> {
    head.manifest.resources().verify(layer)?;
    let (unpacked, inspected) = tarball::unpack_inspecting(layer, limits, inspect)?;
    Ok((check_files(head, unpacked)?, inspected))
}

/// Checks the files unpacked from a release's resources layer, whose bytes were checked
/// against the manifest's digest for it, against the metadata: the rest of
/// [`verify_resources`], for a caller that unpacked the layer while the other blobs were on
/// their way.
pub fn check_files(head: ReleaseHead, unpacked: Unpacked) -> Result<VerifiedRelease, FormatError> {
    // The tar stream's digest (recorded in the metadata) is not checked again: the layer's bytes
    // were checked against their digest, and inflating them gives one stream only.
    let recorded = &head.metadata.resources;
    let mut expected: BTreeMap<&str, &Digest> =
        recorded.objects.iter().map(|o| (o.path.as_str(), &o.sha256)).collect();
    for file in &unpacked.files {
        let Some(sha) = expected.remove(file.path.as_str()) else {
            return Err(FormatError::ContentMismatch {
                path: file.path.clone(),
                reason: "file is not listed in the metadata".into(),
            });
        };
        let actual = &file.sha256;
        if actual != sha {
            return Err(FormatError::ContentMismatch {
                path: file.path.clone(),
                reason: format!("content hashes to {actual}, metadata records {sha}"),
            });
        }
    }
    if let Some((path, _)) = expected.into_iter().next() {
        return Err(FormatError::ContentMismatch {
            path: path.to_owned(),
            reason: "listed in the metadata but missing from the tarball".into(),
        });
    }
    if unpacked.files.is_empty() {
        return Err(FormatError::NotARelease { reason: "the release has no objects".into() });
    }
    Ok(VerifiedRelease { head, files: unpacked.files })
}
