//! The release config blob and the release metadata document (layer 1), schema version 1.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::FormatError;
use crate::manifest::Descriptor;
use crate::objects::ObjectId;

/// The newest major version of the config and metadata documents this build reads and writes.
pub const SCHEMA_VERSION: u64 = 1;

/// The small config blob: enough to tell what a manifest is without reading a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseConfig {
    /// Major format version; readers refuse versions newer than [`SCHEMA_VERSION`].
    pub format_version: u64,
    /// Release repository, e.g. `company/monorepo`.
    pub repository: String,
    /// Project name, e.g. `auth-service`.
    pub project: String,
    /// Full commit SHA.
    pub commit: String,
}

impl ReleaseConfig {
    /// Parses a config blob and refuses unknown major versions.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        check_version(bytes, "formatVersion", "release config")?;
        serde_json::from_slice(bytes)
            .map_err(|e| FormatError::Json { what: "release config", source: e })
    }

    /// The config blob's bytes, as forge-pack writes them.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a config always serialises")
    }

    /// The bytes of the config blob `descriptor` names, worked out from the release's metadata
    /// (`metadata`, checked against its own digest): forge-pack's config says again what its
    /// metadata says. Only when they have the size and digest the descriptor gives, which makes
    /// them the blob itself: a reader need not fetch it. `None` for a config forge-pack would
    /// not write from that metadata (another version, another writer): fetch it.
    pub fn implied(descriptor: &Descriptor, metadata: &[u8]) -> Option<Vec<u8>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Identity {
            schema_version: u64,
            release: Names,
            source: Commit,
        }
        #[derive(Deserialize)]
        struct Names {
            repository: String,
            project: String,
        }
        #[derive(Deserialize)]
        struct Commit {
            commit: String,
        }
        let Identity { schema_version, release, source } = serde_json::from_slice(metadata).ok()?;
        let bytes = ReleaseConfig {
            format_version: schema_version,
            repository: release.repository,
            project: release.project,
            commit: source.commit,
        }
        .to_bytes();
        (bytes.len() as u64 == descriptor.size && Digest::of(&bytes) == descriptor.digest)
            .then_some(bytes)
    }
}

/// The release metadata document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseMetadata {
    /// Major schema version; readers refuse versions newer than [`SCHEMA_VERSION`].
    pub schema_version: u64,
    /// Identity of the release.
    pub release: ReleaseInfo,
    /// Where the release came from.
    pub source: SourceInfo,
    /// Every resolved artifact, sorted by name.
    pub artifacts: Vec<Artifact>,
    /// The release manifests artifacts came from, as they describe themselves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<ManifestInfo>,
    /// What the release deploys.
    pub resources: ResourcesInfo,
    /// Every container image its objects run, sorted by reference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ContainerImage>,
    /// The tool that made it.
    pub tool: ToolInfo,
}

/// A container image the release's objects run (containers, init and ephemeral containers of
/// every pod spec, workload and CronJob templates included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerImage {
    /// The reference as the objects write it.
    pub image: String,
    /// Its digest, when the reference pins one (`…@sha256:<hex>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The objects that run it, as `<group>/<kind> <namespace>/<name>`.
    pub objects: Vec<String>,
}

impl ReleaseMetadata {
    /// Parses the metadata blob and refuses unknown major versions.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        check_version(bytes, "schemaVersion", "release metadata")?;
        serde_json::from_slice(bytes)
            .map_err(|e| FormatError::Json { what: "release metadata", source: e })
    }

    /// Serialised bytes (pretty, so `oras pull` gives a readable file).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("metadata always serialises");
        bytes.push(b'\n');
        bytes
    }
}

