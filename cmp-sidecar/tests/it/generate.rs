//! Generating manifests from pointers: output, pinning, cache, concurrency, errors.

use serde_json::Value;

use crate::argo::{self, Env, argo_parse, failure, pointer};

const APP: &str = "envs/dev/auth-service";

/// Where the cache keeps the output rendered from release `digest`.
fn rendered_entry(env: &Env, digest: &forge_release::Digest) -> std::path::PathBuf {
    env.cache().join("rendered").join(format!("{}.stream", digest.hex()))
}

/// Release `a` published and generated once through an unpinned pointer (so cached): the
/// release, the GitOps repository and that first output.
fn generated_once(
    env: &Env,
) -> (forge_store::publish::Published, std::path::PathBuf, std::process::Output) {
    let published = env.publish('a', argo::sample());
    let repo = env.gitops(&pointer('a', None));
    let good = env.generate(&repo, APP, &[]);
    (published, repo, good)
}

/// The cache's one record of the release an image holds at a commit.
fn commit_record(env: &Env) -> std::path::PathBuf {
    let records: Vec<_> = std::fs::read_dir(env.cache().join("commits"))
        .expect("records")
        .map(|e| e.expect("record").path())
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    records.into_iter().next().expect("a record")
}

#[test]
fn prints_every_object_of_the_pinned_release_as_argo_reads_it() {
    let env = Env::new();
    let published = env.publish('a', argo::sample());
    let repo = env.gitops(&pointer('a', Some(published.digest.as_str())));
    let objects = argo_parse(&env.generate(&repo, APP, &[]));
    let names: Vec<(&str, &str)> = objects
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap_or_default(),
                o["metadata"]["name"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(names, [("Namespace", "auth"), ("Deployment", "api"), ("ConfigMap", "settings")]);
    assert_eq!(
        objects[2]["data"]["enabled"], "yes",
        "a YAML 1.1 boolean-looking string stays a string"
    );
    assert!(objects[0]["metadata"].get("annotations").is_none(), "annotations only when asked");
}

#[test]
fn output_is_identical_for_the_same_pointer_and_annotations_are_opt_in() {
    let env = Env::new();
    env.publish('a', argo::sample());
    let repo = env.gitops(&pointer('a', None));
    let first = env.generate(&repo, APP, &[]);
    let second = env.generate(&repo, APP, &[]);
    assert_eq!(first.stdout, second.stdout);

    let annotated = argo_parse(&env.generate(&repo, APP, &[("ARGOCD_ENV_FORGE_ANNOTATE", "true")]));
    let notes = &annotated[1]["metadata"]["annotations"];
    assert_eq!(
        notes["forge.dev/release"],
        format!("company/monorepo/auth-service/{}", "a".repeat(40))
    );
    assert_eq!(notes["forge.dev/release-number"], "1");
    let bad = failure(&env.generate(&repo, APP, &[("PARAM_ANNOTATE", "sometimes")]));
    assert!(
        bad.contains("invalid setting PARAM_ANNOTATE=`sometimes`: expected true or false"),
        "{bad}"
    );
}

#[test]
fn matches_forge_pack_render_of_the_same_project() {
    let env = Env::new();
    let project = argo::example_project(&env);
    let store = format!("oci:{}", env.store_root().display());
    let commit = "c".repeat(40);
    let dir = project.to_str().expect("utf-8");
    argo::forge_pack(
        &store,
        &["build", "-C", dir, "--commit", &commit, "--commit-time", "2024-05-01T12:00:00Z"],
    );
    let rendered: Vec<Value> = serde_json::from_slice(&argo::forge_pack(
        &store,
        &["render", "-C", dir, "--output", "json"],
    ))
    .expect("json");

    let repo = env.gitops(&pointer('c', None));
    assert_eq!(argo_parse(&env.generate(&repo, APP, &[])), rendered);
}

#[test]
fn a_warm_cache_needs_no_store() {
    let env = Env::new();
    env.publish('a', argo::sample());
    let repo = env.gitops(&pointer('a', None));
    let cold = env.generate(&repo, APP, &[]);
    argo_parse(&cold);
    std::fs::remove_dir_all(env.store_root()).expect("remove the store");
    let warm = env.generate(&repo, APP, &[]);
    assert_eq!(warm.stdout, cold.stdout, "{}", String::from_utf8_lossy(&warm.stderr));
}

#[test]
fn a_damaged_cache_entry_is_fetched_again_not_trusted() {
    let env = Env::new();
    let (published, repo, good) = generated_once(&env);
    let manifest_blob = env.cache().join("blobs/sha256").join(published.digest.hex());
    let bytes = std::fs::read(&manifest_blob).expect("cached manifest");
    std::fs::write(&manifest_blob, &bytes[..bytes.len() / 2])
        .expect("truncate, as a kill mid-write would");
    std::fs::write(env.cache().join("blobs/sha256/.tmp-leftover"), b"partial")
        .expect("stray temp file");
    // The rendered output is cached too; damage its seal line (as a torn write would): a miss
    // found before anything is written, so the release itself is read again.
    let rendered = rendered_entry(&env, &published.digest);
    let mut output = std::fs::read(&rendered).expect("rendered cache");
    output[5] ^= 1;
    std::fs::write(&rendered, &output).expect("damage");
    let again = env.generate(&repo, APP, &[]);
    assert_eq!(again.stdout, good.stdout);
    assert_eq!(
        std::fs::read(&manifest_blob).expect("repaired"),
        bytes,
        "the cache entry was repaired"
    );
}

/// Issue 14: whoever can write the cache volume cannot get an object into Argo CD. A rendered
/// output is sealed with a key kept off that volume: a forged stream under the genuine seal is
/// caught before a byte of it is written, and a forged seal (made with another key, or claiming
/// the sidecar's) is a miss: the release itself is rendered again.
#[test]
fn a_forged_rendered_output_in_the_cache_injects_nothing() {
    let env = Env::new();
    let published = env.publish('a', argo::sample());
    let repo = env.gitops(&pointer('a', Some(published.digest.as_str())));
    let good = env.generate(&repo, APP, &[]);
    let rendered = rendered_entry(&env, &published.digest);
    let original = std::fs::read(&rendered).expect("rendered cache");
    let newline = original.iter().position(|b| *b == b'\n').expect("seal line");
    let seal_line = std::str::from_utf8(&original[..newline]).expect("seal line");
    let stream = &original[newline + 1..];
    assert_eq!(stream.len(), good.stdout.len(), "the file is a seal line, then the output");
    let readable = stream.windows(b"apiVersion".len()).any(|w| w == b"apiVersion");
    assert!(!readable, "sealed: the cache volume holds no readable object");
    let injected = "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: pwned}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: User, name: mallory}]\n";
    // The same length as the genuine output: only the seal's tags can tell.
    let padding = stream.len() - injected.len() - 2;
    let forged = format!("{injected}#{}\n", "x".repeat(padding));
    assert_eq!(forged.len(), stream.len());
    std::fs::write(&rendered, format!("{seal_line}\n{forged}")).expect("forge");
    let refused = env.generate(&repo, APP, &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "a forged output must fail the generate");
    assert!(stderr.contains("does not match its release"), "{stderr}");
    assert!(refused.stdout.is_empty(), "nothing of it was written");
    assert!(!rendered.exists(), "the forged entry is removed");
    let again = env.generate(&repo, APP, &[]);
    assert_eq!(again.stdout, good.stdout, "the next generate renders the release again");

    // A seal of the forger's own making: with another key, or claiming the sidecar's.
    let dir = tempfile::tempdir().expect("dir");
    let forger_key = dir.path().join("forger.key");
    std::fs::write(&forger_key, [9u8; 32]).expect("key");
    let key =
        forge_cmp::seal::SealKey::load(&forge_cmp::seal::KeySource::File(forger_key), &env.cache())
            .expect("load")
            .expect("key");
    let identity = ("a".repeat(40), "company/auth-service");
    let (seal, sealed) =
        key.seal(&published.digest, (&identity.0, identity.1), &[forged.as_bytes()]).expect("seal");
    let own_seal = serde_json::to_string(&seal).expect("json");
    let genuine_id = serde_json::from_str::<Value>(seal_line).expect("seal")["key"].clone();
    let mut claimed = serde_json::from_str::<Value>(&own_seal).expect("seal");
    claimed["key"] = genuine_id;
    for seal in [own_seal, claimed.to_string()] {
        std::fs::write(&rendered, [format!("{seal}\n").as_bytes(), &sealed].concat())
            .expect("forge");
        let served = env.generate(&repo, APP, &[]);
        assert_eq!(served.stdout, good.stdout, "{}", String::from_utf8_lossy(&served.stderr));
        let entry = std::fs::read(&rendered).expect("entry");
        assert_eq!(entry.len(), original.len(), "the entry was rendered and sealed again");
        assert!(!entry.ends_with(&sealed), "not the forged one");
    }
}

/// Whoever can write the cache volume cannot point an unpinned pointer at a release of their
/// own making, consistent with its own digests (the same commit and name, built elsewhere):
/// its blobs put in the cache and the commit's record rewritten to name it, with the genuine
/// record's seal or none, it is not served; the release is read from its store again.
#[test]
fn a_forged_commit_record_in_the_cache_names_no_release() {
    let env = Env::new();
    env.publish('a', argo::sample());
    let repo = env.gitops(&pointer('a', None));
    let good = env.generate(&repo, APP, &[]);
    let elsewhere = Env::new();
    let evil = vec![argo::object("v1", "ConfigMap", Some("auth"), "pwned")];
    let forged = elsewhere.publish('a', evil);
    let blobs = env.cache().join("blobs/sha256");
    let mut dirs = vec![elsewhere.store_root()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("store").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if dir.ends_with("blobs/sha256") {
                std::fs::copy(&path, blobs.join(entry.file_name())).expect("copy blob");
            }
        }
    }
    assert!(blobs.join(forged.digest.hex()).is_file(), "the forged release is in the cache");
    let record = commit_record(&env);
    let genuine = std::fs::read_to_string(&record).expect("record");
    let (digest, seal) = genuine.split_once('\n').expect("digest line");
    for text in [format!("{}\n{seal}", forged.digest), format!("{}\n", forged.digest)] {
        std::fs::write(&record, text).expect("forge");
        let served = env.generate(&repo, APP, &[]);
        assert_eq!(served.stdout, good.stdout, "{}", String::from_utf8_lossy(&served.stderr));
        let now = std::fs::read_to_string(&record).expect("record");
        assert!(now.starts_with(digest), "the record names the genuine release again");
    }
}

