//! The exact bytes of a fixture release. A change to any of these digests changes every
//! release ever built: it must be deliberate (a format version bump), never an accident of a
//! dependency update or a compression backend switch.

use forge_release::metadata::ReleaseMetadata;
use forge_release::package::{self, write_resources_layer};
use forge_testkit::fixtures;

#[test]
fn golden_digests_of_the_fixture_release() {
    let release = fixtures::image();
    let metadata = ReleaseMetadata::parse(&release.metadata).expect("metadata");
    let digests = [
        ("manifest", release.digest.to_string()),
        ("config", release.manifest.config.digest.to_string()),
        ("resources", release.manifest.resources().digest.to_string()),
        ("metadata", release.manifest.metadata().digest.to_string()),
        ("tar", metadata.resources.tar_sha256.to_string()),
    ];
    let expected = [
        ("manifest", "sha256:89a7bfeb35b479e6c2ab250fc4fa2e0569478821a7eac28b69c1ee1693ff2d39"),
        ("config", "sha256:6d476afd5633e171067acd503dc85e6a4f74b11510b6ed74e105164496922505"),
        ("resources", "sha256:66a02c4b4518eaea1cfe86077cd833b5af8839965a53b542240f3e7cfbc28f24"),
        ("metadata", "sha256:6721aca3704ec3b6705b5bee03dccc5e48578287ea11c34b7fd770984c720cf8"),
        ("tar", "sha256:af5ae589ffeea92ca7ae51ef2d9dd345b9468fd1b731d5859eb48b9214a6bfd6"),
    ];
    assert_eq!(digests, expected.map(|(k, v)| (k, v.to_owned())));
}

/// Over a megabyte of varied objects: the compressor's window slides many times and its
/// CPU-specific paths (AVX2 match comparison, hash sliding) all run. Their output must be the
/// portable code's, byte for byte, or digests would depend on the machine that built them.
#[test]
fn golden_digest_of_a_large_layer() {
    let mut state: u64 = 42;
    let mut next = move || {
        state =
            state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    let mut files: Vec<_> = (0..600)
        .map(|i| {
            let data: String = (0..40)
                .map(|k| format!("  key{k}: value-{}-{:x}\n", next() % 1000, next()))
                .collect();
            fixtures::file(
                "v1",
                "ConfigMap",
                Some("apps"),
                &format!("config-{i:04}"),
                &format!("data:\n{data}"),
            )
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mtime = fixtures::COMMIT_TIME as u64;
    let (layer, info) = write_resources_layer(&files, mtime, Vec::new()).expect("layer");
    assert!(layer.len() > 128 << 10, "compressed {} bytes", layer.len());
    assert_eq!(
        (info.digest.to_string(), info.tar_sha256.to_string()),
        (
            "sha256:28cc9cf5ebccc1369f92e842fc8e9f4513e4d16c2c92e8bc1a97e6c197fe6458".to_owned(),
            "sha256:050f81ba7493ccfdb9f750a93e6323fc8423070a70cead680b926cb01cda3170".to_owned()
        )
    );
}

#[test]
fn input_order_does_not_change_the_bytes() {
    let forward = fixtures::image();
    let mut reversed_files = fixtures::files();
    reversed_files.reverse();
    let reversed_input = fixtures::input_with(reversed_files);
    let reversed =
        package::package(&reversed_input, fixtures::NUMBER, &fixtures::aliases()).expect("package");
    assert_eq!(forward.digest, reversed.digest);
    assert_eq!(forward.resources, reversed.resources);
}

#[test]
fn gzip_header_has_no_name_or_time_and_tar_headers_are_neutral() {
    let mut files = fixtures::files();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let (bytes, _) = write_resources_layer(&files, 1_714_564_800, Vec::new()).expect("layer");
    // ID1 ID2 CM FLG MTIME(4) XFL OS: no FNAME flag, zero mtime, OS "unknown".
    assert_eq!(&bytes[..4], &[0x1f, 0x8b, 8, 0]);
    assert_eq!(&bytes[4..8], &[0, 0, 0, 0]);
    assert_eq!(bytes[9], 255);
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    let mut paths = Vec::new();
    for entry in archive.entries().expect("entries") {
        let entry = entry.expect("entry");
        let header = entry.header();
        assert_eq!(header.mode().expect("mode"), 0o644);
        assert_eq!((header.uid().expect("uid"), header.gid().expect("gid")), (0, 0));
        assert_eq!(header.mtime().expect("mtime"), 1_714_564_800);
        assert_eq!(header.username().expect("user"), Some(""));
        assert_eq!(header.groupname().expect("group"), Some(""));
        paths.push(entry.path().expect("path").display().to_string());
    }
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
}
