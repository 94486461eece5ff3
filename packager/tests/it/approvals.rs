//! Issue 16, approvals tried as an attacker would: one person under two names, one key under
//! two principals, a wildcard line of the allowed-signers file, and a policy or signers file
//! changed in the working tree but not committed. Real ssh-keygen, real git, real registry.

use std::path::{Path, PathBuf};

use crate::deploy::{TAGGED, World, ssh_key};
use crate::harness::git;

/// A key pair for `who` in the sandbox; its public line.
fn key(world: &World, who: &str) -> (PathBuf, String) {
    let path = world.sandbox.path().join(format!("key-{who}"));
    ssh_key(&path, who);
    let public = std::fs::read_to_string(path.with_extension("pub")).expect("public key");
    (path, public.trim().to_owned())
}

/// Writes and signs (with `key`) an approval of release 2 for production by `approver`.
fn signed_record(world: &World, approver: &str, key: &Path) {
    let digest = world.digest_of("2");
    let dir = world.gitops.join(format!(
        "approvals/production/company/monorepo/auth-service/{}",
        digest.trim_start_matches("sha256:")
    ));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let record = dir.join(format!("{approver}.yaml"));
    let text = format!(
        "apiVersion: forge.dev/v1alpha1\nkind: Approval\nenvironment: production\nrepository: company/monorepo\nproject: auth-service\nrelease: 2\ndigest: {digest}\ncommit: {TAGGED}\napprover: {approver}\njustification: {approver} says yes\napprovedAt: 2026-01-01T00:00:00Z\n"
    );
    std::fs::write(&record, text).expect("record");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "forge-pack-approval", "-f"])
        .arg(key)
        .arg(&record)
        .status()
        .expect("ssh-keygen");
    assert!(status.success());
}

#[test]
fn one_person_one_key_one_approval_and_only_what_is_committed_counts() {
    let world = World::new("approval-abuse");
    let location = world.location();
    let (alice, alice_pub) = key(&world, "alice");
    let (bob, bob_pub) = key(&world, "bob");
    let (mallory, mallory_pub) = key(&world, "mallory");
    std::fs::write(
        world.gitops.join("allowed_signers"),
        format!(
            "alice@example.com {alice_pub}\nbob@example.com,bob {bob_pub}\n*@example.com {mallory_pub}\n"
        ),
    )
    .expect("allowed_signers");
    let policy = "environments:\n  staging: {}\n  production:\n    approvers: [alice@example.com, bob, bob@example.com, carol@example.com]\n    approvals: 2\n";
    std::fs::write(world.gitops.join("policy.yaml"), policy).expect("policy");
    git(&world.gitops, &["add", "."]);
    git(&world.gitops, &["commit", "--quiet", "--message", "Approvers for production"]);

    // Alice approves under her email and deploys under her login; Bob approves twice with
    // one key; Mallory's wildcard line lets her key sign as anyone at example.com.
    signed_record(&world, "alice@example.com", &alice);
    signed_record(&world, "bob", &bob);
    signed_record(&world, "bob@example.com", &bob);
    signed_record(&world, "carol@example.com", &mallory);
    git(&world.gitops, &["add", "approvals"]);
    git(&world.gitops, &["commit", "--quiet", "--message", "Approvals"]);
    // And in the working tree only: a policy without approvals, a signers line for Mallory.
    std::fs::write(world.gitops.join("policy.yaml"), "environments:\n  production: {}\n")
        .expect("policy");
    let signers = std::fs::read_to_string(world.gitops.join("allowed_signers")).expect("read");
    std::fs::write(
        world.gitops.join("allowed_signers"),
        format!("{signers}carol@example.com {mallory_pub}\n"),
    )
    .expect("allowed_signers");

    // Alice deploys under a name of her choosing; her key says who she is.
    let alice_key = alice.to_str().expect("utf-8");
    let denied = world.fails(
        7,
        &["deploy", "production", &location, "v1.2.3", "--actor", "asmith", "--key", alice_key],
    );
    assert!(denied.contains("requires_approval: needs 2 signed approvals"), "{denied}");
    assert!(denied.contains("bob: valid"), "{denied}");
    assert!(denied.contains("alice@example.com: a self-approval (they deploy it)"), "{denied}");
    assert!(
        denied.contains("bob@example.com: approved already with the same key (as bob)"),
        "{denied}"
    );
    assert!(
        denied.contains("carol@example.com: its key is listed only for a pattern or other names"),
        "{denied}"
    );
    // approve refuses the wildcard too, before anything is written.
    let refused = world.run(
        "mallory",
        &[
            "approve",
            "production",
            &location,
            "v1.2.3",
            "--justification",
            "trust me",
            "--approver",
            "carol@example.com",
            "--key",
            mallory.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(refused.status.code(), Some(7), "{}", String::from_utf8_lossy(&refused.stderr));

    // Carol's own key, committed; her approval and Bob's let the release through.
    git(&world.gitops, &["checkout", "--quiet", "--", "policy.yaml", "allowed_signers"]);
    let (carol, carol_pub) = key(&world, "carol");
    let signers = std::fs::read_to_string(world.gitops.join("allowed_signers")).expect("read");
    std::fs::write(
        world.gitops.join("allowed_signers"),
        format!("{signers}carol@example.com {carol_pub}\n"),
    )
    .expect("allowed_signers");
    git(&world.gitops, &["commit", "--quiet", "--all", "--message", "Carol approves"]);
    let approved = world.run(
        "carol",
        &[
            "approve",
            "production",
            &location,
            "v1.2.3",
            "--justification",
            "CHG-7",
            "--approver",
            "carol@example.com",
            "--key",
            carol.to_str().expect("utf-8"),
        ],
    );
    assert!(approved.status.success(), "{}", String::from_utf8_lossy(&approved.stderr));
    let out = world.ok("alice", &["deploy", "production", &location, "v1.2.3", "--key", alice_key]);
    assert!(out.starts_with("Deployed auth-service release 2"), "{out}");
    let message = world.last_message();
    assert!(message.contains("Approved by: bob (bob says yes)\n"), "{message}");
    assert!(message.contains("Approved by: carol@example.com (CHG-7)\n"), "{message}");
    assert!(!message.contains("alice@example.com"), "{message}");
}
