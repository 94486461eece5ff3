//! `deploy`, `rollback` and `status` against a real GitOps git repository and a real registry:
//! every policy rule allowed and denied, staging first, approval, rollback, no-op deploys, a
//! push that loses a race, concurrent writers to one checkout, and two repositories' projects
//! of one name.

use std::path::{Path, PathBuf};
use std::process::Output;

use forge_pack::gitops::parse_pointer;
use forge_release::pointer::ReleasePointer;
use forge_testkit::{Registry, RegistryKind};

use crate::harness::{Sandbox, git, push_args};

/// Commits of the three releases every test pushes.
const MAIN: &str = "1111111111111111111111111111111111111111";
pub(crate) const TAGGED: &str = "2222222222222222222222222222222222222222";
const FEATURE: &str = "3333333333333333333333333333333333333333";

/// GitHub Actions' variables for a push of `branch` at `commit`.
fn github_push<'a>(branch: &'a str, commit: &'a str) -> [(&'static str, &'a str); 5] {
    [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_EVENT_NAME", "push"),
        ("GITHUB_REF_TYPE", "branch"),
        ("GITHUB_REF_NAME", branch),
        ("GITHUB_SHA", commit),
    ]
}

/// A sandbox with three releases of auth-service in a registry and a GitOps checkout holding
/// the example policy.
pub(crate) struct World {
    pub(crate) sandbox: Sandbox,
    /// `<registry>/<unique prefix>`, the store root.
    root: String,
    pub(crate) gitops: PathBuf,
}

impl World {
    pub(crate) fn new(name: &str) -> Self {
        let registry = Registry::shared(RegistryKind::Plain);
        let sandbox = Sandbox::new();
        let root = registry.unique_root(name);
        let project = sandbox.project("auth-service");
        let dir = project.to_str().expect("utf-8").to_owned();
        let releases: [(&str, &str, &[&str]); 3] = [
            (MAIN, "main", &[]),
            (TAGGED, "main", &["--trigger", "tag", "--tag", "auth-service/v1.2.3"]),
            (FEATURE, "feature/login", &["--manual"]),
        ];
        for (commit, branch, extra) in releases {
            let mut args = push_args(&dir, commit);
            args[12] = branch;
            args.extend(extra);
            // Built by CI on that branch at that commit: the branch is verified.
            let output = sandbox
                .command(&args)
                .env("FORGE_REGISTRY", &root)
                .envs(github_push(branch, commit))
                .output()
                .expect("run");
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        }
        let gitops = sandbox.path().join("gitops");
        std::fs::create_dir_all(&gitops).expect("mkdir");
        git(&gitops, &["init", "--quiet", "--initial-branch", "main"]);
        std::fs::copy(
            crate::harness::testdata().join("../plugin/policy.example.yaml"),
            gitops.join("policy.yaml"),
        )
        .expect("policy");
        git(&gitops, &["add", "policy.yaml"]);
        git(&gitops, &["commit", "--quiet", "--message", "Add the environment policy"]);
        World { sandbox, root, gitops }
    }

    pub(crate) fn location(&self) -> String {
        format!("{}/company/monorepo/auth-service", self.root)
    }

    /// `forge-pack <args> --gitops <checkout>` as `actor`.
    pub(crate) fn run_in(&self, gitops: &Path, actor: &str, args: &[&str]) -> Output {
        self.sandbox
            .command(args)
            .env("FORGE_REGISTRY", &self.root)
            .env("FORGE_GITOPS", gitops)
            .env("FORGE_ACTOR", actor)
            .output()
            .expect("run forge-pack")
    }

    pub(crate) fn run(&self, actor: &str, args: &[&str]) -> Output {
        self.run_in(&self.gitops, actor, args)
    }

    /// Runs and expects success; returns stdout.
    pub(crate) fn ok(&self, actor: &str, args: &[&str]) -> String {
        let output = self.run(actor, args);
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("utf-8")
    }

