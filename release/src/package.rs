//! Deterministic packaging: the same inputs give the same bytes and digests on any machine.

use std::collections::BTreeMap;
use std::io::{self, Write};

use flate2::{Compression, GzBuilder};

use bytes::Bytes;

use crate::digest::{Digest, HashingWriter};
use crate::image::ReleaseImage;
use crate::manifest::{self, Descriptor, Manifest, annotations};
use crate::metadata::{
    Artifact, ManifestInfo, ObjectInfo, ReleaseConfig, ReleaseInfo, ReleaseMetadata, ResourcesInfo,
    SCHEMA_VERSION, SourceInfo, ToolInfo, Trigger,
};
use crate::objects::ResourceFile;
use crate::tarball::Limits;
use crate::timefmt;

/// Gzip level for the resources layer. Changing it changes every digest.
const GZIP_LEVEL: u32 = 6;

/// Everything a release is made of except its number and aliases, which publishing assigns
/// (and may assign again when a concurrent publisher takes a number first).
#[derive(Debug, Clone)]
pub struct ReleaseInput {
    /// Release repository, e.g. `company/monorepo`.
    pub repository: String,
    /// Project name.
    pub project: String,
    /// What caused the release.
    pub trigger: Trigger,
    /// Source commit.
    pub source: SourceInfo,
    /// Commit time as seconds since the Unix epoch: `created` (and the layer's tar mtimes).
    pub commit_time: i64,
    /// Resolved artifacts.
    pub artifacts: Vec<Artifact>,
    /// The release manifests they came from, as they describe themselves.
    pub manifests: Vec<ManifestInfo>,
    /// The rendered objects' layer, built once.
    pub resources: ResourcesLayer,
    /// Every container image the objects run.
    pub images: Vec<crate::metadata::ContainerImage>,
    /// The tool version to record.
    pub tool: ToolInfo,
}

/// The resources layer (layer 0) and what the metadata says of it; the same for every number
/// a release is given.
#[derive(Debug, Clone)]
pub struct ResourcesLayer {
    /// The compressed layer.
    pub bytes: Bytes,
    /// Its digests and size.
    pub info: LayerInfo,
    /// Every object, in tarball order.
    pub objects: Vec<ObjectInfo>,
}

impl ResourcesLayer {
    /// Sorts `files` by path, refuses duplicates, an empty set and a set readers would refuse
    /// ([`Limits`]), and writes the layer with `commit_time` as every entry's mtime.
    pub fn build(mut files: Vec<ResourceFile>, commit_time: i64) -> Result<Self, PackageError> {
        check_readable(files.iter().map(|f| f.content.len() as u64))?;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        if let Some(pair) = files.windows(2).find(|pair| pair[0].path == pair[1].path) {
            return Err(PackageError::DuplicateObject(pair[0].id.to_string()));
        }
        let mtime = u64::try_from(commit_time).unwrap_or(0);
        // The objects' digests are worked out on another core while the layer is compressed
        // (compressing is one stream, and most of a build's time).
        let (written, objects) = std::thread::scope(|scope| {
            let objects = scope.spawn(|| {
                files
                    .iter()
                    .map(|f| ObjectInfo {
                        id: f.id.clone(),
                        path: f.path.clone(),
                        sha256: f.sha256(),
                    })
                    .collect::<Vec<_>>()
            });
            let written = write_resources_layer(&files, mtime, Vec::new());
            (written, objects.join().expect("hashing objects does not panic"))
        });
        let (bytes, info) = written?;
        Self::checked(bytes, info, objects)
    }

    /// A layer written file by file elsewhere ([`LayerWriter`], while the objects were still
    /// being rendered): `objects` in its order, with contents of `lengths` bytes; refused as
    /// [`Self::build`] refuses a set (the caller has checked the order and that paths are
    /// unique).
    pub fn written(
        bytes: Vec<u8>,
        info: LayerInfo,
        objects: Vec<ObjectInfo>,
        lengths: impl Iterator<Item = u64>,
    ) -> Result<Self, PackageError> {
        check_readable(lengths)?;
        Self::checked(bytes, info, objects)
    }

