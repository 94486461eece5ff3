//! The on-disk cache: one OCI image layout of verified releases, keyed by manifest digest.
//!
//! Blobs are content-addressed and written by temp file + rename, so concurrent `generate`
//! processes and a kill at any instant leave only whole files (a torn temp file is never
//! renamed into place). Every read is verified against its digest, and anything that fails is
//! treated as a miss and fetched again. Releases are immutable, so image+commit → digest is
//! remembered too: a warm generate makes no network request. Nothing is synced to disk: after a
//! machine crash a file may hold anything, which the checks on reading turn into a miss.

use std::path::{Path, PathBuf};

use forge_release::Digest;
use forge_release::image::ReleaseImage;
use forge_release::manifest::Manifest;
use forge_release::metadata::{ObjectInfo, ReleaseMetadata};
use forge_release::tarball::Limits;
use forge_store::{LayoutStore, Store};

use crate::emit::{Body, Rendered, SEPARATOR};
use crate::error::CmpError;

/// Last line of a rendered-output cache file: the size of each document, in order. Nothing in
/// it is trusted: each document is checked against the release's verified metadata.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct RenderedHeader {
    sizes: Vec<usize>,
}

/// The plugin's cache.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    layout: LayoutStore,
    max_bytes: u64,
}

impl Cache {
    /// A cache in `dir` (created on first write) kept under `max_bytes`.
    pub fn new(dir: &Path, max_bytes: u64) -> Self {
        Cache { dir: dir.to_owned(), layout: LayoutStore::cache(dir), max_bytes }
    }

    /// Deletes the least recently used blobs and rendered outputs until the cache is under
    /// its size limit (to 80 % of it, so eviction does not run on every call). Deleting is
    /// always safe: a reader that loses a file sees a miss and fetches again.
    pub fn evict(&self) -> Result<(), CmpError> {
        let (files, total) = self.entries();
        if total <= self.max_bytes {
            return Ok(());
        }
        self.delete_oldest(files, total, self.max_bytes / 5 * 4)
    }

    /// Frees at least `needed` bytes, oldest entries first: for a write that found the disk
    /// full, whatever the size limit says.
    pub fn make_room(&self, needed: u64) -> Result<(), CmpError> {
        let (files, total) = self.entries();
        self.delete_oldest(files, total, total.saturating_sub(needed))
    }

    /// Every blob and rendered output, oldest use first, and their total size.
    fn entries(&self) -> (Vec<(std::time::SystemTime, u64, PathBuf)>, u64) {
        let mut files = Vec::new();
        for sub in ["blobs/sha256", "rendered"] {
            let Ok(entries) = std::fs::read_dir(self.dir.join(sub)) else { continue };
            for entry in entries.flatten() {
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_file() {
                    let used = meta.modified().unwrap_or(std::time::SystemTime::UNIX_EPOCH);
                    files.push((used, meta.len(), entry.path()));
                }
            }
        }
        files.sort();
        let total = files.iter().map(|(_, len, _)| len).sum();
        (files, total)
    }

    fn delete_oldest(
        &self,
        files: Vec<(std::time::SystemTime, u64, PathBuf)>,
        mut total: u64,
        target: u64,
    ) -> Result<(), CmpError> {
        for (_, len, path) in files {
            if total <= target {
                break;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => total -= len,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => total -= len,
                Err(e) => {
                    return Err(CmpError::Cache {
                        dir: self.dir.clone(),
                        reason: format!("{}: {e}", path.display()),
                    });
                }
            }
        }
        Ok(())
    }

    /// Tag remembering the digest of `image` at `commit`: a short hash of the image, then the
    /// commit (fits the 128-character OCI tag limit).
    fn commit_key(image: &str, commit: &str) -> String {
        format!("{}-{commit}", &Digest::of(image.as_bytes()).hex()[..16])
    }

    /// The digest remembered for `image` at `commit`.
    pub fn digest_for(&self, image: &str, commit: &str) -> Option<Digest> {
        self.layout.resolve_tag(&Self::commit_key(image, commit)).ok().flatten()
    }

    /// A cached release, if present and intact.
    pub async fn get(&self, digest: &Digest, limits: &Limits) -> Option<ReleaseImage> {
        Store::Layout(self.layout.clone()).fetch_image(digest, limits).await.ok()
    }

