//! The CLI against a real registry: push, list, inspect, diff, pull, release.on, credentials.

use forge_testkit::{Registry, RegistryKind};

use crate::harness::{self, Sandbox, push_args};

#[test]
fn push_list_inspect_diff_and_pull_through_a_registry() {
    let registry = Registry::shared(RegistryKind::Plain);
    let sandbox = Sandbox::new();
    let root = registry.unique_root("cli");
    let project = sandbox.project("auth-service");
    let dir = project.to_str().expect("utf-8");
    let env_registry = |args: &[&str]| {
        let output = sandbox.command(args).env("FORGE_REGISTRY", &root).output().expect("run");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            sandbox.hide_paths(&String::from_utf8_lossy(&output.stderr)),
        )
    };

    let first = "1".repeat(40);
    let (code, stdout, stderr) = env_registry(&push_args(dir, &first));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!("reference  {root}/company/monorepo/auth-service:{first}")),
        "{stdout}"
    );

    std::fs::write(
        project.join("templates/deployment.yaml"),
        std::fs::read_to_string(project.join("templates/deployment.yaml"))
            .expect("read")
            .replace(
                "0d5f5a0b9e0ad2b3a1c1c8f36e3d9d2b8a7f6e5d4c3b2a1908f7e6d5c4b3a291",
                &"e".repeat(64),
            )
            .replace("replicas: 3", "replicas: 5"),
    )
    .expect("edit");
    let second = "2".repeat(40);
    let mut args = push_args(dir, &second);
    args.extend(["--tag", "auth-service/v2.0.0"]);
    let (code, _, stderr) = env_registry(&args);
    assert_eq!(code, Some(0), "{stderr}");

    let (code, stdout, _) = env_registry(&["list", "company/monorepo/auth-service"]);
    assert_eq!(code, Some(0));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[1].starts_with("2       222222222222") && lines[1].ends_with("main-2, v2.0.0"),
        "{stdout}"
    );
    assert!(lines[2].starts_with("1       111111111111"), "{stdout}");

    for id in ["2", "v2.0.0", "main-2", "2222222", &second] {
        let (code, stdout, stderr) = env_registry(&[
            "inspect",
            &format!("company/monorepo/auth-service:{id}"),
            "--output",
            "json",
        ]);
        assert_eq!(code, Some(0), "{id}: {stderr}");
        let json: serde_json::Value = serde_json::from_str(&stdout).expect("json");
        assert_eq!(json["metadata"]["release"]["number"], 2, "{id}");
        assert_eq!(json["tags"], serde_json::json!(["2", second, "main-2", "v2.0.0"]), "{id}");
    }

    let (code, stdout, stderr) = env_registry(&[
        "diff",
        "company/monorepo/auth-service:1",
        "company/monorepo/auth-service:v2.0.0",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stdout.starts_with("0 added, 0 removed, 1 changed"), "{stdout}");
    assert!(stdout.contains(&format!("    image containers/auth: registry.example.com/company/auth-service@sha256:0d5f5a0b9e0ad2b3a1c1c8f36e3d9d2b8a7f6e5d4c3b2a1908f7e6d5c4b3a291 -> registry.example.com/company/auth-service@sha256:{}", "e".repeat(64))), "{stdout}");
    assert!(stdout.contains("-  replicas: 3\n+  replicas: 5\n"), "{stdout}");
    let (code, stdout, _) = env_registry(&[
        "diff",
        "company/monorepo/auth-service:1",
        &format!("company/monorepo/auth-service:{first}"),
    ]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("deploy identical objects"), "{stdout}");
    let (code, _, stderr) = env_registry(&[
        "diff",
        "company/monorepo/auth-service:1",
        "company/monorepo/auth-service:99",
    ]);
    assert_eq!(code, Some(2), "diff errors exit 2: {stderr}");

    let out = sandbox.path().join("pulled");
    let (code, _, stderr) = env_registry(&[
        "pull",
        "company/monorepo/auth-service:main-2",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let deployment = std::fs::read_to_string(out.join("auth/apps.Deployment.auth-service.yaml"))
        .expect("pulled");
    assert!(deployment.contains("replicas: 5"));
}

#[test]
fn push_respects_release_on_unless_manual() {
    let registry = Registry::shared(RegistryKind::Plain);
    let sandbox = Sandbox::new();
    let root = registry.unique_root("releaseon");
    let project = sandbox.project("auth-service");
    let dir = project.to_str().expect("utf-8");
    let mut args = push_args(dir, harness::COMMIT);
    args[12] = "feature/login";
    args.extend(["--output", "json"]);
    let output = sandbox.command(&args).env("FORGE_REGISTRY", &root).output().expect("run");
    assert_eq!(output.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(report["released"], false);
    assert_eq!(
        report["reason"],
        "branch `feature/login` matches no release.on branch pattern (^main$; whole names)"
    );

    args.push("--manual");
    let output = sandbox.command(&args).env("FORGE_REGISTRY", &root).output().expect("run");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(report["released"], true, "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(report["tagsAdded"], serde_json::json!(["1", harness::COMMIT, "feature-login-1"]));

    let github = sandbox
        .command(&push_args(dir, &"3".repeat(40))[..9])
        .env("FORGE_REGISTRY", &root)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_NAME", "push")
        .env("GITHUB_REF_TYPE", "tag")
        .env("GITHUB_REF_NAME", "auth-service/v3.1.0")
        .output()
        .expect("run");
    assert!(github.status.success(), "{}", String::from_utf8_lossy(&github.stderr));
    let inspected = sandbox.ok(&[
        "--registry",
        &root,
        "inspect",
        "company/monorepo/auth-service:v3.1.0",
        "--output",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&inspected).expect("json");
    assert_eq!(
        json["metadata"]["release"]["trigger"],
        serde_json::json!({"type": "tag", "tag": "auth-service/v3.1.0"})
    );
}

#[test]
fn credentials_come_from_stdin_or_the_environment_and_never_print() {
    let registry = Registry::shared(RegistryKind::Htpasswd);
    let sandbox = Sandbox::new();
    let root = registry.unique_root("creds");
    let list = ["list", "company/monorepo/auth-service"];

    let output = sandbox.command(&list).env("FORGE_REGISTRY", &root).output().expect("run");
    assert_eq!(output.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("access denied (no credentials were found)"), "{stderr}");
    assert!(stderr.contains("hint: log in (docker login)"), "{stderr}");

    let mut child = sandbox
        .command(&[
            "list",
            "company/monorepo/auth-service",
            "--username",
            forge_testkit::REGISTRY_USER,
            "--password-stdin",
        ])
        .env("FORGE_REGISTRY", &root)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::io::Write::write_all(
        child.stdin.as_mut().expect("stdin"),
        format!("{}\n", forge_testkit::REGISTRY_PASSWORD).as_bytes(),
    )
    .expect("password");
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let output = sandbox
        .command(&["-v", "-v", "list", "company/monorepo/auth-service"])
        .env("FORGE_REGISTRY", &root)
        .env("FORGE_REGISTRY_USERNAME", forge_testkit::REGISTRY_USER)
        .env("FORGE_REGISTRY_PASSWORD", forge_testkit::REGISTRY_PASSWORD)
        .output()
        .expect("run");
    assert!(output.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!all.contains(forge_testkit::REGISTRY_PASSWORD), "the password appeared in output");

    let docker = sandbox.path().join("docker");
    std::fs::create_dir_all(&docker).expect("mkdir");
    let auth =
        base64(&format!("{}:{}", forge_testkit::REGISTRY_USER, forge_testkit::REGISTRY_PASSWORD));
    std::fs::write(
        docker.join("config.json"),
        format!("{{\"auths\":{{\"{}\":{{\"auth\":\"{auth}\"}}}}}}", registry.addr),
    )
    .expect("docker config");
    let output = sandbox
        .command(&list)
        .env("FORGE_REGISTRY", &root)
        .env("DOCKER_CONFIG", &docker)
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "docker config credentials: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn images_given_by_tag_are_pinned_or_refused() {
    let registry = Registry::shared(RegistryKind::Plain);
    let sandbox = Sandbox::new();
    let root = registry.unique_root("digests");
    let project = sandbox.project("auth-service");
    let dir = project.to_str().expect("utf-8");
    let output = sandbox
        .command(&push_args(dir, harness::COMMIT))
        .env("FORGE_REGISTRY", &root)
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let pushed = format!("{root}/company/monorepo/auth-service");
    let digest = {
        let json = sandbox.ok(&[
            "--registry",
            &root,
            "inspect",
            "company/monorepo/auth-service:1",
            "--output",
            "json",
        ]);
        serde_json::from_str::<serde_json::Value>(&json).expect("json")["digest"]
            .as_str()
            .expect("digest")
            .to_owned()
    };

    let images = sandbox.path().join("images");
    std::fs::create_dir_all(images.join("templates")).expect("mkdir");
    std::fs::write(images.join("forge.yaml"), "project: images\nrepository: company/tests\n")
        .expect("config");
    let job = |image: &str| {
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: migrate}}\nspec:\n  template:\n    spec:\n      initContainers: [{{name: wait, image: '{image}'}}]\n      containers: [{{name: run, image: 'busybox:1.36'}}]\n"
        )
    };
    std::fs::write(images.join("templates/job.yaml"), job(&format!("{pushed}:1"))).expect("job");
    let dir = images.to_str().expect("utf-8");

    let stderr = sandbox.fails(2, &["render", "-C", dir, "--require-digests"]);
    assert!(stderr.contains("2 container images are not pinned by digest"), "{stderr}");
    assert!(
        stderr
            .contains(&format!("_default/batch.Job.migrate.yaml initContainers/wait: {pushed}:1")),
        "{stderr}"
    );
    assert!(
        stderr.contains("_default/batch.Job.migrate.yaml containers/run: busybox:1.36"),
        "{stderr}"
    );

    std::fs::write(
        images.join("templates/job.yaml"),
        job(&format!("{pushed}:1")).replace("busybox:1.36", &format!("{pushed}:main-1")),
    )
    .expect("job");
    let rendered = sandbox.ok(&["render", "-C", dir, "--resolve-digests", "--require-digests"]);
    assert!(rendered.contains(&format!("image: {pushed}@{digest}")), "{rendered}");
    assert_eq!(rendered.matches(&digest).count(), 2, "{rendered}");

    // Only loopback registries in tests: the second image is pinned already.
    std::fs::write(
        images.join("templates/job.yaml"),
        job(&format!("{pushed}:no-such-tag"))
            .replace("busybox:1.36", &format!("{pushed}@{digest}")),
    )
    .expect("job");
    let output =
        sandbox.command(&["render", "-C", dir, "--resolve-digests"]).output().expect("run");
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "initContainers/wait: tag `no-such-tag` of {pushed} does not exist"
        )),
        "{stderr}"
    );
}

