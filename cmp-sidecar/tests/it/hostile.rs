//! Hostile releases: tampered blobs, unsafe tarballs, oversized layers.

use std::collections::BTreeMap;
use std::path::PathBuf;

use forge_release::Digest;
use forge_release::manifest::{self, Descriptor, Manifest};
use forge_release::metadata::ReleaseMetadata;

use crate::argo::{self, Env, failure, pointer};

const APP: &str = "envs/dev/auth-service";

fn blob_path(env: &Env, digest: &Digest) -> PathBuf {
    env.store_root().join(argo::IMAGE).join("blobs/sha256").join(digest.hex())
}

/// Rewrites the release of commit `a` so its resources layer is `layer`, keeping every digest
/// consistent (as an attacker with registry write access could), and re-tags the commit.
fn replace_layer(env: &Env, layer: &[u8], claimed_size: Option<u64>) {
    let published = env.publish('a', argo::sample());
    let bytes = std::fs::read(blob_path(env, &published.digest)).expect("manifest");
    let mut manifest = Manifest::parse_release(&bytes, None).expect("manifest");
    let layer_digest = Digest::of(layer);
    std::fs::write(blob_path(env, &layer_digest), layer).expect("layer");
    manifest.layers[0] = Descriptor {
        media_type: manifest::RESOURCES_MEDIA_TYPE.into(),
        digest: layer_digest,
        size: claimed_size.unwrap_or(layer.len() as u64),
        annotations: BTreeMap::new(),
    };
    retag(env, &published.digest, &manifest);
}

/// Stores `manifest` and moves every tag of `old` to it, as a registry writer could.
fn retag(env: &Env, old: &Digest, manifest: &Manifest) {
    let bytes = manifest.to_bytes();
    let digest = Digest::of(&bytes);
    std::fs::write(blob_path(env, &digest), &bytes).expect("manifest");
    let index_path = env.store_root().join(argo::IMAGE).join("index.json");
    let index =
        std::fs::read_to_string(&index_path).expect("index").replace(old.as_str(), digest.as_str());
    std::fs::write(index_path, index).expect("index");
}

#[test]
fn a_tampered_blob_in_the_store_is_refused() {
    let env = Env::new();
    let published = env.publish('a', argo::sample());
    let bytes = std::fs::read(blob_path(&env, &published.digest)).expect("manifest");
    let manifest = Manifest::parse_release(&bytes, None).expect("manifest");
    let metadata_path = blob_path(&env, &manifest.metadata().digest);
    let text = std::fs::read_to_string(&metadata_path)
        .expect("metadata")
        .replace("\"number\": 1", "\"number\": 9");
    std::fs::write(&metadata_path, text).expect("tamper");
    let stderr = failure(&env.generate(&env.gitops(&pointer('a', None)), APP, &[]));
    assert!(stderr.contains(&format!("content of {}", manifest.metadata().digest)), "{stderr}");
    assert!(stderr.contains("tampered"), "{stderr}");
}

#[test]
fn a_traversal_tarball_is_refused_even_with_consistent_digests() {
    let env = Env::new();
    let layer = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/hostile/parent-traversal.tar.gz"),
    )
    .expect("hostile layer");
    replace_layer(&env, &layer, None);
    let repo = env.gitops(&pointer('a', None));
    // The second run must not take the first's word for anything it cached.
    for run in ["first", "second"] {
        let stderr = failure(&env.generate(&repo, APP, &[]));
        assert!(
            stderr.contains(
                "unsafe resources tarball: path contains `..` (entry `../../core.ConfigMap.x.yaml`)"
            ),
            "{run}: {stderr}"
        );
    }
    // Blobs are cached while they are verified; the release is never named or rendered.
    assert!(env.cache().join("blobs/sha256").is_dir(), "no blobs in {}", env.cache().display());
    let index = std::fs::read_to_string(env.cache().join("index.json")).unwrap_or_default();
    assert!(!index.contains("sha256:"), "the cache names the refused release: {index}");
    assert!(!env.cache().join("rendered").exists(), "the refused release was rendered");
}

#[test]
fn an_oversized_layer_is_refused_before_it_is_read() {
    let env = Env::new();
    replace_layer(&env, b"small", Some(1 << 30));
    let stderr = failure(&env.generate(&env.gitops(&pointer('a', None)), APP, &[]));
    assert!(
        stderr.contains("the release exceeds the limit of 67108864 compressed bytes"),
        "{stderr}"
    );
}

