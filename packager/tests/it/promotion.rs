//! Issue 18: a registry that received a release by some of its tags (a promotion copies `2`
//! or `v1.2.3`, not the commit) lists it, once per release with all its tags there, and
//! deploys it; a push that stopped before its commit tag still shows as incomplete.

use std::path::{Path, PathBuf};
use std::process::Command;

use forge_testkit::{Registry, RegistryKind, crane_copy};
use serde_json::Value;

use crate::harness::{Sandbox, push_args};

#[test]
fn a_release_copied_by_number_or_alias_is_listed_and_deployable() {
    let registry = Registry::shared(RegistryKind::Plain);
    let (source, production) =
        (registry.unique_root("promote-src"), registry.unique_root("promote-dst"));
    let sandbox = Sandbox::new();
    let project = sandbox.project("auth-service");
    let dir = project.to_str().expect("utf-8");
    for (commit, extra) in [('1', &[][..]), ('2', &["--tag", "auth-service/v1.2.3"][..])] {
        let commit = commit.to_string().repeat(40);
        let mut args = push_args(dir, &commit);
        args.extend(extra);
        let pushed = sandbox.command(&args).env("FORGE_REGISTRY", &source).output().expect("push");
        assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));
    }
    let repo = |root: &str| format!("{root}/company/monorepo/auth-service");
    // Release 2 promoted by number and by its version; release 1 by its branch alias only.
    for tag in ["2", "v1.2.3", "main-1"] {
        crane_copy(&format!("{}:{tag}", repo(&source)), &format!("{}:{tag}", repo(&production)));
    }
    let listed =
        sandbox.command(&["list", &repo(&production), "-o", "json"]).output().expect("list");
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let listed: Vec<Value> = serde_json::from_slice(&listed.stdout).expect("json");
    let summary: Vec<(u64, Vec<String>, String)> = listed
        .iter()
        .map(|r| {
            let aliases = serde_json::from_value(r["aliases"].clone()).expect("aliases");
            (
                r["number"].as_u64().expect("number"),
                aliases,
                r["state"].as_str().expect("state").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (2, vec!["2".to_owned(), "v1.2.3".to_owned()], "complete".to_owned()),
            (1, vec!["main-1".to_owned()], "complete".to_owned()),
        ]
    );

    let gitops = sandbox.path().join("gitops");
    std::fs::create_dir_all(&gitops).expect("mkdir");
    std::fs::write(gitops.join("policy.yaml"), "environments:\n  prod: {}\n").expect("policy");
    crate::harness::git(&gitops, &["init", "-q", "-b", "main"]);
    crate::harness::git(&gitops, &["add", "."]);
    crate::harness::git(&gitops, &["commit", "-q", "-m", "policy"]);
    for id in ["v1.2.3", "main-1"] {
        let deployed = sandbox
            .command(&["deploy", "prod", &repo(&production), id, "--actor", "ada"])
            .env("FORGE_GITOPS", &gitops)
            .output()
            .expect("deploy");
        assert!(deployed.status.success(), "{id}: {}", String::from_utf8_lossy(&deployed.stderr));
    }
}

