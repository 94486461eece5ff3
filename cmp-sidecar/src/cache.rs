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
use forge_release::metadata::ReleaseMetadata;
use forge_release::tarball::Limits;
use forge_store::registry::options::limits;
use forge_store::{LayoutStore, Store};

use crate::cached_stream::CachedStream;
use crate::emit::{Body, Rendered, SEPARATOR};
use crate::error::CmpError;

/// First line of a rendered-output cache file: the size of each document, in order. Nothing in
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

    /// The output rendered earlier from the release `digest`, if present and well formed.
    ///
    /// Only outputs that are the released files byte for byte are kept (see
    /// [`Self::put_rendered`]), so each document is checked, as it is written
    /// ([`CachedStream`]), against the digest the release's metadata records for its file; the
    /// metadata is checked here against the manifest and the manifest against `digest`:
    /// whoever can write the cache volume cannot get an object into Argo CD. The file is a
    /// header line (JSON: each document's size), then the stream; a file whose size disagrees
    /// with its header is a miss.
    pub fn rendered(&self, digest: &Digest) -> Option<Rendered> {
        let manifest = self.layout.read_blob(digest, limits::MANIFEST_BYTES).ok()?;
        let manifest = Manifest::parse_release(&manifest, Some(digest)).ok()?;
        let metadata = manifest.metadata();
        let metadata_blob = self.layout.read_blob(&metadata.digest, metadata.size).ok()?;
        let metadata = ReleaseMetadata::parse(&metadata_blob).ok()?;
        let objects = &metadata.resources.objects;
        let path = self.rendered_path(digest);
        let file = std::fs::File::open(&path).ok()?;
        let (sizes, start) = read_header(&file, objects.len())?;
        let documents = sizes.into_iter().zip(objects.iter().map(|o| o.sha256.clone())).collect();
        let stream = CachedStream::new(file, path, start, documents);
        let meta = std::fs::File::metadata(stream.file()).ok()?;
        if !meta.is_file() || meta.len() != start + stream.len() {
            return None;
        }
        // Recently used entries are the last to be evicted.
        let _ = stream.file().set_modified(std::time::SystemTime::now());
        let release = &metadata.release;
        Some(Rendered {
            commit: metadata.source.commit.clone(),
            name: format!("{}/{}", release.repository, release.project),
            objects: objects.iter().map(|o| o.id.clone()).collect(),
            verbatim: true,
            body: Body::Cached(stream),
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
        let mut parts = vec![header.as_slice()];
        parts.extend(documents.iter().flat_map(|d| [SEPARATOR, d.text.as_slice()]));
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

    fn signed_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("signed").join(digest.hex())
    }

    /// The keys (fingerprints) a verification found had signed the release `digest`.
    pub fn signed_by(&self, digest: &Digest) -> Vec<String> {
        let bytes = forge_store::bounded::read_file(&self.signed_path(digest), 64 * 1024);
        bytes
            .map(|b| String::from_utf8_lossy(&b).lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Records that the trusted keys `keys` signed the release `digest`.
    pub fn remember_signed(&self, digest: &Digest, keys: &[String]) -> Result<(), CmpError> {
        let path = self.signed_path(digest);
        let text: String = keys.iter().map(|k| format!("{k}\n")).collect();
        std::fs::create_dir_all(self.dir.join("signed"))
            .and_then(|()| forge_store::atomic::write_file(&path, text.as_bytes()))
            .map_err(|e| CmpError::Cache { dir: self.dir.clone(), reason: e.to_string() })
    }

    fn failed(&self, error: forge_store::StoreError) -> CmpError {
        CmpError::Cache { dir: self.dir.clone(), reason: error.to_string() }
    }
}

/// The header line of a rendered-output file: the documents' sizes (as many as `objects`),
/// and where the stream starts. Bounded: a size takes at most 21 bytes of JSON.
fn read_header(file: &std::fs::File, objects: usize) -> Option<(Vec<usize>, u64)> {
    use std::io::{BufRead, Read};
    let max = 64 + 21 * objects as u64;
    let mut line = Vec::new();
    std::io::BufReader::new(file.take(max)).read_until(b'\n', &mut line).ok()?;
    line.pop().filter(|end| *end == b'\n')?;
    let header: RenderedHeader = serde_json::from_slice(&line).ok()?;
    (header.sizes.len() == objects).then_some((header.sizes, line.len() as u64 + 1))
}