/// Publishes release `a`, then retags it with its metadata changed by `edit` (the manifest
/// made consistent with it): a release whose parts are each intact but disagree.
fn publish_with_metadata(env: &Env, edit: impl FnOnce(&mut ReleaseMetadata)) {
    let published = env.publish('a', argo::sample());
    let bytes = std::fs::read(blob_path(env, &published.digest)).expect("manifest");
    let mut manifest = Manifest::parse_release(&bytes, None).expect("manifest");
    let mut metadata: ReleaseMetadata = ReleaseMetadata::parse(
        &std::fs::read(blob_path(env, &manifest.metadata().digest)).expect("metadata"),
    )
    .expect("parse");
    edit(&mut metadata);
    let metadata_bytes = metadata.to_bytes();
    let digest = Digest::of(&metadata_bytes);
    std::fs::write(blob_path(env, &digest), &metadata_bytes).expect("metadata");
    manifest.layers[1].digest = digest;
    manifest.layers[1].size = metadata_bytes.len() as u64;
    retag(env, &published.digest, &manifest);
}

#[test]
fn a_release_whose_metadata_lies_about_an_object_is_refused() {
    let env = Env::new();
    publish_with_metadata(&env, |metadata| {
        metadata.resources.objects[1].id.name = "renamed".into()
    });
    let stderr = failure(&env.generate(&env.gitops(&pointer('a', None)), APP, &[]));
    assert!(stderr.contains("does not match its metadata entry"), "{stderr}");
}

/// The layer is unpacked while the metadata is still on its way: each file is checked against
/// the metadata all the same, once it is in.
#[test]
fn a_release_whose_metadata_records_another_digest_for_a_file_is_refused() {
    let env = Env::new();
    let other = Digest::of(b"another object");
    let mut path = String::new();
    publish_with_metadata(&env, |metadata| {
        metadata.resources.objects[1].sha256 = other.clone();
        path = metadata.resources.objects[1].path.clone();
    });
    let stderr = failure(&env.generate(&env.gitops(&pointer('a', None)), APP, &[]));
    assert!(stderr.contains(&format!("metadata records {other}")), "{stderr}");
    assert!(stderr.contains(&path), "the file is named: {stderr}");
    assert!(!env.cache().join("rendered").exists(), "the refused release was rendered");
    let named = std::fs::read_dir(env.cache().join("commits")).map_or(0, Iterator::count);
    assert_eq!(named, 0, "the refused release is named in the cache");
}

/// Publishes release `a` with its config blob replaced by `config` (the manifest made
/// consistent with it) and returns the new config's digest.
fn publish_with_config(env: &Env, config: &[u8]) -> Digest {
    let published = env.publish('a', argo::sample());
    let bytes = std::fs::read(blob_path(env, &published.digest)).expect("manifest");
    let mut manifest = Manifest::parse_release(&bytes, None).expect("manifest");
    let digest = Digest::of(config);
    std::fs::write(blob_path(env, &digest), config).expect("config");
    manifest.config.digest = digest.clone();
    manifest.config.size = config.len() as u64;
    retag(env, &published.digest, &manifest);
    digest
}

/// The config forge-pack writes follows from the metadata, so it is not fetched: a store that
/// has lost it still serves the release, whose cached copy is whole.
#[test]
fn a_config_the_metadata_implies_is_not_fetched() {
    let env = Env::new();
    let published = env.publish('a', argo::sample());
    let bytes = std::fs::read(blob_path(&env, &published.digest)).expect("manifest");
    let config = Manifest::parse_release(&bytes, None).expect("manifest").config.digest;
    std::fs::remove_file(blob_path(&env, &config)).expect("the config is gone");
    let output = env.generate(&env.gitops(&pointer('a', None)), APP, &[]);
    assert_eq!(argo::argo_parse(&output).len(), 3);
    assert!(env.cache().join("blobs/sha256").join(config.hex()).is_file(), "config not cached");
}

/// A config forge-pack would not write from the metadata (another writer's layout) is fetched
/// and checked: it must still agree with the metadata.
#[test]
fn a_config_the_metadata_does_not_imply_is_fetched_and_checked() {
    let env = Env::new();
    // Pretty-printed: what another writer might make, not what forge-pack writes.
    let written = |project: &str| {
        let config = serde_json::json!({
            "formatVersion": 1,
            "repository": "company/monorepo",
            "project": project,
            "commit": "a".repeat(40),
        });
        serde_json::to_string_pretty(&config).expect("json")
    };
    let agreeing = publish_with_config(&env, written("auth-service").as_bytes());
    let output = env.generate(&env.gitops(&pointer('a', None)), APP, &[]);
    assert_eq!(argo::argo_parse(&output).len(), 3, "{}", String::from_utf8_lossy(&output.stderr));
    assert!(env.cache().join("blobs/sha256").join(agreeing.hex()).is_file(), "config not cached");

    for (what, config) in [
        ("project", written("billing")),
        ("repository", written("auth-service").replace("company/monorepo", "company/other")),
    ] {
        let env = Env::new();
        publish_with_config(&env, config.as_bytes());
        let stderr = failure(&env.generate(&env.gitops(&pointer('a', None)), APP, &[]));
        assert!(stderr.contains("config and metadata disagree"), "{what}: {stderr}");
    }
}
