//! The on-disk cache: one OCI image layout of verified releases, keyed by manifest digest.
//!
//! Blobs are content-addressed and written by temp file + rename, so concurrent `generate`
//! processes and a kill at any instant leave only whole files (a torn temp file is never
//! renamed into place). Every read is verified against its digest, and anything that fails is
//! treated as a miss and fetched again. Releases are immutable, so image+commit → digest is
//! remembered too: a warm generate makes no network request.

use std::path::{Path, PathBuf};

use forge_release::Digest;
use forge_release::store::{LayoutStore, RawRelease, Store};
use forge_release::tarball::Limits;

use crate::error::CmpError;

/// The plugin's cache.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    store: Store,
}

impl Cache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: &Path) -> Self {
        Cache { dir: dir.to_owned(), store: Store::Layout(LayoutStore::new(dir)) }
    }

    /// Tag remembering the digest of `image` at `commit`: a short hash of the image, then the
    /// commit (fits the 128-character OCI tag limit).
    fn commit_key(image: &str, commit: &str) -> String {
        format!("{}-{commit}", &Digest::of(image.as_bytes()).hex()[..16])
    }

    /// The digest remembered for `image` at `commit`.
    pub async fn digest_for(&self, image: &str, commit: &str) -> Option<Digest> {
        self.store.resolve_tag(&Self::commit_key(image, commit)).await.ok().flatten()
    }

    /// A cached release, if present and intact.
    pub async fn get(&self, digest: &Digest, limits: &Limits) -> Option<RawRelease> {
        self.store.fetch_raw(digest, limits).await.ok()
    }

    /// Stores a verified release and remembers its digest for `image` at `commit`.
    pub async fn put(
        &self,
        image: &str,
        commit: &str,
        release: &RawRelease,
    ) -> Result<(), CmpError> {
        let fail = |e: forge_release::store::StoreError| CmpError::Cache {
            dir: self.dir.clone(),
            reason: e.to_string(),
        };
        release.copy_to(&self.store).await.map_err(fail)?;
        // A different digest under the key cannot happen for an immutable release; if it
        // does, the pointer's own checks decide and the cache keeps the first answer.
        self.store
            .claim_tag(&Self::commit_key(image, commit), &release.digest)
            .await
            .map_err(fail)?;
        Ok(())
    }
}
