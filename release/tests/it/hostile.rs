//! Hostile resources layers from testdata/hostile: each is refused with a message naming the
//! entry and the rule it breaks.

use std::path::PathBuf;

use forge_release::FormatError;
use forge_release::tarball::{Limits, unpack};
use forge_testkit::fixtures;

fn hostile(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/hostile").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn refusal(name: &str) -> String {
    match unpack(&hostile(name), &Limits::default()) {
        Ok(unpacked) => panic!("{name} was accepted with {} files", unpacked.files.len()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unsafe_paths_and_entry_types_are_refused_by_name() {
    let cases = [
        (
            "absolute-path.tar.gz",
            "unsafe resources tarball: path must be relative, with `/` separators (entry `/etc/core.ConfigMap.x.yaml`)",
        ),
        (
            "parent-traversal.tar.gz",
            "unsafe resources tarball: path contains `..` (entry `../../core.ConfigMap.x.yaml`)",
        ),
        (
            "symlink.tar.gz",
            "unsafe resources tarball: symbolic links are not allowed (entry `_default/core.ConfigMap.x.yaml`)",
        ),
        (
            "hardlink.tar.gz",
            "unsafe resources tarball: hard links are not allowed (entry `_default/b.yaml`)",
        ),
        (
            "char-device.tar.gz",
            "unsafe resources tarball: device files are not allowed (entry `_default/null.yaml`)",
        ),
        (
            "fifo.tar.gz",
            "unsafe resources tarball: FIFOs are not allowed (entry `_default/pipe.yaml`)",
        ),
        (
            "directory.tar.gz",
            "unsafe resources tarball: directory entries are not allowed (entry `_default/`)",
        ),
        (
            "duplicate-path.tar.gz",
            "unsafe resources tarball: duplicate path (entry `_default/core.ConfigMap.ok.yaml`)",
        ),
        (
            "not-yaml.tar.gz",
            "unsafe resources tarball: only .yaml files are allowed (entry `_default/run.sh`)",
        ),
    ];
    for (file, expected) in cases {
        assert_eq!(refusal(file), expected, "{file}");
    }
}

#[test]
fn long_pax_paths_are_checked_after_the_pax_header_is_applied() {
    let message = refusal("pax-traversal.tar.gz");
    assert!(message.starts_with("unsafe resources tarball: path contains `..`"), "{message}");
}

#[test]
fn decompression_bombs_stop_at_the_uncompressed_limit() {
    assert_eq!(
        refusal("decompression-bomb.tar.gz"),
        "the release exceeds the limit of 268435456 uncompressed bytes"
    );
}

#[test]
fn too_many_files_and_oversized_layers_are_refused() {
    assert_eq!(refusal("too-many-files.tar.gz"), "the release exceeds the limit of 20000 files");
    let small = Limits { max_layer_bytes: 100, ..Limits::default() };
    let err = unpack(&hostile("symlink.tar.gz"), &small).expect_err("over the layer limit");
    assert!(
        matches!(err, FormatError::LimitExceeded { what: "compressed bytes", limit: 100 }),
        "{err}"
    );
}

#[test]
fn garbage_is_a_corrupt_tarball_not_a_panic() {
    let message = refusal("not-gzip.tar.gz");
    assert!(message.starts_with("corrupt resources tarball:"), "{message}");
}

/// Issue 14: a release every reader would refuse is refused when it is built, not after it
/// is pushed.
#[test]
fn a_release_readers_would_refuse_is_not_built() {
    let files: Vec<_> = (0..20_001)
        .map(|i| fixtures::file("v1", "ConfigMap", Some("big"), &format!("c{i}"), "data: {}\n"))
        .collect();
    let err = forge_release::package::ResourcesLayer::build(files, fixtures::COMMIT_TIME)
        .expect_err("too many objects");
    assert_eq!(
        err.to_string(),
        "the release would hold 20001 objects, more than the 20000 every reader accepts; split the project into smaller releases"
    );
    let big = "x".repeat(1 << 20);
    let files: Vec<_> = (0..257)
        .map(|i| {
            fixtures::file(
                "v1",
                "ConfigMap",
                Some("big"),
                &format!("c{i}"),
                &format!("data:\n  v: {big}\n"),
            )
        })
        .collect();
    let err = forge_release::package::ResourcesLayer::build(files, fixtures::COMMIT_TIME)
        .expect_err("too large");
    assert!(err.to_string().contains("uncompressed bytes, more than the 268435456"), "{err}");
}
