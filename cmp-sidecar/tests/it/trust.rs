//! Issue 14: the sidecar fails closed. A pointer that cannot be read fails the generate
//! instead of being skipped; a named pointer file stays inside the app; each Argo CD project
//! may name only the images its operator allows, checked before any network or disk access;
//! credentials reach only their host; a hostile registry cannot exhaust memory.

use forge_testkit::{HostileRegistry, Reply, fixtures, run_measuring_memory};

use crate::argo::{self, Env, argo_parse, failure, pointer};

const APP: &str = "envs/dev/auth-service";

/// Issue 14: a second pointer that does not parse, or declares the kind in another letter
/// case, or holds a second document, fails the whole generate, naming the file; files of
/// another kind stay ignored.
#[test]
fn a_pointer_that_cannot_be_read_fails_the_generate_instead_of_being_skipped() {
    let env = Env::new();
    env.publish('a', argo::sample());
    let repo = env.gitops(&pointer('a', None));
    let app = repo.join(APP);
    std::fs::write(
        app.join("service.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n",
    )
    .expect("write");
    std::fs::write(app.join("notes.yml"), "{{ .Values.broken }}: [\n").expect("write");
    assert_eq!(argo_parse(&env.generate(&repo, APP, &[])).len(), 3, "other kinds are ignored");

    let other = pointer('b', None)
        .replace("image: company/monorepo/auth-service", "image: company/monorepo/billing");
    let cases = [
        ("broken.yaml", format!("{other}  extra: [\n"), "is not valid YAML"),
        (
            "lowercase.yaml",
            other.replace("kind: ReleasePointer", "kind: releasepointer"),
            "kind is `releasepointer`",
        ),
        (
            "two.yaml",
            format!("{other}---\nkind: ConfigMap\n"),
            "holds exactly one document, this one holds 2",
        ),
        (
            "escaped.yml",
            other.replace("kind: ReleasePointer", "kind: \"Rel\\x65asePointer"),
            "is not valid YAML",
        ),
    ];
    for (file, text, expected) in cases {
        std::fs::write(app.join(file), &text).expect("write");
        let stderr = failure(&env.generate(&repo, APP, &[]));
        assert!(stderr.contains(&format!("invalid ReleasePointer {file}: ")), "{file}: {stderr}");
        assert!(stderr.contains(expected), "{file}: {stderr}");
        std::fs::remove_file(app.join(file)).expect("rm");
    }
    // Letter case of the extension does not hide a file, nor does a dangling link.
    std::fs::write(app.join("UPPER.YAML"), format!("{other}  extra: [\n")).expect("write");
    let stderr = failure(&env.generate(&repo, APP, &[]));
    assert!(stderr.contains("invalid ReleasePointer UPPER.YAML: "), "{stderr}");
    std::fs::remove_file(app.join("UPPER.YAML")).expect("rm");
    std::os::unix::fs::symlink("/nonexistent/pointer.yaml", app.join("gone.yml")).expect("link");
    let stderr = failure(&env.generate(&repo, APP, &[]));
    assert!(stderr.contains("gone.yml"), "{stderr}");
    std::fs::remove_file(app.join("gone.yml")).expect("rm");
    let mut not_utf8 = other.into_bytes();
    not_utf8.push(0xff);
    std::fs::write(app.join("latin1.yaml"), not_utf8).expect("write");
    let stderr = failure(&env.generate(&repo, APP, &[]));
    assert!(stderr.contains("latin1.yaml: the file is not UTF-8"), "{stderr}");
}

/// Issue 14: `PARAM_POINTER` names a file inside the application directory only; nothing of a
/// file outside it is read, let alone printed.
#[test]
fn a_named_pointer_file_must_lie_inside_the_application_directory() {
    let env = Env::new();
    env.publish('a', argo::sample());
    let repo = env.gitops(&pointer('a', None));
    let secret = env.dir.path().join("secret.yaml");
    std::fs::write(&secret, "root-password: hunter2\n").expect("write");
    std::os::unix::fs::symlink(&secret, repo.join(APP).join("link.yaml")).expect("symlink");
    for name in
        [secret.to_str().expect("utf-8"), "../../../../secret.yaml", "link.yaml", "/etc/shadow"]
    {
        let stderr = failure(&env.generate(&repo, APP, &[("PARAM_POINTER", name)]));
        assert!(
            stderr.contains("must be a path inside the application directory"),
            "{name}: {stderr}"
        );
        assert!(!stderr.contains("hunter2") && !stderr.contains("root"), "{stderr}");
    }
}

/// A pointer to `image` at `commit`, without a digest pin.
fn pointer_to(image: &str, commit: &str) -> String {
    format!(
        "apiVersion: forge.dev/v1alpha1\nkind: ReleasePointer\nmetadata:\n  name: auth-service\nspec:\n  image: {image}\n  commit: {commit}\n"
    )
}

fn config(env: &Env, text: &str) -> String {
    let path = env.dir.path().join("sidecar.yaml");
    std::fs::write(&path, text).expect("config");
    path.display().to_string()
}

/// Issue 14: an Application may name only the images its Argo CD project is allowed; the
/// refusal names the project, the image and the rule, and comes before any registry or cache
/// access.
#[test]
fn each_argo_cd_project_may_name_only_its_allowed_images() {
    let env = Env::new();
    let registry = HostileRegistry::start();
    registry.serve_release(argo::IMAGE, fixtures::COMMIT, &fixtures::image());
    let image = format!("{}/{}", registry.addr, argo::IMAGE);
    let repo = env.gitops(&pointer_to(&image, fixtures::COMMIT));
    let config = config(
        &env,
        &format!(
            "apiVersion: forge.dev/v1alpha1\nkind: SidecarConfig\nprojects:\n  team-a:\n    images: [{}/company/]\n  team-b:\n    images: [{}/team-b/]\n",
            registry.addr, registry.addr
        ),
    );
    let run = |project: &str| {
        env.generate(
            &repo,
            APP,
            &[
                ("FORGE_CMP_CONFIG", config.as_str()),
                ("FORGE_CMP_ALLOWED_IMAGES", ""),
                ("ARGOCD_APP_PROJECT_NAME", project),
            ],
        )
    };
    let stderr = failure(&run("team-b"));
    assert!(
        stderr.contains(&format!("Argo CD project `team-b` may not deploy `{image}`: the rule for `team-b` allows {}/team-b/", registry.addr)),
        "{stderr}"
    );
    let stderr = failure(&run("team-c"));
    assert!(stderr.contains("project `team-c` may name no release images"), "{stderr}");
    assert!(
        registry.requests().is_empty(),
        "refused before any request: {:#?}",
        registry.requests()
    );
    assert!(!env.cache().exists(), "refused before the cache is touched");

    let objects = argo_parse(&run("team-a"));
    assert_eq!(objects.len(), 4);
}

/// The cache is shared by every project: a release another project's Application fetched is
/// not served to a pointer that names it, by digest, under an image of one's own (where the
/// registry does not have it). The cache stands in only for what the image's store confirmed.
#[test]
fn the_shared_cache_serves_a_release_only_under_the_image_it_came_from() {
    let env = Env::new();
    let registry = HostileRegistry::start();
    let release = fixtures::image();
    registry.serve_release(argo::IMAGE, fixtures::COMMIT, &release);
    let theirs = format!("{}/{}", registry.addr, argo::IMAGE);
    let config = config(
        &env,
        &format!(
            "apiVersion: forge.dev/v1alpha1\nkind: SidecarConfig\nprojects:\n  team-a:\n    images: [{}/company/]\n  team-b:\n    images: [{}/team-b/]\n",
            registry.addr, registry.addr
        ),
    );
    let run = |repo: &std::path::Path, project: &str| {
        env.generate(
            repo,
            APP,
            &[
                ("FORGE_CMP_CONFIG", config.as_str()),
                ("FORGE_CMP_ALLOWED_IMAGES", ""),
                ("ARGOCD_APP_PROJECT_NAME", project),
            ],
        )
    };
    let team_a = env.gitops(&pointer_to(&theirs, fixtures::COMMIT));
    assert_eq!(argo_parse(&run(&team_a, "team-a")).len(), 4, "team-a's release is now cached");

    // Team-b read team-a's commit and digest in the shared GitOps repository.
    let mine = format!("{}/team-b/{}", registry.addr, argo::IMAGE);
    let team_b = env.gitops(&format!(
        "{}  digest: {}\n",
        pointer_to(&mine, fixtures::COMMIT),
        release.digest
    ));
    let refused = run(&team_b, "team-b");
    let stderr = failure(&refused);
    assert!(stderr.contains(&mine), "{stderr}");
    assert!(refused.stdout.is_empty());
    let asked = registry.requests();
    assert!(
        asked.iter().any(|r| r.path.contains("/team-b/")),
        "team-b's image was asked of its registry: {asked:#?}"
    );
}

/// Issue 14: without an allowlist nothing is fetched, and releases on the sidecar's own disk
/// (`oci:` layouts, say one committed into the GitOps repository) need the operator's consent.
#[test]
fn without_an_allowlist_or_consent_for_layouts_nothing_is_fetched() {
    let env = Env::new();
    env.publish('a', argo::sample());
    let repo = env.gitops(&pointer('a', None));
    let stderr = failure(&env.generate(&repo, APP, &[("FORGE_CMP_ALLOWED_IMAGES", "")]));
    assert!(stderr.contains("the sidecar has no image allowlist"), "{stderr}");
    assert!(stderr.contains("FORGE_CMP_CONFIG"), "{stderr}");
    let stderr = failure(&env.generate(&repo, APP, &[("FORGE_CMP_LOCAL_LAYOUTS", "false")]));
    assert!(stderr.contains("does not enable `localLayouts`"), "{stderr}");
}

/// Issue 14: link-local and cloud metadata addresses are never contacted, allowlist or not.
#[test]
fn the_metadata_service_is_never_contacted() {
    let env = Env::new();
    let text = pointer('a', None).replace(
        &format!("image: {}", argo::IMAGE),
        &format!("image: 169.254.169.254/{}", argo::IMAGE),
    );
    let stderr = failure(&env.generate(&env.gitops(&text), APP, &[]));
    assert!(stderr.contains("never contacted"), "{stderr}");
}

/// Issue 14: the sidecar's credentials go to the host they were given for only, never to the
/// host a pointer names.
#[test]
fn the_sidecars_credentials_reach_only_their_own_host() {
    let env = Env::new();
    let (home, other) = (HostileRegistry::start(), HostileRegistry::start());
    other.serve_release(argo::IMAGE, fixtures::COMMIT, &fixtures::image());
    let text = pointer_to(&format!("{}/{}", other.addr, argo::IMAGE), fixtures::COMMIT);
    let output = env.generate(
        &env.gitops(&text),
        APP,
        &[
            ("FORGE_REGISTRY", home.addr.as_str()),
            ("FORGE_REGISTRY_USERNAME", "sidecar"),
            ("FORGE_REGISTRY_PASSWORD", "s3cret"),
        ],
    );
    assert_eq!(argo_parse(&output).len(), 4);
    let requests = other.requests();
    assert!(
        !requests.is_empty() && requests.iter().all(|r| r.authorization.is_none()),
        "{requests:#?}"
    );

    // Credentials with no host to belong to are refused outright.
    let stderr = failure(&env.generate(
        &env.gitops(&text),
        APP,
        &[("FORGE_REGISTRY_USERNAME", "sidecar"), ("FORGE_REGISTRY_PASSWORD", "s3cret")],
    ));
    assert!(stderr.contains("credentials need the one registry host they are for"), "{stderr}");
}

/// Issue 14: a hostile registry cannot take the sidecar's memory: an endless blob and a
/// manifest claiming 2 GiB are refused near the sidecar's normal peak, with nothing on stdout.
#[test]
fn a_hostile_registry_cannot_exhaust_the_sidecars_memory() {
    let env = Env::new();
    let release = fixtures::image();
    let project = argo::IMAGE;
    let layer = release.manifest.resources().digest.clone();
    for (what, route, length) in [
        ("endless blob", format!("/v2/{project}/blobs/{layer}"), None),
        ("2 GiB manifest", format!("/v2/{project}/manifests/"), Some(2u64 << 30)),
    ] {
        let registry = HostileRegistry::start();
        registry.serve_release(project, fixtures::COMMIT, &release);
        registry.route(
            "GET",
            &route,
            Reply::Endless { status: 200, headers: Vec::new(), length, chunk: vec![1; 1 << 20] },
        );
        let repo =
            env.gitops(&pointer_to(&format!("{}/{project}", registry.addr), fixtures::COMMIT));
        let mut command = env.command(&repo, APP, &[]);
        let (output, peak) = run_measuring_memory(&mut command);
        assert!(!output.status.success(), "{what}");
        assert!(output.stdout.is_empty(), "{what}: nothing on stdout");
        assert!(peak > 0 && peak < 300 << 10, "{what}: peak {peak} KiB");
    }
}