    fn rendered_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("rendered").join(format!("{}.stream", digest.hex()))
    }

    /// The output rendered earlier from the release `digest`, if present and intact.
    ///
    /// Only outputs that are the released files byte for byte are kept (see
    /// [`Self::put_rendered`]), so every read checks each document against the digest the
    /// release's metadata records for its file, the metadata itself checked against the
    /// manifest and the manifest against `digest`: whoever can write the cache volume cannot
    /// get an object into Argo CD. The file is the stream followed by a header line (JSON:
    /// each document's size); anything that does not match is a miss.
    pub fn rendered(&self, digest: &Digest) -> Option<Rendered> {
        let manifest = self.layout.read_blob(digest).ok()?;
        let manifest = Manifest::parse_release(&manifest, Some(digest)).ok()?;
        let metadata_blob = self.layout.read_blob(&manifest.metadata().digest).ok()?;
        let metadata = ReleaseMetadata::parse(&metadata_blob).ok()?;
        let path = self.rendered_path(digest);
        let mut bytes = std::fs::read(&path).ok()?;
        // The header is the last line, so the stream is the file truncated: no copy.
        let split = bytes[..bytes.len().checked_sub(1)?].iter().rposition(|b| *b == b'\n')? + 1;
        let header: RenderedHeader = serde_json::from_slice(&bytes[split..]).ok()?;
        bytes.truncate(split);
        let objects = &metadata.resources.objects;
        if header.sizes.len() != objects.len() {
            return None;
        }
        let mut documents = Vec::with_capacity(objects.len());
        let mut rest = bytes.as_slice();
        for size in &header.sizes {
            let text = rest.strip_prefix(SEPARATOR)?.get(..*size)?;
            documents.push(text);
            rest = &rest[SEPARATOR.len() + size..];
        }
        if !rest.is_empty() || !documents_match(&documents, objects) {
            return None;
        }
        // Recently used entries are the last to be evicted.
        if let Ok(file) = std::fs::File::options().append(true).open(&path) {
            let _ = file.set_modified(std::time::SystemTime::now());
        }
        let release = &metadata.release;
        Some(Rendered {
            commit: metadata.source.commit.clone(),
            name: format!("{}/{}", release.repository, release.project),
            objects: objects.iter().map(|o| o.id.clone()).collect(),
            verbatim: true,
            body: Body::Stream(bytes),
        })
    }

    /// Remembers the output rendered from the verified release `digest`, if it is the released
    /// files byte for byte (the only output a warm read can check without the release's layer).
    pub fn put_rendered(&self, digest: &Digest, rendered: &Rendered) -> Result<(), CmpError> {
        let path = self.rendered_path(digest);
        let fail = |e: std::io::Error| CmpError::Cache {
            dir: self.dir.clone(),
            reason: format!("{}: {e}", path.display()),
        };
        let Body::Documents(documents) = &rendered.body else {
            return Ok(());
        };
        if !rendered.verbatim {
            return Ok(());
        }
        let header = RenderedHeader { sizes: documents.iter().map(|d| d.text.len()).collect() };
        let mut header = serde_json::to_vec(&header).map_err(|e| fail(std::io::Error::other(e)))?;
        header.push(b'\n');
        std::fs::create_dir_all(path.parent().unwrap_or(&self.dir)).map_err(fail)?;
        let mut parts = rendered.body.parts();
        parts.push(&header);
        forge_store::atomic::write_cache_file(&path, &parts).map_err(fail)
    }

    /// Stores a fetched release's blobs. Each is checked against its digest as it is
    /// written, so this may run before the release is verified: nothing finds them until
    /// `remember` names the release. The cache is local files, written directly (this runs
    /// on a cache-writing thread, outside the async runtime).
    pub fn put_blobs(&self, release: &ReleaseImage) -> Result<(), CmpError> {
        for (descriptor, bytes) in release.blobs() {
            self.layout.write_blob(&descriptor.digest, bytes).map_err(|e| self.failed(e))?;
        }
        self.layout.write_blob(&release.digest, &release.manifest_bytes).map_err(|e| self.failed(e))
    }

    /// Remembers the verified release `digest` (its blobs stored) for `image` at `commit`.
    pub fn remember(&self, image: &str, commit: &str, digest: &Digest) -> Result<(), CmpError> {
        // A different digest under the key cannot happen for an immutable release; if it
        // does, the pointer's own checks decide and the cache keeps the first answer.
        let key = Self::commit_key(image, commit);
        self.layout.claim_tag(&key, digest).map(|_| ()).map_err(|e| self.failed(e))
    }

    fn failed(&self, error: forge_store::StoreError) -> CmpError {
        CmpError::Cache { dir: self.dir.clone(), reason: error.to_string() }
    }
}

/// Whether each document is the file its metadata entry names, by digest (on every core: a
/// warm read hashes the whole output).
fn documents_match(documents: &[&[u8]], objects: &[ObjectInfo]) -> bool {
    let total: usize = documents.iter().map(|d| d.len()).sum();
    let threads = if total < 1 << 20 {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8)
    };
    let chunk = documents.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let checks: Vec<_> = documents
            .chunks(chunk)
            .zip(objects.chunks(chunk))
            .map(|(documents, objects)| {
                scope.spawn(move || {
                    documents
                        .iter()
                        .zip(objects)
                        .all(|(text, object)| Digest::of(text) == object.sha256)
                })
            })
            .collect();
        checks.into_iter().all(|check| check.join().unwrap_or(false))
    })
}