/// Reads only the version field first so a future format fails with a version message rather
/// than a confusing "missing field" one. Everything else is skipped, not built: a release's
/// metadata lists every object, and this runs on forge-cmp's warm path.
fn check_version(bytes: &[u8], field: &str, what: &'static str) -> Result<(), FormatError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Versions {
        schema_version: Option<serde_json::Value>,
        format_version: Option<serde_json::Value>,
    }
    let versions: Versions =
        serde_json::from_slice(bytes).map_err(|e| FormatError::Json { what, source: e })?;
    let found =
        if field == "schemaVersion" { versions.schema_version } else { versions.format_version };
    let version = found.as_ref().and_then(serde_json::Value::as_u64).ok_or_else(|| {
        FormatError::NotARelease { reason: format!("{what} has no numeric `{field}`") }
    })?;
    if version > SCHEMA_VERSION {
        return Err(FormatError::UnsupportedVersion {
            what,
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Identity of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseInfo {
    /// Canonical id `<repository>/<project>/<commit-sha>`.
    pub id: String,
    /// Release repository, e.g. `company/monorepo`.
    pub repository: String,
    /// Project name.
    pub project: String,
    /// Per-project release number, from 1.
    pub number: u64,
    /// Aliases given at creation (numeric, tag and branch aliases).
    pub aliases: Vec<String>,
    /// What caused the release.
    pub trigger: Trigger,
    /// Creation time, RFC 3339 UTC (the commit time, so rebuilding gives the same bytes).
    pub created: String,
}

/// What caused a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    /// The kind of trigger.
    #[serde(rename = "type")]
    pub kind: TriggerKind,
    /// Branch, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Tag, for tag releases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Whether the branch was verified to contain the commit (by the CI building that branch,
    /// or by the branch in the checkout), rather than only claimed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub branch_verified: bool,
    /// Who released it: the CI's user, when a CI says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The CI run that released it, when a CI says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_url: Option<String>,
}

impl Trigger {
    /// A trigger of `kind`, with what is known of its branch and tag; nothing verified.
    pub fn new(kind: TriggerKind, branch: Option<String>, tag: Option<String>) -> Self {
        Trigger { kind, branch, tag, branch_verified: false, actor: None, run_url: None }
    }
}

/// The kinds of release trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// A push to a branch.
    BranchPush,
    /// A pushed git tag.
    Tag,
    /// A person asked for it.
    Manual,
    /// A pull (merge) request's build: admitted only where listed explicitly.
    PullRequest,
}

impl TriggerKind {
    /// The wire name (`branch_push`, `tag`, `manual`, `pull_request`).
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::BranchPush => "branch_push",
            TriggerKind::Tag => "tag",
            TriggerKind::Manual => "manual",
            TriggerKind::PullRequest => "pull_request",
        }
    }
}

/// A person in git.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: String,
}

/// Source commit of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceInfo {
    /// Repository URL, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_url: Option<String>,
    /// Full commit SHA.
    pub commit: String,
    /// Commit author.
    pub author: Person,
    /// Committer.
    pub committer: Person,
    /// Commit time, RFC 3339 UTC.
    pub commit_time: String,
    /// Full commit message.
    pub message: String,
    /// Branch, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Git tags on the commit.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Every file the release was rendered from (templates, libraries, imported data), with
    /// its git blob id: what the commit holds at that path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<SourceFile>,
}

/// A file a release was rendered from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// Path relative to the repository's top directory.
    pub path: String,
    /// Git blob id (SHA-1) of its content.
    pub blob: String,
}

/// One resolved artifact (typically a container image) and where its values came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Artifact name as referenced in templates (`api-server`).
    pub name: String,
    /// Field name → value (`uri`, `digest`, `tag`, `sha`, ...).
    pub fields: BTreeMap<String, String>,
    /// Field name → source of the value (artifacts file path, `--artifact`, `derived`).
    pub sources: BTreeMap<String, String>,
}

/// A release manifest given as artifacts (`--artifacts`), as it describes itself: its own
/// version and description, kept with the release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestInfo {
    /// The file's name.
    pub file: String,
    /// Its `version` (or `release`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Its `description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// What a release deploys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourcesInfo {
    /// Number of objects.
    pub count: u64,
    /// Object count per kind.
    pub by_kind: BTreeMap<String, u64>,
    /// Digest of the uncompressed tar.
    pub tar_sha256: Digest,
    /// Every object, in tarball order.
    pub objects: Vec<ObjectInfo>,
}

/// One Kubernetes object in the release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// `apiVersion`, `kind`, `namespace` and `name`, as fields of this record.
    #[serde(flatten)]
    pub id: ObjectId,
    /// Path of its file in the tarball.
    pub path: String,
    /// Digest of the file.
    pub sha256: Digest,
}

/// The tool that built the release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolInfo {
    /// Tool name.
    pub name: String,
    /// Tool version.
    pub version: String,
}
