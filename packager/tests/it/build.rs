//! `forge-pack build`: reproducibility, git context, idempotency and immutability.

use crate::harness::{self, Sandbox, pinned};

fn digest_line(stdout: &str) -> String {
    stdout.lines().find_map(|l| l.strip_prefix("digest")).expect("digest line").trim().to_owned()
}

/// The golden digest of the example project built with pinned source facts. It may only
/// change with a deliberate change to the release format or the example project.
const EXAMPLE_DIGEST: &str =
    "sha256:703efd2865b1eb4fab35c1417200a6bc8eb5eef740b0bf7e1fe421f8a47d4fcd";

#[test]
fn same_inputs_give_the_same_digest_in_any_directory_time_zone_and_locale() {
    let sandbox = Sandbox::new();
    let mut digests = Vec::new();
    for (i, (tz, locale, reverse)) in [
        ("UTC", "C", false),
        ("Asia/Kolkata", "de_DE.UTF-8", true),
        ("America/St_Johns", "C.UTF-8", false),
    ]
    .into_iter()
    .enumerate()
    {
        let project = sandbox.path().join(format!("copy-{i}/nested/auth-service"));
        harness::copy_tree(&harness::testdata().join("projects/auth-service"), &project, reverse);
        let store = format!("oci:{}", sandbox.path().join(format!("store-{i}")).display());
        let mut args =
            vec!["build", "-C", project.to_str().expect("utf-8 path"), "--registry", &store];
        args.extend(pinned());
        let output = sandbox
            .command(&args)
            .env("TZ", tz)
            .env("LC_ALL", locale)
            .env("FORGE_LOG", "debug")
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        // The example's templates tell their objects' order: the layer is written while they
        // are parsed, and is the golden one all the same.
        assert!(stderr.contains("was written while the templates were parsed"), "{stderr}");
        digests.push(digest_line(&String::from_utf8_lossy(&output.stdout)));
    }
    assert_eq!(digests, vec![EXAMPLE_DIGEST.to_owned(); 3]);
}

