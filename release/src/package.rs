//! Deterministic packaging: the same inputs give the same bytes and digests on any machine.

use std::collections::BTreeMap;
use std::io::{self, Write};

use flate2::{Compression, GzBuilder};

use crate::digest::{Digest, HashingWriter};
use crate::manifest::{self, Descriptor, Manifest, annotations};
use crate::metadata::{
    Artifact, ObjectInfo, ReleaseConfig, ReleaseInfo, ReleaseMetadata, ResourcesInfo,
    SCHEMA_VERSION, SourceInfo, ToolInfo, Trigger,
};
use crate::objects::ResourceFile;
use crate::timefmt;

/// Gzip level for the resources layer. Changing it changes every digest.
const GZIP_LEVEL: u32 = 6;

/// Everything a release is made of.
#[derive(Debug, Clone)]
pub struct ReleaseInput {
    /// Release repository, e.g. `company/monorepo`.
    pub repository: String,
    /// Project name.
    pub project: String,
    /// Release number.
    pub number: u64,
    /// Aliases given at creation.
    pub aliases: Vec<String>,
    /// What caused the release.
    pub trigger: Trigger,
    /// Source commit.
    pub source: SourceInfo,
    /// Commit time as seconds since the Unix epoch: tar mtimes and `created`.
    pub commit_time: i64,
    /// Resolved artifacts.
    pub artifacts: Vec<Artifact>,
    /// Rendered objects, in any order.
    pub files: Vec<ResourceFile>,
    /// The tool version to record.
    pub tool: ToolInfo,
}

/// A release ready to store: its manifest and all three blobs.
#[derive(Debug, Clone)]
pub struct PackagedRelease {
    /// The manifest.
    pub manifest: Manifest,
    /// The manifest's exact bytes.
    pub manifest_bytes: Vec<u8>,
    /// The manifest digest: the release's content identity.
    pub digest: Digest,
    /// Config blob bytes.
    pub config: Vec<u8>,
    /// Resources layer bytes (tar+gzip).
    pub resources: Vec<u8>,
    /// Metadata blob bytes.
    pub metadata_bytes: Vec<u8>,
    /// The metadata.
    pub metadata: ReleaseMetadata,
}

impl PackagedRelease {
    /// The blobs with their descriptors, config first.
    pub fn blobs(&self) -> [(&Descriptor, &[u8]); 3] {
        [
            (&self.manifest.config, &self.config),
            (self.manifest.resources(), &self.resources),
            (self.manifest.metadata(), &self.metadata_bytes),
        ]
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
///
/// Every header is built by hand: mode 0644, uid/gid 0, no user or group names, the given
/// mtime; the gzip header has no file name and mtime 0. The tar is hashed as it streams into
/// the compressor, and the compressed bytes as they stream out, so nothing is buffered twice.
pub fn write_resources_layer<W: Write>(
    files: &[ResourceFile],
    mtime: u64,
    out: W,
) -> io::Result<(W, LayerInfo)> {
    let compressed = HashingWriter::new(out);
    let gzip = GzBuilder::new().mtime(0).write(compressed, Compression::new(GZIP_LEVEL));
    let mut tar = tar::Builder::new(HashingWriter::new(gzip));
    for file in files {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(file.content.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        tar.append_data(&mut header, &file.path, file.content.as_slice())?;
    }
    let (gzip, tar_sha256, _) = tar.into_inner()?.finish();
    let (out, digest, size) = gzip.finish()?.finish();
    Ok((out, LayerInfo { digest, size, tar_sha256 }))
}

/// Packages a release: resources layer, metadata, config and manifest.
pub fn package(input: ReleaseInput) -> Result<PackagedRelease, PackageError> {
    let ReleaseInput {
        repository,
        project,
        number,
        aliases,
        trigger,
        source,
        commit_time,
        artifacts,
        mut files,
        tool,
    } = input;
    if files.is_empty() {
        return Err(PackageError::Empty);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(pair) = files.windows(2).find(|pair| pair[0].path == pair[1].path) {
        return Err(PackageError::DuplicateObject(pair[0].id.to_string()));
    }
    let created = timefmt::rfc3339(commit_time).ok_or(PackageError::BadTime(commit_time))?;
    let mtime = u64::try_from(commit_time).unwrap_or(0);
    let (resources, layer) = write_resources_layer(&files, mtime, Vec::new())?;

    let mut by_kind = BTreeMap::new();
    for file in &files {
        *by_kind.entry(file.id.kind.clone()).or_insert(0) += 1;
    }
    let objects = files
        .iter()
        .map(|f| ObjectInfo {
            api_version: f.id.api_version.clone(),
            kind: f.id.kind.clone(),
            namespace: f.id.namespace.clone(),
            name: f.id.name.clone(),
            path: f.path.clone(),
            sha256: f.sha256(),
        })
        .collect();
    let commit = source.commit.clone();
    let metadata = ReleaseMetadata {
        schema_version: SCHEMA_VERSION,
        release: ReleaseInfo {
            id: format!("{repository}/{project}/{commit}"),
            repository: repository.clone(),
            project: project.clone(),
            number,
            aliases: aliases.clone(),
            trigger: trigger.clone(),
            created: created.clone(),
        },
        source,
        artifacts,
        resources: ResourcesInfo {
            count: files.len() as u64,
            by_kind,
            tar_sha256: layer.tar_sha256,
            objects,
        },
        tool,
    };
    let metadata_bytes = metadata.to_bytes();
    let config = serde_json::to_vec(&ReleaseConfig {
        format_version: SCHEMA_VERSION,
        repository: repository.clone(),
        project: project.clone(),
        commit: commit.clone(),
    })
    .expect("config always serialises");

    let titled = |mut d: Descriptor, title: &str| {
        d.annotations.insert(annotations::TITLE.into(), title.into());
        d
    };
    let resources_desc = titled(
        Descriptor {
            media_type: manifest::RESOURCES_MEDIA_TYPE.into(),
            digest: layer.digest,
            size: layer.size,
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
    notes.insert(annotations::FORGE_REPOSITORY.to_owned(), repository);
    notes.insert(annotations::FORGE_PROJECT.to_owned(), project);
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
    let digest = Digest::of(&manifest_bytes);
    Ok(PackagedRelease {
        manifest,
        manifest_bytes,
        digest,
        config,
        resources,
        metadata_bytes,
        metadata,
    })
}
