//! Issue 17: signatures in cosign's formats, both ways, against the real cosign CLI and a real
//! registry; and signatures that must count for nothing: another key's, another release's
//! copied next to this one (both forms), none at all.

use std::path::PathBuf;
use std::process::{Command, Output};

use forge_testkit::{Registry, RegistryKind, crane_copy, go_tool};

use crate::harness::{Sandbox, push_args};

const PASSWORD: &str = "correct horse";

/// A sandbox, a store root in the shared registry, and a cosign key pair (cosign.key,
/// encrypted with [`PASSWORD`], and cosign.pub) made by cosign itself.
struct Signed {
    sandbox: Sandbox,
    root: String,
    project: PathBuf,
}

impl Signed {
    fn new(name: &str) -> Self {
        let sandbox = Sandbox::new();
        let root = Registry::shared(RegistryKind::Plain).unique_root(name);
        let project = sandbox.project("auth-service");
        let made = cosign(&sandbox, &["generate-key-pair"]);
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        Signed { sandbox, root, project }
    }

    fn key(&self, name: &str) -> String {
        self.sandbox.path().join(name).display().to_string()
    }

    /// Pushes the project at `commit` (release 1, 2, … in order), signed when `extra` says.
    fn push(&self, commit: &str, extra: &[&str]) -> serde_json::Value {
        let dir = self.project.display().to_string();
        let mut args = push_args(&dir, commit);
        args.extend(["--output", "json"]);
        args.extend(extra);
        let output = self
            .sandbox
            .command(&args)
            .env("FORGE_REGISTRY", &self.root)
            .env("COSIGN_PASSWORD", PASSWORD)
            .output()
            .expect("push");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).expect("json")
    }

    /// `<registry>/<repository>@<digest>` of release `number`.
    fn image(&self, digest: &str) -> String {
        format!("{}/company/monorepo/auth-service@{digest}", self.root)
    }

    /// `forge-pack verify` of release `id` with the public keys `keys`.
    fn verify(&self, id: &str, keys: &[&str]) -> Output {
        let reference = format!("company/monorepo/auth-service:{id}");
        let mut args = vec!["verify", &reference, "--output", "json"];
        for key in keys {
            args.extend(["--key", key]);
        }
        self.sandbox.command(&args).env("FORGE_REGISTRY", &self.root).output().expect("verify")
    }
}

/// cosign run in the sandbox (its HOME), offline: no transparency log, no TUF.
fn cosign(sandbox: &Sandbox, args: &[&str]) -> Output {
    sandbox
        .environment(Command::new(go_tool("cosign")))
        .args(args)
        .env("COSIGN_PASSWORD", PASSWORD)
        .output()
        .expect("cosign")
}

fn forms(output: &Output) -> Vec<String> {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let mut forms: Vec<String> = report["signatures"]
        .as_array()
        .expect("signatures")
        .iter()
        .map(|s| s["form"].as_str().expect("form").to_owned())
        .collect();
    forms.sort();
    forms
}

fn commit(n: char) -> String {
    n.to_string().repeat(40)
}

