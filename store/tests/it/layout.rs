//! The OCI image layout store: on-disk shape, tamper detection and concurrent tagging.

use std::sync::{Arc, Barrier};

use forge_release::Digest;
use forge_release::image::ReleaseImage;
use forge_release::tarball::Limits;
use forge_store::{LayoutStore, Store, StoreError, TagClaim};

use forge_testkit::fixtures;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

async fn store_release(store: &Store) -> ReleaseImage {
    let release = fixtures::image();
    for (descriptor, bytes) in release.blobs() {
        store.put_blob(&descriptor.digest, bytes).await.expect("blob");
    }
    store.put_manifest(&release.digest, &release.manifest_bytes).await.expect("manifest");
    let claim = store.claim_tag("7", &release.digest, &release.manifest_bytes).await;
    assert_eq!(claim.expect("tag"), TagClaim::Claimed);
    release
}

#[test]
fn layout_follows_the_oci_image_layout_spec_and_leaves_no_temp_files() {
    let dir = fixtures::temp_dir();
    let store = Store::Layout(LayoutStore::new(dir.path().join("app")));
    let release = runtime().block_on(store_release(&store));
    let root = dir.path().join("app");
    assert_eq!(
        std::fs::read_to_string(root.join("oci-layout")).expect("oci-layout"),
        "{\"imageLayoutVersion\":\"1.0.0\"}"
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("index.json")).expect("index"))
            .expect("json");
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["manifests"][0]["digest"], release.digest.to_string());
    assert_eq!(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "7");
    let mut blobs: Vec<String> = std::fs::read_dir(root.join("blobs/sha256"))
        .expect("blobs")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    blobs.sort();
    let mut expected: Vec<String> =
        release.blobs().iter().map(|(d, _)| d.digest.hex().to_owned()).collect();
    expected.push(release.digest.hex().to_owned());
    expected.sort();
    assert_eq!(blobs, expected, "exactly the blobs and the manifest, no temp files");
}

#[test]
fn a_blob_altered_on_disk_is_detected_on_read() {
    let dir = fixtures::temp_dir();
    let store = Store::Layout(LayoutStore::new(dir.path()));
    let rt = runtime();
    let release = rt.block_on(store_release(&store));
    let layer = release.manifest.resources().digest.clone();
    let path = dir.path().join("blobs/sha256").join(layer.hex());
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[20] ^= 0xff;
    std::fs::write(&path, bytes).expect("write");
    let err = rt
        .block_on(store.fetch_release(&release.digest, &Limits::default()))
        .expect_err("tampered");
    assert!(matches!(&err, StoreError::Tampered { digest, .. } if *digest == layer), "{err}");
    assert!(err.to_string().contains("the store is corrupt or was tampered with"), "{err}");
}

#[test]
fn a_blob_whose_bytes_do_not_match_its_digest_is_never_written() {
    let dir = fixtures::temp_dir();
    let store = LayoutStore::new(dir.path());
    let err = store.write_blob(&Digest::of(b"a"), b"b").expect_err("mismatch");
    assert!(matches!(err, StoreError::Tampered { .. }));
    assert!(!dir.path().join("blobs/sha256").join(Digest::of(b"a").hex()).exists());
}

#[test]
fn concurrent_claims_of_one_tag_have_exactly_one_winner() {
    let dir = fixtures::temp_dir();
    let store = LayoutStore::new(dir.path());
    let digests: Vec<Digest> = (0..8u8)
        .map(|i| {
            let bytes = vec![i; 16];
            let digest = Digest::of(&bytes);
            store.write_blob(&digest, &bytes).expect("blob");
            digest
        })
        .collect();
    let barrier = Arc::new(Barrier::new(digests.len()));
    let handles: Vec<_> = digests
        .iter()
        .cloned()
        .map(|digest| {
            let store = store.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                store.claim_tag("1", &digest).expect("claim")
            })
        })
        .collect();
    let claims: Vec<TagClaim> = handles.into_iter().map(|h| h.join().expect("thread")).collect();
    assert_eq!(claims.iter().filter(|c| **c == TagClaim::Claimed).count(), 1, "{claims:?}");
    assert_eq!(store.list_tags().expect("tags").len(), 1);
}
