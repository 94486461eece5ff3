//! Issue 20: `list` reads a project's release index (kept in its repository, updated by
//! push) instead of every release, and never trusts it blindly: the tags decide what lists.
//! A real registry behind a proxy that counts the requests.

use forge_release::Digest;
use forge_release::aliases::TagStrategy;
use forge_release::index::{EMPTY_CONFIG, Entry, INDEX_TAG, ReleaseIndex};
use forge_release::metadata::{Trigger, TriggerKind};
use forge_release::package::ReleaseInput;
use forge_release::reference::{ProjectLocation, StoreRoot};
use forge_store::publish::{Published, publish};
use forge_store::registry::RegistryOptions;
use forge_store::{Store, release_index};
use forge_testkit::{Fault, FaultProxy, Registry, RegistryKind, fixtures};
use serde_json::Value;

use crate::harness::Sandbox;

const PATH: &str = "company/monorepo/auth-service";
/// The fixture's commit time, as releases record it.
const CREATED: &str = "2024-05-01T12:00:00Z";

struct World {
    proxy: FaultProxy,
    /// The registry root through the proxy, for the CLI.
    root: String,
    /// The project as the registry itself holds it.
    store: Store,
    rt: tokio::runtime::Runtime,
    sandbox: Sandbox,
}

fn world(test: &str) -> World {
    let registry = Registry::shared(RegistryKind::Plain);
    let prefix = registry.unique_repository(test);
    let proxy = FaultProxy::start(&registry.addr);
    let location = ProjectLocation::InRoot {
        root: StoreRoot::Registry(format!("{}/{prefix}", registry.addr)),
        path: PATH.into(),
    };
    let store = Store::open(&location, &RegistryOptions::default()).expect("store");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let root = format!("{}/{prefix}", proxy.addr);
    World { proxy, root, store, rt, sandbox: Sandbox::new() }
}

fn commit(i: u64) -> String {
    format!("{i:040x}")
}

/// The fixture's resources at commit `i`, pushed from `main` (aliases: the number, `main-<n>`).
fn input(i: u64) -> ReleaseInput {
    let mut input = fixtures::input();
    input.source.commit = commit(i);
    input.source.tags = Vec::new();
    input.trigger = Trigger::new(TriggerKind::BranchPush, Some("main".into()), None);
    input
}

impl World {
    fn push(&self, i: u64) -> Published {
        let published =
            self.rt.block_on(publish(&self.store, input(i), TagStrategy::Monorepo)).expect("push");
        assert!(published.warnings.is_empty(), "{:?}", published.warnings);
        published
    }

    /// `forge-pack list --output json` through the proxy, and the requests it made.
    fn list(&self) -> (Vec<Value>, Vec<String>) {
        self.proxy.clear_log();
        let output = self
            .sandbox
            .command(&["list", &format!("{}/{PATH}", self.root), "--output", "json"])
            .output()
            .expect("list");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let listed: Value = serde_json::from_slice(&output.stdout).expect("json");
        (listed.as_array().expect("an array").clone(), self.proxy.requests())
    }

    fn index(&self) -> ReleaseIndex {
        let read = self.rt.block_on(release_index::read(&self.store)).expect("read");
        read.expect("an index").1
    }

    /// Puts `blob` under the index tag, as an index manifest naming it.
    fn forge_index(&self, blob: &[u8]) -> Digest {
        let (manifest, digest) = ReleaseIndex::manifest_for(blob);
        self.rt.block_on(async {
            self.store.put_blob(&Digest::of(EMPTY_CONFIG), EMPTY_CONFIG).await.expect("config");
            self.store.put_blob(&Digest::of(blob), blob).await.expect("blob");
            self.store.set_tag(INDEX_TAG, &digest, &manifest).await.expect("tag");
        });
        Digest::of(blob)
    }
}

fn manifest_reads(requests: &[String]) -> Vec<&String> {
    requests.iter().filter(|r| r.starts_with("GET ") && r.contains("/manifests/")).collect()
}

fn numbers(listed: &[Value]) -> Vec<u64> {
    listed.iter().map(|r| r["number"].as_u64().expect("number")).collect()
}