/// Issue 18: `copy --all` brings every release across byte for byte (same numbers, same
/// digests), with its tags and signatures (verified there); run again it uploads nothing; into
/// a repository that has another release under a number it is refused, naming both.
#[test]
fn copy_all_keeps_digests_tags_and_signatures_and_refuses_a_taken_number() {
    let registry = Registry::shared(RegistryKind::Plain);
    let (source, target) = (registry.unique_root("copy-src"), registry.unique_root("copy-dst"));
    let sandbox = Sandbox::new();
    let project = sandbox.project("auth-service");
    let dir = project.to_str().expect("utf-8");
    let (key, public) = forge_testkit::ecdsa_key_pair(sandbox.path(), "ci");
    for (commit, extra) in [('1', vec![]), ('2', vec!["--tag", "auth-service/v1.2.3"])] {
        let commit = commit.to_string().repeat(40);
        let mut args = push_args(dir, &commit);
        args.extend(extra);
        args.extend(["--sign-key", key.to_str().expect("utf-8")]);
        let pushed = sandbox.command(&args).env("FORGE_REGISTRY", &source).output().expect("push");
        assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));
    }
    let repo = |root: &str| format!("{root}/company/monorepo/auth-service");
    let copy = |to: &str| {
        sandbox
            .command(&["copy", &repo(&source), &repo(to), "--all", "-o", "json"])
            .output()
            .expect("copy")
    };
    // Into a repository named after another project: forge-cmp would never render it there.
    let misnamed = sandbox
        .command(&["copy", &repo(&source), &format!("{target}/prod/billing"), "--all"])
        .output()
        .expect("copy");
    let stderr = String::from_utf8_lossy(&misnamed.stderr);
    assert_eq!(misnamed.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not a repository for project `auth-service`"), "{stderr}");
    let first = copy(&target);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let report: Vec<Value> = serde_json::from_slice(&first.stdout).expect("json");
    assert_eq!(report.len(), 2);
    assert!(
        report
            .iter()
            .all(|r| r["blobsUploaded"].as_u64() > Some(0) && r["signatures"].as_u64() > Some(0)),
        "{report:?}"
    );

    let listing = |root: &str| -> Vec<(u64, String, Vec<String>)> {
        let out = sandbox.command(&["list", &repo(root), "-o", "json"]).output().expect("list");
        let listed: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
        listed
            .iter()
            .map(|r| {
                let aliases = serde_json::from_value(r["aliases"].clone()).expect("aliases");
                (
                    r["number"].as_u64().expect("n"),
                    r["digest"].as_str().expect("d").to_owned(),
                    aliases,
                )
            })
            .collect()
    };
    assert_eq!(listing(&target), listing(&source));
    let verified = sandbox
        .command(&[
            "verify",
            &format!("{}:2", repo(&target)),
            "--key",
            public.to_str().expect("utf-8"),
            "-o",
            "json",
        ])
        .output()
        .expect("verify");
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));

    let again = copy(&target);
    let report: Vec<Value> = serde_json::from_slice(&again.stdout).expect("json");
    assert!(
        report.iter().all(|r| r["blobsUploaded"] == 0 && r["tagsAdded"] == serde_json::json!([])),
        "{report:?}"
    );

    // A repository whose release 1 is another one.
    let other = registry.unique_root("copy-taken");
    let nines = "9".repeat(40);
    let mut args = push_args(dir, &nines);
    args.push("--manual");
    let pushed = sandbox.command(&args).env("FORGE_REGISTRY", &other).output().expect("push");
    assert!(pushed.status.success());
    let refused = copy(&other);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("already has release sha256:")
            && stderr.contains("under `1`; this release is sha256:"),
        "{stderr}"
    );

    // A repository that holds another release of commit 1 by an alias only (no number or
    // commit tag to collide with) refuses it too.
    let commit_one = "1".repeat(40);
    let elsewhere = registry.unique_root("copy-elsewhere");
    let mut args = push_args(dir, &commit_one);
    args.push("--manual");
    let pushed = sandbox.command(&args).env("FORGE_REGISTRY", &elsewhere).output().expect("push");
    assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));
    let by_alias = registry.unique_root("copy-by-alias");
    crane_copy(&format!("{}:main-1", repo(&elsewhere)), &format!("{}:rc", repo(&by_alias)));
    let refused = copy(&by_alias);
    assert_eq!(refused.status.code(), Some(6), "{}", String::from_utf8_lossy(&refused.stderr));
}

