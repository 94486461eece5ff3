//! Registry failures through a fault-injecting proxy in front of the real registry: transient
//! errors are retried, persistent ones reported, and corrupted content never accepted.

use forge_release::aliases::TagStrategy;
use forge_release::tarball::Limits;
use forge_store::StoreError;
use forge_store::publish::publish;
use forge_testkit::{Fault, FaultProxy, Registry, RegistryKind};

use crate::registry::{fast_retries, runtime, store_at};
use forge_testkit::fixtures;

fn setup(test: &str) -> (FaultProxy, String) {
    let registry = Registry::shared(RegistryKind::Plain);
    (
        FaultProxy::start(&registry.addr),
        format!("{}/auth-service", registry.unique_repository(test)),
    )
}

#[test]
fn server_errors_throttling_and_dropped_connections_are_retried() {
    let (proxy, path) = setup("transient");
    proxy.inject("PUT", "/manifests/", Fault::Status(503, None), 2);
    proxy.inject("HEAD", "/blobs/", Fault::Status(429, Some(0)), 1);
    proxy.inject("POST", "/blobs/uploads/", Fault::Drop, 1);
    let rt = runtime();
    let store = store_at(&proxy.addr, &path, &fast_retries());
    let published = rt
        .block_on(publish(&store, fixtures::input(), TagStrategy::Monorepo))
        .expect("publish despite faults");
    let requests = proxy.requests();
    assert!(
        requests.iter().filter(|r| r.starts_with("PUT") && r.contains("/manifests/")).count() >= 3,
        "{requests:#?}"
    );

    proxy.inject("GET", "/blobs/sha256:", Fault::Drop, 1);
    let release = rt
        .block_on(store.fetch_release(&published.digest, &Limits::default()))
        .expect("pull despite a drop");
    assert_eq!(release.files.len(), 4);
}

#[test]
fn persistent_server_errors_give_up_after_the_retry_budget_with_a_clear_error() {
    let (proxy, path) = setup("persistent");
    proxy.inject("GET", "/tags/list", Fault::Status(500, None), 100);
    let store = store_at(&proxy.addr, &path, &fast_retries());
    let err = runtime().block_on(store.list_tags()).expect_err("gives up");
    let message = err.to_string();
    assert!(matches!(err, StoreError::Registry { .. }), "{message}");
    assert!(message.contains("listing tags failed"), "{message}");
    let attempts = proxy.requests().iter().filter(|r| r.contains("/tags/list")).count();
    assert_eq!(attempts, 4, "bounded retries");
}

#[test]
fn a_registry_returning_wrong_bytes_is_caught() {
    let (proxy, path) = setup("corrupt");
    let rt = runtime();
    let store = store_at(&proxy.addr, &path, &fast_retries());
    let published =
        rt.block_on(publish(&store, fixtures::input(), TagStrategy::Monorepo)).expect("publish");
    let head = rt.block_on(store.fetch_head(&published.digest)).expect("head");
    let layer = head.manifest.resources().digest.clone();

    let fresh = store_at(&proxy.addr, &path, &fast_retries());
    proxy.inject("GET", &format!("/blobs/{layer}"), Fault::CorruptBody, 100);
    let err = rt
        .block_on(fresh.fetch_release(&published.digest, &Limits::default()))
        .expect_err("corrupt layer");
    let message = err.to_string();
    assert!(message.contains(layer.as_str()), "{message}");
    assert!(
        message.contains("does not match its digest") || message.contains("hashes to"),
        "{message}"
    );

    let fresh = store_at(&proxy.addr, &path, &fast_retries());
    proxy.inject("GET", &format!("/manifests/{}", published.digest), Fault::CorruptBody, 100);
    let err = rt.block_on(fresh.fetch_manifest(&published.digest)).expect_err("corrupt manifest");
    assert!(matches!(err, StoreError::Tampered { .. } | StoreError::Registry { .. }), "{err}");
}

#[test]
fn concurrent_publishers_to_a_registry_never_share_a_number() {
    let registry = Registry::shared(RegistryKind::Plain);
    let path = format!("{}/auth-service", registry.unique_repository("race"));
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
    let handles: Vec<_> = ['c', 'd', 'e', 'f']
        .into_iter()
        .map(|c| {
            let (path, addr, barrier) = (path.clone(), registry.addr.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut input = fixtures::input();
                input.source.commit = c.to_string().repeat(40);
                input.source.tags.clear();
                input.source.branch = None;
                let store = store_at(&addr, &path, &fast_retries());
                barrier.wait();
                runtime().block_on(publish(&store, input, TagStrategy::Monorepo)).expect("publish")
            })
        })
        .collect();
    let published: Vec<_> = handles.into_iter().map(|h| h.join().expect("thread")).collect();
    let mut numbers: Vec<u64> = published.iter().map(|p| p.number).collect();
    numbers.sort();
    assert_eq!(numbers, [1, 2, 3, 4]);
    let rt = runtime();
    let store = store_at(&registry.addr, &path, &fast_retries());
    for p in &published {
        assert_eq!(
            rt.block_on(store.resolve_tag(&p.number.to_string())).expect("number"),
            Some(p.digest.clone())
        );
        assert_eq!(
            rt.block_on(store.resolve_tag(&p.commit)).expect("commit"),
            Some(p.digest.clone())
        );
    }
}

/// Where a registry makes tags immutable (Harbor, ECR), a number tag another writer put in
/// first refuses ours: the publisher takes the next number instead of failing or sharing it.
/// Here an older publisher that writes number tags without claims slips `1` in while our
/// number write is held up.
#[test]
fn an_immutable_number_tag_written_first_by_another_sends_us_to_the_next_number() {
    let registry = Registry::shared(RegistryKind::Plain);
    let path = format!("{}/auth-service", registry.unique_repository("immutable"));
    let proxy = FaultProxy::start(&registry.addr);
    proxy.make_tags_immutable();
    proxy.inject("PUT", "/manifests/1", Fault::Delay(1500), 1);
    let ours = {
        let (addr, path) = (proxy.addr.clone(), path.clone());
        std::thread::spawn(move || {
            let store = store_at(&addr, &path, &fast_retries());
            runtime().block_on(publish(&store, fixtures::input(), TagStrategy::Monorepo))
        })
    };
    // The other writer: straight to the registry, while our write of 1 is held up.
    let direct = store_at(&registry.addr, &path, &fast_retries());
    let rt = runtime();
    let started = std::time::Instant::now();
    while !proxy.requests().iter().any(|r| r.starts_with("PUT") && r.ends_with("/manifests/1")) {
        assert!(started.elapsed().as_secs() < 20, "our number write never came");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let mut theirs = fixtures::input();
    theirs.source.commit = "e".repeat(40);
    let other = forge_release::package::package(&theirs, 1, &["1".to_owned()]).expect("package");
    rt.block_on(direct.put_image(&other, &|_, _| {})).expect("their blobs");
    rt.block_on(direct.set_tag("1", &other.digest, &other.manifest_bytes)).expect("their 1");

    let published = ours.join().expect("thread").expect("publish");
    assert_eq!(published.number, 2, "{published:?}");
    assert_eq!(rt.block_on(direct.resolve_tag("1")).expect("1"), Some(other.digest));
    assert_eq!(rt.block_on(direct.resolve_tag("2")).expect("2"), Some(published.digest));
}
