//! Issue 15: one number, one release, as CI systems really behave. Concurrent pushes whose
//! writes a proxy holds back (as a loaded registry lands them late), and pushes killed at any
//! moment and run again, against the real registry. Bounded: a few rounds each.

use std::collections::BTreeMap;
use std::process::{Child, Output};
use std::time::Duration;

use forge_release::aliases::{Claim, is_commit_sha, release_number};
use forge_release::manifest::{Manifest, annotations};
use forge_release::reference::{ProjectLocation, StoreRoot};
use forge_store::Store;
use forge_store::registry::RegistryOptions;
use forge_testkit::{Fault, FaultProxy, Registry, RegistryKind};

use crate::harness::{Sandbox, push_args};

const PATH: &str = "company/monorepo/auth-service";

/// A real registry behind a proxy that holds every manifest put back up to `delay_ms`; the
/// root to push to through it, and the store as the registry itself holds it.
fn slow_registry(test: &str, delay_ms: u64) -> (FaultProxy, String, Store) {
    let registry = Registry::shared(RegistryKind::Plain);
    let prefix = registry.unique_repository(test);
    let proxy = FaultProxy::start(&registry.addr);
    if delay_ms > 0 {
        proxy.inject("PUT", "/manifests/", Fault::RandomDelay(delay_ms), usize::MAX);
    }
    let location = ProjectLocation::InRoot {
        root: StoreRoot::Registry(format!("{}/{prefix}", registry.addr)),
        path: PATH.into(),
    };
    let store = Store::open(&location, &RegistryOptions::default()).expect("store");
    (proxy.clone(), format!("{}/{prefix}", proxy.addr), store)
}

fn push(sandbox: &Sandbox, project: &str, root: &str, commit: &str) -> std::process::Command {
    let mut args = push_args(project, commit);
    args.extend(["--output", "json", "--timeout", "2m"]);
    let mut command = sandbox.command(&args);
    command.env("FORGE_REGISTRY", root);
    command
}

fn number_of(output: &Output) -> u64 {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    report["number"].as_u64().unwrap_or_else(|| panic!("no number in {report}"))
}

/// The store's invariants, checked tag by tag on what the registry itself holds: every
/// number names a manifest carrying that number; every tag but the claims names a release
/// its number and commit tags both name; no commit has two releases. Returns commit → number.
fn whole_releases(store: &Store) -> BTreeMap<String, u64> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let tags = rt.block_on(store.list_tags()).expect("tags");
    let mut numbers: BTreeMap<String, u64> = BTreeMap::new();
    for tag in tags.iter().filter(|t| !Claim::is_claim(t)) {
        let (bytes, digest) =
            rt.block_on(store.fetch_manifest_by_tag(tag)).expect("fetch").expect("tag exists");
        let manifest = Manifest::parse_release(&bytes, Some(&digest)).expect("a release");
        let number: u64 = manifest
            .annotation(annotations::FORGE_NUMBER)
            .and_then(release_number)
            .expect("numbered");
        let commit = manifest.annotation(annotations::REVISION).expect("commit").to_owned();
        if let Some(n) = release_number(tag) {
            assert_eq!(n, number, "tag {tag} names a release numbered {number}");
        }
        for (what, name) in [("number", number.to_string()), ("commit", commit.clone())] {
            let holder = rt.block_on(store.resolve_tag(&name)).expect("resolve");
            assert_eq!(holder.as_ref(), Some(&digest), "tag {tag}: its {what} tag {name}");
        }
        if let Some(other) = numbers.insert(commit.clone(), number) {
            assert_eq!(other, number, "commit {commit} has releases {other} and {number}");
        }
        if is_commit_sha(tag) {
            assert_eq!(tag, &commit);
        }
    }
    let mut taken: Vec<u64> = numbers.values().copied().collect();
    taken.sort_unstable();
    taken.dedup();
    assert_eq!(taken.len(), numbers.len(), "one number, one release: {numbers:?}");
    numbers
}

