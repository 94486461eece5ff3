//! Issue 16: triggers read from CI as they really are, branch provenance, and the policy
//! checked against them: pull request builds, detached HEADs, claimed branches, and a release
//! pushed from main and tagged later.

use std::path::{Path, PathBuf};
use std::process::Output;

use forge_testkit::{Registry, RegistryKind};

use crate::harness::{self, Sandbox};

/// A git repository holding the auth-service project on `main` (one commit), with a
/// `release.on` of `on`; returns the repository, the project directory and the commit.
fn repository(sandbox: &Sandbox, on: &str) -> (PathBuf, PathBuf, String) {
    let repo = sandbox.path().join("monorepo");
    let project = repo.join("services/auth");
    harness::copy_tree(&harness::testdata().join("projects/auth-service"), &project, false);
    let config = std::fs::read_to_string(project.join("forge.yaml")).expect("forge.yaml");
    let kept = &config[..config.find("release:").expect("release:")];
    std::fs::write(project.join("forge.yaml"), format!("{kept}release:\n  on: {on}\n"))
        .expect("forge.yaml");
    harness::git(&repo, &["init", "-q", "-b", "main"]);
    harness::git(&repo, &["add", "."]);
    harness::git(&repo, &["commit", "-q", "-m", "Add auth-service"]);
    let commit = git_stdout(&repo, &["rev-parse", "HEAD"]);
    (repo, project, commit)
}

/// A new branch `branch` with one more commit: a ConfigMap nobody reviewed.
fn commit_on_a_new_branch(repo: &Path, project: &Path, branch: &str) {
    harness::git(repo, &["checkout", "-q", "-b", branch]);
    std::fs::write(
        project.join("templates/evil.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: evil\n  namespace: auth\n",
    )
    .expect("evil");
    harness::git(repo, &["add", "."]);
    harness::git(repo, &["commit", "-q", "-m", "Something evil"]);
}

fn git_stdout(dir: &Path, args: &[&str]) -> String {
    let output =
        std::process::Command::new("git").args(args).current_dir(dir).output().expect("git");
    assert!(output.status.success(), "git {args:?}");
    String::from_utf8(output.stdout).expect("utf-8").trim().to_owned()
}

fn push(
    sandbox: &Sandbox,
    root: &str,
    project: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut args = vec!["push", "-C", project.to_str().expect("utf-8"), "--output", "json"];
    args.extend(extra);
    sandbox
        .command(&args)
        .env("FORGE_REGISTRY", root)
        .envs(env.iter().copied())
        .output()
        .expect("push")
}

fn report(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("json")
}

/// A GitOps checkout with `policy`.
fn gitops(sandbox: &Sandbox, policy: &str) -> PathBuf {
    let dir = sandbox.path().join("gitops");
    std::fs::create_dir_all(&dir).expect("mkdir");
    harness::git(&dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("policy.yaml"), policy).expect("policy");
    harness::git(&dir, &["add", "."]);
    harness::git(&dir, &["commit", "-q", "-m", "policy"]);
    dir
}

fn deploy(sandbox: &Sandbox, root: &str, gitops: &Path, args: &[&str]) -> Output {
    let mut all = vec!["deploy"];
    all.extend(args);
    all.extend(["--actor", "alice"]);
    sandbox
        .command(&all)
        .env("FORGE_REGISTRY", root)
        .env("FORGE_GITOPS", gitops)
        .output()
        .expect("deploy")
}

/// A GitHub pull request whose head branch is a fork's `main` is a `pull_request` build:
/// `release.on` declines it unless it lists pull requests; when it does, the release gets no
/// `main-N` alias and no policy that does not list pull requests admits it.
#[test]
fn a_pull_request_from_a_branch_called_main_is_not_a_push_to_main() {
    let registry = Registry::shared(RegistryKind::Plain);
    let root = registry.unique_root("pull-request");
    let sandbox = Sandbox::new();
    let (_repo, project, commit) = repository(&sandbox, "[{branch: main}]");
    let github_pr = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_EVENT_NAME", "pull_request_target"),
        ("GITHUB_REF_NAME", "17/merge"),
        ("GITHUB_HEAD_REF", "main"),
        ("GITHUB_SHA", commit.as_str()),
    ];
    let declined = report(&push(&sandbox, &root, &project, &[], &github_pr));
    assert_eq!(declined["released"], false);
    assert!(
        declined["reason"].as_str().expect("reason").contains("pull_request: true"),
        "{declined}"
    );

    let config = std::fs::read_to_string(project.join("forge.yaml")).expect("forge.yaml");
    std::fs::write(
        project.join("forge.yaml"),
        config.replace("[{branch: main}]", "[{branch: main}, {pull_request: true}]"),
    )
    .expect("forge.yaml");
    let released = report(&push(&sandbox, &root, &project, &["--allow-dirty"], &github_pr));
    assert_eq!(released["released"], true, "{released}");
    let tags: Vec<String> = serde_json::from_value(released["tagsAdded"].clone()).expect("tags");
    assert!(!tags.iter().any(|t| t.starts_with("main-")), "{tags:?}");

    let gitops = gitops(
        &sandbox,
        "environments:\n  dev: {}\n  preview: {allowed_triggers: [pull_request]}\n",
    );
    let location = format!("{root}/company/monorepo/auth-service");
    let denied = deploy(&sandbox, &root, &gitops, &["dev", &location, "1"]);
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert_eq!(denied.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("admits pull_request releases only when it lists them"), "{stderr}");
    let allowed = deploy(&sandbox, &root, &gitops, &["preview", &location, "1"]);
    assert!(allowed.status.success(), "{}", String::from_utf8_lossy(&allowed.stderr));
}