#[test]
fn issue_20_list_reads_the_index_not_every_release() {
    let world = world("index-list");
    let pushed: Vec<Published> = (1..=12).map(|i| world.push(i)).collect();
    let index = world.index();
    assert_eq!(index.len(), 12);
    for p in &pushed {
        let entry = index.get(&p.commit).expect("every push is in the index");
        assert_eq!((entry.number, &entry.digest), (p.number, &p.digest));
        assert_eq!(entry.aliases, [format!("main-{}", p.number)]);
        assert_eq!((entry.created.as_str(), entry.trigger.as_str()), (CREATED, "branch_push"));
    }

    let (listed, requests) = world.list();
    assert_eq!(numbers(&listed), (1..=12).rev().collect::<Vec<u64>>());
    for r in &listed {
        let number = r["number"].as_u64().expect("number");
        assert_eq!(r["aliases"], serde_json::json!([number.to_string(), format!("main-{number}")]));
        assert_eq!(r["state"], "complete");
        assert_eq!(r["commit"], commit(number));
    }
    // The tags and the index: no release is read.
    assert_eq!(manifest_reads(&requests).len(), 1, "{requests:#?}");
    assert!(requests.len() <= 4, "{requests:#?}");

    // Without the index the same listing costs a read per release.
    world.proxy.inject("GET", &format!("/manifests/{INDEX_TAG}"), Fault::Status(404, None), 1);
    let (without, requests) = world.list();
    assert_eq!(without, listed);
    assert!(manifest_reads(&requests).len() >= 12, "{requests:#?}");
}

#[test]
fn issue_20_a_release_the_index_lacks_still_lists_and_the_next_push_adds_it() {
    let world = world("index-lacks");
    for i in 1..=3 {
        world.push(i);
    }
    // Release 4 arrives with its tags only, as a push that stopped before the index would.
    let aliases = ["4".to_owned(), "main-4".to_owned()];
    let release = forge_release::package::package(&input(4), 4, &aliases).expect("package");
    world.rt.block_on(async {
        world.store.put_image(&release, &|_, _| {}).await.expect("image");
        for tag in [commit(4), "4".into(), "main-4".into()] {
            world.store.set_tag(&tag, &release.digest, &release.manifest_bytes).await.expect("tag");
        }
    });
    let (listed, requests) = world.list();
    assert_eq!(numbers(&listed), [4, 3, 2, 1]);
    assert_eq!(listed[0]["digest"], release.digest.to_string());
    assert_eq!(listed[0]["aliases"], serde_json::json!(["4", "main-4"]));
    let reads = manifest_reads(&requests);
    assert_eq!(reads.len(), 2, "the index and release 4 only: {requests:#?}");

    world.push(5);
    let entry = world.index().get(&commit(4)).cloned().expect("release 4 added by the next push");
    assert_eq!((entry.digest, entry.aliases), (release.digest, vec!["main-4".to_owned()]));
}

#[test]
fn issue_20_index_entries_the_tags_do_not_confirm_are_not_listed() {
    let world = world("index-forged");
    let one = world.push(1);
    let two = world.push(2);
    let (honest, _) = world.list();
    let mut forged = world.index();
    let entry = |number: u64, commit: String, digest: &Digest, aliases: &[&str]| {
        let aliases: Vec<String> = aliases.iter().map(|a| (*a).to_owned()).collect();
        Entry::new(
            Entry {
                number,
                commit,
                digest: digest.clone(),
                created: CREATED.into(),
                trigger: "branch_push".into(),
                aliases: Vec::new(),
            },
            &aliases,
        )
        .expect("an entry")
    };
    // A release that never existed, an alias that does not exist, and release 2 said to be
    // another manifest (its number claim names the real one).
    forged.merge(entry(9, "f".repeat(40), &one.digest, &["v9", "main-1"]));
    forged.merge(entry(1, commit(1), &one.digest, &["v1.0"]));
    forged.merge(entry(2, commit(2), &one.digest, &["main-2"]));
    world.forge_index(&forged.to_bytes());
    let (listed, requests) = world.list();
    assert_eq!(listed, honest);
    assert_eq!(listed[0]["digest"], two.digest.to_string());
    assert_eq!(manifest_reads(&requests).len(), 2, "the index and release 2: {requests:#?}");
}

