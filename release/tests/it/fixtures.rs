//! A fixed release input shared by the tests.

use forge_release::metadata::{Artifact, Person, SourceInfo, ToolInfo, Trigger, TriggerKind};
use forge_release::objects::{ObjectId, ResourceFile};
use forge_release::package::ReleaseInput;

pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
pub const COMMIT_TIME: i64 = 1_714_564_800; // 2024-05-01T12:00:00Z

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

pub fn files() -> Vec<ResourceFile> {
    vec![
        file("v1", "Namespace", None, "auth", ""),
        file("apps/v1", "Deployment", Some("auth"), "api", "spec:\n  replicas: 3\n"),
        file("v1", "Service", Some("auth"), "api", "spec:\n  ports:\n  - port: 80\n"),
        file("v1", "ConfigMap", Some("auth"), "settings", "data:\n  FEATURE: \"on\"\n"),
    ]
}

pub fn input() -> ReleaseInput {
    ReleaseInput {
        repository: "company/monorepo".into(),
        project: "auth-service".into(),
        number: 7,
        aliases: vec!["7".into(), "v1.2.3".into(), "main-7".into()],
        trigger: Trigger {
            kind: TriggerKind::Tag,
            branch: Some("main".into()),
            tag: Some("auth-service/v1.2.3".into()),
        },
        source: SourceInfo {
            repository_url: Some("https://git.example.com/company/monorepo".into()),
            commit: COMMIT.into(),
            author: Person { name: "Ada Lovelace".into(), email: "ada@example.com".into() },
            committer: Person { name: "CI".into(), email: "ci@example.com".into() },
            commit_time: "2024-05-01T12:00:00Z".into(),
            message: "Release auth-service v1.2.3\n\nWith a body.".into(),
            branch: Some("main".into()),
            tags: vec!["auth-service/v1.2.3".into()],
        },
        commit_time: COMMIT_TIME,
        artifacts: vec![Artifact {
            name: "api".into(),
            fields: [("digest".to_owned(), format!("sha256:{}", "a".repeat(64)))].into(),
            sources: [("digest".to_owned(), "component-tags.json".to_owned())].into(),
        }],
        files: files(),
        tool: ToolInfo { name: "forge-pack".into(), version: "0.0.0-test".into() },
    }
}

pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("forge-release-test-").tempdir().expect("temp dir")
}