/// Whoever can write the cache volume cannot hang a generate: FIFOs planted where the cached
/// output and the commit's record are looked for are not waited on (a miss, then the release).
#[test]
fn fifos_planted_in_the_cache_do_not_hang_a_generate() {
    let env = Env::new();
    let (published, repo, good) = generated_once(&env);
    let rendered = rendered_entry(&env, &published.digest);
    let record = commit_record(&env);
    for path in [&rendered, &record] {
        std::fs::remove_file(path).expect("remove");
        let made = std::process::Command::new("mkfifo").arg(path).status().expect("mkfifo");
        assert!(made.success());
    }
    let mut child = env
        .command(&repo, APP, &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("generate is blocked on a FIFO in the cache");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("output");
    assert_eq!(output.stdout, good.stdout, "{}", String::from_utf8_lossy(&output.stderr));
}

/// The sealing key lives off the cache volume, in the sidecar's own `/tmp` by default: after a
/// restart with a fresh one, the cache's records no longer open; each release is asked of its
/// store once more (which image holds which release is not taken from the cache unsealed),
/// rendered from the cached blobs and sealed with the new key; then no store is needed.
#[test]
fn a_new_sealing_key_renders_again_from_the_cached_release() {
    let env = Env::new();
    env.publish('a', argo::sample());
    let repo = env.gitops(&pointer('a', None));
    let keys = tempfile::tempdir().expect("keys");
    let (first, second) = (keys.path().join("first"), keys.path().join("second"));
    std::fs::write(&first, [1u8; 32]).expect("key");
    std::fs::write(&second, "ab".repeat(32)).expect("key");
    let with = |key: &std::path::Path| {
        let output =
            env.generate(&repo, APP, &[("FORGE_CMP_CACHE_KEY_FILE", key.to_str().expect("utf-8"))]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        output.stdout
    };
    let cold = with(&first);
    let rendered = std::fs::read_dir(env.cache().join("rendered")).expect("rendered").count();
    assert_eq!(rendered, 1);
    assert_eq!(with(&second), cold);
    std::fs::remove_dir_all(env.store_root()).expect("remove the store");
    assert_eq!(with(&second), cold);
    let stale =
        env.generate(&repo, APP, &[("FORGE_CMP_CACHE_KEY_FILE", first.to_str().expect("utf-8"))]);
    assert!(!stale.status.success(), "records sealed with another key are not taken");

    // A key file in the cache volume is refused: whoever writes the volume could read it.
    let inside = env.cache().join("key");
    std::fs::write(&inside, [1u8; 32]).expect("key");
    let stderr = failure(&env.generate(
        &repo,
        APP,
        &[("FORGE_CMP_CACHE_KEY_FILE", inside.to_str().expect("utf-8"))],
    ));
    assert!(stderr.contains("must not be in the cache volume"), "{stderr}");
}

/// A cached output damaged in place (same size, one byte flipped) is caught before that
/// segment is written: that generate fails, and the next renders the release again.
#[test]
fn a_cached_output_damaged_in_place_fails_once_then_is_read_again() {
    let env = Env::new();
    let (published, repo, good) = generated_once(&env);
    let rendered = rendered_entry(&env, &published.digest);
    let mut output = std::fs::read(&rendered).expect("rendered cache");
    let last = output.len() - 2;
    output[last] ^= 1;
    std::fs::write(&rendered, &output).expect("damage");
    let damaged = env.generate(&repo, APP, &[]);
    assert!(!damaged.status.success());
    assert!(String::from_utf8_lossy(&damaged.stderr).contains("has been removed"));
    let again = env.generate(&repo, APP, &[]);
    assert_eq!(again.stdout, good.stdout, "{}", String::from_utf8_lossy(&again.stderr));
}

#[test]
fn concurrent_cold_generates_all_succeed_with_the_same_output() {
    let env = Env::new();
    env.publish('a', argo::sample());
    let repo = env.gitops(&pointer('a', None));
    let outputs: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            (0..6).map(|_| scope.spawn(|| env.generate(&repo, APP, &[]))).collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let first = argo_parse(&outputs[0]);
    for output in &outputs {
        assert_eq!(argo_parse(output), first);
    }
}

#[test]
fn pins_that_disagree_with_the_release_are_refused() {
    let env = Env::new();
    let a = env.publish('a', argo::sample());
    let b = env.publish('b', vec![argo::object("v1", "ConfigMap", Some("auth"), "other")]);
    // The pin names a real release, but of another commit.
    let repo = env.gitops(&pointer('a', Some(b.digest.as_str())));
    let stderr = failure(&env.generate(&repo, APP, &[]));
    assert!(
        stderr.contains(&format!("pinned digest {} does not match the release tagged", b.digest)),
        "{stderr}"
    );
    assert!(stderr.contains(a.digest.as_str()), "{stderr}");
}

#[test]
fn missing_releases_pointers_and_bad_pointers_fail_with_empty_stdout() {
    let env = Env::new();
    env.publish('a', argo::sample());
    let repo = env.gitops(&pointer('f', None));
    let stderr = failure(&env.generate(&repo, APP, &[]));
    assert!(
        stderr.contains(&format!("no release for commit {} in oci:", "f".repeat(40))),
        "{stderr}"
    );

    std::fs::remove_file(repo.join(APP).join("release.yaml")).expect("rm");
    let stderr = failure(&env.generate(&repo, APP, &[]));
    assert!(stderr.contains("no ReleasePointer found"), "{stderr}");
    assert!(stderr.contains("refusing to render zero objects"), "{stderr}");

    std::fs::write(
        repo.join(APP).join("release.yaml"),
        pointer('a', None).replace("commit: ", "commit: x"),
    )
    .expect("bad");
    let stderr = failure(&env.generate(&repo, APP, &[]));
    assert!(stderr.contains("invalid ReleasePointer release.yaml: spec.commit"), "{stderr}");

    std::fs::write(repo.join(APP).join("release.yaml"), pointer('a', None)).expect("good");
    std::fs::write(repo.join(APP).join("copy.yml"), pointer('a', None)).expect("duplicate");
    let stderr = failure(&env.generate(&repo, APP, &[]));
    assert!(stderr.contains("copy.yml and release.yaml both point at"), "{stderr}");

    let stderr =
        failure(&env.generate(&repo, APP, &[("ARGOCD_ENV_FORGE_POINTER", "missing.yaml")]));
    assert!(stderr.contains("cannot read pointer file"), "{stderr}");
    let ok = env.generate(&repo, APP, &[("ARGOCD_ENV_FORGE_POINTER", "release.yaml")]);
    assert_eq!(argo_parse(&ok).len(), 3);
}

#[test]
fn the_cache_stays_under_its_size_limit_by_evicting_the_least_recently_used() {
    let env = Env::new();
    env.publish('a', argo::sample());
    env.publish('b', vec![argo::object("v1", "ConfigMap", Some("auth"), "other")]);
    let size = |dir: &std::path::Path| -> u64 {
        ["blobs/sha256", "rendered"]
            .iter()
            .filter_map(|sub| std::fs::read_dir(dir.join(sub)).ok())
            .flatten()
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    };
    let repo_a = env.gitops(&pointer('a', None));
    let first = env.generate(&repo_a, APP, &[]);
    argo_parse(&first);
    let one_release = size(&env.cache());
    // Room for about one release: caching the second evicts the first.
    let limit = (one_release + one_release / 2).to_string();
    let repo_b = env.gitops(&pointer('b', None));
    argo_parse(&env.generate(&repo_b, APP, &[("FORGE_CMP_CACHE_MAX_BYTES", &limit)]));
    assert!(size(&env.cache()) <= one_release + one_release / 2, "the cache grew past its limit");
    let again = env.generate(
        &env.gitops(&pointer('a', None)),
        APP,
        &[("FORGE_CMP_CACHE_MAX_BYTES", &limit)],
    );
    assert_eq!(again.stdout, first.stdout, "an evicted release is fetched again");
}

/// Whoever can write the cache volume cannot have the sidecar delete files elsewhere: a cache
/// directory replaced by a link to another directory is not evicted from.
#[test]
fn eviction_does_not_follow_a_link_out_of_the_cache() {
    let env = Env::new();
    env.publish('a', argo::sample());
    let repo = env.gitops(&pointer('a', None));
    argo_parse(&env.generate(&repo, APP, &[]));
    let elsewhere = env.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("dir");
    let precious = elsewhere.join("precious");
    std::fs::write(&precious, vec![1u8; 64 << 10]).expect("write");
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1);
    std::fs::File::options()
        .write(true)
        .open(&precious)
        .expect("open")
        .set_modified(old)
        .expect("age");
    let rendered = env.cache().join("rendered");
    std::fs::remove_dir_all(&rendered).expect("remove");
    std::os::unix::fs::symlink(&elsewhere, &rendered).expect("link");
    argo_parse(&env.generate(&repo, APP, &[("FORGE_CMP_CACHE_MAX_BYTES", "1")]));
    assert!(precious.exists(), "a file outside the cache was evicted");
}

#[test]
fn a_store_that_does_not_answer_in_time_fails_within_the_budget() {
    let env = Env::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    // Accepts connections and never answers, like a hung registry.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let text = pointer('a', None)
        .replace(&format!("image: {}", argo::IMAGE), &format!("image: {addr}/{}", argo::IMAGE));
    let started = std::time::Instant::now();
    let stderr =
        failure(&env.generate(&env.gitops(&text), APP, &[("FORGE_CMP_TIMEOUT_SECONDS", "2")]));
    assert!(stderr.contains("gave up after 2 s"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "the budget bounds the wait");
}

/// Files forge-pack writes reach Argo CD byte for byte; a file the line reader cannot vouch
/// for (here a flow mapping, and a YAML 1.1 boolean) is parsed and written as JSON, which no
/// YAML version reads two ways. PyYAML, a YAML 1.1 reader like Argo CD's, sees the same
/// objects as forge-pack.
#[test]
fn plain_files_pass_through_and_others_are_written_as_json() {
    let env = Env::new();
    let mut files = argo::sample();
    let id = forge_release::objects::ObjectId {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some("auth".into()),
        name: "flow".into(),
    };
    let flow = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: flow, namespace: auth}\ndata:\n  enabled: yes\n";
    files.push(
        forge_release::objects::ResourceFile::new(id, flow.as_bytes().to_vec()).expect("object"),
    );
    let published = env.publish('a', files.clone());
    let repo = env.gitops(&pointer('a', Some(published.digest.as_str())));
    let output = env.generate(&repo, APP, &[]);
    let stdout = String::from_utf8(output.stdout.clone()).expect("utf-8");
    for file in &files[..3] {
        let text = std::str::from_utf8(&file.content).expect("utf-8");
        assert!(
            stdout.contains(&format!("---\n{text}")),
            "{text} is not passed through:\n{stdout}"
        );
    }
    assert!(
        stdout.contains(r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"flow","namespace":"auth"},"data":{"enabled":"yes"}}"#),
        "{stdout}"
    );
    let objects = argo_parse(&output);
    assert_eq!(objects.len(), 4);
    assert_eq!(forge_testkit::yaml_1_1_reading(&stdout), Value::Array(objects));
}