    /// Runs and expects exit `code` with nothing on stdout; returns stderr, registry hidden.
    pub(crate) fn fails(&self, code: i32, args: &[&str]) -> String {
        let output = self.run("alice", args);
        let stderr = String::from_utf8_lossy(&output.stderr).replace(&self.root, "[REGISTRY]");
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "a failed command printed to stdout");
        self.sandbox.hide_paths(&stderr)
    }

    fn pointer(&self, env: &str) -> ReleasePointer {
        let path = self.gitops.join(format!("envs/{env}/auth-service/release.yaml"));
        parse_pointer(&std::fs::read_to_string(path).expect("pointer")).expect("valid pointer")
    }

    fn commits(&self) -> usize {
        git_stdout(&self.gitops, &["rev-list", "--count", "HEAD"]).trim().parse().expect("count")
    }

    /// An SSH key for `who`, listed (and committed) in the GitOps repository's
    /// allowed_signers, made the first time it is asked for.
    pub(crate) fn signer(&self, who: &str) -> PathBuf {
        let key = self.sandbox.path().join(format!("key-{who}"));
        if !key.exists() {
            ssh_key(&key, who);
            let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
            let signers = self.gitops.join("allowed_signers");
            let listed = std::fs::read_to_string(&signers).unwrap_or_default();
            std::fs::write(&signers, format!("{listed}{who} {public}")).expect("allowed_signers");
            git(&self.gitops, &["add", "allowed_signers"]);
            git(&self.gitops, &["commit", "--quiet", "--message", &format!("Allow {who} to sign")]);
        }
        key
    }

    /// `forge-pack approve` as `who`, with their key.
    pub(crate) fn approve(&self, who: &str, args: &[&str]) -> Output {
        let key = self.signer(who);
        let mut all = vec!["approve"];
        all.extend(args);
        all.extend(["--approver", who, "--key", key.to_str().expect("utf-8")]);
        self.run(who, &all)
    }

    /// The manifest digest of release `id`.
    pub(crate) fn digest_of(&self, id: &str) -> String {
        let out = self
            .ok("alice", &["inspect", &format!("{}:{id}", self.location()), "--output", "json"]);
        let report: serde_json::Value = serde_json::from_str(&out).expect("json");
        report["digest"].as_str().expect("digest").to_owned()
    }

    pub(crate) fn last_message(&self) -> String {
        git_stdout(&self.gitops, &["log", "-1", "--format=%B"]).replace(&self.root, "[REGISTRY]")
    }
}

/// A passphrase-less ed25519 key pair at `path` (and `path.pub`).
pub(crate) fn ssh_key(path: &Path, comment: &str) {
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen is required for these tests (Debian: openssh-client)");
    assert!(status.success());
}

fn git_stdout(dir: &Path, args: &[&str]) -> String {
    let output =
        std::process::Command::new("git").args(args).current_dir(dir).output().expect("git");
    assert!(output.status.success(), "git {args:?}");
    String::from_utf8(output.stdout).expect("utf-8")
}

