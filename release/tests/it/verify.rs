//! Verification of releases: digests, sizes, media types, versions and per-file digests.

use forge_release::FormatError;
use forge_release::digest::Digest;
use forge_release::manifest::Manifest;
use forge_release::metadata::{ReleaseConfig, ReleaseMetadata};
use forge_release::package::write_resources_layer;
use forge_release::tarball::Limits;
use forge_release::verify::{verify_head, verify_resources};

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

/// The release's layer replaced by `layer` (its manifest made to match): what a builder with
/// push rights could sign.
fn verify_with_layer(layer: &[u8]) -> Result<(), FormatError> {
    let r = parts();
    let mut manifest = Manifest::parse_release(&r.manifest_bytes, None).expect("manifest");
    manifest.layers[0].digest = Digest::of(layer);
    manifest.layers[0].size = layer.len() as u64;
    let head = verify_head(Digest::of(&manifest.to_bytes()), manifest, &r.config, &r.metadata)
        .expect("head");
    verify_resources(head, layer, &Limits::default()).map(|_| ())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// Other readers of a layer (GNU tar, Go, containerd) read a second gzip member and entries
/// after padding: files there would reach them unchecked. Such layers are refused.
#[test]
fn data_after_the_gzip_stream_or_the_archive_is_refused() {
    use std::io::Read;
    let r = parts();
    verify_with_layer(&r.resources).expect("the layer itself verifies");
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&r.resources[..]).read_to_end(&mut tar).expect("inflate");
    let mut hidden = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    let evil = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: hidden, namespace: auth}\n";
    header.set_size(evil.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    hidden.append_data(&mut header, "auth/core.ConfigMap.hidden.yaml", &evil[..]).expect("entry");
    let hidden = hidden.into_inner().expect("tar");

    let two_members = [r.resources.to_vec(), gzip(&hidden)].concat();
    let error = verify_with_layer(&two_members).expect_err("a second gzip member");
    assert!(error.to_string().contains("data after the end of the gzip stream"), "{error}");
    let after_the_end = gzip(&[tar.clone(), hidden].concat());
    let error = verify_with_layer(&after_the_end).expect_err("entries after the archive");
    assert!(error.to_string().contains("data after the end of the archive"), "{error}");
    // More zeros after the end are padding, as tar writes it.
    verify_with_layer(&gzip(&[tar, vec![0; 10_240]].concat())).expect("zero padding");
}

/// A reader need not fetch the config forge-pack writes: the metadata gives its bytes, which
/// stand for the blob only when they have its digest and size.
#[test]
fn the_config_follows_from_the_metadata_only_when_its_digest_says_so() {
    let r = parts();
    let config = &r.manifest.config;
    assert_eq!(ReleaseConfig::implied(config, &r.metadata).as_deref(), Some(&r.config[..]));
    let mut other = config.clone();
    other.digest = Digest::of(b"{}");
    assert_eq!(ReleaseConfig::implied(&other, &r.metadata), None, "another digest");
    let mut longer = config.clone();
    longer.size += 1;
    assert_eq!(ReleaseConfig::implied(&longer, &r.metadata), None, "another size");
    let mut metadata: ReleaseMetadata = ReleaseMetadata::parse(&r.metadata).expect("metadata");
    metadata.source.commit = "c".repeat(40);
    assert_eq!(ReleaseConfig::implied(config, &metadata.to_bytes()), None, "another commit");
    assert_eq!(ReleaseConfig::implied(config, b"not json"), None);
}

/// A caller that no longer wants the files (the release was refused on other grounds) stops
/// the unpacking at the next file.
#[test]
fn unpacking_stops_when_told() {
    use std::sync::atomic::AtomicBool;
    let r = parts();
    let limits = Limits::default();
    let read = |stop: bool| {
        forge_release::tarball::unpack_until(&r.resources, &limits, &AtomicBool::new(stop), |_| ())
    };
    assert!(read(false).is_ok());
    let err = read(true).expect_err("stopped");
    assert!(err.to_string().contains("unpacking was stopped"), "{err}");
}
