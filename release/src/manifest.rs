//! The OCI image manifest of a release: building its exact bytes and checking a pulled one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::FormatError;

/// `application/vnd.oci.image.manifest.v1+json`.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of the small release config blob.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.forge.release.config.v1+json";
/// Layer 0: the standard OCI gzip layer type, so Argo CD's native OCI source and Flux read it.
pub const RESOURCES_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Layer 1: the release metadata JSON, uncompressed.
pub const METADATA_MEDIA_TYPE: &str = "application/vnd.forge.release.metadata.v1+json";
/// File name of layer 0 for clients that name pulled layers by their title (oras).
pub const RESOURCES_TITLE: &str = "resources.tar.gz";
/// File name of layer 1.
pub const METADATA_TITLE: &str = "release.json";

/// Standard annotation keys.
pub mod annotations {
    /// Layer or image title.
    pub const TITLE: &str = "org.opencontainers.image.title";
    /// Commit SHA.
    pub const REVISION: &str = "org.opencontainers.image.revision";
    /// Source repository URL.
    pub const SOURCE: &str = "org.opencontainers.image.source";
    /// Commit time, RFC 3339 UTC.
    pub const CREATED: &str = "org.opencontainers.image.created";
    /// Release number.
    pub const VERSION: &str = "org.opencontainers.image.version";
    /// forge release repository (e.g. `company/monorepo`).
    pub const FORGE_REPOSITORY: &str = "dev.forge.release.repository";
    /// forge project name.
    pub const FORGE_PROJECT: &str = "dev.forge.release.project";
    /// forge release number.
    pub const FORGE_NUMBER: &str = "dev.forge.release.number";
    /// Comma-separated aliases given at creation.
    pub const FORGE_ALIASES: &str = "dev.forge.release.aliases";
    /// Trigger type (`branch_push`, `tag`, `manual`).
    pub const FORGE_TRIGGER: &str = "dev.forge.release.trigger";
    /// Tag name inside an OCI image layout's index.json.
    pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
}

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes of the referenced content.
    pub size: u64,
    /// Optional annotations, sorted for deterministic output.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// A descriptor for `bytes` of `media_type`.
    pub fn for_bytes(media_type: &str, bytes: &[u8]) -> Self {
        Descriptor {
            media_type: media_type.to_owned(),
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
            annotations: BTreeMap::new(),
        }
    }

    /// Checks that `bytes` are exactly the content this descriptor names.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), FormatError> {
        if bytes.len() as u64 != self.size {
            return Err(FormatError::SizeMismatch {
                digest: self.digest.clone(),
                expected: self.size,
                actual: bytes.len() as u64,
            });
        }
        let actual = Digest::of(bytes);
        if actual != self.digest {
            return Err(FormatError::DigestMismatch { expected: self.digest.clone(), actual });
        }
        Ok(())
    }
}

/// An OCI image manifest (only the fields releases use; unknown fields are ignored on read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// Always [`MANIFEST_MEDIA_TYPE`] for releases.
    #[serde(default)]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// Layers in order.
    pub layers: Vec<Descriptor>,
    /// Manifest annotations, sorted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// The exact bytes to push; their digest is the release's manifest digest.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest always serialises")
    }

    /// Parses manifest bytes, checks them against `expected` (when pinned) and checks that they
    /// have the shape of a forge release: media types, layer count and order.
    pub fn parse_release(bytes: &[u8], expected: Option<&Digest>) -> Result<Manifest, FormatError> {
        if let Some(expected) = expected {
            let actual = Digest::of(bytes);
            if &actual != expected {
                return Err(FormatError::DigestMismatch { expected: expected.clone(), actual });
            }
        }
        let manifest: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| FormatError::Json { what: "image manifest", source: e })?;
        manifest.check_release_shape()?;
        Ok(manifest)
    }

    fn check_release_shape(&self) -> Result<(), FormatError> {
        let not_a_release = |reason: String| FormatError::NotARelease { reason };
        if self.schema_version != 2 {
            return Err(not_a_release(format!(
                "schemaVersion is {}, expected 2",
                self.schema_version
            )));
        }
        if let Some(media_type) = &self.media_type
            && media_type != MANIFEST_MEDIA_TYPE
        {
            return Err(not_a_release(format!("manifest media type is `{media_type}`")));
        }
        if self.config.media_type != CONFIG_MEDIA_TYPE {
            return Err(not_a_release(format!(
                "config media type is `{}`, expected `{CONFIG_MEDIA_TYPE}`",
                self.config.media_type
            )));
        }
        let types: Vec<&str> = self.layers.iter().map(|l| l.media_type.as_str()).collect();
        if types != [RESOURCES_MEDIA_TYPE, METADATA_MEDIA_TYPE] {
            return Err(not_a_release(format!(
                "layers are {types:?}, expected [{RESOURCES_MEDIA_TYPE}, {METADATA_MEDIA_TYPE}]"
            )));
        }
        Ok(())
    }

    /// Layer 0, the resources tarball.
    pub fn resources(&self) -> &Descriptor {
        &self.layers[0]
    }

    /// Layer 1, the metadata JSON.
    pub fn metadata(&self) -> &Descriptor {
        &self.layers[1]
    }

    /// A manifest annotation, if present.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }
}