#[test]
fn concurrent_pushes_whose_writes_land_late_never_share_a_number() {
    let (_proxy, root, store) = slow_registry("late-writes", 1200);
    let sandbox = Sandbox::new();
    let project = sandbox.project("auth-service");
    let dir = project.to_str().expect("utf-8");
    let mut reported = BTreeMap::new();
    for round in 0..3u8 {
        let commits: Vec<String> =
            (0..4u8).map(|i| format!("{:x}", 4 * round + i).repeat(40)).collect();
        let children: Vec<(String, Child)> = commits
            .iter()
            .map(|commit| {
                let child = push(&sandbox, dir, &root, commit)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn");
                (commit.clone(), child)
            })
            .collect();
        for (commit, child) in children {
            let output = child.wait_with_output().expect("wait");
            reported.insert(commit, number_of(&output));
        }
        assert_eq!(whole_releases(&store), reported, "round {round}");
    }
    let mut numbers: Vec<u64> = reported.values().copied().collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=12).collect::<Vec<u64>>(), "no number skipped when none was lost");
}

#[test]
fn pushes_killed_at_any_moment_and_run_again_leave_one_release_per_commit() {
    let (_proxy, root, store) = slow_registry("killed", 300);
    let sandbox = Sandbox::new();
    let project = sandbox.project("auth-service");
    let dir = project.to_str().expect("utf-8");
    let mut reported = BTreeMap::new();
    // Kill points spread over a push's life (the proxy stretches it to a second or so).
    for (i, kill_after_ms) in [40u64, 120, 220, 350, 500, 700, 900, 1200].into_iter().enumerate() {
        let commit = format!("{:040x}", 0xabc000 + i);
        let mut child = push(&sandbox, dir, &root, &commit)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(kill_after_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let again = push(&sandbox, dir, &root, &commit).output().expect("run again");
        reported.insert(commit.clone(), number_of(&again));
        // And once more: a retry of a finished push changes nothing.
        let third = push(&sandbox, dir, &root, &commit).output().expect("run a third time");
        assert_eq!(number_of(&third), reported[&commit]);
    }
    assert_eq!(whole_releases(&store), reported);
    let listed = sandbox
        .command(&["list", &format!("{root}/{PATH}"), "--output", "json"])
        .output()
        .expect("list");
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    let states: Vec<&str> =
        listed.as_array().expect("array").iter().filter_map(|r| r["state"].as_str()).collect();
    assert_eq!(states, vec!["complete"; reported.len()], "{listed}");
}

/// A push that stops after its number tag (here the registry refuses the commit tag until it
/// gives up) leaves an incomplete release: `list` and `inspect` say so, `deploy` refuses it
/// (forge-cmp would), and pushing the commit again completes it under the same number.
#[test]
fn an_incomplete_release_is_shown_refused_for_deploy_and_completed_by_the_next_push() {
    let (proxy, root, store) = slow_registry("incomplete", 0);
    let sandbox = Sandbox::new();
    let project = sandbox.project("auth-service");
    let dir = project.to_str().expect("utf-8");
    let commit = "c".repeat(40);
    proxy.inject("PUT", &format!("/manifests/{commit}"), Fault::Status(500, None), usize::MAX);
    let stopped = push(&sandbox, dir, &root, &commit).output().expect("push");
    assert!(!stopped.status.success(), "the commit tag was never written");
    proxy.clear_faults();

    let reference = format!("{root}/{PATH}");
    let listed = sandbox.command(&["list", &reference]).output().expect("list");
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains("STATE") && text.contains("incomplete"), "{text}");
    let inspected =
        sandbox.command(&["inspect", &format!("{reference}:1")]).output().expect("inspect");
    assert!(String::from_utf8_lossy(&inspected.stdout).contains("incomplete"));

    let gitops = sandbox.path().join("gitops");
    std::fs::create_dir_all(&gitops).expect("mkdir");
    crate::harness::git(&gitops, &["init", "-q", "-b", "main"]);
    std::fs::write(gitops.join("policy.yaml"), "environments:\n  dev: {}\n").expect("policy");
    crate::harness::git(&gitops, &["add", "."]);
    crate::harness::git(&gitops, &["commit", "-q", "-m", "policy"]);
    let deploy = |id: &str| {
        sandbox
            .command(&["deploy", "dev", &reference, id, "--actor", "alice"])
            .env("FORGE_GITOPS", &gitops)
            .output()
            .expect("deploy")
    };
    let refused = deploy("1");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("is incomplete"), "{stderr}");
    assert!(stderr.contains(&format!("push commit {commit} again")), "{stderr}");

    let completed = push(&sandbox, dir, &root, &commit).output().expect("push again");
    assert_eq!(number_of(&completed), 1);
    assert!(String::from_utf8_lossy(&completed.stderr).contains("completed release 1"));
    assert_eq!(whole_releases(&store).get(&commit), Some(&1));
    assert!(deploy("1").status.success());
}