#[test]
fn cosign_verifies_what_forge_pack_signs_and_forge_pack_what_cosign_signs() {
    let world = Signed::new("cosign-interop");
    let (key, public) = (world.key("cosign.key"), world.key("cosign.pub"));
    // forge-pack signs with cosign's own encrypted key; cosign verifies both forms.
    let pushed = world.push(&commit('1'), &["--sign-key", &key]);
    let image = world.image(pushed["digest"].as_str().expect("digest"));
    for extra in [&[][..], &["--new-bundle-format=false"][..]] {
        let mut args = vec!["verify", "--key", &public, "--insecure-ignore-tlog"];
        args.extend(extra);
        args.push(&image);
        let verified = cosign(&world.sandbox, &args);
        assert!(
            verified.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&verified.stderr)
        );
    }
    assert_eq!(forms(&world.verify("1", &[&public])), ["bundle", "classic"]);
    // Its provenance too: cosign verifies the attestation, forge-pack shows its facts.
    let attested = cosign(
        &world.sandbox,
        &[
            "verify-attestation",
            "--key",
            &public,
            "--insecure-ignore-tlog",
            "--type",
            "slsaprovenance1",
            &image,
        ],
    );
    assert!(attested.status.success(), "{}", String::from_utf8_lossy(&attested.stderr));
    let shown = world
        .sandbox
        .command(&[
            "inspect",
            "company/monorepo/auth-service:1",
            "--provenance",
            "--key",
            &public,
            "--output",
            "json",
        ])
        .env("FORGE_REGISTRY", &world.root)
        .output()
        .expect("inspect");
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("json");
    let predicate = &shown["provenance"][0]["predicate"];
    assert_eq!(predicate["buildDefinition"]["externalParameters"]["branch"], "main");
    assert_eq!(
        predicate["buildDefinition"]["resolvedDependencies"][0]["digest"]["gitCommit"],
        commit('1')
    );

    // Copied to another registry path with its signature tags (crane copies the referrers
    // index with the referrers it lists), the release still verifies, with both tools.
    let copy = Registry::shared(RegistryKind::Plain).unique_root("cosign-copy");
    let hex = &pushed["digest"].as_str().expect("digest")[7..];
    for tag in [commit('1'), format!("sha256-{hex}"), format!("sha256-{hex}.sig")] {
        crane_copy(
            &format!("{}/company/monorepo/auth-service:{tag}", world.root),
            &format!("{copy}/company/monorepo/auth-service:{tag}"),
        );
    }
    let reference = format!("{copy}/company/monorepo/auth-service:{}", commit('1'));
    let verified = world
        .sandbox
        .command(&["verify", &reference, "--key", &public, "--output", "json"])
        .output()
        .expect("verify");
    assert_eq!(forms(&verified), ["bundle", "classic"]);
    let copied_image = format!(
        "{copy}/company/monorepo/auth-service@{}",
        pushed["digest"].as_str().expect("digest")
    );
    let verified = cosign(
        &world.sandbox,
        &["verify", "--key", &public, "--insecure-ignore-tlog", &copied_image],
    );
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));

    // cosign signs; forge-pack verifies each form.
    for (n, extra, form) in
        [('2', None, "bundle"), ('3', Some("--new-bundle-format=false"), "classic")]
    {
        let pushed = world.push(&commit(n), &[]);
        let id = n.to_string();
        let unsigned = world.verify(&id, &[&public]);
        assert_eq!(unsigned.status.code(), Some(5));
        assert!(String::from_utf8_lossy(&unsigned.stderr).contains("it has no signatures"));
        let image = world.image(pushed["digest"].as_str().expect("digest"));
        let mut args =
            vec!["sign", "--key", &key, "--use-signing-config=false", "--tlog-upload=false", "-y"];
        args.extend(extra);
        args.push(&image);
        let signed = cosign(&world.sandbox, &args);
        assert!(signed.status.success(), "{}", String::from_utf8_lossy(&signed.stderr));
        assert_eq!(forms(&world.verify(&id, &[&public])), [form], "release {n}");
    }
}

#[test]
fn another_key_or_another_releases_signature_counts_for_nothing() {
    let world = Signed::new("sig-abuse");
    let (key, public) = (world.key("cosign.key"), world.key("cosign.pub"));
    let signed = world.push(&commit('1'), &["--sign-key", &key]);
    let unsigned = world.push(&commit('2'), &[]);
    // A second key pair: the release is not signed by it.
    std::fs::create_dir_all(world.sandbox.path().join("other")).expect("mkdir");
    let other = world.sandbox.path().join("other/cosign.pub");
    let made = world
        .sandbox
        .environment(Command::new(go_tool("cosign")))
        .args(["generate-key-pair"])
        .current_dir(world.sandbox.path().join("other"))
        .env("COSIGN_PASSWORD", PASSWORD)
        .output()
        .expect("cosign");
    assert!(made.status.success());
    let refused = world.verify("1", &[other.to_str().expect("utf-8")]);
    assert_eq!(refused.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("is not signed by any of the keys given"), "{stderr}");
    assert!(stderr.contains("signed by none of the trusted keys"), "{stderr}");

    // Release 1's signatures copied next to release 2, both forms, with crane (a real peer).
    let hex = |v: &serde_json::Value| v["digest"].as_str().expect("digest")[7..].to_owned();
    let repository = format!("{}/company/monorepo/auth-service", world.root);
    for suffix in ["", ".sig"] {
        let from = format!("{repository}:sha256-{}{suffix}", hex(&signed));
        let to = format!("{repository}:sha256-{}{suffix}", hex(&unsigned));
        crane_copy(&from, &to);
    }
    let refused = world.verify("2", &[&public]);
    assert_eq!(refused.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("a bundle about another release"), "{stderr}");
    assert!(stderr.contains("a .sig signature of another release"), "{stderr}");
    assert!(world.verify("1", &[&public]).status.success());
}

/// An ECDSA P-256 key pair made by openssl, as paths in text.
fn openssl_pair(dir: &std::path::Path, name: &str) -> (String, String) {
    let (private, public) = forge_testkit::ecdsa_key_pair(dir, name);
    (private.display().to_string(), public.display().to_string())
}

