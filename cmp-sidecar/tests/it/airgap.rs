//! Issue 18: a release carried to a site without network access. Two real registries: the
//! build site's holds the container images (placed there by skopeo from small local
//! layouts, one of them multi-platform) and the signed release; `export --images` writes one
//! archive; the build registry is stopped; `import` fills the site's registry; forge-cmp,
//! trusting the signing key, renders the release from there.

use std::path::Path;
use std::process::Command;

use forge_release::Digest;
use forge_testkit::{Registry, RegistryKind, ecdsa_key_pair};
use serde_json::{Value, json};

use crate::argo::{Env, argo_parse, forge_pack, push_project, render_project, write_pointer};

const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Writes `bytes` as a blob of the layout at `dir`; its descriptor.
fn blob(dir: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let digest = Digest::of(bytes);
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir");
    std::fs::write(blobs.join(digest.hex()), bytes).expect("blob");
    json!({ "mediaType": media_type, "digest": digest.to_string(), "size": bytes.len() })
}

/// A one-layer image for `arch` in the layout at `dir`; its manifest's descriptor.
fn image(dir: &Path, arch: &str, content: &str) -> Value {
    let layer = format!("{content} for {arch}").into_bytes();
    let diff_id = Digest::of(&layer).to_string();
    let layer = blob(dir, LAYER, &layer);
    let config = json!({
        "architecture": arch, "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": [diff_id] }
    });
    let config =
        blob(dir, "application/vnd.oci.image.config.v1+json", config.to_string().as_bytes());
    let manifest =
        json!({ "schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": [layer] });
    let mut descriptor = blob(dir, MANIFEST, manifest.to_string().as_bytes());
    descriptor["platform"] = json!({ "architecture": arch, "os": "linux" });
    descriptor
}

