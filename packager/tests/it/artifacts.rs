//! Artifact values from every supported build-record format, resolved into templates.

use crate::harness::{self, Sandbox};

fn artifacts(name: &str) -> String {
    harness::testdata().join("artifacts").join(name).display().to_string()
}

fn all_sources() -> Vec<String> {
    [
        "forge-artifacts.yaml",
        "component-tags.json",
        "polyrepo-release.json",
        "release-manifest.yaml",
    ]
    .iter()
    .flat_map(|f| ["--artifacts".to_owned(), artifacts(f)])
    .collect()
}

#[test]
fn every_source_format_resolves_into_the_rendered_objects() {
    let sandbox = Sandbox::new();
    let project = sandbox.project("storefront");
    let mut args = vec![
        "render".to_owned(),
        "-C".into(),
        project.display().to_string(),
        "--output".into(),
        "json".into(),
    ];
    args.extend(all_sources());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let objects: serde_json::Value = serde_json::from_str(&sandbox.ok(&args)).expect("json");
    let api = &objects[0];
    assert_eq!(api["metadata"]["name"], "api-server");
    let pod = &api["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["image"],
        "registry.example.com/shop/api-server@sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
        "ref is derived from image and digest"
    );
    assert_eq!(
        pod["containers"][0]["env"][0]["value"], "payments v3.8.0 / ledger v1.22.3",
        "embedded references"
    );
    let frontend = &objects[1];
    assert_eq!(
        frontend["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/shop/frontend@sha256:9e2d6c1b7a4f8e3d5c9b1a7f3e5d9c1b7a3f5e9d1c7b3a5f9e1d7c3b5a9f1e7d"
    );
    let versions = &objects[2]["data"];
    assert_eq!(versions["search-indexer"], "0.31.2");
    assert_eq!(
        versions["recommendations"], "0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d",
        "commit_sha is the sha field"
    );
}

#[test]
fn the_release_records_each_used_artifact_and_where_its_values_came_from() {
    let sandbox = Sandbox::new();
    let project = sandbox.project("storefront");
    let mut args: Vec<String> = vec!["build".into(), "-C".into(), project.display().to_string()];
    args.extend(harness::pinned().into_iter().map(str::to_owned));
    args.extend(all_sources());
    args.extend([
        "--artifact".into(),
        "frontend.digest=sha256:9e2d6c1b7a4f8e3d5c9b1a7f3e5d9c1b7a3f5e9d1c7b3a5f9e1d7c3b5a9f1e7d"
            .into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sandbox.ok(&args);
    let inspected: serde_json::Value = serde_json::from_str(&sandbox.ok(&[
        "inspect",
        "company/shop/storefront:1",
        "--output",
        "json",
    ]))
    .expect("json");
    let recorded = &inspected["metadata"]["artifacts"];
    let names: Vec<&str> =
        recorded.as_array().expect("list").iter().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "api-server",
            "frontend",
            "ledger",
            "migrations",
            "payments",
            "recommendations",
            "search-indexer"
        ]
    );
    assert_eq!(recorded[0]["sources"]["ref"], "derived");
    assert!(
        recorded[0]["sources"]["digest"]
            .as_str()
            .is_some_and(|s| s.ends_with("forge-artifacts.yaml"))
    );
    assert_eq!(
        recorded[1]["sources"]["digest"].as_str().map(|s| s.ends_with("component-tags.json")),
        Some(true)
    );
    let text = sandbox.ok(&["inspect", "company/shop/storefront:1"]);
    let line = text
        .lines()
        .find(|l| l.contains("payments") && l.contains(" tag "))
        .expect("payments tag row");
    assert!(line.contains("v3.8.0") && line.ends_with("polyrepo-release.json"), "{line}");
    assert!(
        !text.contains(&harness::testdata().display().to_string()),
        "no machine paths in releases"
    );
}

#[test]
fn unresolved_references_and_conflicting_sources_are_all_reported() {
    let sandbox = Sandbox::new();
    let project = sandbox.project("storefront");
    let dir = project.display().to_string();
    let stderr =
        sandbox.fails(2, &["render", "-C", &dir, "--artifacts", &artifacts("component-tags.json")]);
    insta::assert_snapshot!(
        stderr.replace(&harness::testdata().display().to_string(), "[TESTDATA]")
    );

    let stderr = sandbox.fails(
        2,
        &[
            "render",
            "-C",
            &dir,
            "--artifacts",
            &artifacts("component-tags.json"),
            "--artifact",
            "frontend.tag=other",
            "--artifact",
            "broken",
        ],
    );
    insta::assert_snapshot!(
        stderr.replace(&harness::testdata().display().to_string(), "[TESTDATA]")
    );
}

/// Issue 13: artifacts used through `forge.artifact(...)` in Jsonnet are recorded like those
/// used as `@artifact(...)` strings: every artifact referenced by either syntax, and only
/// those, with its values and the file they came from.
#[test]
fn artifacts_used_from_jsonnet_and_strings_are_all_recorded() {
    let sandbox = Sandbox::new();
    let project = sandbox.project("catalog");
    let mut args: Vec<String> = vec!["build".into(), "-C".into(), project.display().to_string()];
    args.extend(harness::pinned().into_iter().map(str::to_owned));
    args.extend(["--artifacts".into(), artifacts("catalog.yaml")]);
    // Defined but referenced nowhere: must not be recorded.
    args.extend(["--artifact".into(), "unused.tag=1.0".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sandbox.ok(&args);
    let inspected: serde_json::Value = serde_json::from_str(&sandbox.ok(&[
        "inspect",
        "company/shop/catalog:1",
        "--output",
        "json",
    ]))
    .expect("json");
    let recorded = inspected["metadata"]["artifacts"].as_array().expect("list");
    let names: Vec<&str> = recorded.iter().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(names, ["catalog-api", "catalog-worker", "search"]);
    let api = &recorded[0];
    assert_eq!(api["fields"]["tag"], "1.20");
    assert_eq!(
        api["fields"]["ref"],
        "registry.example.com/shop/catalog-api@sha256:6b3a55e0261b0304143f805a24924d0c1c44524821305f31d9277843b8a10f4e"
    );
    assert_eq!(api["sources"]["digest"], "catalog.yaml");
    assert_eq!(api["sources"]["ref"], "derived");
    assert_eq!(recorded[1]["sources"]["digest"], "catalog.yaml");
    assert_eq!(recorded[2]["fields"]["uri"], "registry.example.com/shop/search:v8.13.4");
}

/// Issue 16: the seed's release manifest builds with `package_version: null` (a field without
/// a value), and a manifest's own version and description are kept in the release metadata.
#[test]
fn a_release_manifest_with_null_fields_builds_and_keeps_its_version_and_description() {
    let sandbox = Sandbox::new();
    let project = sandbox.project("storefront");
    let manifest = sandbox.path().join("tachyon-release.yaml");
    let text = std::fs::read_to_string(harness::testdata().join("artifacts/release-manifest.yaml"))
        .expect("manifest")
        .replace(
            "release: 2024.05.01",
            "version: 2024.05.01-rc.1\ndescription: Spring catalog release",
        )
        .replace("package_version: 5.0.0", "package_version: null");
    std::fs::write(&manifest, text).expect("write");
    let mut args: Vec<String> = vec!["build".into(), "-C".into(), project.display().to_string()];
    args.extend(harness::pinned().into_iter().map(str::to_owned));
    for source in ["forge-artifacts.yaml", "component-tags.json", "polyrepo-release.json"] {
        args.extend(["--artifacts".to_owned(), artifacts(source)]);
    }
    args.extend(["--artifacts".to_owned(), manifest.display().to_string()]);
    args.extend([
        "--artifact".into(),
        "frontend.digest=sha256:9e2d6c1b7a4f8e3d5c9b1a7f3e5d9c1b7a3f5e9d1c7b3a5f9e1d7c3b5a9f1e7d"
            .into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sandbox.ok(&args);
    let inspected: serde_json::Value = serde_json::from_str(&sandbox.ok(&[
        "inspect",
        "company/shop/storefront:1",
        "--output",
        "json",
    ]))
    .expect("json");
    let manifests = &inspected["metadata"]["manifests"];
    let tachyon = manifests
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["file"] == "tachyon-release.yaml")
        .expect("the manifest is recorded");
    assert_eq!(tachyon["version"], "2024.05.01-rc.1");
    assert_eq!(tachyon["description"], "Spring catalog release");
}
