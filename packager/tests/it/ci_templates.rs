//! Issue 19: the CI templates do what their README examples say. The GitHub Action's inputs
//! and outputs are what it documents, and its shell steps, run here as the runner runs them
//! (bash, the job's variables simulated, `$GITHUB_OUTPUT`), log in to a registry that needs
//! credentials and push a release whose outputs come back; the GitLab template's scripts do
//! the same with GitLab's variables, on a default-branch push and then on a tag. The triggers
//! forge-pack reads from those variables are the ones expected.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use forge_testkit::{REGISTRY_PASSWORD, REGISTRY_USER, Registry, RegistryKind};
use serde_json::Value;

use crate::harness::{self, Sandbox};

fn repo_file(path: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).expect("YAML")
}

/// A git repository with the auth-service project committed; (project dir, commit).
fn checkout(sandbox: &Sandbox) -> (PathBuf, String) {
    let repo = sandbox.path().join("monorepo");
    let project = repo.join("services/auth");
    harness::copy_tree(&harness::testdata().join("projects/auth-service"), &project, false);
    harness::git(&repo, &["init", "-q", "-b", "main"]);
    harness::git(&repo, &["add", "."]);
    harness::git(&repo, &["commit", "-q", "-m", "Add auth-service"]);
    let out =
        Command::new("git").args(["rev-parse", "HEAD"]).current_dir(&repo).output().expect("git");
    (project, String::from_utf8(out.stdout).expect("utf-8").trim().to_owned())
}