#[test]
fn issue_20_an_unusable_index_is_listed_without_and_replaced_by_the_next_push() {
    let world = world("index-garbage");
    world.push(1);
    world.push(2);
    let (honest, _) = world.list();

    world.forge_index(b"not an index");
    assert_eq!(world.list().0, honest);
    world.forge_index(br#"{"schemaVersion":1,"releases":[{"number":1}]}"#);
    assert_eq!(world.list().0, honest);

    // Larger than an index may be: not a byte of it is asked for.
    let huge = vec![b' '; (forge_release::index::MAX_INDEX_BYTES + 1) as usize];
    let digest = world.forge_index(&huge);
    let (listed, requests) = world.list();
    assert_eq!(listed, honest);
    assert!(!requests.iter().any(|r| r.contains(digest.hex())), "{requests:#?}");

    // A release under the index tag is not an index either.
    let (bytes, release) =
        world.rt.block_on(world.store.fetch_manifest_by_tag("1")).expect("fetch").expect("1");
    world.rt.block_on(world.store.set_tag(INDEX_TAG, &release, &bytes)).expect("tag");
    assert_eq!(world.list().0, honest);

    world.push(3);
    assert_eq!(world.index().len(), 3);
    assert_eq!(numbers(&world.list().0), [3, 2, 1]);
}

#[test]
fn issue_20_concurrent_pushes_both_list_and_the_index_catches_up() {
    let world = world("index-race");
    // Writes land late and in any order, so the two pushes' index updates overlap.
    world.proxy.inject("PUT", "/manifests/", Fault::RandomDelay(150), usize::MAX);
    let through_proxy = ProjectLocation::InRoot {
        root: StoreRoot::Registry(world.root.clone()),
        path: PATH.into(),
    };
    let pushes: Vec<std::thread::JoinHandle<Published>> = (1..=2)
        .map(|i| {
            let location = through_proxy.clone();
            std::thread::spawn(move || {
                let store = Store::open(&location, &RegistryOptions::default()).expect("store");
                let rt =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
                rt.block_on(publish(&store, input(i), TagStrategy::Monorepo)).expect("push")
            })
        })
        .collect();
    let mut pushed: Vec<u64> =
        pushes.into_iter().map(|p| p.join().expect("push thread").number).collect();
    pushed.sort_unstable();
    assert_eq!(pushed, [1, 2]);
    world.proxy.clear_faults();
    assert_eq!(numbers(&world.list().0), [2, 1]);
    // Whichever entry a race lost, the next push puts back.
    world.push(3);
    let index = world.index();
    assert!((1..=3).all(|i| index.get(&commit(i)).is_some()), "{index:?}");
}

#[test]
fn issue_20_a_layout_keeps_no_index_and_lists_as_before() {
    let dir = fixtures::temp_dir();
    let store = Store::Layout(forge_store::LayoutStore::new(dir.path()));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    for i in 1..=2 {
        rt.block_on(publish(&store, input(i), TagStrategy::Monorepo)).expect("push");
    }
    let tags = rt.block_on(store.list_tags()).expect("tags");
    assert!(!tags.iter().any(|t| t == INDEX_TAG), "{tags:?}");
    let sandbox = Sandbox::new();
    let listed = sandbox
        .command(&["list", &format!("oci:{}", dir.path().display()), "--output", "json"])
        .output()
        .expect("list");
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let listed: Vec<Value> = serde_json::from_slice(&listed.stdout).expect("json");
    assert_eq!(numbers(&listed), [2, 1]);
}

#[test]
fn issue_20_a_copy_records_the_releases_it_brings_in_the_destinations_index() {
    let world = world("index-copy");
    let pushed: Vec<Published> = (1..=3).map(|i| world.push(i)).collect();
    let destination = format!("{}/mirror/auth-service", world.root);
    let output = world
        .sandbox
        .command(&["copy", &format!("{}/{PATH}", world.root), &destination, "--all"])
        .output()
        .expect("copy");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let store = Store::open(
        &ProjectLocation::InRoot {
            root: StoreRoot::Registry(world.root.clone()),
            path: "mirror/auth-service".into(),
        },
        &RegistryOptions::default(),
    )
    .expect("store");
    let (_, index) = world.rt.block_on(release_index::read(&store)).expect("read").expect("index");
    for p in &pushed {
        let entry = index.get(&p.commit).expect("every copied release");
        assert_eq!((entry.number, &entry.digest), (p.number, &p.digest));
        assert_eq!(entry.aliases, [format!("main-{}", p.number)]);
    }
    world.proxy.clear_log();
    let listed = world.sandbox.command(&["list", &destination, "--output", "json"]).output();
    let listed: Vec<Value> = serde_json::from_slice(&listed.expect("list").stdout).expect("json");
    assert_eq!(numbers(&listed), [3, 2, 1]);
    assert_eq!(manifest_reads(&world.proxy.requests()).len(), 1);
}