/// A detached HEAD outside any CI forge-pack knows says nothing of what triggered the build:
/// push refuses (exit 2) rather than guess `manual` and skip `release.on`.
#[test]
fn a_detached_head_without_a_known_ci_is_refused_not_taken_for_manual() {
    let registry = Registry::shared(RegistryKind::Plain);
    let root = registry.unique_root("detached");
    let sandbox = Sandbox::new();
    let (repo, project, commit) = repository(&sandbox, "[{branch: main}]");
    harness::git(&repo, &["checkout", "-q", "--detach", &commit]);
    let refused = push(&sandbox, &root, &project, &[], &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot tell what triggered this release"), "{stderr}");
    assert!(stderr.contains("--manual"), "{stderr}");
    // Jenkins says which branch it builds.
    let jenkins = [
        ("JENKINS_URL", "https://ci.example.com/"),
        ("GIT_BRANCH", "origin/main"),
        ("GIT_COMMIT", commit.as_str()),
    ];
    let released = report(&push(&sandbox, &root, &project, &[], &jenkins));
    assert_eq!(released["released"], true, "{released}");
}

/// `push --manual --branch main` from another branch claims main; nothing verifies it, and an
/// environment that restricts branches refuses it. The same commit on main is verified.
#[test]
fn a_claimed_branch_is_not_a_verified_one() {
    let registry = Registry::shared(RegistryKind::Plain);
    let root = registry.unique_root("provenance");
    let sandbox = Sandbox::new();
    let (repo, project, _) = repository(&sandbox, "[{branch: main}]");
    commit_on_a_new_branch(&repo, &project, "feature/evil");
    let claimed = report(&push(&sandbox, &root, &project, &["--manual", "--branch", "main"], &[]));
    assert_eq!(claimed["released"], true);

    let gitops = gitops(&sandbox, "environments:\n  staging: {allowed_branches: [main]}\n");
    let location = format!("{root}/company/monorepo/auth-service");
    let denied = deploy(&sandbox, &root, &gitops, &["staging", &location, "1"]);
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert_eq!(denied.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains("verified_branch: needs the branch verified; release 1 claims `main`"),
        "{stderr}"
    );

    // Merged into main, the next commit's branch is main's own: verified.
    harness::git(&repo, &["checkout", "-q", "main"]);
    harness::git(&repo, &["merge", "-q", "--no-ff", "-m", "Merge", "feature/evil"]);
    let merged = report(&push(&sandbox, &root, &project, &[], &[]));
    assert_eq!(merged["number"], 2, "{merged}");
    let allowed = deploy(&sandbox, &root, &gitops, &["staging", &location, "2"]);
    assert!(allowed.status.success(), "{}", String::from_utf8_lossy(&allowed.stderr));
}

/// Merge, then tag, then promote: a release pushed from main and tagged later by a tag
/// pipeline reaches an environment that takes only tagged releases, with its digest unchanged.
#[test]
fn a_release_pushed_from_main_and_tagged_later_is_promoted_as_tagged() {
    let registry = Registry::shared(RegistryKind::Plain);
    let root = registry.unique_root("tagged-later");
    let sandbox = Sandbox::new();
    let (repo, project, commit) = repository(&sandbox, "[{branch: main}, {tag: true}]");
    let pushed = report(&push(&sandbox, &root, &project, &[], &[]));
    assert_eq!(pushed["released"], true);
    // The canonical id push prints is a reference like any other.
    let id = pushed["id"].as_str().expect("id");
    assert_eq!(id, format!("company/monorepo/auth-service/{commit}"));
    let inspected = sandbox
        .command(&["inspect", id, "--output", "json"])
        .env("FORGE_REGISTRY", &root)
        .output()
        .expect("inspect");
    let inspected: serde_json::Value = serde_json::from_slice(&inspected.stdout).expect("json");
    assert_eq!(inspected["digest"], pushed["digest"]);

    harness::git(&repo, &["tag", "auth-service/v0.3.1"]);
    harness::git(&repo, &["checkout", "-q", "--detach", "auth-service/v0.3.1"]);
    let tag_pipeline = [
        ("GITLAB_CI", "true"),
        ("CI_PIPELINE_SOURCE", "push"),
        ("CI_COMMIT_TAG", "auth-service/v0.3.1"),
        ("CI_COMMIT_SHA", commit.as_str()),
    ];
    let tagged = report(&push(&sandbox, &root, &project, &[], &tag_pipeline));
    assert_eq!(
        (tagged["existed"].clone(), tagged["digest"].clone()),
        (true.into(), pushed["digest"].clone())
    );
    let aliases: Vec<String> = serde_json::from_value(tagged["tagsAdded"].clone()).expect("tags");
    assert_eq!(aliases, ["v0.3.1"]);

    let gitops = gitops(&sandbox, "environments:\n  production: {allowed_triggers: [tag]}\n");
    let location = format!("{root}/company/monorepo/auth-service");
    let promoted = deploy(&sandbox, &root, &gitops, &["production", &location, "v0.3.1"]);
    assert!(promoted.status.success(), "{}", String::from_utf8_lossy(&promoted.stderr));
}

/// Only a tag pipeline makes a release tagged: the same commit pushed again from another
/// branch adds an alias (`hotfix-1`) that is not a git tag, and an environment that takes only
/// tagged releases still refuses it.
#[test]
fn an_alias_from_another_branch_does_not_make_a_release_tagged() {
    let registry = Registry::shared(RegistryKind::Plain);
    let root = registry.unique_root("not-tagged");
    let sandbox = Sandbox::new();
    let (repo, project, _) = repository(&sandbox, "[{branch: main}, {branch: hotfix}]");
    report(&push(&sandbox, &root, &project, &[], &[]));
    harness::git(&repo, &["checkout", "-q", "-b", "hotfix"]);
    let again = report(&push(&sandbox, &root, &project, &["--manual"], &[]));
    let aliases: Vec<String> = serde_json::from_value(again["tagsAdded"].clone()).expect("tags");
    assert_eq!(aliases, ["hotfix-1"]);

    let gitops = gitops(&sandbox, "environments:\n  production: {allowed_triggers: [tag]}\n");
    let location = format!("{root}/company/monorepo/auth-service");
    let denied = deploy(&sandbox, &root, &gitops, &["production", &location, "hotfix-1"]);
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert_eq!(denied.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("allowed_triggers"), "{stderr}");
}

/// A release is made from the checkout: `--commit` naming another commit than HEAD (with CI
/// saying main built it) would label this checkout's code with main's commit.
#[test]
fn a_commit_other_than_the_checkout_is_refused() {
    let registry = Registry::shared(RegistryKind::Plain);
    let root = registry.unique_root("not-the-checkout");
    let sandbox = Sandbox::new();
    let (repo, project, main) = repository(&sandbox, "[{branch: main}]");
    commit_on_a_new_branch(&repo, &project, "evil");
    let ci = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_EVENT_NAME", "push"),
        ("GITHUB_REF_TYPE", "branch"),
        ("GITHUB_REF_NAME", "main"),
        ("GITHUB_SHA", main.as_str()),
    ];
    for extra in [&["--commit", main.as_str(), "--commit-time", "1700000000"][..], &[][..]] {
        let refused = push(&sandbox, &root, &project, extra, &ci);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("names commit {main}, but the checkout is at")),
            "{stderr}"
        );
    }
}