/// A ConfigMap whose `nested` field holds mappings down to `depth` levels, counting the
/// object itself; written in block style, so forge-cmp parses it when annotating.
fn nested_config_map(depth: usize) -> forge_release::objects::ResourceFile {
    let mut text = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\n  namespace: auth\nnested:\n",
    );
    for level in 1..depth - 1 {
        text.push_str(&"  ".repeat(level));
        text.push_str("a:\n");
    }
    text.push_str(&"  ".repeat(depth - 1));
    text.push_str("end: true\n");
    let id = forge_release::objects::ObjectId {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some("auth".into()),
        name: "deep".into(),
    };
    forge_release::objects::ResourceFile::new(id, text.into_bytes()).expect("object")
}

#[test]
fn objects_nested_to_the_limit_are_generated_and_deeper_ones_refused() {
    let limit = forge_release::yaml::MAX_NESTING;
    let annotate = [("ARGOCD_ENV_FORGE_ANNOTATE", "true")];
    let env = Env::new();
    let mut files = argo::sample();
    files.push(nested_config_map(limit));
    env.publish('a', files);
    let objects = argo_parse(&env.generate(&env.gitops(&pointer('a', None)), APP, &annotate));
    let deep = objects.iter().find(|o| o["metadata"]["name"] == "deep").expect("the deep object");
    assert!(deep["metadata"]["annotations"].is_object(), "annotated, so parsed: {deep}");
    let mut value = &deep["nested"];
    let mut depth = 2;
    while let Some(inner) = value.get("a") {
        value = inner;
        depth += 1;
    }
    assert_eq!((depth, &value["end"]), (limit, &Value::Bool(true)));

    let mut files = argo::sample();
    files.push(nested_config_map(limit + 1));
    env.publish('b', files);
    let error = failure(&env.generate(&env.gitops(&pointer('b', None)), APP, &annotate));
    assert!(error.contains("nested more than 100 levels deep, the most accepted"), "{error}");
}

