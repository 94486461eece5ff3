//! Issue 14: explicit credentials belong to the one registry host they were given for. A
//! second registry that logs `Authorization` headers proves they reach no other host, for
//! every command that contacts registries.

use std::path::Path;

use forge_testkit::{HostileRegistry, Registry, RegistryKind, Reply, fixtures};

use crate::harness::{self, Sandbox};

const PROJECT: &str = "company/monorepo/auth-service";

/// Two registries serving the fixture release (number 7), logging what they get.
fn two_registries() -> (HostileRegistry, HostileRegistry) {
    let release = fixtures::image();
    let (home, other) = (HostileRegistry::start(), HostileRegistry::start());
    home.serve_release(PROJECT, "7", &release);
    other.serve_release(PROJECT, "7", &release);
    (home, other)
}

/// `forge-pack` with credentials given for `home` (FORGE_REGISTRY and the environment).
fn with_credentials(sandbox: &Sandbox, home: &str, args: &[&str]) -> std::process::Output {
    sandbox
        .command(args)
        .env("FORGE_REGISTRY", home)
        .env("FORGE_REGISTRY_USERNAME", "ci")
        .env("FORGE_REGISTRY_PASSWORD", "s3cret-for-home")
        .output()
        .expect("run forge-pack")
}

fn assert_no_credentials(registry: &HostileRegistry, what: &str) {
    let requests = registry.requests();
    assert!(!requests.is_empty(), "{what}: the other registry was contacted");
    assert!(requests.iter().all(|r| r.authorization.is_none()), "{what}: {requests:#?}");
}

#[test]
fn explicit_credentials_reach_no_other_host_from_any_reading_command() {
    let (home, other) = two_registries();
    let sandbox = Sandbox::new();
    let other_ref = format!("{}/{PROJECT}:7", other.addr);
    let pulled = sandbox.path().join("pulled");
    let commands: Vec<(&str, Vec<String>)> = vec![
        ("inspect", vec!["inspect".into(), other_ref.clone()]),
        ("list", vec!["list".into(), format!("{}/{PROJECT}", other.addr)]),
        (
            "pull",
            vec!["pull".into(), other_ref.clone(), "--out".into(), pulled.display().to_string()],
        ),
        ("diff", vec!["diff".into(), format!("{PROJECT}:7"), other_ref.clone()]),
    ];
    for (what, args) in commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = with_credentials(&sandbox, &home.addr, &args);
        assert!(output.status.success(), "{what}: {}", String::from_utf8_lossy(&output.stderr));
        assert_no_credentials(&other, what);
    }
    // The home registry got them (diff read a release there).
    assert!(home.requests().iter().any(|r| r.authorization.is_some()), "{:#?}", home.requests());
}

#[test]
fn deploying_a_release_of_another_registry_sends_it_no_credentials() {
    let (home, other) = two_registries();
    let sandbox = Sandbox::new();
    let gitops = sandbox.path().join("gitops");
    std::fs::create_dir_all(&gitops).expect("mkdir");
    harness::git(&gitops, &["init", "-q", "-b", "main"]);
    std::fs::write(gitops.join("policy.yaml"), "environments:\n  dev: {}\n").expect("policy");
    harness::git(&gitops, &["add", "."]);
    harness::git(&gitops, &["commit", "-q", "-m", "policy"]);
    let location = format!("{}/{PROJECT}", other.addr);
    let output = sandbox
        .command(&["deploy", "dev", &location, "7", "--actor", "alice"])
        .env("FORGE_GITOPS", &gitops)
        .env("FORGE_REGISTRY", &home.addr)
        .env("FORGE_REGISTRY_USERNAME", "ci")
        .env("FORGE_REGISTRY_PASSWORD", "s3cret-for-home")
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_no_credentials(&other, "deploy");
}