#[test]
fn deploy_promote_and_roll_back_under_the_example_policy() {
    let world = World::new("deploy");
    let location = world.location();

    // First deploy names the project's location; later ones use its name.
    let out = world.ok("alice", &["deploy", "staging", &location, "1"]);
    assert!(out.starts_with("Deployed auth-service release 1 (main-1) to staging\n"), "{out}");
    let pointer = world.pointer("staging");
    assert_eq!((pointer.spec.commit.as_str(), pointer.spec.release), (MAIN, Some(1)));
    assert_eq!(pointer.spec.image, location);
    assert_eq!(pointer.aliases(), ["1", "main-1"]);
    insta::assert_snapshot!(world.last_message(), @r"
    Deploy auth-service release 1 (main-1) to staging

    Previous release: none
    Deployed by: alice

    Project: auth-service
    Environment: staging
    Release id: company/monorepo/auth-service/1111111111111111111111111111111111111111
    Commit: 1111111111111111111111111111111111111111
    Digest: sha256:8de07516de2d7d8ba1a4bb00832d871f99573f0bcdd89b850d62ddc939cae627
    Image: [REGISTRY]/company/monorepo/auth-service
    Trigger: branch_push (main)
    ");

    // Deploying what is already there changes nothing and says so.
    let before = world.commits();
    let out = world.ok("alice", &["deploy", "staging", "auth-service", "main-1"]);
    assert!(
        out.starts_with("auth-service in staging already runs release 1 (main-1); nothing to do"),
        "{out}"
    );
    assert_eq!(world.commits(), before);

    // Production: approval and staging first. Alice proves who she is with her key.
    let unsigned = world.fails(7, &["deploy", "production", "auth-service", "v1.2.3"]);
    assert!(
        unsigned.contains("requires_approval: the deployer must sign the deploy with their key"),
        "{unsigned}"
    );
    assert!(unsigned.contains("hint: pass --key <your SSH private key>"), "{unsigned}");
    let alice = world.signer("alice");
    let alice = alice.to_str().expect("utf-8");
    insta::assert_snapshot!(world.fails(7, &["deploy", "production", "auth-service", "v1.2.3", "--key", alice]), @r#"
    error: the production policy denies deploying auth-service release 2 (v1.2.3, main-2) (envs/production/auth-service/release.yaml):
      requires_approval: needs 1 signed approval of release 2, other than the deployer's; found none
      requires: release 2 has never been deployed to `staging`
      hint: an approver (not the deployer) signs an approval of this release: forge-pack approve production auth-service 2 --justification "..." --key <ssh key>
      hint: deploy it to staging first: forge-pack deploy staging auth-service 2
    "#);
    world.ok("alice", &["deploy", "staging", "auth-service", "2"]);

    // Rollback to the previous release, as a forward commit.
    let out = world.ok("carol", &["rollback", "staging", "auth-service"]);
    assert!(
        out.starts_with("Rolled back auth-service in staging to release 1 (main-1)\n"),
        "{out}"
    );
    assert_eq!(world.pointer("staging").spec.commit, MAIN);
    let message = world.last_message();
    assert!(
        message.starts_with(
            "Rollback auth-service in staging to release 1 (main-1)\n\nPrevious release: 2 (v1.2.3, main-2)\nRolled back by: carol\n"
        ),
        "{message}"
    );

    // Staging no longer runs release 2, but it did: production may take it, with approval.
    let approved = world.approve(
        "bob",
        &["production", "auth-service", "2", "--justification", "CHG-42: reviewed in staging"],
    );
    assert!(approved.status.success(), "{}", String::from_utf8_lossy(&approved.stderr));
    let out = world.ok(
        "alice",
        &["deploy", "production", "auth-service", "2", "--output", "json", "--key", alice],
    );
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(report["changed"], true);
    assert_eq!(report["release"]["number"], 2);
    assert_eq!(report["release"]["aliases"], serde_json::json!(["2", "v1.2.3", "main-2"]));
    assert_eq!(report["previous"], serde_json::Value::Null);
    assert!(
        world
            .last_message()
            .contains("\nDeployed by: alice\nApproved by: bob (CHG-42: reviewed in staging)\n")
    );

    // Triggers and branches.
    let denied = world.fails(7, &["deploy", "production", "auth-service", "1"]);
    assert!(
        denied.contains(
            "\n  allowed_triggers: allows [tag, manual]; release 1 was released by [branch_push]\n"
        ),
        "{denied}"
    );
    assert!(!denied.contains("\n  requires: "), "release 1 runs in staging now: {denied}");
    let denied = world.fails(7, &["deploy", "staging", "auth-service", "3"]);
    assert!(denied.contains("\n  allowed_branches: allows [main, release/*]; release 3 was built from branch `feature/login`\n"), "{denied}");
    world.ok("dave", &["deploy", "dev", "auth-service", "3"]);
    let denied = world.fails(7, &["deploy", "qa", "auth-service", "1"]);
    assert!(
        denied
            .contains("environment `qa` is not in the policy (it lists dev, production, staging)"),
        "{denied}"
    );

    // Rollback to a named release; production has nothing earlier to go back to.
    world.ok("carol", &["rollback", "staging", "auth-service", "v1.2.3"]);
    assert_eq!(world.pointer("staging").spec.commit, TAGGED);
    let none = world.fails(3, &["rollback", "production", "auth-service"]);
    assert!(
        none.contains(
            "production has run no other release of auth-service than 2 (v1.2.3, main-2)"
        ),
        "{none}"
    );

    // Status, from the checkout alone.
    let out = world.ok("alice", &["status", "--output", "json"]);
    let status: serde_json::Value = serde_json::from_str(&out).expect("json");
    let rows: Vec<(String, String, String)> = status
        .as_array()
        .expect("array")
        .iter()
        .map(|d| {
            (
                d["environment"].as_str().expect("env").to_owned(),
                d["release"].to_string(),
                d["deployedBy"].as_str().expect("by").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("dev".into(), "3".into(), "dave".into()),
            ("production".into(), "2".into(), "alice".into()),
            ("staging".into(), "2".into(), "carol".into()),
        ]
    );
    let text = world.ok("alice", &["status", "staging"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[1].starts_with("staging      auth-service  2        v1.2.3, main-2  222222222222  "),
        "{text}"
    );
    assert!(lines[1].ends_with("  carol"), "{text}");
    let missing = world.fails(3, &["status", "qa", "auth-service"]);
    assert!(missing.contains("auth-service is not deployed to qa"), "{missing}");
}

/// Issue 15: a push the remote rejects (someone pushed first) catches up (fetch, rebase),
/// checks the policy again against the new history, and pushes again; a policy the remote
/// changed meanwhile is obeyed, and then nothing of the deploy stays behind.
#[test]
fn a_push_that_loses_the_race_catches_up_and_checks_the_policy_again() {
    let world = World::new("race");
    let remote = world.sandbox.path().join("gitops.git");
    git(world.sandbox.path(), &["clone", "--quiet", "--bare", "gitops", "gitops.git"]);
    let clone = |name: &str| {
        let dir = world.sandbox.path().join(name);
        git(world.sandbox.path(), &["clone", "--quiet", remote.to_str().expect("utf-8"), name]);
        dir
    };
    let (first, second, third) = (clone("first"), clone("second"), clone("third"));
    let location = world.location();

    let output = world.run_in(&first, "alice", &["deploy", "dev", &location, "1", "--push"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("pushed to   origin/main"));

    let output = world.run_in(&second, "bob", &["deploy", "staging", &location, "1", "--push"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("origin/main moved on: catching up"), "{stderr}");
    let remote_log = git_stdout(&remote, &["log", "--format=%s", "main"]);
    let subjects: Vec<&str> = remote_log.lines().take(2).collect();
    assert_eq!(
        subjects,
        [
            "Deploy auth-service release 1 (main-1) to staging",
            "Deploy auth-service release 1 (main-1) to dev"
        ]
    );

    // The remote now lets only release branches into staging; the third checkout does not
    // know yet.
    git(&first, &["pull", "--quiet", "--rebase"]);
    std::fs::write(
        first.join("policy.yaml"),
        std::fs::read_to_string(first.join("policy.yaml")).expect("policy").replace(
            r#"allowed_branches: [main, "release/*"]"#,
            r#"allowed_branches: ["release/*"]"#,
        ),
    )
    .expect("write policy");
    git(
        &first,
        &["commit", "--quiet", "--all", "--message", "Staging takes release branches only"],
    );
    git(&first, &["push", "--quiet"]);
    let head_before = git_stdout(&third, &["rev-parse", "HEAD"]);
    let output = world.run_in(&third, "carol", &["deploy", "staging", &location, "2", "--push"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("catching up"), "{stderr}");
    // Nothing of the refused deploy stays: no local commit, no pointer, a clean tree.
    let head_after = git_stdout(&third, &["rev-parse", "HEAD"]);
    let upstream = git_stdout(&remote, &["rev-parse", "main"]);
    assert_ne!(head_after, head_before);
    assert_eq!(head_after, upstream, "the checkout caught up and kept nothing of its own");
    let staging = std::fs::read_to_string(third.join("envs/staging/auth-service/release.yaml"))
        .expect("staging pointer, as pushed by bob");
    assert!(staging.contains("release: 1"), "{staging}");
    assert_eq!(git_stdout(&third, &["status", "--porcelain"]), "");

    // Someone's uncommitted work in the checkout is not moved to catch up: exit 8, and the
    // checkout is as it was.
    let note = second.join("policy.yaml");
    let edited = format!("{}# a note in progress\n", std::fs::read_to_string(&note).expect("read"));
    std::fs::write(&note, &edited).expect("edit");
    let head = git_stdout(&second, &["rev-parse", "HEAD"]);
    let output = world.run_in(&second, "bob", &["deploy", "dev", &location, "2", "--push"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(8), "{stderr}");
    assert!(stderr.contains("uncommitted changes"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&note).expect("read"), edited);
    assert_eq!(git_stdout(&second, &["rev-parse", "HEAD"]), head);
}

/// A release whose repository names a way out (`..`) cannot place a pointer (or approval)
/// outside its environment.
#[test]
fn a_release_whose_repository_climbs_out_is_refused() {
    use forge_release::aliases::TagStrategy;
    use forge_store::{LayoutStore, Store};
    let sandbox = Sandbox::new();
    let layout = sandbox.path().join("layout");
    let mut input = forge_testkit::fixtures::input();
    input.repository = "../../production".into();
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime
        .block_on(forge_store::publish::publish(
            &Store::Layout(LayoutStore::new(&layout)),
            input,
            TagStrategy::Monorepo,
        ))
        .expect("a release made by another tool");
    let gitops = sandbox.path().join("gitops");
    std::fs::create_dir_all(&gitops).expect("mkdir");
    git(&gitops, &["init", "--quiet", "--initial-branch", "main"]);
    std::fs::write(
        gitops.join("policy.yaml"),
        "pointers: by-repository\nenvironments:\n  dev: {}\n",
    )
    .expect("policy");
    git(&gitops, &["add", "."]);
    git(&gitops, &["commit", "--quiet", "--message", "policy"]);
    let output = sandbox
        .command(&["deploy", "dev", &format!("oci:{}", layout.display()), "1", "--actor", "eve"])
        .env("FORGE_GITOPS", &gitops)
        .output()
        .expect("deploy");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("repository name `..`"), "{stderr}");
    assert!(!gitops.join("production").exists() && !gitops.join("envs/production").exists());
}

#[test]
fn bad_inputs_are_refused_before_anything_changes() {
    let world = World::new("refuse");
    let location = world.location();
    let before = world.commits();

    let unknown = world.fails(3, &["deploy", "staging", &location, "99"]);
    assert!(unknown.contains("99"), "{unknown}");
    let never = world.fails(3, &["deploy", "staging", "auth-service", "1"]);
    assert!(never.contains("auth-service is not deployed anywhere"), "{never}");
    assert!(never.contains("hint: name its location the first time"), "{never}");
    let traversal = world.fails(2, &["deploy", "../prod", &location, "1"]);
    assert!(
        traversal.contains("environment name `../prod` cannot be a directory name"),
        "{traversal}"
    );

    // A hand-edited pointer is not overwritten.
    world.ok("alice", &["deploy", "dev", &location, "1"]);
    let pointer = world.gitops.join("envs/dev/auth-service/release.yaml");
    let edited =
        std::fs::read_to_string(&pointer).expect("read").replace("release: 1", "release: 7");
    std::fs::write(&pointer, &edited).expect("edit");
    let dirty = world.fails(2, &["deploy", "dev", "auth-service", "2"]);
    assert!(
        dirty.contains("envs/dev/auth-service/release.yaml has uncommitted changes"),
        "{dirty}"
    );
    assert_eq!(std::fs::read_to_string(&pointer).expect("read"), edited);
    git(&world.gitops, &["checkout", "--", "envs"]);

    // The policy is required, committed and checked.
    std::fs::write(
        world.gitops.join("policy.yaml"),
        "environments:\n  dev: {allowed_branch: [main]}\n",
    )
    .expect("write");
    git(&world.gitops, &["commit", "--quiet", "--all", "--message", "A malformed policy"]);
    let malformed = world.fails(2, &["deploy", "dev", "auth-service", "2"]);
    assert!(
        malformed.contains("invalid policy") && malformed.contains("allowed_branch"),
        "{malformed}"
    );
    git(&world.gitops, &["rm", "--quiet", "policy.yaml"]);
    git(&world.gitops, &["commit", "--quiet", "--message", "No policy"]);
    let missing = world.fails(2, &["deploy", "dev", "auth-service", "2"]);
    assert!(missing.contains("no environment policy at [SANDBOX]/gitops/policy.yaml"), "{missing}");
    std::fs::write(world.gitops.join("policy.yaml"), "environments:\n  dev: {}\n").expect("write");
    let uncommitted = world.fails(2, &["deploy", "dev", "auth-service", "2"]);
    assert!(
        uncommitted.contains("policy.yaml is not committed: deploys follow the policy HEAD has"),
        "{uncommitted}"
    );
    assert_eq!(world.commits(), before + 3);

    let outside = world.sandbox.path().join("not-a-checkout");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let output = world.run_in(&outside, "alice", &["status"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a git checkout"));
}

/// Issue 15: eight deploys at once into one checkout (as parallel CI jobs sharing a runner's
/// clone) all land, one commit each, and git's own lock held by someone else is waited for.
#[test]
fn concurrent_deploys_into_one_checkout_all_land_as_one_commit_each() {
    let world = World::new("writers");
    let environments: Vec<String> = (0..8).map(|i| format!("env-{i}")).collect();
    let policy: String = environments.iter().map(|e| format!("  {e}: {{}}\n")).collect();
    std::fs::write(world.gitops.join("policy.yaml"), format!("environments:\n{policy}"))
        .expect("policy");
    git(&world.gitops, &["commit", "--quiet", "--all", "--message", "Eight environments"]);
    let before = world.commits();
    // A git command of someone else's holds git's index lock for a moment.
    let index_lock = world.gitops.join(".git/index.lock");
    std::fs::write(&index_lock, "").expect("index.lock");
    let location = world.location();
    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let deploys: Vec<_> = environments
            .iter()
            .map(|env| {
                let location = &location;
                let world = &world;
                scope.spawn(move || world.run("alice", &["deploy", env, location, "1"]))
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        assert_eq!(world.commits(), before, "no deploy committed while git's lock was held");
        std::fs::remove_file(&index_lock).expect("release git's lock");
        deploys.into_iter().map(|d| d.join().expect("thread")).collect()
    });
    for output in &outputs {
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    assert_eq!(world.commits(), before + 8);
    for env in &environments {
        assert_eq!(world.pointer(env).spec.release, Some(1), "{env}");
    }
    assert_eq!(git_stdout(&world.gitops, &["status", "--porcelain"]), "");
}

/// Issue 15: two repositories' projects of one name do not silently take each other's
/// pointer: the deploy is refused naming both (unless `--replace`), and the by-repository
/// layout gives each its own.
#[test]
fn two_repositories_projects_of_one_name_keep_apart() {
    let world = World::new("two-repos");
    let sandbox = &world.sandbox;
    // The same project name in another repository.
    let other = sandbox.project("auth-service");
    let config = std::fs::read_to_string(other.join("forge.yaml")).expect("forge.yaml");
    std::fs::write(other.join("forge.yaml"), config.replace("company/monorepo", "teamb/mono"))
        .expect("forge.yaml");
    let output = sandbox
        .command(&push_args(other.to_str().expect("utf-8"), MAIN))
        .env("FORGE_REGISTRY", &world.root)
        .output()
        .expect("push");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let theirs = format!("{}/teamb/mono/auth-service", world.root);

    world.ok("alice", &["deploy", "dev", &world.location(), "1"]);
    let refused = world.fails(2, &["deploy", "dev", &theirs, "1"]);
    assert!(
        refused.contains("envs/dev/auth-service/release.yaml deploys [REGISTRY]/company/monorepo/auth-service, of another repository than teamb/mono/auth-service"),
        "{refused}"
    );
    assert!(refused.contains("--replace"), "{refused}");
    world.ok("alice", &["deploy", "dev", &theirs, "1", "--replace"]);
    assert!(world.pointer("dev").spec.image.ends_with("teamb/mono/auth-service"));

    // Laid out by repository, each project has its own pointer.
    let policy = std::fs::read_to_string(world.gitops.join("policy.yaml")).expect("policy");
    std::fs::write(world.gitops.join("policy.yaml"), format!("pointers: by-repository\n{policy}"))
        .expect("policy");
    git(&world.gitops, &["commit", "--quiet", "--all", "--message", "Pointers by repository"]);
    world.ok("alice", &["deploy", "dev", &world.location(), "1"]);
    world.ok("alice", &["deploy", "dev", &theirs, "1"]);
    for path in ["company/monorepo/auth-service", "teamb/mono/auth-service"] {
        let pointer = world.gitops.join(format!("envs/dev/{path}/release.yaml"));
        let text = std::fs::read_to_string(&pointer).expect("pointer");
        assert!(text.contains(path), "{text}");
    }
    let status = world.ok("alice", &["status", "dev", "--output", "json"]);
    let projects: Vec<String> = serde_json::from_str::<serde_json::Value>(&status)
        .expect("json")
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|d| d["project"].as_str().map(str::to_owned))
        .collect();
    assert!(projects.contains(&"company/monorepo/auth-service".to_owned()), "{projects:?}");
    assert!(projects.contains(&"teamb/mono/auth-service".to_owned()), "{projects:?}");
    // A bare name two repositories share is ambiguous; the full name is not.
    let ambiguous = world.fails(2, &["rollback", "dev", "auth-service", "1"]);
    assert!(ambiguous.contains("more than one"), "{ambiguous}");
    let stdout = world.ok("alice", &["rollback", "dev", "teamb/mono/auth-service", "1"]);
    assert!(stdout.contains("already runs release 1"), "{stdout}");
}

/// Issue 16: approvals are signed records, verified against the allowed-signers file in the
/// GitOps repository. A self-approval, an approval of another release or environment, an
/// approver the policy does not list, and a forged signature each count for nothing, and the
/// denial says which and why; two real approvals of exactly this release let it through.
#[test]
fn approvals_are_signed_and_only_real_ones_by_others_count() {
    let world = World::new("approvals");
    let location = world.location();
    let policy = "environments:\n  staging: {}\n  production:\n    allowed_triggers: [tag, manual]\n    approvers: [alice, bob, carol]\n    approvals: 2\n";
    std::fs::write(world.gitops.join("policy.yaml"), policy).expect("policy");
    git(
        &world.gitops,
        &["commit", "--quiet", "--all", "--message", "Two approvers for production"],
    );
    let approve = |who: &str, env: &str, id: &str| {
        let output = world
            .approve(who, &[env, &location, id, "--justification", &format!("{who} checked it")]);
        assert!(output.status.success(), "{who}: {}", String::from_utf8_lossy(&output.stderr));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
        report
    };
    // Alice deploys; her own approval does not count.
    approve("alice", "production", "v1.2.3");
    // Bob approves release 1, not 2, and release 2 but for staging.
    approve("bob", "production", "1");
    approve("bob", "staging", "v1.2.3");
    // Mallory can sign (her key is listed) but may not approve production.
    world.signer("mallory");
    let refused =
        world.approve("mallory", &["production", &location, "2", "--justification", "trust me"]);
    assert_eq!(refused.status.code(), Some(7));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("mallory may not approve for production")
    );
    // Carol's record, signed with Mallory's key.
    let digest = world.digest_of("2");
    let dir = format!(
        "approvals/production/company/monorepo/auth-service/{}",
        digest.trim_start_matches("sha256:")
    );
    std::fs::create_dir_all(world.gitops.join(&dir)).expect("mkdir");
    let forged = format!(
        "apiVersion: forge.dev/v1alpha1\nkind: Approval\nenvironment: production\nrepository: company/monorepo\nproject: auth-service\nrelease: 2\ndigest: {digest}\ncommit: {TAGGED}\napprover: carol\njustification: forged\napprovedAt: 2026-01-01T00:00:00Z\n"
    );
    let record = world.gitops.join(&dir).join("carol.yaml");
    std::fs::write(&record, forged).expect("record");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "forge-pack-approval", "-f"])
        .arg(world.sandbox.path().join("key-mallory"))
        .arg(&record)
        .status()
        .expect("ssh-keygen");
    assert!(status.success());
    // And Bob's approval of release 1, copied into release 2's directory.
    let bobs_release_1 = world.gitops.join(format!(
        "approvals/production/company/monorepo/auth-service/{}/bob.yaml",
        world.digest_of("1").trim_start_matches("sha256:")
    ));
    std::fs::copy(&bobs_release_1, world.gitops.join(&dir).join("bob.yaml")).expect("copy");
    std::fs::copy(
        bobs_release_1.with_extension("yaml.sig"),
        world.gitops.join(&dir).join("bob.yaml.sig"),
    )
    .expect("copy");
    git(&world.gitops, &["add", "approvals"]);
    git(&world.gitops, &["commit", "--quiet", "--message", "Approvals, some bad"]);

    let alice = world.signer("alice");
    let alice = alice.to_str().expect("utf-8");
    let denied = world.fails(
        7,
        &["deploy", "production", &location, "v1.2.3", "--actor", "alice", "--key", alice],
    );
    assert!(denied.contains("needs 2 signed approvals of release 2 by [alice, bob, carol], other than the deployer's"), "{denied}");
    assert!(denied.contains("alice: a self-approval (they deploy it)"), "{denied}");
    assert!(denied.contains("bob: it approves another release"), "{denied}");
    assert!(denied.contains("carol: its signature does not verify"), "{denied}");

    // Real approvals by Bob and Carol of exactly this release for production.
    git(&world.gitops, &["rm", "--quiet", "-r", &dir]);
    git(&world.gitops, &["commit", "--quiet", "--message", "Remove the bad approvals"]);
    approve("alice", "production", "v1.2.3");
    approve("bob", "production", "v1.2.3");
    approve("carol", "production", "v1.2.3");
    let out = world.ok("alice", &["deploy", "production", &location, "v1.2.3", "--key", alice]);
    assert!(out.starts_with("Deployed auth-service release 2"), "{out}");
    let message = world.last_message();
    assert!(
        message
            .contains("Approved by: bob (bob checked it)\nApproved by: carol (carol checked it)\n"),
        "{message}"
    );
    assert!(!message.contains("Approved by: alice"), "{message}");
    let status = world.ok("alice", &["status", "production", "--output", "json"]);
    assert!(
        status.contains("bob (bob checked it)") && status.contains("carol (carol checked it)"),
        "{status}"
    );
}

/// Issue 16: the seed's policy form (`promotion_policy:`, `auto_deploy`), and one command CI
/// can run after push: `deploy --auto` deploys the release to every auto_deploy environment
/// that admits it, leaves the others, and says which.
#[test]
fn deploy_auto_goes_where_the_seeds_policy_says_and_nowhere_else() {
    let world = World::new("auto");
    let policy = "environments:\n  dev:\n    auto_deploy: true\n    promotion_policy:\n      allowed_branches: [\"*\"]\n  staging:\n    auto_deploy: true\n    promotion_policy:\n      allowed_branches: [main]\n  production:\n    auto_deploy: false\n    promotion_policy:\n      requires_approval: true\n  qa:\n    auto_deploy: true\n    promotion_policy:\n      requires: [dev]\n";
    std::fs::write(world.gitops.join("policy.yaml"), policy).expect("policy");
    git(&world.gitops, &["commit", "--quiet", "--all", "--message", "The seed's policy"]);
    let location = world.location();
    let out = world.ok("alice", &["deploy", "--auto", &location, "3", "--output", "json"]);
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(report["deployed"], serde_json::json!(["dev"]), "{report}");
    // qa requires dev: a pointer moved a moment ago in this run has not run there yet.
    assert_eq!(report["denied"][0]["environment"], "qa", "{report}");
    assert!(
        report["denied"][0]["reasons"][0]
            .as_str()
            .expect("reason")
            .starts_with("requires: dev got this release in this same run"),
        "{report}"
    );
    assert_eq!(report["denied"][1]["environment"], "staging", "{report}");
    assert!(
        report["denied"][1]["reasons"][0].as_str().expect("reason").starts_with("allowed_branches")
    );

    let out = world.ok("alice", &["deploy", "--auto", "auth-service", "1"]);
    assert!(out.contains("dev: Deployed auth-service release 1 (main-1) to dev"), "{out}");
    assert!(out.contains("staging: Deployed auth-service release 1 (main-1) to staging"), "{out}");
    assert!(!out.contains("production"), "{out}");
    assert!(!world.gitops.join("envs/production").exists());
    let again = world.ok("alice", &["deploy", "--auto", "auth-service", "1"]);
    assert!(again.contains("qa: Deployed auth-service release 1 (main-1) to qa"), "{again}");
    let usage = world.fails(2, &["deploy", "--auto", "dev", "auth-service", "1"]);
    assert!(usage.contains("deploy --auto takes <PROJECT> <RELEASE>"), "{usage}");
}

/// Sends `method path` to the registry at `addr` (plain HTTP); returns the status line.
fn registry_request(addr: &str, method: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response.lines().next().unwrap_or_default().to_owned()
}

/// A release whose layer the registry has lost cannot be deployed: reading its metadata would
/// not notice, but forge-cmp would fail on it in every environment it reached.
#[test]
fn a_release_missing_a_blob_is_refused_for_deploy() {
    let world = World::new("missing-blob");
    let location = world.location();
    let raw = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{location}:1")])
        .output()
        .expect("skopeo (make test installs it)");
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).expect("manifest");
    let layer = manifest["layers"][0]["digest"].as_str().expect("layer digest").to_owned();
    let (addr, repository) = location.split_once('/').expect("host/repository");
    let deleted = registry_request(addr, "DELETE", &format!("/v2/{repository}/blobs/{layer}"));
    assert!(deleted.contains(" 202"), "{deleted}");
    let refused = world.fails(3, &["deploy", "dev", &location, "1"]);
    assert!(refused.contains(&format!("is missing its resources layer ({layer})")), "{refused}");
    assert!(refused.contains("forge-pack copy"), "{refused}");
    assert_eq!(world.commits(), 1, "nothing was deployed");
}