    fn checked(
        bytes: Vec<u8>,
        info: LayerInfo,
        objects: Vec<ObjectInfo>,
    ) -> Result<Self, PackageError> {
        let limit = Limits::default().max_layer_bytes;
        if info.size > limit {
            return Err(PackageError::TooLarge {
                what: "compressed bytes",
                actual: info.size,
                limit,
            });
        }
        Ok(ResourcesLayer { bytes: Bytes::from(bytes), info, objects })
    }
}

/// The bytes a file of `len` bytes takes in the tar readers inflate: a 512-byte header and
/// the content padded to 512 bytes.
pub fn tar_entry_bytes(len: u64) -> u64 {
    512 + len.div_ceil(512) * 512
}

/// The bytes that end the tar: two empty blocks.
pub const TAR_END: u64 = 1024;

/// Refuses an empty set of files, and one of files with these content lengths that readers
/// would refuse ([`Limits`]).
fn check_readable(lengths: impl Iterator<Item = u64>) -> Result<(), PackageError> {
    let limits = Limits::default();
    let too_large = |what, actual: u64, limit: u64| {
        (actual > limit).then_some(PackageError::TooLarge { what, actual, limit })
    };
    let (count, unpacked) =
        lengths.fold((0, TAR_END), |(count, bytes), len| (count + 1, bytes + tar_entry_bytes(len)));
    if count == 0 {
        return Err(PackageError::Empty);
    }
    match too_large("objects", count, limits.max_files)
        .or_else(|| too_large("uncompressed bytes", unpacked, limits.max_unpacked_bytes))
    {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Errors while packaging.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// Two objects map to the same file.
    #[error(
        "duplicate object {0}: two rendered objects have the same group, kind, namespace and name"
    )]
    DuplicateObject(String),
    /// A release must deploy something: an empty one would make Argo CD prune everything.
    #[error("the release has no objects")]
    Empty,
    /// Writing the layer failed.
    #[error("writing the resources layer: {0}")]
    Io(#[from] io::Error),
    /// The commit time is outside the representable range.
    #[error("commit time {0} is out of range")]
    BadTime(i64),
    /// The release would be refused by every reader (`pull`, forge-cmp): over a limit.
    #[error(
        "the release would hold {actual} {what}, more than the {limit} every reader accepts; \
         split the project into smaller releases"
    )]
    TooLarge {
        /// What was counted.
        what: &'static str,
        /// How much there is.
        actual: u64,
        /// The readers' limit.
        limit: u64,
    },
}

/// The result of writing a resources layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// Digest of the compressed layer.
    pub digest: Digest,
    /// Size of the compressed layer.
    pub size: u64,
    /// Digest of the uncompressed tar.
    pub tar_sha256: Digest,
}

/// Writes `files` (already sorted by path, unique) as a deterministic tar+gzip stream to `out`.
pub fn write_resources_layer<W: Write>(
    files: &[ResourceFile],
    mtime: u64,
    out: W,
) -> io::Result<(W, LayerInfo)> {
    let mut layer = LayerWriter::new(mtime, out);
    for file in files {
        layer.append(&file.path, &file.content)?;
    }
    layer.finish()
}

/// A resources layer written one file at a time, in path order (the caller's to keep), as a
/// deterministic tar+gzip stream.
///
/// Every header is built by hand: mode 0644, uid/gid 0, no user or group names, the given
/// mtime; the gzip header has no file name and mtime 0. The tar is hashed as it streams into
/// the compressor, and the compressed bytes as they stream out, so nothing is buffered twice.
pub struct LayerWriter<W: Write> {
    tar: tar::Builder<HashingWriter<flate2::write::GzEncoder<HashingWriter<W>>>>,
    mtime: u64,
}

impl<W: Write> LayerWriter<W> {
    /// A layer written to `out`, every entry with `mtime`.
    pub fn new(mtime: u64, out: W) -> Self {
        // The compressed bytes depend on the pieces the tar is written in, not only on the tar:
        // buffering or chunking it differently changes every layer digest (the golden tests pin
        // this write pattern).
        let gzip =
            GzBuilder::new().mtime(0).write(HashingWriter::new(out), Compression::new(GZIP_LEVEL));
        LayerWriter { tar: tar::Builder::new(HashingWriter::new(gzip)), mtime }
    }