#[test]
fn pushing_with_resolve_digests_sends_image_registries_no_credentials() {
    let registry = Registry::shared(RegistryKind::Htpasswd);
    let images = HostileRegistry::start();
    let digest = format!("sha256:{}", "5".repeat(64));
    images.route(
        "HEAD",
        "/v2/company/sidecar/manifests/1.0",
        Reply::ok(b"", &[("Docker-Content-Digest", digest.as_str())]),
    );
    let sandbox = Sandbox::new();
    let project = sandbox.project("auth-service");
    append_image(&project, &format!("{}/company/sidecar:1.0", images.addr));
    let root = registry.unique_root("scoped");
    let commit = "9".repeat(40);
    let mut push = harness::push_args(project.to_str().expect("utf-8"), &commit);
    push.push("--resolve-digests");
    let output = sandbox
        .command(&push)
        .env("FORGE_REGISTRY", &root)
        .env("FORGE_REGISTRY_USERNAME", forge_testkit::REGISTRY_USER)
        .env("FORGE_REGISTRY_PASSWORD", forge_testkit::REGISTRY_PASSWORD)
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_no_credentials(&images, "push --resolve-digests");

    // `render` has no release registry at all: credentials go nowhere.
    let output = sandbox
        .command(&["render", "-C", project.to_str().expect("utf-8"), "--resolve-digests"])
        .env("FORGE_REGISTRY_USERNAME", forge_testkit::REGISTRY_USER)
        .env("FORGE_REGISTRY_PASSWORD", forge_testkit::REGISTRY_PASSWORD)
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains(&digest));
    assert_no_credentials(&images, "render --resolve-digests");
}

/// Adds a Job using `image` (given by tag) to the project's templates.
fn append_image(project: &Path, image: &str) {
    let job = format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  namespace: auth\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: migrate\n          image: {image}\n"
    );
    std::fs::write(project.join("templates/job.yaml"), job).expect("job");
}

/// `deploy <name>` and `rollback` find the image in a pointer, which whoever can write the
/// GitOps repository controls: without `--registry`/`FORGE_REGISTRY`, that host gets no
/// credentials.
#[test]
fn a_pointers_image_does_not_decide_where_credentials_go() {
    let (_, other) = two_registries();
    let sandbox = Sandbox::new();
    let gitops = sandbox.path().join("gitops");
    let app = gitops.join("envs/dev/auth-service");
    std::fs::create_dir_all(&app).expect("mkdir");
    harness::git(&gitops, &["init", "-q", "-b", "main"]);
    std::fs::write(gitops.join("policy.yaml"), "environments:\n  dev: {}\n  staging: {}\n")
        .expect("policy");
    std::fs::write(
        app.join("release.yaml"),
        format!(
            "apiVersion: forge.dev/v1alpha1\nkind: ReleasePointer\nmetadata:\n  name: auth-service\nspec:\n  image: {}/{PROJECT}\n  commit: {}\n  release: 7\n",
            other.addr,
            fixtures::COMMIT
        ),
    )
    .expect("pointer");
    harness::git(&gitops, &["add", "."]);
    harness::git(&gitops, &["commit", "-q", "-m", "dev at 7"]);
    for args in [
        &["deploy", "staging", "auth-service", "7", "--actor", "alice"][..],
        &["rollback", "dev", "auth-service", "7", "--actor", "alice"],
    ] {
        let _ = sandbox
            .command(args)
            .env("FORGE_GITOPS", &gitops)
            .env("FORGE_REGISTRY_USERNAME", "ci")
            .env("FORGE_REGISTRY_PASSWORD", "s3cret-for-home")
            .output()
            .expect("run");
        assert_no_credentials(&other, args[0]);
    }
}