/// The branch pipeline and the tag pipeline of one commit, at once, through a registry that
/// lands writes late: one release, numbered once, with the tag's alias; both pushes succeed.
#[test]
fn one_commit_pushed_by_two_pipelines_at_once_is_one_release() {
    let (_proxy, root, store) = slow_registry("same-commit", 800);
    let sandbox = Sandbox::new();
    let project = sandbox.project("auth-service");
    let dir = project.to_str().expect("utf-8");
    let mut reported = BTreeMap::new();
    for round in 0..3u8 {
        let commit = format!("{:x}", 10 + round).repeat(40);
        let spawn = |extra: &[&str]| {
            let mut command = push(&sandbox, dir, &root, &commit);
            command.args(extra);
            command
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        };
        let tag = format!("auth-service/v1.{round}.0");
        let branch = spawn(&[]);
        let tagged = spawn(&["--tag", &tag]);
        let numbers: Vec<u64> = [branch, tagged]
            .into_iter()
            .map(|child| number_of(&child.wait_with_output().expect("wait")))
            .collect();
        assert_eq!(numbers[0], numbers[1], "round {round}: one release");
        reported.insert(commit.clone(), numbers[0]);
        assert_eq!(whole_releases(&store), reported, "round {round}");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        let alias = rt.block_on(store.resolve_tag(&format!("v1.{round}.0"))).expect("alias");
        let release = rt.block_on(store.resolve_tag(&commit)).expect("commit");
        assert_eq!(alias, release, "round {round}: the tag's alias names the release");
    }
}

/// A push of one commit with other content, while its first push is under way (and another
/// commit's push contends for the same number): the commit still has one release, no number
/// names two, and the second push of the commit is refused as a change to a released commit.
#[test]
fn a_push_of_one_commit_with_other_content_never_makes_it_two_releases() {
    let (proxy, root, store) = slow_registry("other-content", 0);
    let sandbox = Sandbox::new();
    let project = sandbox.project("auth-service");
    let dir = project.to_str().expect("utf-8").to_owned();
    let other = sandbox.path().join("auth-service-other");
    crate::harness::copy_tree(&project, &other, false);
    let config = other.join("templates/config.yaml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, text.replace("LOG_LEVEL: info", "LOG_LEVEL: debug")).expect("write");
    let other = other.to_str().expect("utf-8").to_owned();
    let (c, e) = ("c".repeat(40), "e".repeat(40));
    // Hold the first push's number write, and the other commit's claim, back.
    proxy.inject("PUT", "/manifests/1", Fault::Delay(3000), 1);
    proxy.inject("PUT", &format!("/manifests/_claim.1.{e}"), Fault::Delay(2000), 1);
    let spawn = |dir: &str, commit: &str| {
        push(&sandbox, dir, &root, commit)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let first = spawn(&dir, &c);
    let third = spawn(&dir, &e);
    std::thread::sleep(Duration::from_millis(800));
    let second = spawn(&other, &c);
    let first = first.wait_with_output().expect("wait");
    let second = second.wait_with_output().expect("wait");
    let third = third.wait_with_output().expect("wait");
    let (c_number, e_number) = (number_of(&first), number_of(&third));
    assert_ne!(c_number, e_number);
    let refused = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{refused}");
    assert!(refused.contains("with different resources"), "{refused}");
    let releases = whole_releases(&store);
    assert_eq!(releases, BTreeMap::from([(c, c_number), (e, e_number)]));
}