/// Issue 17: an environment whose policy names the CI's key (`signed_by:`) takes only
/// releases that key signed, with signed provenance, and checks the trigger and branch the
/// provenance attests: a release signed on a laptop with `--branch main`, or signed without
/// provenance, does not reach it.
#[test]
fn a_policy_naming_the_ci_key_checks_what_that_key_attested() {
    let world = Signed::new("signed-policy");
    let dir = world.sandbox.path();
    let (ci, ci_pub) = openssl_pair(dir, "ci");
    let (laptop, _) = openssl_pair(dir, "laptop");
    let gitops = dir.join("gitops");
    std::fs::create_dir_all(gitops.join("keys")).expect("mkdir");
    std::fs::copy(&ci_pub, gitops.join("keys/ci.pub")).expect("key");
    std::fs::write(
        gitops.join("policy.yaml"),
        "environments:\n  production:\n    signed_by: [keys/ci.pub]\n    allowed_triggers: [branch_push]\n    allowed_branches: [main]\n",
    )
    .expect("policy");
    crate::harness::git(&gitops, &["init", "-q", "-b", "main"]);
    crate::harness::git(&gitops, &["add", "."]);
    crate::harness::git(&gitops, &["commit", "-q", "-m", "Production takes what CI signed"]);
    let location = format!("{}/company/monorepo/auth-service", world.root);
    let deploy = |id: &str| {
        world
            .sandbox
            .command(&["deploy", "production", &location, id, "--actor", "alice"])
            .env("FORGE_REGISTRY", &world.root)
            .env("FORGE_GITOPS", &gitops)
            .output()
            .expect("deploy")
    };
    // 1: a laptop's release, claiming main, signed with the laptop's key.
    world.push(&commit('1'), &["--manual", "--sign-key", &laptop]);
    let denied = deploy("1");
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert_eq!(denied.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains(
            "signed_by: needs a signature by one of [keys/ci.pub]; release 1 has none by them"
        ),
        "{stderr}"
    );
    // 2: signed with the CI key, but no provenance (signed after the fact).
    world.push(&commit('2'), &[]);
    let signed = world
        .sandbox
        .command(&["sign", "company/monorepo/auth-service:2", "--key", &ci])
        .env("FORGE_REGISTRY", &world.root)
        .output()
        .expect("sign");
    assert!(signed.status.success(), "{}", String::from_utf8_lossy(&signed.stderr));
    let stderr = String::from_utf8_lossy(&deploy("2").stderr).into_owned();
    assert!(stderr.contains("needs build provenance signed by one of [keys/ci.pub]"), "{stderr}");
    // 3: CI built main at this commit and signed it: admitted on the facts it attested.
    let dir_text = world.project.display().to_string();
    let third = commit('3');
    let mut args = push_args(&dir_text, &third);
    args.extend(["--sign-key", &ci]);
    let ci_push = world
        .sandbox
        .command(&args)
        .env("FORGE_REGISTRY", &world.root)
        .envs([
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF_TYPE", "branch"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_SHA", third.as_str()),
        ])
        .output()
        .expect("push");
    assert!(ci_push.status.success(), "{}", String::from_utf8_lossy(&ci_push.stderr));
    let admitted = deploy("3");
    assert!(admitted.status.success(), "{}", String::from_utf8_lossy(&admitted.stderr));
}

/// A key vouches only for what its push built: a release of the commit pushed earlier by
/// someone else, from other source facts, is not signed (and nothing attests its facts).
#[test]
fn a_push_does_not_sign_a_release_someone_else_built() {
    let world = Signed::new("not-this-build");
    let dir = world.sandbox.path();
    let (ci, ci_pub) = openssl_pair(dir, "ci");
    let project = world.project.display().to_string();
    let target = commit('e');
    let mut forged = push_args(&project, &target);
    let at = forged.iter().position(|a| *a == "--source-url").expect("--source-url") + 1;
    forged[at] = "https://evil.example/attacker.git";
    let pushed =
        world.sandbox.command(&forged).env("FORGE_REGISTRY", &world.root).output().expect("push");
    assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));
    let mut args = push_args(&project, &target);
    args.extend(["--sign-key", &ci]);
    let refused =
        world.sandbox.command(&args).env("FORGE_REGISTRY", &world.root).output().expect("push");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("was made by another push from other source facts (repository"),
        "{stderr}"
    );
    assert_eq!(world.verify(&target, &[&ci_pub]).status.code(), Some(5));
}