/// Issue 14: a full disk is when eviction matters most. With the cache's volume full of old
/// entries, a cold generate still succeeds, the oldest entries make room, and the new release
/// is cached. (A private tmpfs in a user and mount namespace of its own stands for the volume.)
#[test]
fn a_full_cache_volume_makes_room_by_evicting_the_oldest_entries() {
    let env = Env::new();
    let published = env.publish('a', argo::sample());
    let repo = env.gitops(&pointer('a', Some(published.digest.as_str())));
    let out = env.dir.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let generate = env.command(&repo, APP, &[]);
    let script = r#"set -e
mount -t tmpfs -o size=256k tmpfs "$FORGE_CMP_CACHE_DIR"
mkdir -p "$FORGE_CMP_CACHE_DIR/blobs/sha256"
i=0
while dd if=/dev/zero of="$FORGE_CMP_CACHE_DIR/blobs/sha256/old$i" bs=16k count=1 2>/dev/null; do
  touch -d 2001-01-01 "$FORGE_CMP_CACHE_DIR/blobs/sha256/old$i"; i=$((i+1))
done
ls "$FORGE_CMP_CACHE_DIR/blobs/sha256" | wc -l > "$OUT/before"
"$FORGE_CMP" generate > "$OUT/stdout" 2> "$OUT/stderr"
ls "$FORGE_CMP_CACHE_DIR/blobs/sha256" "$FORGE_CMP_CACHE_DIR/rendered" > "$OUT/after"
"#;
    let mut command = std::process::Command::new("unshare");
    command.args(["--user", "--map-root-user", "--mount", "sh", "-c", script]);
    command.env_clear();
    for (key, value) in generate.get_envs() {
        if let Some(value) = value {
            command.env(key, value);
        }
    }
    std::fs::create_dir_all(env.cache()).expect("cache mount point");
    let status = command
        .current_dir(generate.get_current_dir().expect("app dir"))
        .env("FORGE_CMP", env!("CARGO_BIN_EXE_forge-cmp"))
        .env("OUT", &out)
        .status()
        .expect("unshare (util-linux) is required for this test");
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default();
    assert!(status.success(), "generate on a full volume failed: {}", read("stderr"));
    let objects = crate::argo::parse_stream(read("stdout").as_bytes());
    assert_eq!(objects.len(), 3, "{}", read("stderr"));
    let after = read("after");
    assert!(after.contains(published.digest.hex()), "the release was cached: {after}");
    assert!(after.contains(".stream"), "its output was cached: {after}");
    let before: usize = read("before").trim().parse().expect("count");
    let old_left = after.lines().filter(|l| l.starts_with("old")).count();
    assert!(old_left < before, "old entries were evicted ({before} -> {old_left})");
}