/// A plain-HTTP registry's client trusts no certificate authority until TLS is needed: here
/// its token service is on HTTPS. The system's authorities are then loaded (the test CA is
/// the system's through SSL_CERT_FILE) and the push goes through; without the CA among them,
/// TLS fails closed with the certificate named as the reason.
#[test]
fn a_plain_http_registry_may_send_its_clients_to_an_https_token_service() {
    let registry = Registry::shared(RegistryKind::TokenOverHttps);
    let sandbox = Sandbox::new();
    let root = registry.unique_root("https-realm");
    let project = sandbox.project("auth-service");
    let commit = "1".repeat(40);
    let push = push_args(project.to_str().expect("utf-8"), &commit);
    let run = |ca: Option<&std::path::Path>| {
        let mut command = sandbox.command(&push);
        command
            .env("FORGE_REGISTRY", &root)
            .env("FORGE_REGISTRY_USERNAME", forge_testkit::REGISTRY_USER)
            .env("FORGE_REGISTRY_PASSWORD", forge_testkit::REGISTRY_PASSWORD);
        if let Some(ca) = ca {
            command.env("SSL_CERT_FILE", ca).env("SSL_CERT_DIR", sandbox.path());
        }
        command.output().expect("run")
    };
    let untrusted = run(None);
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert_eq!(untrusted.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");

    let trusted = run(Some(&registry.ca_file()));
    assert!(trusted.status.success(), "{}", String::from_utf8_lossy(&trusted.stderr));
    let requests = registry.token_requests();
    assert!(requests.iter().any(|r| r.starts_with("alice ")), "{requests:#?}");
}

/// Without a single CA certificate on the system, a plain-HTTP registry still works (its
/// client loads no authority), and a TLS registry fails with an error naming the cause, not a
/// crash.
#[test]
fn a_system_without_ca_certificates_gets_an_error_not_a_crash() {
    let sandbox = Sandbox::new();
    let no_ca = |command: &mut std::process::Command| {
        command
            .env("SSL_CERT_FILE", sandbox.path().join("none.pem"))
            .env("SSL_CERT_DIR", sandbox.path())
            .output()
            .expect("run")
    };
    let plain = Registry::shared(RegistryKind::Plain);
    let mut list = sandbox.command(&["list", "company/monorepo/auth-service"]);
    let output = no_ca(list.env("FORGE_REGISTRY", plain.unique_root("no-ca")));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    // A CA file that did not sign this registry's certificate (another test registry's).
    let tls = Registry::shared(RegistryKind::Tls);
    let other_ca = Registry::shared(RegistryKind::TokenOverHttps).ca_file();
    let mut list = sandbox.command(&["list", "company/monorepo/auth-service"]);
    list.args(["--ca-file", other_ca.to_str().expect("utf-8")]);
    let output = no_ca(list.env("FORGE_REGISTRY", tls.unique_root("no-ca")));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("cannot set up TLS") || stderr.contains("certificate"),
        "the cause is named: {stderr}"
    );
}
