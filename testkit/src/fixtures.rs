//! A fixed release shared by the format and store tests.

use forge_release::image::ReleaseImage;
use forge_release::metadata::{Artifact, Person, SourceInfo, ToolInfo, Trigger, TriggerKind};
use forge_release::objects::{ObjectId, ResourceFile};
use forge_release::package::{self, ReleaseInput, ResourcesLayer};

pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
pub const COMMIT_TIME: i64 = 1_714_564_800; // 2024-05-01T12:00:00Z
/// The fixture release's number.
pub const NUMBER: u64 = 7;

/// The fixture release's aliases.
pub fn aliases() -> Vec<String> {
    vec!["7".into(), "v1.2.3".into(), "main-7".into()]
}

/// One object's file.
pub fn file(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    body: &str,
) -> ResourceFile {
    let id = ObjectId {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: namespace.map(Into::into),
        name: name.into(),
    };
    let ns_line = namespace.map(|ns| format!("  namespace: {ns}\n")).unwrap_or_default();
    let content = format!(
        "apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: {name}\n{ns_line}{body}"
    );
    ResourceFile::new(id, content.into_bytes()).expect("valid fixture object")
}

/// The fixture's objects.
pub fn files() -> Vec<ResourceFile> {
    vec![
        file("v1", "Namespace", None, "auth", ""),
        file("apps/v1", "Deployment", Some("auth"), "api", "spec:\n  replicas: 3\n"),
        file("v1", "Service", Some("auth"), "api", "spec:\n  ports:\n  - port: 80\n"),
        file("v1", "ConfigMap", Some("auth"), "settings", "data:\n  FEATURE: \"on\"\n"),
    ]
}

/// The fixture's input with `files` as its objects.
pub fn input_with(files: Vec<ResourceFile>) -> ReleaseInput {
    ReleaseInput {
        repository: "company/monorepo".into(),
        project: "auth-service".into(),
        trigger: Trigger::new(
            TriggerKind::Tag,
            Some("main".into()),
            Some("auth-service/v1.2.3".into()),
        ),
        source: SourceInfo {
            repository_url: Some("https://git.example.com/company/monorepo".into()),
            commit: COMMIT.into(),
            author: Person { name: "Ada Lovelace".into(), email: "ada@example.com".into() },
            committer: Person { name: "CI".into(), email: "ci@example.com".into() },
            commit_time: "2024-05-01T12:00:00Z".into(),
            message: "Release auth-service v1.2.3\n\nWith a body.".into(),
            branch: Some("main".into()),
            tags: vec!["auth-service/v1.2.3".into()],
            files: Vec::new(),
        },
        commit_time: COMMIT_TIME,
        artifacts: vec![Artifact {
            name: "api".into(),
            fields: [("digest".to_owned(), format!("sha256:{}", "a".repeat(64)))].into(),
            sources: [("digest".to_owned(), "component-tags.json".to_owned())].into(),
        }],
        manifests: Vec::new(),
        resources: ResourcesLayer::build(files, COMMIT_TIME).expect("valid fixture objects"),
        images: Vec::new(),
        tool: ToolInfo { name: "forge-pack".into(), version: "0.0.0-test".into() },
    }
}

/// The fixture's input.
pub fn input() -> ReleaseInput {
    input_with(files())
}

/// The fixture release, packaged as release [`NUMBER`] with [`aliases`].
pub fn image() -> ReleaseImage {
    package::package(&input(), NUMBER, &aliases()).expect("package the fixture")
}

/// A fresh temporary directory.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("forge-release-test-").tempdir().expect("temp dir")
}
