//! Issue 19: the documented Argo CD install (`kubectl apply -k plugin/`) renders, with the
//! real kustomize, to a repo-server carrying the forge-cmp sidecar whose every mount has a
//! volume, the sidecar's configuration as a ConfigMap, and the image override applied; and
//! kubectl (client dry run, against a stand-in API server) takes every object. Argo CD's own
//! install manifest is remote, so a stand-in repo-server shaped like it takes its place.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use forge_testkit::go_tool;
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("repository")
}

/// `to` relative to `from` (kustomize takes no absolute component paths).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut path: PathBuf = from[common..].iter().map(|_| "..").collect();
    path.extend(to[common..].iter().map(|c| c.as_os_str()));
    path
}

/// plugin/kustomization.yaml as shipped, with the stand-in for Argo CD's remote manifest.
fn rendered_install() -> String {
    let repo = repo();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("dir");
    let dir_path = dir.path().canonicalize().expect("dir");
    std::fs::copy(repo.join("testdata/argocd/repo-server.yaml"), dir_path.join("repo-server.yaml"))
        .expect("stand-in");
    let shipped = std::fs::read_to_string(repo.join("plugin/kustomization.yaml")).expect("read");
    let remote = shipped
        .lines()
        .find(|l| l.trim_start().starts_with("- https://"))
        .expect("Argo CD's install manifest, pinned");
    assert!(
        remote.contains("/argo-cd/v") && remote.ends_with("/manifests/install.yaml"),
        "{remote}"
    );
    let component = relative(&dir_path, &repo.join("plugin/sidecar"));
    let local = shipped
        .replace(remote, "  - repo-server.yaml")
        .replace("  - sidecar", &format!("  - {}", component.display()));
    std::fs::write(dir_path.join("kustomization.yaml"), local).expect("write");
    let built =
        Command::new(go_tool("kustomize")).arg("build").arg(&dir_path).output().expect("kustomize");
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    String::from_utf8(built.stdout).expect("utf-8")
}

fn documents(stream: &str) -> Vec<Value> {
    stream
        .split("\n---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_saphyr::from_str(d).expect("a YAML document"))
        .collect()
}

#[test]
fn the_documented_install_renders_a_sidecar_whose_every_mount_has_a_volume() {
    let stream = rendered_install();
    let objects = documents(&stream);
    let deployment = objects
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "argocd-repo-server")
        .expect("the repo-server");
    assert_eq!(deployment["metadata"]["namespace"], "argocd");
    let spec = &deployment["spec"]["template"]["spec"];
    let volumes: BTreeSet<&str> = spec["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    let containers: Vec<&Value> = spec["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .chain(spec["initContainers"].as_array().into_iter().flatten())
        .collect();
    for container in &containers {
        for mount in container["volumeMounts"].as_array().into_iter().flatten() {
            let name = mount["name"].as_str().expect("name");
            assert!(volumes.contains(name), "{}: mount {name} has no volume", container["name"]);
        }
    }
    let sidecar = containers.iter().find(|c| c["name"] == "forge-cmp").expect("the sidecar");
    assert_eq!(sidecar["image"], "ghcr.io/forge-pack/forge-cmp:0.1.0", "the images: override");
    assert_eq!(sidecar["securityContext"]["runAsUser"], 999);
    assert_eq!(sidecar["securityContext"]["readOnlyRootFilesystem"], true);
    let config = objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == "forge-cmp-config")
        .expect("the sidecar's configuration");
    assert!(
        config["data"]["config.yaml"].as_str().expect("config").contains("kind: SidecarConfig")
    );

    // kubectl maps and takes every object (client dry run against a stand-in API server).
    let mut server = Command::new("python3")
        .arg(repo().join("testkit/fake-apiserver.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut port = String::new();
    BufReader::new(server.stdout.take().expect("stdout")).read_line(&mut port).expect("port");
    let mut apply = Command::new("kubectl")
        .args(["--server", &format!("http://127.0.0.1:{}", port.trim())])
        .args(["apply", "--dry-run=client", "--validate=false", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl is required for this test (make deps installs it)");
    use std::io::Write;
    apply.stdin.take().expect("stdin").write_all(stream.as_bytes()).expect("write");
    let applied = apply.wait_with_output().expect("kubectl");
    drop(server.stdin.take());
    let _ = server.wait();
    let out = String::from_utf8_lossy(&applied.stdout);
    assert!(applied.status.success(), "{out}{}", String::from_utf8_lossy(&applied.stderr));
    assert_eq!(out.lines().filter(|l| l.ends_with("(dry run)")).count(), objects.len(), "{out}");
}