/// Issue 18: a release exported as one OCI layout tarball imports into another registry with
/// its digest and tags (and again uploads nothing); an archive whose bytes were changed is
/// refused before anything is tagged.
#[test]
fn export_and_import_carry_a_release_to_a_site_without_network_access() {
    let registry = Registry::shared(RegistryKind::Plain);
    let (source, site) = (registry.unique_root("export-src"), registry.unique_root("export-site"));
    let sandbox = Sandbox::new();
    let project = sandbox.project("auth-service");
    let dir = project.to_str().expect("utf-8");
    let commit = "4".repeat(40);
    let archive = push_and_export(&sandbox, dir, &source, &commit);
    let import = |archive: &std::path::Path, to: &str| {
        sandbox
            .command(&["import", archive.to_str().expect("utf-8"), to, "-o", "json"])
            .output()
            .expect("import")
    };
    let imported = import(&archive, &site);
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    let digest_of = |root: &str| {
        let out = sandbox
            .command(&[
                "inspect",
                &format!("{root}/company/monorepo/auth-service:{commit}"),
                "-o",
                "json",
            ])
            .output()
            .expect("inspect");
        let value: Value = serde_json::from_slice(&out.stdout).expect("json");
        (value["digest"].as_str().expect("digest").to_owned(), value["tags"].clone())
    };
    assert_eq!(digest_of(&site), digest_of(&source));
    // The site's release index has it (issue 20).
    let location = forge_release::reference::ProjectLocation::InRoot {
        root: forge_release::reference::StoreRoot::Registry(site.clone()),
        path: "company/monorepo/auth-service".into(),
    };
    let store = forge_store::Store::open(&location, &Default::default()).expect("store");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let (_, index) = rt
        .block_on(forge_store::release_index::read(&store))
        .expect("read")
        .expect("an index at the site");
    assert_eq!(index.get(&commit).map(|e| e.digest.to_string()), Some(digest_of(&site).0));
    let again = import(&archive, &site);
    let report: Value = serde_json::from_slice(&again.stdout).expect("json");
    assert_eq!(report["releases"][0]["blobsUploaded"], 0, "{report:?}");

    // One byte changed in the resources layer: refused (exit 5), nothing tagged there.
    let tampered = rewrite(
        &sandbox,
        &archive,
        "tampered",
        "biggest = max(blobs, key=lambda n: len(blobs[n]))\nblobs[biggest] = bytes([blobs[biggest][0] ^ 1]) + blobs[biggest][1:]",
    );
    let elsewhere = registry.unique_root("export-tampered");
    let refused = import(&tampered, &elsewhere);
    assert_eq!(refused.status.code(), Some(5), "{}", String::from_utf8_lossy(&refused.stderr));
    nothing_listed(&sandbox, &elsewhere);

    // An image entry whose name would climb out of the destination prefix: refused (exit 2)
    // before anything is uploaded.
    let climbing = rewrite(
        &sandbox,
        &archive,
        "climbing",
        "entry = dict(index['manifests'][0])\nentry['annotations'] = {'dev.forge.image.name': 'registry.example.com/../../admin@' + entry['digest']}\nindex['manifests'].append(entry)",
    );
    let elsewhere = registry.unique_root("export-climbing");
    let refused = import(&climbing, &elsewhere);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("which is not an image reference"), "{stderr}");
    nothing_listed(&sandbox, &elsewhere);
}

/// Issue 18: an archive is checked against the releases it holds before anything is
/// written: an image none of them runs (a tag on the site's mirror to take over), or a
/// release whose repository would climb out of the destination, is refused.
#[test]
fn an_archive_is_checked_against_its_releases_before_anything_is_written() {
    let registry = Registry::shared(RegistryKind::Plain);
    let source = registry.unique_root("import-checked-src");
    let sandbox = Sandbox::new();
    let project = sandbox.project("auth-service");
    let dir = project.to_str().expect("utf-8");
    let commit = "5".repeat(40);
    let archive = push_and_export(&sandbox, dir, &source, &commit);
    let import = |archive: &std::path::Path, to: &str| {
        sandbox.command(&["import", archive.to_str().expect("utf-8"), to]).output().expect("import")
    };

    // An image the release does not run, named to take over the site's `nginx:1.25`.
    let smuggled = rewrite(
        &sandbox,
        &archive,
        "smuggled",
        "image = put(b'{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"config\": {\"mediaType\": \"application/vnd.oci.image.config.v1+json\", \"digest\": \"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\", \"size\": 2}, \"layers\": []}')\nput(b'{}')\nindex['manifests'].append({'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'digest': image, 'size': 1, 'annotations': {'dev.forge.image.name': 'docker.io/library/nginx:1.25@' + image}})",
    );
    let site = registry.unique_root("import-smuggled");
    let refused = import(&smuggled, &site);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("which none of its releases runs"), "{stderr}");
    nothing_listed(&sandbox, &site);
    let tags = Command::new("skopeo")
        .args([
            "list-tags",
            "--tls-verify=false",
            &format!("docker://{site}/docker.io/library/nginx"),
        ])
        .output()
        .expect("skopeo");
    assert!(!tags.status.success() || !String::from_utf8_lossy(&tags.stdout).contains("1.25"));

    // A release re-made (every digest recomputed) to live at `../../escape/auth-service`.
    let climbing = rewrite(
        &sandbox,
        &archive,
        "climbing-release",
        "entry = next(e for e in index['manifests'] if len(e.get('annotations', {}).get('org.opencontainers.image.ref.name', '')) == 40)\nmanifest = json.loads(blobs['blobs/sha256/' + entry['digest'][7:]])\nconfig = json.loads(blobs['blobs/sha256/' + manifest['config']['digest'][7:]])\nconfig['repository'] = '../../escape'\ndata = json.dumps(config).encode(); manifest['config']['digest'] = put(data); manifest['config']['size'] = len(data)\nfor layer in manifest['layers']:\n    if layer['mediaType'].endswith('metadata.v1+json'):\n        meta = json.loads(blobs['blobs/sha256/' + layer['digest'][7:]])\n        meta['release']['repository'] = '../../escape'\n        meta['release']['id'] = '../../escape/auth-service/' + meta['source']['commit']\n        data = json.dumps(meta).encode(); layer['digest'] = put(data); layer['size'] = len(data)\nmanifest['annotations']['dev.forge.release.repository'] = '../../escape'\ndata = json.dumps(manifest).encode()\nindex['manifests'] = [dict(e, digest=put(data), size=len(data)) if e.get('digest') == entry['digest'] else e for e in index['manifests']]",
    );
    let site = registry.unique_root("import-climbing");
    let refused = import(&climbing, &site);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("which is not a repository path"), "{stderr}");
}

