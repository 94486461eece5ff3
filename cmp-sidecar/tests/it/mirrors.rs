//! Issue 18: one identity rule for deploy and forge-cmp. A release is its metadata
//! (repository, project, commit); a mirror keeps it under another path, and deploy, status
//! and forge-cmp all take it there. A pointer that records the identity gets only that
//! release.

use std::path::Path;
use std::process::Command;

use forge_testkit::{Registry, RegistryKind, crane_copy};

use crate::argo::{Env, argo_parse, failure, push_project, render_project, write_pointer};

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?}");
}

#[test]
fn a_release_mirrored_under_another_path_deploys_and_renders_there() {
    let registry = Registry::shared(RegistryKind::Plain);
    let env = Env::new();
    let source = registry.unique_root("mirror-src");
    let mirror = registry.unique_root("mirror-dst");
    let project = crate::argo::example_project(&env);
    let commit = "d".repeat(40);
    let dir = project.to_str().expect("utf-8");
    push_project(&source, dir, &commit, &[]);
    let rendered = render_project(&source, dir);
    // The production registry keeps it at prod/auth-service.
    for tag in [commit.as_str(), "1"] {
        crane_copy(
            &format!("{source}/company/monorepo/auth-service:{tag}"),
            &format!("{mirror}/prod/auth-service:{tag}"),
        );
    }

    let gitops = env.dir.path().join("gitops");
    std::fs::create_dir_all(&gitops).expect("mkdir");
    std::fs::write(gitops.join("policy.yaml"), "environments:\n  dev: {}\n").expect("policy");
    git(&gitops, &["init", "-q", "-b", "main"]);
    git(&gitops, &["add", "."]);
    git(&gitops, &["commit", "-q", "-m", "policy"]);
    let binary = Path::new(env!("CARGO_BIN_EXE_forge-cmp")).with_file_name("forge-pack");
    let deploy = Command::new(&binary)
        .args(["deploy", "dev", &format!("{mirror}/prod/auth-service"), "1", "--actor", "ada"])
        .env("FORGE_GITOPS", &gitops)
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .output()
        .expect("deploy");
    assert!(deploy.status.success(), "{}", String::from_utf8_lossy(&deploy.stderr));
    let status = Command::new(&binary)
        .args(["status", "dev", "-o", "json"])
        .env("FORGE_GITOPS", &gitops)
        .output()
        .expect("status");
    assert!(String::from_utf8_lossy(&status.stdout).contains("prod/auth-service"));

    let app = "envs/dev/auth-service";
    assert_eq!(argo_parse(&env.generate(&gitops, app, &[])), rendered);

    // A pointer whose recorded identity is another release's gets nothing.
    let pointer = gitops.join(app).join("release.yaml");
    let text = std::fs::read_to_string(&pointer).expect("pointer");
    assert!(text.contains("forge.dev/release: company/monorepo/auth-service"), "{text}");
    std::fs::write(
        &pointer,
        text.replace("company/monorepo/auth-service", "company/other/auth-service"),
    )
    .expect("edit");
    let fresh = Env::new();
    let stderr = failure(&fresh.generate(&gitops, app, &[]));
    assert!(stderr.contains("the release is company/monorepo/auth-service"), "{stderr}");

    // Copied beneath another team's prefix under another project's name, it is not that
    // project's release: a pointer there (recording no identity) gets nothing.
    crane_copy(
        &format!("{source}/company/monorepo/auth-service:{commit}"),
        &format!("{mirror}/teamb/billing:{commit}"),
    );
    let billing = "envs/dev/billing";
    write_pointer(&gitops, billing, "billing", &format!("{mirror}/teamb/billing"), &commit);
    let stderr = failure(&Env::new().generate(&gitops, billing, &[]));
    assert!(stderr.contains("whose project is not"), "{stderr}");
}

/// Two teams' releases in one Application that hold the same object: neither may override
/// the other, so the generate fails naming both, cold and warm alike.
#[test]
fn an_object_two_releases_hold_is_refused_naming_both() {
    let registry = Registry::shared(RegistryKind::Plain);
    let env = Env::new();
    let root = registry.unique_root("dup-objects");
    let commit = "c".repeat(40);
    let auth = crate::argo::example_project(&env);
    push_project(&root, auth.to_str().expect("utf-8"), &commit, &[]);
    // Another project, the same objects.
    let billing = env.dir.path().join("billing");
    crate::argo::copy_tree(&auth, &billing);
    let config = std::fs::read_to_string(billing.join("forge.yaml")).expect("forge.yaml");
    std::fs::write(
        billing.join("forge.yaml"),
        config.replace("project: auth-service", "project: billing"),
    )
    .expect("forge.yaml");
    push_project(&root, billing.to_str().expect("utf-8"), &commit, &[]);

    let gitops = env.dir.path().join("gitops");
    let app = "envs/prod/shared";
    write_pointer(
        &gitops,
        app,
        "auth-service",
        &format!("{root}/company/monorepo/auth-service"),
        &commit,
    );
    std::fs::rename(gitops.join(app).join("release.yaml"), gitops.join(app).join("auth.yaml"))
        .expect("rename");
    write_pointer(&gitops, app, "billing", &format!("{root}/company/monorepo/billing"), &commit);
    for run in ["cold", "warm"] {
        let stderr = failure(&env.generate(&gitops, app, &[]));
        assert!(stderr.contains("is in both"), "{run}: {stderr}");
        assert!(stderr.contains("auth-service") && stderr.contains("billing"), "{run}: {stderr}");
    }
}
