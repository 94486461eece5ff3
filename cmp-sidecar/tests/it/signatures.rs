//! Issue 17: forge-cmp renders a release only when a key its Argo CD project trusts signed it,
//! checked before a byte reaches stdout: unsigned releases, releases signed by other keys, a
//! tag moved to another release, and signatures copied from another release are all refused
//! (exit ≠ 0, empty stdout, the digest and the keys tried named). A warm generate reuses the
//! verification.

use std::path::{Path, PathBuf};

use forge_testkit::{Registry, RegistryKind, crane_copy, ecdsa_key_pair as key_pair};

use crate::argo::{Env, argo_parse, failure};

const APP: &str = "envs/prod/auth-service";

/// Pushes the example project at `commit` into `registry`, signed with `key` if given; the
/// release digest.
fn push(env: &Env, registry: &str, commit: char, key: Option<&Path>) -> String {
    push_variant(env, registry, commit, key, "")
}

/// [`push`], with `variant` in the marker's name (other content for the same commit).
fn push_variant(
    env: &Env,
    registry: &str,
    commit: char,
    key: Option<&Path>,
    variant: &str,
) -> String {
    let project = crate::argo::example_project(env);
    std::fs::write(project.join("templates/marker.yaml"), format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: marker-{commit}{variant}\n  namespace: auth\n")).expect("marker");
    let commit = commit.to_string().repeat(40);
    let dir = project.to_str().expect("utf-8");
    let key = key.map(|k| k.display().to_string());
    let extra: Vec<&str> = key.iter().flat_map(|k| ["--sign-key", k.as_str()]).collect();
    let pushed = crate::argo::push_project(registry, dir, &commit, &extra);
    pushed["digest"].as_str().expect("digest").to_owned()
}

fn gitops(env: &Env, image: &str, commit: char) -> PathBuf {
    let root = env.dir.path().join("gitops");
    let commit = commit.to_string().repeat(40);
    crate::argo::write_pointer(&root, APP, "auth-service", image, &commit);
    root
}

#[test]
fn only_releases_signed_by_a_trusted_key_are_rendered() {
    let registry = Registry::shared(RegistryKind::Plain);
    let env = Env::new();
    let keys = env.dir.path();
    let (ci, ci_pub) = key_pair(keys, "ci");
    let (laptop, _) = key_pair(keys, "laptop");
    let prefix = registry.unique_root("cmp-signed");
    let image = format!("{prefix}/company/monorepo/auth-service");
    let trusted = ci_pub.display().to_string();
    let trust = [("FORGE_CMP_TRUSTED_KEYS", trusted.as_str())];

    let signed = push(&env, &prefix, 'a', Some(&ci));
    let repo = gitops(&env, &image, 'a');
    let cold = env.generate(&repo, APP, &trust);
    let objects = argo_parse(&cold);
    assert!(objects.iter().any(|o| o["metadata"]["name"] == "marker-a"), "{objects:?}");
    let record = env.cache().join("signed").join(&signed[7..]);
    assert!(record.is_file(), "the verification is kept with the release");
    let warm = env.generate(&repo, APP, &trust);
    assert_eq!(warm.stdout, cold.stdout);

    // Unsigned, and signed by a key the project does not trust.
    for (commit, key, says) in [
        ('b', None, "it has no signatures"),
        ('c', Some(laptop.as_path()), "signed by none of the trusted keys"),
    ] {
        let digest = push(&env, &prefix, commit, key);
        let stderr = failure(&env.generate(&gitops(&env, &image, commit), APP, &trust));
        assert!(
            stderr.contains(&format!(
                "release {digest} of {image} is not signed by a key trusted for it"
            )),
            "{stderr}"
        );
        assert!(stderr.contains(says), "{stderr}");
    }

    // Release a's signatures, copied next to release b (both forms).
    let unsigned = push(&env, &prefix, 'b', None);
    for suffix in ["", ".sig"] {
        crane_copy(
            &format!("{image}:sha256-{}{suffix}", &signed[7..]),
            &format!("{image}:sha256-{}{suffix}", &unsigned[7..]),
        );
    }
    let stderr = failure(&env.generate(&gitops(&env, &image, 'b'), APP, &trust));
    assert!(stderr.contains("a bundle about another release"), "{stderr}");
    assert!(stderr.contains("a .sig signature of another release"), "{stderr}");

    // Whoever can write the cache volume cannot mark a release signed: with release b in the
    // cache (rendered for a project that does not require signatures), release a's record of
    // its trusted signer, copied beside release b, is not a record of release b.
    let unrequired = env.generate(&gitops(&env, &image, 'b'), APP, &[]);
    assert!(unrequired.status.success(), "{}", String::from_utf8_lossy(&unrequired.stderr));
    std::fs::copy(&record, env.cache().join("signed").join(&unsigned[7..])).expect("forge");
    let stderr = failure(&env.generate(&gitops(&env, &image, 'b'), APP, &trust));
    assert!(stderr.contains("is not signed by a key trusted for it"), "{stderr}");

    // A re-tag: commit a's tag moved to a release of commit a built elsewhere and signed by
    // the laptop key. A fresh sidecar (no cache) follows the tag and refuses it.
    let elsewhere = registry.unique_root("cmp-elsewhere");
    let forged = push_variant(&env, &elsewhere, 'a', Some(&laptop), "-evil");
    let commit_tag = "a".repeat(40);
    crane_copy(
        &format!("{elsewhere}/company/monorepo/auth-service@{forged}"),
        &format!("{image}:{commit_tag}"),
    );
    let fresh = Env::new();
    let stderr = failure(&fresh.generate(&gitops(&fresh, &image, 'a'), APP, &trust));
    assert!(stderr.contains(&format!("release {forged} of {image} is not signed")), "{stderr}");
}