/// Issue 18: an archive is read as a layout and nothing else: an entry climbing out of the
/// directory, a link, or any other name is refused before anything is written or uploaded.
#[test]
fn an_archive_with_anything_but_a_layout_is_refused() {
    let registry = Registry::shared(RegistryKind::Plain);
    let sandbox = Sandbox::new();
    for (name, member) in [
        (
            "climbs",
            "info = tarfile.TarInfo('../evil'); info.size = 1; t.addfile(info, io.BytesIO(b'x'))",
        ),
        (
            "links",
            "info = tarfile.TarInfo('index.json'); info.type = tarfile.SYMTYPE; info.linkname = '/etc/passwd'; t.addfile(info)",
        ),
        (
            "other",
            "info = tarfile.TarInfo('blobs/sha256/readme'); info.size = 1; t.addfile(info, io.BytesIO(b'x'))",
        ),
    ] {
        let archive = sandbox.path().join(format!("{name}.tar"));
        let script = format!(
            "import tarfile, io\nt = tarfile.open('{}', 'w')\ninfo = tarfile.TarInfo('oci-layout'); data = b'{{\"imageLayoutVersion\": \"1.0.0\"}}'; info.size = len(data); t.addfile(info, io.BytesIO(data))\n{member}\nt.close()\n",
            archive.display()
        );
        assert!(Command::new("python3").args(["-c", &script]).status().expect("python3").success());
        let to = registry.unique_root("import-hostile");
        let refused = sandbox
            .command(&["import", archive.to_str().expect("utf-8"), &to])
            .output()
            .expect("import");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains("is not a forge-pack export: unexpected entry"),
            "{name}: {stderr}"
        );
    }
    assert!(!sandbox.path().join("evil").exists());
}

/// Pushes the project at `dir` to `source` at `commit` and exports release 1; the archive.
fn push_and_export(sandbox: &Sandbox, dir: &str, source: &str, commit: &str) -> PathBuf {
    let pushed = sandbox
        .command(&push_args(dir, commit))
        .env("FORGE_REGISTRY", source)
        .output()
        .expect("push");
    assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));
    let archive = sandbox.path().join("release.tar");
    let reference = format!("{source}/company/monorepo/auth-service:1");
    let exported = sandbox
        .command(&["export", &reference, "--out", archive.to_str().expect("utf-8")])
        .output()
        .expect("export");
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    archive
}

/// A copy of `archive` named `<name>.tar`, rewritten by Python: `edit` runs with `blobs`
/// (member name → bytes), `index` (index.json, parsed) and `put(bytes) -> digest` in scope.
fn rewrite(sandbox: &Sandbox, archive: &Path, name: &str, edit: &str) -> PathBuf {
    let out = sandbox.path().join(format!("{name}.tar"));
    let script = format!(
        "import tarfile, io, json, hashlib\nsrc = tarfile.open('{}')\nblobs = {{m.name: src.extractfile(m).read() for m in src.getmembers()}}\nindex = json.loads(blobs['index.json'])\ndef put(data):\n    d = hashlib.sha256(data).hexdigest()\n    blobs['blobs/sha256/' + d] = data\n    return 'sha256:' + d\n{edit}\nblobs['index.json'] = json.dumps(index).encode()\ndst = tarfile.open('{}', 'w')\nfor n in sorted(blobs):\n    info = tarfile.TarInfo(n); info.size = len(blobs[n]); dst.addfile(info, io.BytesIO(blobs[n]))\ndst.close()\n",
        archive.display(),
        out.display()
    );
    assert!(Command::new("python3").args(["-c", &script]).status().expect("python3").success());
    out
}

/// Asserts that `<root>/company/monorepo/auth-service` lists no release.
fn nothing_listed(sandbox: &Sandbox, root: &str) {
    let listed = sandbox
        .command(&["list", &format!("{root}/company/monorepo/auth-service"), "-o", "json"])
        .output()
        .expect("list");
    assert_eq!(String::from_utf8_lossy(&listed.stdout).trim(), "[]");
}