/// An OCI layout at `dir` whose `tag` names `descriptor`.
fn layout(dir: &Path, tag: &str, mut descriptor: Value) {
    descriptor["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("layout");
    let index = json!({ "schemaVersion": 2, "manifests": [descriptor] });
    std::fs::write(dir.join("index.json"), index.to_string()).expect("index");
}

fn skopeo(args: &[&str]) -> Vec<u8> {
    let output = Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo is required: `make test` installs it");
    assert!(
        output.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The digest of the manifest `reference` names, read back from its registry.
fn registry_digest(reference: &str) -> Digest {
    Digest::of(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]))
}

#[test]
fn an_exported_release_with_its_images_renders_from_a_second_registry() {
    let mut build_site = Registry::start(RegistryKind::Plain);
    let site = Registry::shared(RegistryKind::Plain).unique_root("airgap-site");
    let env = Env::new();
    let work = env.dir.path();
    let build_root = format!("{}/team", build_site.addr);

    // The images: `api` single-platform, `web` an index of two platforms.
    let (api_layout, web_layout) = (work.join("api-layout"), work.join("web-layout"));
    layout(&api_layout, "v1", image(&api_layout, "amd64", "api"));
    let platforms = vec![image(&web_layout, "amd64", "web"), image(&web_layout, "arm64", "web")];
    let index = json!({ "schemaVersion": 2, "mediaType": INDEX, "manifests": platforms });
    layout(&web_layout, "2.0", blob(&web_layout, INDEX, index.to_string().as_bytes()));
    let api = format!("{build_root}/api");
    let web = format!("{build_root}/web");
    let oci = |dir: &Path, tag: &str| format!("oci:{}:{tag}", dir.display());
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &oci(&api_layout, "v1"),
        &format!("docker://{api}:v1"),
    ]);
    skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &oci(&web_layout, "2.0"),
        &format!("docker://{web}:2.0"),
    ]);
    let api_digest = registry_digest(&format!("{api}:v1"));
    let web_digest = registry_digest(&format!("{web}:2.0"));

    // A signed release that runs `api` by digest and `web` by tag.
    let project = crate::argo::example_project(&env);
    let deployment = project.join("templates/deployment.yaml");
    let text = std::fs::read_to_string(&deployment).expect("deployment");
    let pinned = text.lines().find_map(|l| l.trim().strip_prefix("image: ")).expect("image");
    std::fs::write(&deployment, text.replace(pinned, &format!("{api}@{api_digest}")))
        .expect("edit");
    std::fs::write(
        project.join("templates/worker.yaml"),
        format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: worker\n  namespace: auth\nspec:\n  schedule: '@hourly'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n            - name: web\n              image: {web}:2.0\n"
        ),
    )
    .expect("template");
    let (key, public) = ecdsa_key_pair(work, "ci");
    let commit = "e".repeat(40);
    let dir = project.to_str().expect("utf-8");
    let key_path = key.display().to_string();
    push_project(&build_root, dir, &commit, &["--sign-key", &key_path]);
    let rendered = render_project(&build_root, dir);

    let archive = work.join("release.tar");
    let archive_path = archive.to_str().expect("utf-8");
    let exported: Value = serde_json::from_slice(&forge_pack(
        &build_root,
        &[
            "export",
            "company/monorepo/auth-service:1",
            "--images",
            "--out",
            archive_path,
            "-o",
            "json",
        ],
    ))
    .expect("json");
    assert!(exported["signatures"].as_u64().expect("signatures") >= 1, "{exported}");
    let images = exported["images"].as_array().expect("images");
    assert_eq!(images.len(), 2, "{exported}");
    let carried_web = images.iter().find(|i| i["image"] == format!("{web}:2.0")).expect("web");
    assert_eq!(carried_web["digest"], web_digest.to_string());
    assert_eq!(carried_web["resolvedFrom"], "2.0");

    // The build site is gone: everything below reads the archive and the site's registry.
    build_site.stop();
    let imported: Value =
        serde_json::from_slice(&forge_pack(&site, &["import", archive_path, &site, "-o", "json"]))
            .expect("json");
    let mirror = format!("{site}/{}/team", build_site.addr.replace(':', "_"));
    assert_eq!(registry_digest(&format!("{mirror}/web@{web_digest}")), web_digest, "{imported}");
    assert_eq!(registry_digest(&format!("{mirror}/web:2.0")), web_digest);
    assert_eq!(registry_digest(&format!("{mirror}/api@{api_digest}")), api_digest);
    // Every platform came along (skopeo compressed the layers on the way in: the digests
    // are the registry's, not the layout's).
    let raw = format!("docker://{mirror}/web@{web_digest}");
    let index: Value =
        serde_json::from_slice(&skopeo(&["inspect", "--raw", "--tls-verify=false", &raw]))
            .expect("index");
    let platform = index["manifests"][1]["digest"].as_str().expect("digest");
    skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{mirror}/web@{platform}"),
    ]);
    let mirrored: Vec<&str> = imported["images"]
        .as_array()
        .expect("images")
        .iter()
        .filter_map(|i| i["mirror"].as_str())
        .collect();
    assert!(mirrored.contains(&format!("{mirror}/web@{web_digest}").as_str()), "{imported}");

    // forge-cmp at the site, trusting only the build's key, renders what was built.
    let gitops = work.join("gitops");
    let app = "envs/prod/auth-service";
    let image = format!("{site}/company/monorepo/auth-service");
    write_pointer(&gitops, app, "auth-service", &image, &commit);
    let trusted = public.display().to_string();
    let generated = env.generate(&gitops, app, &[("FORGE_CMP_TRUSTED_KEYS", trusted.as_str())]);
    assert_eq!(argo_parse(&generated), rendered);

    // Run again, the import uploads nothing.
    let again: Value =
        serde_json::from_slice(&forge_pack(&site, &["import", archive_path, &site, "-o", "json"]))
            .expect("json");
    assert_eq!(again["releases"][0]["blobsUploaded"], 0, "{again}");
    assert!(
        again["images"].as_array().expect("images").iter().all(|i| i["blobsUploaded"] == 0),
        "{again}"
    );
}