/// Issue 19: `login` checks the credentials with the registry and keeps them in the auth file
/// other tools read (mode 0600, other entries kept); every command then finds them there;
/// `logout` removes them. Wrong credentials write nothing.
#[test]
fn login_keeps_checked_credentials_where_every_command_finds_them() {
    use std::io::Write;
    let registry = Registry::shared(RegistryKind::Htpasswd);
    let sandbox = Sandbox::new();
    let auth = sandbox.path().join("auth.json");
    std::fs::write(&auth, "{\"auths\": {\"other.example.com\": {\"auth\": \"eDp5\"}}}")
        .expect("auth");
    let login = |password: &str| {
        let mut child = sandbox
            .command(&[
                "login",
                &registry.addr,
                "--username",
                forge_testkit::REGISTRY_USER,
                "--password-stdin",
            ])
            .env("REGISTRY_AUTH_FILE", &auth)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("login");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{password}\n").as_bytes())
            .expect("write");
        child.wait_with_output().expect("login")
    };
    let refused = login("wrong");
    assert_eq!(refused.status.code(), Some(4), "{}", String::from_utf8_lossy(&refused.stderr));
    assert!(!std::fs::read_to_string(&auth).expect("auth").contains(&registry.addr));

    let logged_in = login(forge_testkit::REGISTRY_PASSWORD);
    assert!(logged_in.status.success(), "{}", String::from_utf8_lossy(&logged_in.stderr));
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&auth).expect("auth")).expect("json");
    assert!(file["auths"]["other.example.com"].is_object(), "other entries stay: {file}");
    assert!(file["auths"][&registry.addr]["auth"].is_string(), "{file}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&auth).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // A push with no other credentials finds them.
    let root = format!("{}/{}", registry.addr, registry.unique_repository("login"));
    let project = sandbox.project("auth-service");
    let dir = project.to_str().expect("utf-8");
    let pushed = sandbox
        .command(&harness::push_args(dir, harness::COMMIT))
        .env("FORGE_REGISTRY", &root)
        .env("REGISTRY_AUTH_FILE", &auth)
        .output()
        .expect("push");
    assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));

    let out = sandbox
        .command(&["logout", &registry.addr])
        .env("REGISTRY_AUTH_FILE", &auth)
        .output()
        .expect("logout");
    assert!(out.status.success());
    assert!(!std::fs::read_to_string(&auth).expect("auth").contains(&registry.addr));
    let listed = sandbox
        .command(&["list", &format!("{root}/company/monorepo/auth-service")])
        .env("REGISTRY_AUTH_FILE", &auth)
        .output()
        .expect("list");
    assert_eq!(
        listed.status.code(),
        Some(4),
        "logged out: {}",
        String::from_utf8_lossy(&listed.stderr)
    );
}

/// Issue 19: the auth files podman, skopeo and docker write are all read, in skopeo's order:
/// `REGISTRY_AUTH_FILE`, then `$XDG_RUNTIME_DIR/containers/auth.json` (an entry may name
/// `host/namespace`), then the docker config.
#[test]
fn podman_skopeo_and_docker_auth_files_are_all_read() {
    use base64::Engine;
    let registry = Registry::shared(RegistryKind::Htpasswd);
    let sandbox = Sandbox::new();
    let namespace = registry.unique_repository("auth-files");
    let root = format!("{}/{namespace}", registry.addr);
    let token = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        forge_testkit::REGISTRY_USER,
        forge_testkit::REGISTRY_PASSWORD
    ));
    let entry = |key: &str| format!("{{\"auths\": {{\"{key}\": {{\"auth\": \"{token}\"}}}}}}");
    let project = sandbox.project("auth-service");
    let dir = project.to_str().expect("utf-8");
    let runtime = sandbox.path().join("run");
    std::fs::create_dir_all(runtime.join("containers")).expect("mkdir");
    std::fs::write(
        runtime.join("containers/auth.json"),
        entry(&format!("{}/{namespace}", registry.addr)),
    )
    .expect("podman auth");
    let pushed = sandbox
        .command(&harness::push_args(dir, harness::COMMIT))
        .env("FORGE_REGISTRY", &root)
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .expect("push");
    assert!(
        pushed.status.success(),
        "podman's auth.json: {}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let explicit = sandbox.path().join("skopeo.json");
    std::fs::write(&explicit, entry(&registry.addr)).expect("auth file");
    let listed = sandbox
        .command(&["list", &format!("{root}/company/monorepo/auth-service")])
        .env("REGISTRY_AUTH_FILE", &explicit)
        .output()
        .expect("list");
    assert!(
        listed.status.success(),
        "REGISTRY_AUTH_FILE: {}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let docker = sandbox.path().join(".docker");
    std::fs::create_dir_all(&docker).expect("mkdir");
    std::fs::write(docker.join("config.json"), entry(&registry.addr)).expect("docker config");
    let listed = sandbox
        .command(&["list", &format!("{root}/company/monorepo/auth-service")])
        .output()
        .expect("list");
    assert!(listed.status.success(), "docker config: {}", String::from_utf8_lossy(&listed.stderr));
}
