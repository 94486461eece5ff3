//! A release stream kept as an OCI image layout directory (`oci-layout`, `index.json`,
//! `blobs/sha256/`), readable by `skopeo copy oci:<dir>:<tag> ...`.
//!
//! Crash safety: blobs are written to a temp file, synced and renamed into place before any
//! index entry names them, and `index.json` is replaced by rename under an exclusive lock,
//! so a reader never sees a tag that points at a missing blob. A cache ([`LayoutStore::cache`])
//! skips the syncing: every blob read is verified anyway, and an unreadable `index.json` is
//! started afresh.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use forge_release::Digest;
use forge_release::manifest::{Descriptor, MANIFEST_MEDIA_TYPE, annotations};

use crate::bounded;
use crate::error::{StoreError, TagClaim};

const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
const LAYOUT_FILE: &str = "{\"imageLayoutVersion\":\"1.0.0\"}";
/// The largest `index.json` read: a million tags.
const INDEX_BYTES: u64 = 256 << 20;

/// The index annotation naming a container image carried beside a release (by `export
/// --images`); not a tag, so the layout's tags stay the release's.
pub const IMAGE_NAME: &str = "dev.forge.image.name";

/// An `index.json` entry: the annotation that names it, the name, the manifest's media type.
struct Entry<'a> {
    key: &'a str,
    name: &'a str,
    media_type: &'a str,
}

/// One project's releases in an OCI image layout directory.
#[derive(Debug, Clone)]
pub struct LayoutStore {
    dir: PathBuf,
    /// Sync writes to disk (false for a cache).
    durable: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

impl LayoutStore {
    /// A store at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LayoutStore { dir: dir.into(), durable: true }
    }

    /// A cache at `dir`: nothing synced, a damaged index replaced.
    pub fn cache(dir: impl Into<PathBuf>) -> Self {
        LayoutStore { dir: dir.into(), durable: false }
    }

