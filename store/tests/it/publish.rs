//! Publishing: numbering, idempotent re-publishing, immutability and aliases.

use forge_release::aliases::TagStrategy;
use forge_release::package::ReleaseInput;
use forge_store::publish::{PublishError, publish};
use forge_store::{LayoutStore, Store};

use forge_testkit::fixtures;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn with_commit(commit_byte: char) -> ReleaseInput {
    let mut input = fixtures::input();
    input.source.commit = commit_byte.to_string().repeat(40);
    input.source.tags = Vec::new();
    input
}

#[test]
fn first_publish_numbers_and_tags_then_republish_is_a_no_op() {
    let dir = fixtures::temp_dir();
    let store = Store::Layout(LayoutStore::new(dir.path()));
    let rt = runtime();
    let first =
        rt.block_on(publish(&store, fixtures::input(), TagStrategy::Monorepo)).expect("publish");
    assert_eq!(first.number, 1);
    assert!(!first.existed);
    assert_eq!(first.tags_added, ["1", fixtures::COMMIT, "v1.2.3", "main-1"]);
    assert!(first.bytes_uploaded > 0);

    let again =
        rt.block_on(publish(&store, fixtures::input(), TagStrategy::Monorepo)).expect("republish");
    assert!(again.existed);
    assert_eq!((again.digest, again.number, again.bytes_uploaded), (first.digest, 1, 0));
    assert!(again.tags_added.is_empty());
}

#[test]
fn different_content_for_a_released_commit_is_refused_naming_both_digests() {
    let dir = fixtures::temp_dir();
    let store = Store::Layout(LayoutStore::new(dir.path()));
    let rt = runtime();
    let first =
        rt.block_on(publish(&store, fixtures::input(), TagStrategy::Monorepo)).expect("publish");
    let tags_before = rt.block_on(store.list_tags()).expect("tags");
    let mut files = fixtures::files();
    files.pop();
    let changed = fixtures::input_with(files);
    let err = rt.block_on(publish(&store, changed, TagStrategy::Monorepo)).expect_err("immutable");
    let PublishError::ContentChanged {
        existing, existing_resources, new_resources, number, ..
    } = &err
    else {
        panic!("expected ContentChanged, got {err}");
    };
    assert_eq!((existing, *number), (&first.digest, 1));
    let message = err.to_string();
    assert!(
        message.contains(existing_resources.as_str()) && message.contains(new_resources.as_str()),
        "{message}"
    );
    assert_eq!(rt.block_on(store.list_tags()).expect("tags"), tags_before, "nothing was tagged");
}

#[test]
fn later_commits_get_the_next_number_and_new_git_tags_become_aliases_of_existing_releases() {
    let dir = fixtures::temp_dir();
    let store = Store::Layout(LayoutStore::new(dir.path()));
    let rt = runtime();
    let a = rt.block_on(publish(&store, with_commit('a'), TagStrategy::Monorepo)).expect("a");
    let b = rt.block_on(publish(&store, with_commit('b'), TagStrategy::Monorepo)).expect("b");
    assert_eq!((a.number, b.number), (1, 2));
    assert_eq!(b.tags_added, ["2", &"b".repeat(40), "main-2"]);

    let mut tagged = with_commit('a');
    tagged.source.tags =
        vec!["auth-service/v2.0.0".into(), "other/v9".into(), "auth-service/v2 bad".into()];
    let re = rt.block_on(publish(&store, tagged, TagStrategy::Monorepo)).expect("retag");
    assert!(re.existed);
    assert_eq!(re.tags_added, ["v2.0.0"]);
    assert_eq!(re.warnings.len(), 1, "{:?}", re.warnings);
    assert!(re.warnings[0].contains("auth-service/v2 bad"), "{:?}", re.warnings);
}

#[test]
fn concurrent_publishers_never_share_a_number() {
    let dir = fixtures::temp_dir();
    let path = dir.path().to_path_buf();
    let handles: Vec<_> = ['c', 'd', 'e', 'f']
        .into_iter()
        .map(|c| {
            let path = path.clone();
            std::thread::spawn(move || {
                let store = Store::Layout(LayoutStore::new(path));
                runtime()
                    .block_on(publish(&store, with_commit(c), TagStrategy::Monorepo))
                    .expect("publish")
                    .number
            })
        })
        .collect();
    let mut numbers: Vec<u64> = handles.into_iter().map(|h| h.join().expect("thread")).collect();
    numbers.sort();
    assert_eq!(numbers, [1, 2, 3, 4]);
}