#[test]
fn rebuilding_is_idempotent_and_changed_content_is_refused() {
    let sandbox = Sandbox::new();
    let project = sandbox.project("auth-service");
    let dir = project.to_str().expect("utf-8");
    let mut args = vec!["build", "-C", dir, "--output", "json"];
    args.extend(pinned());
    let first: serde_json::Value = serde_json::from_str(&sandbox.ok(&args)).expect("json");
    assert_eq!(first["number"], 1);
    assert_eq!(first["existed"], false);
    assert_eq!(first["tagsAdded"], serde_json::json!(["1", harness::COMMIT, "main-1"]));

    let again: serde_json::Value = serde_json::from_str(&sandbox.ok(&args)).expect("json");
    assert_eq!(
        (again["existed"].clone(), again["digest"].clone()),
        (true.into(), first["digest"].clone())
    );

    std::fs::write(
        project.join("templates/extra.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n",
    )
    .expect("write");
    let mut args = vec!["build", "-C", dir];
    args.extend(pinned());
    let stderr = sandbox.fails(6, &args);
    assert!(
        stderr.contains(&format!("error: commit {} already has release 1 (", harness::COMMIT)),
        "{stderr}"
    );
    assert!(stderr.contains("releases are immutable"), "{stderr}");
    assert!(stderr.contains("hint: a commit's release never changes"), "{stderr}");
}

#[test]
fn git_context_gives_aliases_and_uncommitted_templates_are_refused() {
    let sandbox = Sandbox::new();
    let repo = sandbox.path().join("monorepo");
    harness::copy_tree(
        &harness::testdata().join("projects/auth-service"),
        &repo.join("services/auth"),
        false,
    );
    harness::git(&repo, &["init", "-q", "-b", "main"]);
    harness::git(&repo, &["add", "."]);
    harness::git(&repo, &["commit", "-q", "-m", "Add auth-service\n\nFirst version."]);
    harness::git(&repo, &["tag", "auth-service/v1.0.0"]);
    harness::git(&repo, &["tag", "billing/v3.0.0"]);
    harness::git(
        &repo,
        &[
            "remote",
            "add",
            "origin",
            "https://ci-bot:s3cr3t-token@git.example.com/company/monorepo.git",
        ],
    );

    let project = repo.join("services/auth");
    let project = project.to_str().expect("utf-8");
    let built: serde_json::Value =
        serde_json::from_str(&sandbox.ok(&["build", "-C", project, "--output", "json"]))
            .expect("json");
    let tags: Vec<String> = serde_json::from_value(built["tagsAdded"].clone()).expect("tags");
    assert_eq!(tags[0], "1");
    assert_eq!(&tags[2..], ["v1.0.0", "main-1"]);

    let inspected: serde_json::Value = serde_json::from_str(&sandbox.ok(&[
        "inspect",
        "company/monorepo/auth-service:v1.0.0",
        "--output",
        "json",
    ]))
    .expect("json");
    let source = &inspected["metadata"]["source"];
    assert_eq!(source["author"]["name"], "Grace Hopper");
    assert_eq!(source["commitTime"], "2024-05-01T12:00:00Z");
    assert_eq!(source["message"], "Add auth-service\n\nFirst version.");
    assert_eq!(
        source["repositoryUrl"], "https://git.example.com/company/monorepo.git",
        "credentials stripped"
    );
    assert_eq!(source["tags"], serde_json::json!(["auth-service/v1.0.0", "billing/v3.0.0"]));

    std::fs::write(
        repo.join("services/auth/templates/config.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    )
    .expect("edit");
    let stderr = sandbox.fails(2, &["build", "-C", project]);
    assert!(
        stderr.contains("has uncommitted changes to files the release is made from (services/auth/templates/config.yaml)"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: commit the changes, or pass --allow-dirty"), "{stderr}");
}

#[test]
fn outside_git_without_a_commit_the_error_says_what_to_pass() {
    let sandbox = Sandbox::new();
    let project = sandbox.project("auth-service");
    let stderr = sandbox.fails(2, &["build", "-C", project.to_str().expect("utf-8")]);
    insta::assert_snapshot!(stderr, @r"
    error: [SANDBOX]/auth-service is not in a git checkout and no commit was given
      hint: run inside the project's git checkout, or pass --commit <SHA> --commit-time <TIME>
    ");
}

/// Issue 14: every file the render reads must be committed, libraries included (an edit to a
/// Jsonnet library path used to be released under the commit), and the release's metadata
/// lists each file with its git blob id, as `git hash-object` gives it.
#[test]
fn every_file_read_is_committed_and_listed_with_its_git_blob_id() {
    let sandbox = Sandbox::new();
    let repo = sandbox.path().join("monorepo");
    harness::copy_tree(
        &harness::testdata().join("projects/catalog"),
        &repo.join("services/catalog"),
        false,
    );
    // A shared library outside the project, inside the repository.
    std::fs::create_dir_all(repo.join("lib")).expect("mkdir");
    std::fs::rename(
        repo.join("services/catalog/lib/service.libsonnet"),
        repo.join("lib/service.libsonnet"),
    )
    .expect("move");
    let config = repo.join("services/catalog/forge.yaml");
    let text = std::fs::read_to_string(&config).expect("forge.yaml");
    std::fs::write(&config, text.replace("library_paths: [lib]", "library_paths: [../../lib]"))
        .expect("write");
    harness::git(&repo, &["init", "-q", "-b", "main"]);
    harness::git(&repo, &["add", "."]);
    harness::git(&repo, &["commit", "-q", "-m", "Add catalog"]);
    let project = repo.join("services/catalog");
    let dir = project.to_str().expect("utf-8");
    let artifacts = harness::testdata().join("artifacts/catalog.yaml");
    let artifacts = artifacts.to_str().expect("utf-8");

    std::fs::write(
        repo.join("lib/service.libsonnet"),
        std::fs::read_to_string(repo.join("lib/service.libsonnet")).expect("read")
            + "\n// edited\n",
    )
    .expect("edit");
    let stderr = sandbox.fails(2, &["build", "-C", dir, "--artifacts", artifacts]);
    assert!(
        stderr.contains(
            "uncommitted changes to files the release is made from (lib/service.libsonnet)"
        ),
        "{stderr}"
    );
    harness::git(&repo, &["checkout", "--", "lib/service.libsonnet"]);

    sandbox.ok(&["build", "-C", dir, "--artifacts", artifacts]);
    let inspected: serde_json::Value = serde_json::from_str(&sandbox.ok(&[
        "inspect",
        "company/shop/catalog:1",
        "--output",
        "json",
    ]))
    .expect("json");
    let files = inspected["metadata"]["source"]["files"].as_array().expect("files").clone();
    let paths: Vec<&str> = files.iter().filter_map(|f| f["path"].as_str()).collect();
    assert_eq!(
        paths,
        [
            "lib/service.libsonnet",
            "services/catalog/forge.yaml",
            "services/catalog/templates/catalog.jsonnet",
            "services/catalog/templates/workers.jsonnet"
        ]
    );
    for file in &files {
        let path = file["path"].as_str().expect("path");
        let output = std::process::Command::new("git")
            .args(["hash-object", path])
            .current_dir(&repo)
            .output()
            .expect("git");
        let expected = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        assert_eq!(file["blob"], expected.as_str(), "{path}");
    }
}
