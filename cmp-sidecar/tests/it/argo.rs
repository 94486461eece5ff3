//! An emulation of the cmp-server side: environment, working directory, output parsing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use forge_release::aliases::TagStrategy;
use forge_release::metadata::{Person, SourceInfo, ToolInfo, Trigger, TriggerKind};
use forge_release::objects::{ObjectId, ResourceFile};
use forge_release::package::{ReleaseInput, ResourcesLayer};
use forge_store::publish::{Published, publish};
use forge_store::{LayoutStore, Store};
use serde_json::Value;

pub const IMAGE: &str = "company/monorepo/auth-service";

pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        Env { dir: tempfile::Builder::new().prefix("forge-cmp-it-").tempdir().expect("temp dir") }
    }

    pub fn store_root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    pub fn project_store(&self) -> Store {
        Store::Layout(LayoutStore::new(self.store_root().join(IMAGE)))
    }

    /// Publishes a release of `files` for `commit` into the store.
    pub fn publish(&self, commit: char, files: Vec<ResourceFile>) -> Published {
        let person = Person { name: "Ada".into(), email: "ada@example.com".into() };
        let input = ReleaseInput {
            repository: "company/monorepo".into(),
            project: "auth-service".into(),
            trigger: Trigger::new(TriggerKind::Manual, None, None),
            source: SourceInfo {
                repository_url: None,
                commit: commit.to_string().repeat(40),
                author: person.clone(),
                committer: person,
                commit_time: "2024-05-01T12:00:00Z".into(),
                message: "test".into(),
                branch: None,
                tags: Vec::new(),
                files: Vec::new(),
            },
            commit_time: 1_714_564_800,
            artifacts: Vec::new(),
            manifests: Vec::new(),
            resources: ResourcesLayer::build(files, 1_714_564_800).expect("layer"),
            images: Vec::new(),
            tool: ToolInfo { name: "test".into(), version: "0".into() },
        };
        runtime()
            .block_on(publish(&self.project_store(), input, TagStrategy::Monorepo))
            .expect("publish")
    }

    /// A GitOps repository with a pointer at `envs/dev/auth-service/release.yaml`; returns
    /// the repository root.
    pub fn gitops(&self, pointer: &str) -> PathBuf {
        let root = self.dir.path().join("gitops");
        let app = root.join("envs/dev/auth-service");
        std::fs::create_dir_all(&app).expect("mkdir");
        std::fs::write(app.join("release.yaml"), pointer).expect("pointer");
        std::fs::write(app.join("README.md"), "Pointer for auth-service in dev.\n")
            .expect("readme");
        root
    }

    /// Runs `forge-cmp generate` as the cmp-server does: the repository copied into a fresh
    /// work directory, the app directory as cwd, Argo's environment, stdin from /dev/null.
    pub fn generate(&self, repo: &Path, app_path: &str, extra_env: &[(&str, &str)]) -> Output {
        self.command(repo, app_path, extra_env).output().expect("run forge-cmp")
    }

    /// `forge-cmp generate` as the cmp-server starts it, in a fresh copy of `repo`.
    pub fn command(&self, repo: &Path, app_path: &str, extra_env: &[(&str, &str)]) -> Command {
        let work = tempfile::Builder::new()
            .prefix("_cmp_server-")
            .tempdir_in(self.dir.path())
            .expect("work dir");
        copy_tree(repo, work.path());
        let app_dir = work.path().join(app_path);
        let mut command = Command::new(env!("CARGO_BIN_EXE_forge-cmp"));
        command
            .arg("generate")
            .current_dir(&app_dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("ARGOCD_APP_NAME", "argocd_auth-service-dev")
            .env("ARGOCD_APP_NAMESPACE", "auth")
            .env("ARGOCD_APP_PROJECT_NAME", "default")
            .env("ARGOCD_APP_REVISION", "6f1c2a0e5e3a3c4f6a7b8c9d0e1f2a3b4c5d6e7f")
            .env("ARGOCD_APP_REVISION_SHORT", "6f1c2a0")
            .env("ARGOCD_APP_REVISION_SHORT_8", "6f1c2a0e")
            .env("ARGOCD_APP_SOURCE_REPO_URL", "https://git.example.com/company/gitops.git")
            .env("ARGOCD_APP_SOURCE_PATH", app_path)
            .env("ARGOCD_APP_SOURCE_TARGET_REVISION", "HEAD")
            .env("KUBE_VERSION", "1.30.2")
            .env("KUBE_API_VERSIONS", "apps/v1,apps/v1/Deployment,v1,v1/ConfigMap")
            .env("ARGOCD_APP_PARAMETERS", "null")
            .env("FORGE_REGISTRY", format!("oci:{}", self.store_root().display()))
            .env("FORGE_CMP_CACHE_DIR", self.cache())
            // The operator's allowlist: these tests' releases are local layouts and loopback
            // registries (tests of the allowlist itself override it).
            .env("FORGE_CMP_ALLOWED_IMAGES", "*")
            .env("FORGE_CMP_LOCAL_LAYOUTS", "true")
            .stdin(Stdio::null());
        for (key, value) in extra_env {
            command.env(key, value);
        }
        // The copy lives as long as the test's directory.
        let _ = work.keep();
        command
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

pub fn pointer(commit: char, digest: Option<&str>) -> String {
    let digest = digest.map(|d| format!("  digest: {d}\n")).unwrap_or_default();
    format!(
        "apiVersion: forge.dev/v1alpha1\nkind: ReleasePointer\nmetadata:\n  name: auth-service\nspec:\n  image: {IMAGE}\n  commit: {}\n{digest}  release: 1\n",
        commit.to_string().repeat(40)
    )
}

pub fn object(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> ResourceFile {
    let id = ObjectId {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: namespace.map(Into::into),
        name: name.into(),
    };
    let ns = namespace.map(|ns| format!("  namespace: {ns}\n")).unwrap_or_default();
    let body = format!(
        "apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: {name}\n{ns}data:\n  enabled: \"yes\"\n"
    );
    ResourceFile::new(id, body.into_bytes()).expect("valid object")
}

pub fn sample() -> Vec<ResourceFile> {
    vec![
        object("v1", "Namespace", None, "auth"),
        object("v1", "ConfigMap", Some("auth"), "settings"),
        object("apps/v1", "Deployment", Some("auth"), "api"),
    ]
}

/// What the repo-server does with the plugin's stdout (gitops-engine `SplitYAML` and the
/// `Unstructured` conversion): drop one trailing newline; in YAML mode (the output does not
/// open with `{`) split on lines starting with `---`, whose rest must be empty or a comment;
/// skip empty and null documents; require every other document to be an object with a
/// non-empty `kind`.
pub fn argo_parse(output: &Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "forge-cmp failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse_stream(&output.stdout)
}

/// [`argo_parse`] of a stream written elsewhere than a captured stdout.
pub fn parse_stream(stdout: &[u8]) -> Vec<Value> {
    let text = String::from_utf8(stdout.to_vec()).expect("utf-8 stdout");
    let text = text.strip_suffix('\n').unwrap_or(&text);
    assert!(text.starts_with("---\n"), "forge-cmp opens its stream with `---`: {text:.200}");
    let mut documents = vec![String::new()];
    for line in text.split('\n') {
        if let Some(rest) = line.strip_prefix("---") {
            let rest = rest.trim();
            assert!(
                rest.is_empty() || rest.starts_with('#'),
                "invalid Yaml document separator: {rest}"
            );
            documents.push(String::new());
        } else {
            let document = documents.last_mut().expect("a document");
            document.push_str(line);
            document.push('\n');
        }
    }
    // go-yaml, Argo CD's reader, stops at 10,000 levels, not at serde-saphyr's default 64.
    let mut options = serde_saphyr::options::Options::default();
    if let Some(budget) = options.budget.as_mut() {
        budget.max_depth = 10_000;
    }
    let objects: Vec<Value> = documents
        .iter()
        .map(|d| {
            serde_saphyr::from_str_with_options::<Value>(d, options.clone())
                .unwrap_or_else(|e| panic!("{e}: {d}"))
        })
        .filter(|v| !v.is_null())
        .collect();
    assert!(!objects.is_empty(), "zero objects would make Argo CD prune everything");
    for object in &objects {
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
        assert!(object.is_object() && !kind.is_empty(), "Object 'Kind' is missing in {object}");
    }
    objects
}

/// Asserts a failure with nothing on stdout; returns stderr.
pub fn failure(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "expected failure, got: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        output.stdout.is_empty(),
        "a failed generate printed to stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.symlink_metadata().expect("metadata").file_type().is_symlink() {
            // Links stay links, as Argo CD's repo-server recreates them.
            let link = std::fs::read_link(&path).expect("read link");
            std::os::unix::fs::symlink(link, &target).expect("symlink");
        } else if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

/// Runs the workspace's `forge-pack` (built by the same `cargo test --workspace`) with
/// `FORGE_REGISTRY=store`; returns stdout, failing the test on a non-zero exit.
pub fn forge_pack(store: &str, args: &[&str]) -> Vec<u8> {
    let binary = Path::new(env!("CARGO_BIN_EXE_forge-cmp")).with_file_name("forge-pack");
    assert!(
        binary.is_file(),
        "{} is missing: run the tests with `cargo test --workspace` (make test)",
        binary.display()
    );
    let output =
        Command::new(&binary).args(args).env("FORGE_REGISTRY", store).output().expect("forge-pack");
    assert!(
        output.status.success(),
        "forge-pack {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// A copy of the example project in the test's directory.
pub fn example_project(env: &Env) -> PathBuf {
    let project = env.dir.path().join("auth-service");
    copy_tree(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/projects/auth-service"),
        &project,
    );
    project
}

/// Pushes the project at `dir` to `store` at `commit` (a fixed commit time, a manual
/// trigger), with `extra` arguments; the push's JSON report.
pub fn push_project(store: &str, dir: &str, commit: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "push",
        "-C",
        dir,
        "--commit",
        commit,
        "--commit-time",
        "2024-05-01T12:00:00Z",
        "--manual",
        "--output",
        "json",
    ];
    args.extend(extra);
    serde_json::from_slice(&forge_pack(store, &args)).expect("json")
}

/// `forge-pack render` of the project at `dir`: its objects.
pub fn render_project(store: &str, dir: &str) -> Vec<Value> {
    serde_json::from_slice(&forge_pack(store, &["render", "-C", dir, "-o", "json"])).expect("json")
}

/// Writes a ReleasePointer named `name` for `image` at `commit` to `<gitops>/<app>`.
pub fn write_pointer(gitops: &Path, app: &str, name: &str, image: &str, commit: &str) {
    std::fs::create_dir_all(gitops.join(app)).expect("mkdir");
    std::fs::write(
        gitops.join(app).join("release.yaml"),
        format!(
            "apiVersion: forge.dev/v1alpha1\nkind: ReleasePointer\nmetadata:\n  name: {name}\nspec:\n  image: {image}\n  commit: {commit}\n"
        ),
    )
    .expect("pointer");
}
