//! Copying a container image (single or multi-platform, OCI or Docker) by digest between
//! stores, for `export --images` and `import`: every manifest and blob verified as it is
//! read, only the blobs the destination lacks uploaded, one blob in memory at a time.

use forge_release::Digest;
use forge_release::manifest::Descriptor;
use serde::Deserialize;

use crate::error::StoreError;
use crate::manifests::{IMAGE_MEDIA_TYPES, image_media_type};
use crate::registry::options::limits;
use crate::store::Store;

/// The largest image layer copied (held in memory while it is copied).
pub const MAX_LAYER_BYTES: u64 = 8 << 30;

/// The most platforms an image index may list (real ones list a handful).
pub const MAX_PLATFORMS: usize = 64;

/// What copying one image did.
#[derive(Debug, Clone, Default)]
pub struct ImageCopy {
    /// The image manifest's media type.
    pub media_type: &'static str,
    /// Blobs uploaded (the others were there).
    pub blobs_uploaded: usize,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
}

#[derive(Deserialize)]
struct Parts {
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

fn refused(from: &Store, digest: &Digest, reason: String) -> StoreError {
    StoreError::Registry {
        location: from.location(),
        operation: format!("copying image {digest}"),
        reason,
    }
}

/// Copies the image `digest` from `from` to `to`, platforms and blobs first, its manifest
/// last (so the destination never names an image it does not hold whole).
pub async fn copy_image(
    from: &Store,
    to: &Store,
    digest: &Digest,
) -> Result<ImageCopy, StoreError> {
    copy_manifest(from, to, digest, true).await
}

async fn copy_manifest(
    from: &Store,
    to: &Store,
    digest: &Digest,
    may_be_index: bool,
) -> Result<ImageCopy, StoreError> {
    let bytes = from.fetch_manifest(digest).await?;
    let media_type = image_media_type(&bytes).ok_or_else(|| {
        refused(
            from,
            digest,
            format!("not a container image (one of {})", IMAGE_MEDIA_TYPES.join(", ")),
        )
    })?;
    let parts: Parts = serde_json::from_slice(&bytes)
        .map_err(|e| refused(from, digest, format!("its manifest does not parse: {e}")))?;
    let mut copy = ImageCopy { media_type, ..ImageCopy::default() };
    let is_index = media_type == IMAGE_MEDIA_TYPES[1] || media_type == IMAGE_MEDIA_TYPES[3];
    if is_index {
        if !may_be_index {
            return Err(refused(from, digest, "an index inside an index".into()));
        }
        if parts.manifests.len() > MAX_PLATFORMS {
            return Err(refused(from, digest, format!("more than {MAX_PLATFORMS} platforms")));
        }
        for platform in &parts.manifests {
            if platform.size > limits::MANIFEST_BYTES {
                return Err(refused(
                    from,
                    digest,
                    format!("{} is too large for a manifest", platform.digest),
                ));
            }
            let child = Box::pin(copy_manifest(from, to, &platform.digest, false)).await?;
            copy.blobs_uploaded += child.blobs_uploaded;
            copy.bytes_uploaded += child.bytes_uploaded;
        }
    } else {
        for blob in parts.config.iter().chain(&parts.layers) {
            if blob.size > MAX_LAYER_BYTES {
                return Err(refused(
                    from,
                    digest,
                    format!("{} is larger than {MAX_LAYER_BYTES} bytes", blob.digest),
                ));
            }
            if to.has_blob(&blob.digest).await? {
                continue;
            }
            let blob_bytes = from.fetch_blob(blob).await?;
            to.put_blob(&blob.digest, &blob_bytes).await?;
            copy.blobs_uploaded += 1;
            copy.bytes_uploaded += blob_bytes.len() as u64;
        }
    }
    to.put_manifest_as(digest.as_str(), &bytes, media_type).await?;
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::LayoutStore;

    const MANIFEST: &str = IMAGE_MEDIA_TYPES[0];
    const INDEX: &str = IMAGE_MEDIA_TYPES[1];

    /// Stores `value` as a manifest in `layout`; its descriptor.
    fn put(layout: &LayoutStore, media_type: &str, value: serde_json::Value) -> serde_json::Value {
        let bytes = value.to_string().into_bytes();
        let digest = Digest::of(&bytes);
        layout.write_blob(&digest, &bytes).expect("write");
        serde_json::json!({"mediaType": media_type, "digest": digest.to_string(), "size": bytes.len()})
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(future)
    }

    fn copy(
        from: &LayoutStore,
        digest: &serde_json::Value,
    ) -> (Result<ImageCopy, StoreError>, Store) {
        let to = tempfile::tempdir().expect("dir").keep();
        let to = Store::Layout(LayoutStore::new(to));
        let digest: Digest = digest["digest"].as_str().expect("digest").parse().expect("digest");
        let copied = block_on(copy_image(&Store::Layout(from.clone()), &to, &digest));
        (copied, to)
    }

    /// What a hostile registry might serve as an image: an index inside an index, an index of
    /// too many platforms, a layer claiming more than any layer; each refused before anything
    /// is fetched for it, and the destination never gets the manifest.
    #[test]
    fn hostile_images_are_refused_before_their_blobs_are_read() {
        let dir = tempfile::tempdir().expect("dir");
        let source = LayoutStore::new(dir.path());
        let config =
            put(&source, "application/vnd.oci.image.config.v1+json", serde_json::json!({}));
        let huge = serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": format!("sha256:{}", "a".repeat(64)), "size": MAX_LAYER_BYTES + 1});
        let oversized = put(
            &source,
            MANIFEST,
            serde_json::json!({"schemaVersion": 2, "config": config, "layers": [huge]}),
        );
        let image = put(
            &source,
            MANIFEST,
            serde_json::json!({"schemaVersion": 2, "config": config, "layers": []}),
        );
        let inner =
            put(&source, INDEX, serde_json::json!({"schemaVersion": 2, "manifests": [image]}));
        let nested =
            put(&source, INDEX, serde_json::json!({"schemaVersion": 2, "manifests": [inner]}));
        let many = vec![image.clone(); MAX_PLATFORMS + 1];
        let crowded =
            put(&source, INDEX, serde_json::json!({"schemaVersion": 2, "manifests": many}));
        let other = put(&source, MANIFEST, serde_json::json!({"mediaType": "application/x-other"}));
        for (hostile, says) in [
            (&oversized, "is larger than"),
            (&nested, "an index inside an index"),
            (&crowded, "platforms"),
            (&other, "not a container image"),
        ] {
            let (copied, to) = copy(&source, hostile);
            let error = copied.expect_err("refused").to_string();
            assert!(error.contains(says), "{error}");
            let digest: Digest = hostile["digest"].as_str().expect("d").parse().expect("d");
            assert!(!block_on(to.has_blob(&digest)).expect("has"), "{says}");
        }
        // The same index, well formed, copies whole.
        let (copied, to) = copy(&source, &inner);
        assert_eq!(copied.expect("copied").media_type, INDEX);
        let digest: Digest = inner["digest"].as_str().expect("d").parse().expect("d");
        assert!(block_on(to.has_blob(&digest)).expect("has"));
    }
}
