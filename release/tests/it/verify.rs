//! Verification of releases: digests, sizes, media types, versions and per-file digests.

use forge_release::digest::Digest;
use forge_release::manifest::Manifest;
use forge_release::package::write_resources_layer;
use forge_release::tarball::Limits;
use forge_release::verify::{verify_head, verify_resources};
use forge_release::{FormatError, metadata::ReleaseMetadata};

use forge_release::image::ReleaseImage;
use forge_testkit::fixtures;

fn parts() -> ReleaseImage {
    fixtures::image()
}

#[test]
fn a_packaged_release_verifies_and_yields_its_files() {
    let r = parts();
    let manifest = Manifest::parse_release(&r.manifest_bytes, Some(&r.digest)).expect("manifest");
    let head = verify_head(r.digest.clone(), manifest, &r.config, &r.metadata).expect("head");
    let verified = verify_resources(head, &r.resources, &Limits::default()).expect("resources");
    let paths: Vec<&str> = verified.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "_cluster/core.Namespace.auth.yaml",
            "auth/apps.Deployment.api.yaml",
            "auth/core.ConfigMap.settings.yaml",
            "auth/core.Service.api.yaml"
        ]
    );
}

#[test]
fn a_manifest_under_the_wrong_digest_is_refused() {
    let r = parts();
    let wrong = Digest::of(b"something else");
    let err = Manifest::parse_release(&r.manifest_bytes, Some(&wrong)).expect_err("mismatch");
    assert_eq!(
        err.to_string(),
        format!("digest mismatch: expected {wrong}, content hashes to {}", r.digest)
    );
}

#[test]
fn tampered_blobs_are_refused_naming_the_digest() {
    let r = parts();
    let manifest = Manifest::parse_release(&r.manifest_bytes, Some(&r.digest)).expect("manifest");
    let mut metadata = r.metadata.clone();
    let last = metadata.len() - 2;
    metadata[last] = b' ';
    let err = verify_head(r.digest.clone(), manifest.clone(), &r.config, &metadata)
        .expect_err("tampered");
    assert!(
        err.to_string()
            .starts_with(&format!("digest mismatch: expected {}", manifest.metadata().digest)),
        "{err}"
    );

    let head =
        verify_head(r.digest.clone(), manifest.clone(), &r.config, &r.metadata).expect("head");
    let mut layer = r.resources.to_vec();
    layer.push(0);
    let err = verify_resources(head, &layer, &Limits::default()).expect_err("size");
    assert!(matches!(err, FormatError::SizeMismatch { .. }), "{err}");
}

/// A release whose layer is internally consistent with its manifest but whose files do not
/// match the metadata (a forged layer re-signed into a new manifest).
#[test]
fn files_that_differ_from_the_metadata_are_refused_naming_the_file() {
    let r = parts();
    let mut files = fixtures::files();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files[2].content =
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  EVIL: 'yes'\n"
            .to_vec();
    let (layer, info) = write_resources_layer(&files, 0, Vec::new()).expect("layer");
    let mut manifest = Manifest::parse_release(&r.manifest_bytes, None).expect("manifest");
    manifest.layers[0].digest = info.digest;
    manifest.layers[0].size = info.size;
    let mut metadata: ReleaseMetadata = ReleaseMetadata::parse(&r.metadata).expect("metadata");
    metadata.resources.tar_sha256 = info.tar_sha256;
    let metadata_bytes = metadata.to_bytes();
    manifest.layers[1].digest = Digest::of(&metadata_bytes);
    manifest.layers[1].size = metadata_bytes.len() as u64;
    let head = verify_head(Digest::of(&manifest.to_bytes()), manifest, &r.config, &metadata_bytes)
        .expect("head");
    let err = verify_resources(head, &layer, &Limits::default()).expect_err("content mismatch");
    let message = err.to_string();
    assert!(message.contains("(`auth/core.ConfigMap.settings.yaml`)"), "{message}");
    assert!(
        message.starts_with("resources do not match release metadata: content hashes to"),
        "{message}"
    );
}

#[test]
fn newer_major_versions_are_refused_with_an_upgrade_message() {
    let r = parts();
    let text = String::from_utf8(r.metadata.clone())
        .expect("utf8")
        .replace("\"schemaVersion\": 1", "\"schemaVersion\": 2");
    let err = ReleaseMetadata::parse(text.as_bytes()).expect_err("future version");
    assert_eq!(
        err.to_string(),
        "release metadata version 2 is newer than this forge-pack understands (up to 1); upgrade forge-pack to read it"
    );
    let config = String::from_utf8(r.config.clone())
        .expect("utf8")
        .replace("\"formatVersion\":1", "\"formatVersion\":3");
    let err = forge_release::metadata::ReleaseConfig::parse(config.as_bytes())
        .expect_err("future config");
    assert!(err.to_string().starts_with("release config version 3 is newer"), "{err}");
}

#[test]
fn manifests_that_are_not_releases_are_refused() {
    let r = parts();
    let mut manifest = Manifest::parse_release(&r.manifest_bytes, None).expect("manifest");
    manifest.config.media_type = "application/vnd.oci.image.config.v1+json".into();
    let err = Manifest::parse_release(&manifest.to_bytes(), None).expect_err("container image");
    assert!(
        err.to_string().starts_with(
            "not a forge release: config media type is `application/vnd.oci.image.config.v1+json`"
        ),
        "{err}"
    );
    let mut manifest = Manifest::parse_release(&r.manifest_bytes, None).expect("manifest");
    manifest.layers.swap(0, 1);
    let err = Manifest::parse_release(&manifest.to_bytes(), None).expect_err("layer order");
    assert!(err.to_string().starts_with("not a forge release: layers are"), "{err}");
}
