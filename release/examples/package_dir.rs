//! Benchmark driver: packages every file under a directory as a release, the way `build`
//! does after rendering, and prints the manifest digest and the peak memory.
//!
//! Usage: package_dir DIR

use std::path::{Path, PathBuf};

use forge_release::metadata::{Person, SourceInfo, ToolInfo, Trigger, TriggerKind};
use forge_release::objects::{ObjectId, ResourceFile};
use forge_release::package::{self, ReleaseInput, ResourcesLayer};

fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            walk(&path, found);
        } else {
            found.push(path);
        }
    }
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: package_dir DIR"));
    let mut paths = Vec::new();
    walk(&dir, &mut paths);
    let files = paths
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let id = ObjectId {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: Some("bench".into()),
                name: format!("object-{i}"),
            };
            ResourceFile::new(id, std::fs::read(path).expect("read")).expect("valid id")
        })
        .collect();
    let person = Person { name: "bench".into(), email: "bench@example.com".into() };
    let input = ReleaseInput {
        repository: "bench/repo".into(),
        project: "bench".into(),
        trigger: Trigger::new(TriggerKind::Manual, None, None),
        source: SourceInfo {
            repository_url: None,
            commit: "0".repeat(40),
            author: person.clone(),
            committer: person,
            commit_time: "1970-01-01T00:00:00Z".into(),
            message: String::new(),
            branch: None,
            tags: Vec::new(),
            files: Vec::new(),
        },
        commit_time: 0,
        artifacts: Vec::new(),
        manifests: Vec::new(),
        resources: ResourcesLayer::build(files, 0).expect("layer"),
        images: Vec::new(),
        tool: ToolInfo { name: "bench".into(), version: "0".into() },
    };
    let release = package::package(&input, 1, &["1".into()]).expect("package");
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l[6..].trim().to_owned()))
        .unwrap_or_default();
    eprintln!(
        "{} {} resources={} bytes peak={peak}",
        release.digest,
        paths.len(),
        release.resources.len()
    );
}
