//! Interoperability: skopeo reads releases from the layout store unchanged.

use std::process::Command;

use forge_release::aliases::TagStrategy;
use forge_store::publish::publish;
use forge_store::{LayoutStore, Store};

use forge_testkit::fixtures;

fn skopeo(args: &[&str]) -> Vec<u8> {
    let output = Command::new("skopeo").args(args).output().unwrap_or_else(|e| {
        panic!("skopeo is required for this test ({e}); install it with `apt-get install skopeo` (`make test` does)")
    });
    assert!(
        output.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn skopeo_reads_the_exact_manifest_and_copies_it_byte_for_byte() {
    let dir = fixtures::temp_dir();
    let layout = dir.path().join("auth-service");
    let store = Store::Layout(LayoutStore::new(&layout));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let published =
        rt.block_on(publish(&store, fixtures::input(), TagStrategy::Monorepo)).expect("publish");

    let raw = skopeo(&["inspect", "--raw", &format!("oci:{}:1", layout.display())]);
    assert_eq!(forge_release::Digest::of(&raw), published.digest);
    let config =
        skopeo(&["inspect", "--config", "--raw", &format!("oci:{}:v1.2.3", layout.display())]);
    assert!(String::from_utf8_lossy(&config).contains("\"project\":\"auth-service\""));

    let copy = dir.path().join("copy");
    skopeo(&[
        "copy",
        "--quiet",
        &format!("oci:{}:{}", layout.display(), fixtures::COMMIT),
        &format!("oci:{}:copied", copy.display()),
    ]);
    let copied = Store::Layout(LayoutStore::new(&copy));
    let tags = rt.block_on(copied.list_tags()).expect("tags");
    assert_eq!(tags, ["copied"]);
    assert_eq!(
        rt.block_on(copied.resolve_tag("copied")).expect("resolve"),
        Some(published.digest.clone())
    );
    let release = rt
        .block_on(copied.fetch_release(&published.digest, &Default::default()))
        .expect("verified copy");
    assert_eq!(release.files.len(), 4);
}
