//! `inspect`, `list` and `pull` against the embedded layout store.

use crate::harness::{self, Sandbox, pinned};

fn built(sandbox: &Sandbox) {
    let project = sandbox.project("auth-service");
    let mut args = vec!["build", "-C", project.to_str().expect("utf-8")];
    args.extend(pinned());
    sandbox.ok(&args);
}

#[test]
fn inspect_by_number_alias_sha_and_prefix_shows_the_same_release() {
    let sandbox = Sandbox::new();
    built(&sandbox);
    let by_number = sandbox.ok(&["inspect", "company/monorepo/auth-service:1"]);
    insta::assert_snapshot!(by_number);
    for id in ["main-1", harness::COMMIT, &harness::COMMIT[..7], "#1"] {
        let other = sandbox.ok(&["inspect", &format!("company/monorepo/auth-service:{id}")]);
        assert_eq!(other, by_number, "{id}");
    }
    let resources = sandbox.ok(&["inspect", "company/monorepo/auth-service:1", "--resources"]);
    assert!(resources.contains("auth       Deployment  auth-service   apps/v1"), "{resources}");
    let object = sandbox.ok(&[
        "inspect",
        "company/monorepo/auth-service:1",
        "--show",
        "configmap/auth-settings",
    ]);
    assert!(object.contains("FEATURE_SSO: \"on\""), "{object}");
    // Issue 18: the image inventory, with the objects that run each image.
    let images =
        sandbox.ok(&["inspect", "company/monorepo/auth-service:1", "--images", "-o", "json"]);
    let images: serde_json::Value = serde_json::from_str(&images).expect("json");
    assert_eq!(
        images,
        serde_json::json!([{
            "image": "registry.example.com/company/auth-service@sha256:0d5f5a0b9e0ad2b3a1c1c8f36e3d9d2b8a7f6e5d4c3b2a1908f7e6d5c4b3a291",
            "digest": "sha256:0d5f5a0b9e0ad2b3a1c1c8f36e3d9d2b8a7f6e5d4c3b2a1908f7e6d5c4b3a291",
            "objects": ["apps/Deployment auth/auth-service"],
        }])
    );
}

#[test]
fn unknown_and_malformed_references_fail_with_hints() {
    let sandbox = Sandbox::new();
    built(&sandbox);
    insta::assert_snapshot!(sandbox.fails(3, &["inspect", "company/monorepo/auth-service:99"]), @r"
    error: no release `99` in oci:[SANDBOX]/store/company/monorepo/auth-service
      hint: `forge-pack list <repository>/<project>` shows the releases there
    ");
    insta::assert_snapshot!(sandbox.fails(3, &["inspect", "company/monorepo/billing:1"]), @r"
    error: no releases in oci:[SANDBOX]/store/company/monorepo/billing
      hint: build or push a release first, or check --registry
    ");
    assert_eq!(
        sandbox.fails(2, &["inspect", "Company/Auth:1"]),
        "error: invalid reference `Company/Auth:1`: expected `<repository>/<project>` in lowercase letters, \
         digits, `.`, `_`, `-` (e.g. `company/app/api:42`)\n"
    );
    insta::assert_snapshot!(sandbox.fails(2, &["inspect", "company/monorepo/auth-service"]), @r"
    error: `company/monorepo/auth-service` names a project, not a release
      hint: add a release id, e.g. `company/monorepo/auth-service:1`, or run `forge-pack list company/monorepo/auth-service`
    ");
}

#[test]
fn list_shows_releases_newest_first_and_pull_extracts_verified_files() {
    let sandbox = Sandbox::new();
    built(&sandbox);
    let project = sandbox.path().join("auth-service");
    std::fs::write(
        project.join("templates/extra.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra, namespace: auth}\n",
    )
    .expect("write");
    let mut args = vec!["build", "-C", project.to_str().expect("utf-8")];
    let second_commit = "1".repeat(40);
    args.extend(pinned());
    args[4] = &second_commit;
    sandbox.ok(&args);
    insta::assert_snapshot!(sandbox.ok(&["list", "company/monorepo/auth-service"]));
    let listed: serde_json::Value = serde_json::from_str(&sandbox.ok(&[
        "list",
        "company/monorepo/auth-service",
        "--output",
        "json",
    ]))
    .expect("json");
    assert_eq!(listed[0]["number"], 2);
    assert_eq!(listed[1]["aliases"], serde_json::json!(["1", "main-1"]));

    let out = sandbox.path().join("pulled");
    sandbox.ok(&["pull", "company/monorepo/auth-service:2", "--out", out.to_str().expect("utf-8")]);
    let extra =
        std::fs::read_to_string(out.join("auth/core.ConfigMap.extra.yaml")).expect("pulled file");
    assert_eq!(
        extra,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: auth\n"
    );
}

#[test]
fn pull_refuses_a_tampered_store_and_leaves_no_directory() {
    let sandbox = Sandbox::new();
    built(&sandbox);
    let blobs = sandbox.path().join("store/company/monorepo/auth-service/blobs/sha256");
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(sandbox.path().join("store/company/monorepo/auth-service/index.json"))
            .expect("index"),
    )
    .expect("json");
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .expect("digest")
        .trim_start_matches("sha256:")
        .to_owned();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blobs.join(&manifest_digest)).expect("manifest"))
            .expect("json");
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .expect("layer")
        .trim_start_matches("sha256:")
        .to_owned();
    let mut bytes = std::fs::read(blobs.join(&layer)).expect("layer");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(blobs.join(&layer), bytes).expect("tamper");
    let out = sandbox.path().join("pulled");
    let stderr = sandbox.fails(
        5,
        &["pull", "company/monorepo/auth-service:1", "--out", out.to_str().expect("utf-8")],
    );
    assert!(stderr.contains(&format!("content of sha256:{layer}")), "{stderr}");
    assert!(stderr.contains("the store is corrupt or was tampered with"), "{stderr}");
    assert!(!out.exists());
}

/// Progress is drawn for a person at a terminal and never into a pipe: `script` gives the
/// command a pseudo-terminal, as a shell would.
#[test]
fn progress_shows_on_a_terminal_only() {
    let sandbox = Sandbox::new();
    built(&sandbox);
    let binary = env!("CARGO_BIN_EXE_forge-pack");
    let pull = |dir: &str, extra: &str| {
        let out = sandbox.path().join(dir);
        format!("{binary} pull company/monorepo/auth-service:1 --out {} {extra}", out.display())
    };
    let in_terminal = |command: String| {
        let mut script = std::process::Command::new("script");
        script.args(["--quiet", "--return", "--command", &command, "/dev/null"]);
        let mut script = sandbox.environment(script);
        let output = script.env("TERM", "xterm").output().expect("script (util-linux) is required");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let shown = in_terminal(pull("tty", ""));
    assert!(shown.contains("downloading and verifying sha256:"), "{shown}");
    let hidden = in_terminal(pull("tty-no-progress", "--no-progress"));
    assert!(!hidden.contains("downloading"), "{hidden}");
    let output = sandbox.run(&["pull", "company/monorepo/auth-service:1", "--out", "piped"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && !stderr.contains("downloading"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "no terminal escapes in a pipe: {stderr:?}");
}
