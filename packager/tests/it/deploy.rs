//! `deploy`, `rollback` and `status` against a real GitOps git repository and a real registry:
//! every policy rule allowed and denied, staging first, approval, rollback, no-op deploys and
//! a push that loses a race.

use std::path::{Path, PathBuf};
use std::process::Output;

use forge_pack::gitops::parse_pointer;
use forge_release::pointer::ReleasePointer;
use forge_testkit::{Registry, RegistryKind};

use crate::harness::{Sandbox, git, push_args};

/// Commits of the three releases every test pushes.
const MAIN: &str = "1111111111111111111111111111111111111111";
const TAGGED: &str = "2222222222222222222222222222222222222222";
const FEATURE: &str = "3333333333333333333333333333333333333333";

/// A sandbox with three releases of auth-service in a registry and a GitOps checkout holding
/// the example policy.
struct World {
    sandbox: Sandbox,
    /// `<registry>/<unique prefix>`, the store root.
    root: String,
    gitops: PathBuf,
}

impl World {
    fn new(name: &str) -> Self {
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
            let output = sandbox.command(&args).env("FORGE_REGISTRY", &root).output().expect("run");
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

    fn location(&self) -> String {
        format!("{}/company/monorepo/auth-service", self.root)
    }

    /// `forge-pack <args> --gitops <checkout>` as `actor`.
    fn run_in(&self, gitops: &Path, actor: &str, args: &[&str]) -> Output {
        self.sandbox
            .command(args)
            .env("FORGE_REGISTRY", &self.root)
            .env("FORGE_GITOPS", gitops)
            .env("FORGE_ACTOR", actor)
            .output()
            .expect("run forge-pack")
    }

    fn run(&self, actor: &str, args: &[&str]) -> Output {
        self.run_in(&self.gitops, actor, args)
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, actor: &str, args: &[&str]) -> String {
        let output = self.run(actor, args);
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("utf-8")
    }

    /// Runs and expects exit `code` with nothing on stdout; returns stderr, registry hidden.
    fn fails(&self, code: i32, args: &[&str]) -> String {
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

    fn last_message(&self) -> String {
        git_stdout(&self.gitops, &["log", "-1", "--format=%B"]).replace(&self.root, "[REGISTRY]")
    }
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
    Digest: sha256:a099b24ee77b56ced5f2968d9de22f0100cf171b328b4a195384cce2023fb24d
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

    // Production: approval and staging first.
    insta::assert_snapshot!(world.fails(7, &["deploy", "production", "auth-service", "v1.2.3"]), @r"
    error: the production policy denies deploying auth-service release 2 (v1.2.3, main-2) (envs/production/auth-service/release.yaml):
      requires_approval: needs an approver and none was given
      requires: release 2 has never been deployed to `staging`
      hint: pass --approved-by <name> once the deploy is approved
      hint: deploy it to staging first: forge-pack deploy staging auth-service 2
    ");
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
    let out = world.ok(
        "alice",
        &["deploy", "production", "auth-service", "2", "--approved-by", "bob", "--output", "json"],
    );
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(report["changed"], true);
    assert_eq!(report["release"]["number"], 2);
    assert_eq!(report["release"]["aliases"], serde_json::json!(["2", "v1.2.3", "main-2"]));
    assert_eq!(report["previous"], serde_json::Value::Null);
    assert!(world.last_message().contains("\nDeployed by: alice\nApproved by: bob\n"));

    // Triggers and branches.
    let denied =
        world.fails(7, &["deploy", "production", "auth-service", "1", "--approved-by", "bob"]);
    assert!(denied.contains("\n  allowed_triggers: allows [tag, manual]; release 1 was made by a branch_push trigger\n"), "{denied}");
    assert!(!denied.contains("requires"), "release 1 runs in staging now: {denied}");
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

#[test]
fn a_push_that_loses_the_race_keeps_the_local_commit() {
    let world = World::new("race");
    let remote = world.sandbox.path().join("gitops.git");
    git(world.sandbox.path(), &["clone", "--quiet", "--bare", "gitops", "gitops.git"]);
    let clone = |name: &str| {
        let dir = world.sandbox.path().join(name);
        git(world.sandbox.path(), &["clone", "--quiet", remote.to_str().expect("utf-8"), name]);
        dir
    };
    let (first, second) = (clone("first"), clone("second"));
    let location = world.location();

    let output = world.run_in(&first, "alice", &["deploy", "dev", &location, "1", "--push"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("pushed to   origin/main"));

    let output = world.run_in(&second, "bob", &["deploy", "staging", &location, "1", "--push"]);
    assert_eq!(output.status.code(), Some(8));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("origin/main rejected the push: someone else pushed first"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: your commit is kept"), "{stderr}");
    let log = git_stdout(&second, &["log", "-1", "--format=%s"]);
    assert_eq!(log.trim(), "Deploy auth-service release 1 (main-1) to staging");
    assert!(second.join("envs/staging/auth-service/release.yaml").is_file());
    let remote_log = git_stdout(&remote, &["log", "-1", "--format=%s", "main"]);
    assert_eq!(remote_log.trim(), "Deploy auth-service release 1 (main-1) to dev");
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

    // The policy is required and checked.
    std::fs::write(
        world.gitops.join("policy.yaml"),
        "environments:\n  dev: {allowed_branch: [main]}\n",
    )
    .expect("write");
    let malformed = world.fails(2, &["deploy", "dev", "auth-service", "2"]);
    assert!(
        malformed.contains("invalid policy") && malformed.contains("allowed_branch"),
        "{malformed}"
    );
    std::fs::remove_file(world.gitops.join("policy.yaml")).expect("remove");
    let missing = world.fails(2, &["deploy", "dev", "auth-service", "2"]);
    assert!(missing.contains("no environment policy at [SANDBOX]/gitops/policy.yaml"), "{missing}");
    assert_eq!(world.commits(), before + 1);

    let outside = world.sandbox.path().join("not-a-checkout");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let output = world.run_in(&outside, "alice", &["status"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a git checkout"));
}