    /// Appends the file `path` holding `content`.
    pub fn append(&mut self, path: &str, content: &[u8]) -> io::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(self.mtime);
        self.tar.append_data(&mut header, path, content)
    }

    /// Ends the layer: the writer and what the metadata says of the layer.
    pub fn finish(self) -> io::Result<(W, LayerInfo)> {
        let (gzip, tar_sha256, _) = self.tar.into_inner()?.finish();
        let (out, digest, size) = gzip.finish()?.finish();
        Ok((out, LayerInfo { digest, size, tar_sha256 }))
    }
}

impl<W: Write> std::fmt::Debug for LayerWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerWriter").field("mtime", &self.mtime).finish_non_exhaustive()
    }
}

/// Packages a release numbered `number` with `aliases`: metadata, config and manifest around
/// the input's resources layer.
pub fn package(
    input: &ReleaseInput,
    number: u64,
    aliases: &[String],
) -> Result<ReleaseImage, PackageError> {
    let ReleaseInput {
        repository,
        project,
        trigger,
        source,
        commit_time,
        artifacts,
        manifests,
        resources: layer,
        images,
        tool,
    } = input;
    let created = timefmt::rfc3339(*commit_time).ok_or(PackageError::BadTime(*commit_time))?;
    let mut by_kind = BTreeMap::new();
    for object in &layer.objects {
        *by_kind.entry(object.id.kind.clone()).or_insert(0) += 1;
    }
    let commit = source.commit.clone();
    let metadata = ReleaseMetadata {
        schema_version: SCHEMA_VERSION,
        release: ReleaseInfo {
            id: format!("{repository}/{project}/{commit}"),
            repository: repository.clone(),
            project: project.clone(),
            number,
            aliases: aliases.to_vec(),
            trigger: trigger.clone(),
            created: created.clone(),
        },
        source: source.clone(),
        artifacts: artifacts.clone(),
        manifests: manifests.clone(),
        resources: ResourcesInfo {
            count: layer.objects.len() as u64,
            by_kind,
            tar_sha256: layer.info.tar_sha256.clone(),
            objects: layer.objects.clone(),
        },
        images: images.clone(),
        tool: tool.clone(),
    };
    let metadata_bytes = metadata.to_bytes();
    let config = ReleaseConfig {
        format_version: SCHEMA_VERSION,
        repository: repository.clone(),
        project: project.clone(),
        commit: commit.clone(),
    }
    .to_bytes();

    let titled = |mut d: Descriptor, title: &str| {
        d.annotations.insert(annotations::TITLE.into(), title.into());
        d
    };
    let resources_desc = titled(
        Descriptor {
            media_type: manifest::RESOURCES_MEDIA_TYPE.into(),
            digest: layer.info.digest.clone(),
            size: layer.info.size,
            annotations: BTreeMap::new(),
        },
        manifest::RESOURCES_TITLE,
    );
    let metadata_desc = titled(
        Descriptor::for_bytes(manifest::METADATA_MEDIA_TYPE, &metadata_bytes),
        manifest::METADATA_TITLE,
    );
    let mut notes = BTreeMap::new();
    notes.insert(annotations::REVISION.to_owned(), commit);
    if let Some(url) = &metadata.source.repository_url {
        notes.insert(annotations::SOURCE.to_owned(), url.clone());
    }
    notes.insert(annotations::CREATED.to_owned(), created);
    notes.insert(annotations::TITLE.to_owned(), project.clone());
    notes.insert(annotations::VERSION.to_owned(), number.to_string());
    notes.insert(annotations::FORGE_REPOSITORY.to_owned(), repository.clone());
    notes.insert(annotations::FORGE_PROJECT.to_owned(), project.clone());
    notes.insert(annotations::FORGE_NUMBER.to_owned(), number.to_string());
    notes.insert(annotations::FORGE_ALIASES.to_owned(), aliases.join(","));
    notes.insert(annotations::FORGE_TRIGGER.to_owned(), trigger.kind.as_str().to_owned());
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(manifest::MANIFEST_MEDIA_TYPE.into()),
        config: Descriptor::for_bytes(manifest::CONFIG_MEDIA_TYPE, &config),
        layers: vec![resources_desc, metadata_desc],
        annotations: notes,
    };
    let manifest_bytes = manifest.to_bytes();
    Ok(ReleaseImage {
        digest: Digest::of(&manifest_bytes),
        manifest_bytes,
        manifest,
        config,
        metadata: metadata_bytes,
        resources: layer.bytes.clone(),
    })
}
