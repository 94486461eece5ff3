//! Issue 19: what Argo CD's native OCI source (3.1+) makes of a pushed release, by its own
//! rules (util/oci/client.go and the Directory source): at most 10 layers, exactly one content
//! layer (a media type ending in `tar`, `tar+gzip` or `tar.gzip`) of an allowed type, the
//! metadata layer ignored; extracted, the objects sit in subdirectories, so a Directory source
//! sees none without `directory.recurse: true`, and all of them with it, within its 10 MB
//! combined-manifests cap. The release is fetched with crane, a real peer.

use std::process::Command;

use forge_testkit::{Registry, RegistryKind, go_tool};
use serde_json::Value;

use crate::harness::{Sandbox, push_args};

const ALLOWED: [&str; 3] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
];

fn crane(args: &[&str]) -> Vec<u8> {
    let out = Command::new(go_tool("crane")).args(args).output().expect("crane");
    assert!(out.status.success(), "crane {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn yaml_files(dir: &std::path::Path, recurse: bool) -> Vec<(std::path::PathBuf, u64)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let path = entry.path();
        let meta = entry.metadata().expect("meta");
        if meta.is_dir() && recurse {
            found.extend(yaml_files(&path, true));
        } else if meta.is_file()
            && path.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        {
            found.push((path, meta.len()));
        }
    }
    found
}

#[test]
fn argo_cd_reads_a_release_as_one_content_layer_of_recursed_directories() {
    let registry = Registry::shared(RegistryKind::Plain);
    let root = registry.unique_root("argocd-oci");
    let sandbox = Sandbox::new();
    let project = sandbox.project("auth-service");
    let dir = project.to_str().expect("utf-8");
    let mut args = push_args(dir, crate::harness::COMMIT);
    args.extend(["-o", "json"]);
    let pushed = sandbox.command(&args).env("FORGE_REGISTRY", &root).output().expect("push");
    assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));
    let image = format!("{root}/company/monorepo/auth-service");

    let manifest: Value =
        serde_json::from_slice(&crane(&["manifest", "--insecure", &format!("{image}:1")]))
            .expect("json");
    let layers = manifest["layers"].as_array().expect("layers");
    assert!(layers.len() <= 10, "expected no more than 10 oci layers");
    let content: Vec<&Value> = layers
        .iter()
        .filter(|l| {
            let media = l["mediaType"].as_str().unwrap_or_default();
            media.ends_with("tar+gzip") || media.ends_with("tar.gzip") || media.ends_with("tar")
        })
        .collect();
    assert_eq!(content.len(), 1, "expected only a single oci content layer");
    let media = content[0]["mediaType"].as_str().expect("media type");
    assert!(ALLOWED.contains(&media), "{media} is not in the list of allowed media types");
    assert_ne!(manifest["config"]["mediaType"], "application/vnd.cncf.helm.config.v1+json");

    let digest = content[0]["digest"].as_str().expect("digest");
    let layer = sandbox.path().join("layer.tar.gz");
    std::fs::write(&layer, crane(&["blob", "--insecure", &format!("{image}@{digest}")]))
        .expect("layer");
    let extracted = sandbox.path().join("extracted");
    std::fs::create_dir_all(&extracted).expect("mkdir");
    let untar = Command::new("tar")
        .arg("-xzf")
        .arg(&layer)
        .arg("-C")
        .arg(&extracted)
        .status()
        .expect("tar");
    assert!(untar.success());

    assert!(yaml_files(&extracted, false).is_empty(), "objects sit in subdirectories");
    let all = yaml_files(&extracted, true);
    let inspected = sandbox
        .command(&["inspect", &format!("{image}:1"), "-o", "json"])
        .output()
        .expect("inspect");
    let inspected: Value = serde_json::from_slice(&inspected.stdout).expect("json");
    assert_eq!(
        all.len() as u64,
        inspected["metadata"]["resources"]["count"].as_u64().expect("count")
    );
    let total: u64 = all.iter().map(|(_, size)| size).sum();
    assert!(total < 10 << 20, "within Argo CD's 10 MB combined-manifests cap");
}
