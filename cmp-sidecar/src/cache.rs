//! The on-disk cache: one OCI image layout of verified releases, keyed by manifest digest.
//!
//! Blobs are content-addressed and written by temp file + rename, so concurrent `generate`
//! processes and a kill at any instant leave only whole files (a torn temp file is never
//! renamed into place). Every read is verified against its digest, and anything that fails is
//! treated as a miss and fetched again. Rendered outputs and signature records are sealed (see
//! [`crate::seal`]). Releases are immutable, so image+commit → digest is remembered too (sealed
//! as well): a warm generate makes no network request. Nothing is synced to disk: after a
//! machine crash a file may hold anything, which the checks on reading turn into a miss.

use std::path::{Path, PathBuf};

use forge_release::Digest;
use forge_release::image::ReleaseImage;
use forge_release::manifest::Manifest;
use forge_release::metadata::ReleaseMetadata;
use forge_release::objects::ObjectId;
use forge_release::tarball::Limits;
use forge_store::registry::options::limits;
use forge_store::{LayoutStore, Store};

use crate::cached_stream::{CachedStream, Sealed};
use crate::emit::{Body, Rendered, SEPARATOR};
use crate::error::CmpError;
use crate::seal::{Seal, SealKey, Tag};
use crate::settings::Settings;

/// What a sealed record of the keys that signed a release is.
const SIGNED: &str = "signed by";

/// What a sealed record of the release an image has at a commit is.
const COMMIT_DIGEST: &str = "release of image at commit";

/// Longest seal line read: room for thousands of segments (gigabytes of output).
const SEAL_LINE_BYTES: u64 = 256 << 10;

/// The plugin's cache.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    layout: LayoutStore,
    max_bytes: u64,
    key: Option<SealKey>,
}

impl Cache {
    /// The cache `settings` name (created on first write), kept under their size limit, its
    /// rendered outputs sealed with their key.
    pub fn new(settings: &Settings) -> Self {
        let dir = &settings.cache_dir;
        let (max_bytes, key) = (settings.cache_max_bytes, settings.cache_key.clone());
        Cache { dir: dir.clone(), layout: LayoutStore::cache(dir), max_bytes, key }
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
            // A directory linked elsewhere (any part of the way) is not the cache's: its files
            // are not evicted.
            let mut path = self.dir.clone();
            let linked = sub.split('/').any(|part| {
                path.push(part);
                !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir())
            });
            if linked {
                continue;
            }
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

    /// The file remembering the digest of `image` at `commit`: a short hash of the image, then
    /// the commit.
    fn remembered_path(&self, image: &str, commit: &str) -> PathBuf {
        let key = format!("{}-{commit}", &Digest::of(image.as_bytes()).hex()[..16]);
        self.dir.join("commits").join(key)
    }

    /// The digest remembered for `image` at `commit`, if the record is sealed with this cache's
    /// key: whoever can write the cache volume cannot point an unpinned pointer at a release
    /// of their making (one consistent with its own digests) by rewriting the record.
    pub fn digest_for(&self, image: &str, commit: &str) -> Option<Digest> {
        let path = self.remembered_path(image, commit);
        let body = self.read_record(&path, COMMIT_DIGEST, &format!("{image}\n{commit}"))?;
        body.strip_suffix('\n')?.parse().ok()
    }

    /// A cached release, if present and intact.
    pub async fn get(&self, digest: &Digest, limits: &Limits) -> Option<ReleaseImage> {
        Store::Layout(self.layout.clone()).fetch_image(digest, limits).await.ok()
    }

