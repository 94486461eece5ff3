//! forge-cmp against a real registry: the end-to-end path from `forge-pack push` to Argo CD,
//! and a warm cache that needs no registry at all.

use std::path::PathBuf;

use forge_testkit::{Registry, RegistryKind};
use serde_json::Value;

use crate::argo::{Env, argo_parse, failure};

const APP: &str = "envs/prod/auth-service";

fn pointer(image: &str, commit: &str, digest: Option<&str>) -> String {
    let digest = digest.map(|d| format!("  digest: {d}\n")).unwrap_or_default();
    format!(
        "apiVersion: forge.dev/v1alpha1\nkind: ReleasePointer\nmetadata:\n  name: auth-service\nspec:\n  image: {image}\n  commit: {commit}\n{digest}"
    )
}

/// Pushes the example project and returns (image, commit, digest, `forge-pack render` objects).
fn push_example(env: &Env, registry: &str) -> (String, String, String, Vec<Value>) {
    let project = crate::argo::example_project(env);
    let dir = project.to_str().expect("utf-8");
    let commit = "d".repeat(40);
    let pushed = crate::argo::push_project(registry, dir, &commit, &[]);
    let rendered = crate::argo::render_project(registry, dir);
    let image = format!("{registry}/company/monorepo/auth-service");
    (image, commit, pushed["digest"].as_str().expect("digest").to_owned(), rendered)
}

fn gitops(env: &Env, text: &str) -> PathBuf {
    let root = env.dir.path().join("gitops");
    std::fs::create_dir_all(root.join(APP)).expect("mkdir");
    std::fs::write(root.join(APP).join("release.yaml"), text).expect("pointer");
    root
}

#[test]
fn pushed_release_renders_through_the_plugin_exactly_as_forge_pack_renders_it() {
    let registry = Registry::shared(RegistryKind::Plain);
    let env = Env::new();
    let prefix = registry.unique_root("cmp-e2e");
    let (image, commit, digest, rendered) = push_example(&env, &prefix);
    let repo = gitops(&env, &pointer(&image, &commit, Some(&digest)));
    assert_eq!(argo_parse(&env.generate(&repo, APP, &[])), rendered);

    let wrong = format!("sha256:{}", "0".repeat(64));
    let repo = gitops(&env, &pointer(&image, &commit, Some(&wrong)));
    let stderr = failure(&env.generate(&repo, APP, &[]));
    assert!(
        stderr.contains(&format!(
            "pinned digest {wrong} does not match the release tagged {commit}, which is {digest}"
        )),
        "{stderr}"
    );
}

#[test]
fn a_warm_generate_makes_no_registry_request() {
    let mut registry = Registry::start(RegistryKind::Plain);
    let env = Env::new();
    let prefix = registry.unique_root("cmp-warm");
    let (image, commit, _, rendered) = push_example(&env, &prefix);
    let repo = gitops(&env, &pointer(&image, &commit, None));
    let cold = env.generate(&repo, APP, &[]);
    assert_eq!(argo_parse(&cold), rendered);

    registry.stop();
    let warm = env.generate(&repo, APP, &[]);
    assert_eq!(
        warm.stdout,
        cold.stdout,
        "warm generate failed without the registry: {}",
        String::from_utf8_lossy(&warm.stderr)
    );

    // A pointer the cache does not know needs the registry, and says so clearly.
    let repo = gitops(&env, &pointer(&image, &"e".repeat(40), None));
    let stderr = failure(&env.generate(&repo, APP, &[("FORGE_CMP_TIMEOUT_SECONDS", "20")]));
    assert!(stderr.contains(&image), "{stderr}");
}

/// Issue 13: forge-cmp's warnings reach stderr (Argo CD logs it): a registry that fails once
/// is retried, and the retry is said.
#[test]
fn warnings_such_as_a_retried_request_reach_stderr() {
    let registry = Registry::shared(RegistryKind::Plain);
    let proxy = forge_testkit::FaultProxy::start(&registry.addr);
    let env = Env::new();
    let prefix = format!("{}/{}", proxy.addr, registry.unique_repository("cmp-warn"));
    let (image, commit, digest, rendered) = push_example(&env, &prefix);
    let repo = gitops(&env, &pointer(&image, &commit, Some(&digest)));
    proxy.inject("GET", "/blobs/", forge_testkit::Fault::Status(503, None), 1);
    let output = env.generate(&repo, APP, &[]);
    assert_eq!(argo_parse(&output), rendered);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("retrying in"), "the retry is logged: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "plain text for Argo CD's log: {stderr}");
}