    /// The layout directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.hex())
    }

    fn io_error(&self, path: &Path, source: io::Error) -> StoreError {
        StoreError::Io { path: path.to_owned(), source }
    }

    fn read_index(&self) -> Result<Option<Index>, StoreError> {
        let path = self.dir.join("index.json");
        let bytes = match bounded::read_file(&path, INDEX_BYTES) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io_error(&path, e)),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| StoreError::Corrupt {
            location: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Every tag and the manifest digest it names, sorted by tag.
    pub fn list_tags(&self) -> Result<Vec<(String, Digest)>, StoreError> {
        let Some(index) = self.read_index()? else { return Ok(Vec::new()) };
        let mut tags: Vec<(String, Digest)> = index
            .manifests
            .into_iter()
            .filter_map(|d| d.annotations.get(annotations::REF_NAME).map(|t| (t.clone(), d.digest)))
            .collect();
        tags.sort();
        Ok(tags)
    }

    /// The manifest digest `tag` names, if the tag exists.
    pub fn resolve_tag(&self, tag: &str) -> Result<Option<Digest>, StoreError> {
        Ok(self.list_tags()?.into_iter().find(|(t, _)| t == tag).map(|(_, digest)| digest))
    }

    /// Reads a blob (or manifest) of at most `max` bytes and checks that it hashes to
    /// `digest`.
    pub fn read_blob(&self, digest: &Digest, max: u64) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(digest);
        let bytes = bounded::read_file(&path, max).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::BlobNotFound {
                digest: digest.clone(),
                location: self.dir.display().to_string(),
            },
            _ => self.io_error(&path, e),
        })?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(StoreError::Tampered {
                digest: digest.clone(),
                actual,
                location: path.display().to_string(),
            });
        }
        Ok(bytes)
    }

    /// Whether a blob is present.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Writes a blob atomically; a blob already present is left alone.
    pub fn write_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        let actual = Digest::of(bytes);
        if &actual != digest {
            return Err(StoreError::Tampered {
                digest: digest.clone(),
                actual,
                location: "upload".into(),
            });
        }
        self.ensure_layout()?;
        let path = self.blob_path(digest);
        // An intact copy is kept; a damaged one (disk error, tampering) is replaced.
        let existing = bounded::read_file(&path, bytes.len() as u64);
        if existing.is_ok_and(|existing| &Digest::of(&existing) == digest) {
            return Ok(());
        }
        self.write_atomically(&path, bytes)
    }

    /// Points `tag` at the manifest `digest` unless the tag already names another manifest.
    pub fn claim_tag(&self, tag: &str, digest: &Digest) -> Result<TagClaim, StoreError> {
        let entry =
            Entry { key: annotations::REF_NAME, name: tag, media_type: MANIFEST_MEDIA_TYPE };
        self.update_entry(entry, digest, false)
    }

    /// Points `tag` at `digest` whatever it named before.
    pub fn set_tag(&self, tag: &str, digest: &Digest) -> Result<(), StoreError> {
        self.set_tag_as(tag, digest, MANIFEST_MEDIA_TYPE)
    }

    /// Points `tag` at `digest`, a manifest of `media_type` (a signature image, an index).
    pub fn set_tag_as(
        &self,
        tag: &str,
        digest: &Digest,
        media_type: &str,
    ) -> Result<(), StoreError> {
        let entry = Entry { key: annotations::REF_NAME, name: tag, media_type };
        self.update_entry(entry, digest, true).map(drop)
    }

    /// Records the container image `name` (`host/path@digest`), a manifest of `media_type`
    /// already stored: an entry of its own, not a tag, so it never reads as a release name.
    pub fn name_image(
        &self,
        name: &str,
        digest: &Digest,
        media_type: &str,
    ) -> Result<(), StoreError> {
        let entry = Entry { key: IMAGE_NAME, name, media_type };
        self.update_entry(entry, digest, true).map(drop)
    }

    /// The container images recorded by [`LayoutStore::name_image`]: name, digest, media type.
    pub fn images(&self) -> Result<Vec<(String, Digest, String)>, StoreError> {
        let Some(index) = self.read_index()? else { return Ok(Vec::new()) };
        let mut images: Vec<(String, Digest, String)> = index
            .manifests
            .into_iter()
            .filter_map(|d| Some((d.annotations.get(IMAGE_NAME)?.clone(), d.digest, d.media_type)))
            .collect();
        images.sort();
        Ok(images)
    }

    fn update_entry(
        &self,
        entry: Entry<'_>,
        digest: &Digest,
        replace: bool,
    ) -> Result<TagClaim, StoreError> {
        let Entry { key, name: tag, media_type } = entry;
        self.ensure_layout()?;
        let blob = self.blob_path(digest);
        let size = std::fs::metadata(&blob).map_err(|e| self.io_error(&blob, e))?.len();
        let lock_path = self.dir.join("index.json.lock");
        let lock = std::fs::File::create(&lock_path).map_err(|e| self.io_error(&lock_path, e))?;
        // Held until the end of this function: the read-modify-write of index.json is atomic.
        lock.lock().map_err(|e| self.io_error(&lock_path, e))?;
        let mut index = match self.read_index() {
            Ok(index) => index.unwrap_or_else(empty_index),
            Err(_) if !self.durable => empty_index(),
            Err(e) => return Err(e),
        };
        let named = |d: &Descriptor| d.annotations.get(key).map(String::as_str) == Some(tag);
        if let Some(existing) = index.manifests.iter().find(|d| named(d)) {
            if &existing.digest == digest {
                return Ok(TagClaim::AlreadyOurs);
            }
            if !replace {
                return Ok(TagClaim::Taken(existing.digest.clone()));
            }
        }
        index.manifests.retain(|d| !named(d));
        let mut descriptor = Descriptor {
            media_type: media_type.into(),
            digest: digest.clone(),
            size,
            annotations: Default::default(),
        };
        descriptor.annotations.insert(key.into(), tag.into());
        index.manifests.push(descriptor);
        let mut bytes = serde_json::to_vec_pretty(&index).expect("index always serialises");
        bytes.push(b'\n');
        self.write_atomically(&self.dir.join("index.json"), &bytes)?;
        Ok(TagClaim::Claimed)
    }

    fn ensure_layout(&self) -> Result<(), StoreError> {
        let blobs = self.dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(|e| self.io_error(&blobs, e))?;
        let marker = self.dir.join("oci-layout");
        if !marker.is_file() {
            self.write_atomically(&marker, LAYOUT_FILE.as_bytes())?;
        }
        Ok(())
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let written = if self.durable {
            crate::atomic::write_file(path, bytes)
        } else {
            crate::atomic::write_cache_file(path, &[bytes])
        };
        written.map_err(|e| self.io_error(path, e))
    }
}

fn empty_index() -> Index {
    Index { schema_version: 2, media_type: Some(INDEX_MEDIA_TYPE.into()), manifests: Vec::new() }
}