    fn rendered_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("rendered").join(format!("{}.stream", digest.hex()))
    }

    /// The output rendered earlier from the release `digest`, if it is there under a seal made
    /// with this cache's key (see [`crate::seal`]); its segments are checked as they are
    /// written ([`CachedStream`]). With `objects`, the release's objects are listed too (from
    /// its metadata, checked against the manifest and the manifest against `digest`): needed
    /// only when an Application has several releases, whose objects must not overlap.
    pub fn rendered(&self, digest: &Digest, objects: bool) -> Option<Rendered> {
        let key = self.key.as_ref()?;
        let path = self.rendered_path(digest);
        let file = forge_store::bounded::open(&path).ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() {
            return None;
        }
        let (seal, start) = read_seal(&file)?;
        let (fields, opener) = key.open(digest, seal)?;
        if meta.len() != start + fields.len || fields.len == 0 {
            return None;
        }
        let objects = if objects { self.object_ids(digest)? } else { Vec::new() };
        // Recently used entries are the last to be evicted.
        let _ = file.set_modified(std::time::SystemTime::now());
        let sealed = Sealed { start, len: fields.len, opener };
        Some(Rendered {
            commit: fields.commit,
            name: fields.name,
            objects,
            verbatim: true,
            body: Body::Cached(Box::new(CachedStream::new(file, path, sealed))),
        })
    }

    /// The objects of the cached release `digest`, in output order.
    fn object_ids(&self, digest: &Digest) -> Option<Vec<ObjectId>> {
        let manifest = self.layout.read_blob(digest, limits::MANIFEST_BYTES).ok()?;
        let manifest = Manifest::parse_release(&manifest, Some(digest)).ok()?;
        let metadata = manifest.metadata();
        let metadata_blob = self.layout.read_blob(&metadata.digest, metadata.size).ok()?;
        let metadata = ReleaseMetadata::parse(&metadata_blob).ok()?;
        Some(metadata.resources.objects.into_iter().map(|o| o.id).collect())
    }

    /// Remembers, sealed, the output rendered from the verified release `digest`: unless it
    /// is annotated (made again each time), there is no key, or the release holds an object
    /// twice (refused whenever it is generated).
    pub fn put_rendered(&self, digest: &Digest, rendered: &Rendered) -> Result<(), CmpError> {
        let path = self.rendered_path(digest);
        let fail = |e: std::io::Error| CmpError::Cache {
            dir: self.dir.clone(),
            reason: format!("{}: {e}", path.display()),
        };
        let (Some(key), Body::Documents(documents)) = (&self.key, &rendered.body) else {
            return Ok(());
        };
        let mut seen = foldhash::HashSet::default();
        if !rendered.verbatim || !rendered.objects.iter().all(|o| seen.insert(o)) {
            return Ok(());
        }
        let stream: Vec<&[u8]> =
            documents.iter().flat_map(|d| [SEPARATOR, d.text.as_slice()]).collect();
        let len = stream.iter().map(|part| part.len() as u64).sum();
        let line_len = key.seal_line_len(&rendered.commit, &rendered.name, len);
        std::fs::create_dir_all(path.parent().unwrap_or(&self.dir)).map_err(fail)?;
        // The output is sealed segment by segment as it is written; the seal line goes first.
        let identity = (rendered.commit.as_str(), rendered.name.as_str());
        forge_store::atomic::write_cache_file_with_header(&path, line_len, |file| {
            use std::os::unix::fs::FileExt;
            let file: &std::fs::File = file;
            let write_at =
                |offset, segment: &[u8]| file.write_all_at(segment, line_len as u64 + offset);
            let seal = key.seal_parts(digest, identity, &stream, write_at)?;
            let mut line = serde_json::to_vec(&seal).map_err(std::io::Error::other)?;
            line.push(b'\n');
            Ok(line)
        })
        .map_err(fail)
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

    /// Remembers, sealed, the verified release `digest` (its blobs stored) for `image` at
    /// `commit`. A different digest for the same image and commit cannot happen for an
    /// immutable release; if it does, the pointer's own checks decide, and the latest wins.
    pub fn remember(&self, image: &str, commit: &str, digest: &Digest) -> Result<(), CmpError> {
        let path = self.remembered_path(image, commit);
        self.write_record(
            &path,
            COMMIT_DIGEST,
            &format!("{image}\n{commit}"),
            &format!("{digest}\n"),
        )
    }

    fn signed_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("signed").join(digest.hex())
    }

    /// The keys (fingerprints) a verification found had signed the release `digest`: none
    /// unless the record is sealed with this cache's key (whoever can write the cache volume
    /// cannot mark a release signed).
    pub fn signed_by(&self, digest: &Digest) -> Vec<String> {
        let body = self.read_record(&self.signed_path(digest), SIGNED, digest.as_str());
        body.map(|keys| keys.lines().map(str::to_owned).collect()).unwrap_or_default()
    }

    /// Records, sealed, that the trusted keys `keys` signed the release `digest`.
    pub fn remember_signed(&self, digest: &Digest, keys: &[String]) -> Result<(), CmpError> {
        let body: String = keys.iter().map(|k| format!("{k}\n")).collect();
        self.write_record(&self.signed_path(digest), SIGNED, digest.as_str(), &body)
    }

    /// The body of the small record at `path` (lines, then `seal <tag>`), if its tag is this
    /// cache's over `what` it is, its `subject` and the body.
    fn read_record(&self, path: &Path, what: &str, subject: &str) -> Option<String> {
        let key = self.key.as_ref()?;
        let text =
            String::from_utf8(forge_store::bounded::read_file(path, 64 * 1024).ok()?).ok()?;
        let rest = text.strip_suffix('\n')?;
        let (body, tag) = match rest.rsplit_once('\n') {
            Some((body, last)) => (format!("{body}\n"), last),
            None => (String::new(), rest),
        };
        let tag = Tag::from_hex(tag.strip_prefix("seal ")?)?;
        (tag == key.record_tag(what, subject, &body)).then_some(body)
    }

    /// Writes `body` at `path`, sealed as [`Self::read_record`] reads it (nothing without a key).
    fn write_record(
        &self,
        path: &Path,
        what: &str,
        subject: &str,
        body: &str,
    ) -> Result<(), CmpError> {
        let Some(key) = &self.key else { return Ok(()) };
        let text = format!("{body}seal {}\n", key.record_tag(what, subject, body).to_hex());
        std::fs::create_dir_all(path.parent().unwrap_or(&self.dir))
            .and_then(|()| forge_store::atomic::write_cache_file(path, &[text.as_bytes()]))
            .map_err(|e| CmpError::Cache { dir: self.dir.clone(), reason: e.to_string() })
    }

    fn failed(&self, error: forge_store::StoreError) -> CmpError {
        CmpError::Cache { dir: self.dir.clone(), reason: error.to_string() }
    }
}

/// The seal line of a rendered-output file, and where the output starts. Bounded.
fn read_seal(file: &std::fs::File) -> Option<(Seal, u64)> {
    use std::io::{BufRead, Read};
    let mut line = Vec::new();
    std::io::BufReader::new(file.take(SEAL_LINE_BYTES)).read_until(b'\n', &mut line).ok()?;
    line.pop().filter(|end| *end == b'\n')?;
    let seal = serde_json::from_slice(&line).ok()?;
    Some((seal, line.len() as u64 + 1))
}