/// The sandbox's environment plus forge-pack on PATH (the install steps find it there).
fn shell(
    sandbox: &Sandbox,
    script: &str,
    env: &BTreeMap<String, String>,
    dir: &Path,
) -> std::process::Output {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_forge-pack"));
    let path = format!(
        "{}:{}",
        binary.parent().expect("dir").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    sandbox
        .environment(Command::new("bash"))
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .env("PATH", path)
        .envs(env)
        .current_dir(dir)
        .output()
        .expect("bash")
}

/// Evaluates the expressions the action uses: `inputs.x`, `github.x`, `a || b` and
/// `format('…{0}…', x)`.
fn evaluate(
    expression: &str,
    inputs: &BTreeMap<String, String>,
    github: &BTreeMap<&str, String>,
) -> String {
    let text = expression.trim();
    let Some(inner) = text.strip_prefix("${{").and_then(|t| t.strip_suffix("}}")) else {
        return text.to_owned();
    };
    let value = |term: &str| -> String {
        let term = term.trim();
        if let Some(name) = term.strip_prefix("inputs.") {
            return inputs.get(name).cloned().unwrap_or_default();
        }
        if let Some(name) = term.strip_prefix("github.") {
            return github.get(name).cloned().unwrap_or_default();
        }
        if let Some(args) = term.strip_prefix("format(").and_then(|t| t.strip_suffix(')')) {
            let (template, arg) = args.split_once(',').expect("format(template, arg)");
            let template = template.trim().trim_matches('\'');
            let name = arg.trim().strip_prefix("github.").expect("github.x");
            return template.replace("{0}", &github[name]);
        }
        panic!("an expression the test does not know: {term}")
    };
    inner.split("||").map(value).find(|v| !v.is_empty()).unwrap_or_default()
}

#[test]
fn the_github_action_logs_in_pushes_and_sets_its_outputs() {
    let action = repo_file("ci/github/action.yml");
    let keys = |v: &Value| -> Vec<String> { v.as_object().expect("map").keys().cloned().collect() };
    assert_eq!(
        keys(&action["inputs"]),
        ["project", "registry", "username", "password", "sign-key", "version"]
    );
    assert_eq!(keys(&action["outputs"]), ["id", "number", "digest", "reference", "released"]);
    for (name, output) in action["outputs"].as_object().expect("outputs") {
        assert_eq!(output["value"], format!("${{{{ steps.push.outputs.{name} }}}}"));
    }
    assert_eq!(action["runs"]["using"], "composite");

    let registry = Registry::shared(RegistryKind::Htpasswd);
    let sandbox = Sandbox::new();
    let (project, commit) = checkout(&sandbox);
    let root = format!("{}/{}", registry.addr, registry.unique_repository("action"));
    let github: BTreeMap<&str, String> = [
        ("actor", REGISTRY_USER.to_owned()),
        ("token", REGISTRY_PASSWORD.to_owned()),
        ("repository_owner", "company".to_owned()),
    ]
    .into();
    // The workflow's `with:`; the rest are the action's defaults, evaluated.
    let mut inputs: BTreeMap<String, String> =
        [("project".to_owned(), "services/auth".to_owned()), ("registry".to_owned(), root.clone())]
            .into();
    for (name, input) in action["inputs"].as_object().expect("inputs") {
        if !inputs.contains_key(name) {
            let default = input["default"].as_str().unwrap_or_default();
            let value = evaluate(default, &inputs, &github);
            inputs.insert(name.clone(), value);
        }
    }
    let output_file = sandbox.path().join("github_output");
    std::fs::write(&output_file, "").expect("output file");
    let workspace = project.parent().and_then(Path::parent).expect("repository").to_owned();
    for step in action["runs"]["steps"].as_array().expect("steps") {
        let mut env: BTreeMap<String, String> = [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF_TYPE", "branch"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_SHA", commit.as_str()),
            ("GITHUB_ACTOR", REGISTRY_USER),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        env.insert("GITHUB_OUTPUT".into(), output_file.display().to_string());
        env.insert("RUNNER_TEMP".into(), sandbox.path().display().to_string());
        env.insert(
            "REGISTRY_AUTH_FILE".into(),
            sandbox.path().join("auth.json").display().to_string(),
        );
        for (name, value) in step["env"].as_object().into_iter().flatten() {
            env.insert(
                name.clone(),
                evaluate(value.as_str().unwrap_or_default(), &inputs, &github),
            );
        }
        let run = step["run"].as_str().expect("a shell step");
        let output = shell(&sandbox, run, &env, &workspace);
        assert!(
            output.status.success(),
            "{}: {}",
            step["name"],
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let outputs: BTreeMap<String, String> = std::fs::read_to_string(&output_file)
        .expect("outputs")
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    assert_eq!(outputs["released"], "true");
    assert_eq!(outputs["number"], "1");
    assert_eq!(outputs["id"], format!("company/monorepo/auth-service/{commit}"));
    assert!(outputs["digest"].starts_with("sha256:"), "{outputs:?}");
    let inspected = sandbox
        .command(&["inspect", &format!("company/monorepo/auth-service:{commit}"), "-o", "json"])
        .env("FORGE_REGISTRY", &root)
        .env("REGISTRY_AUTH_FILE", sandbox.path().join("auth.json"))
        .output()
        .expect("inspect");
    let inspected: Value = serde_json::from_slice(&inspected.stdout).expect("json");
    let trigger = &inspected["metadata"]["release"]["trigger"];
    assert_eq!(
        (trigger["type"].as_str(), trigger["branchVerified"].as_bool()),
        (Some("branch_push"), Some(true))
    );
}

#[test]
fn the_gitlab_template_pushes_on_the_default_branch_and_tags() {
    let template = repo_file("ci/gitlab/forge-pack.gitlab-ci.yml");
    let job = &template[".forge-pack-push"];
    let rules: Vec<&str> =
        job["rules"].as_array().expect("rules").iter().filter_map(|r| r["if"].as_str()).collect();
    assert_eq!(
        rules,
        [
            "$CI_COMMIT_TAG",
            "$CI_PIPELINE_SOURCE == \"push\" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"
        ]
    );
    let lines = |key: &str| -> Vec<String> {
        job[key]
            .as_array()
            .expect(key)
            .iter()
            .map(|l| l.as_str().expect("a line").to_owned())
            .collect()
    };
    let script: Vec<String> = lines("before_script").into_iter().chain(lines("script")).collect();

    let registry = Registry::shared(RegistryKind::Htpasswd);
    let sandbox = Sandbox::new();
    let (project, commit) = checkout(&sandbox);
    let image = format!("{}/{}", registry.addr, registry.unique_repository("gitlab"));
    let workspace = project.parent().and_then(Path::parent).expect("repository").to_owned();
    let run = |extra: &[(&str, &str)]| {
        let mut env: BTreeMap<String, String> = [
            ("GITLAB_CI", "true"),
            ("CI_PIPELINE_SOURCE", "push"),
            ("CI_DEFAULT_BRANCH", "main"),
            ("CI_COMMIT_SHA", commit.as_str()),
            ("CI_REGISTRY", registry.addr.as_str()),
            ("CI_REGISTRY_USER", REGISTRY_USER),
            ("CI_REGISTRY_PASSWORD", REGISTRY_PASSWORD),
            ("CI_REGISTRY_IMAGE", image.as_str()),
            ("FORGE_PROJECT", "services/auth"),
            // GitLab expands the template's `FORGE_REGISTRY: $CI_REGISTRY_IMAGE`.
            ("FORGE_REGISTRY", image.as_str()),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        env.insert(
            "REGISTRY_AUTH_FILE".into(),
            sandbox.path().join("auth.json").display().to_string(),
        );
        let output = shell(&sandbox, &script.join("\n"), &env, &workspace);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let report =
            std::fs::read_to_string(workspace.join("forge-pack-push.json")).expect("artifact");
        serde_json::from_str::<Value>(&report).expect("json")
    };
    let pushed = run(&[("CI_COMMIT_BRANCH", "main")]);
    assert_eq!((pushed["released"].as_bool(), pushed["number"].as_u64()), (Some(true), Some(1)));
    harness::git(&workspace, &["tag", "auth-service/v1.0.0"]);
    let tagged = run(&[("CI_COMMIT_TAG", "auth-service/v1.0.0")]);
    assert_eq!(tagged["existed"], true, "{tagged}");
    assert_eq!(tagged["tagsAdded"], serde_json::json!(["v1.0.0"]), "{tagged}");
}
