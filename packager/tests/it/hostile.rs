//! Issue 14: against a hostile or broken registry, forge-pack stays within its usual memory,
//! fails with the right code, and gives up by its deadline.

use std::time::{Duration, Instant};

use forge_testkit::{HostileRegistry, Reply, fixtures, run_measuring_memory};

use crate::harness::Sandbox;

const PROJECT: &str = "company/monorepo/auth-service";
/// Peak memory allowed against any hostile registry (its normal peak is a few tens of MB).
const MAX_PEAK_KIB: u64 = 300 << 10;

#[test]
fn pulling_from_a_hostile_registry_stays_small_and_fails_cleanly() {
    let release = fixtures::image();
    let sandbox = Sandbox::new();
    let layer = release.manifest.resources().digest.clone();
    let endless = || Reply::Endless {
        status: 200,
        headers: Vec::new(),
        length: None,
        chunk: vec![7; 1 << 20],
    };
    type Misbehave = Box<dyn Fn(&HostileRegistry)>;
    let cases: Vec<(&str, i32, Misbehave)> = vec![
        (
            "an endless blob",
            5,
            Box::new(move |r: &HostileRegistry| {
                r.route("GET", &format!("/v2/{PROJECT}/blobs/{layer}"), endless())
            }),
        ),
        (
            "a manifest claiming 2 GiB",
            4,
            Box::new(|r: &HostileRegistry| {
                let huge = Reply::Endless {
                    status: 200,
                    headers: Vec::new(),
                    length: Some(2 << 30),
                    chunk: vec![b' '; 1 << 20],
                };
                r.route("GET", &format!("/v2/{PROJECT}/manifests/"), huge)
            }),
        ),
        (
            "an endless manifest",
            4,
            Box::new(move |r: &HostileRegistry| {
                r.route("GET", &format!("/v2/{PROJECT}/manifests/"), endless())
            }),
        ),
        (
            "an endless tag list",
            4,
            Box::new(move |r: &HostileRegistry| {
                r.route("GET", &format!("/v2/{PROJECT}/tags/list"), endless())
            }),
        ),
    ];
    for (what, code, misbehave) in cases {
        let registry = HostileRegistry::start();
        registry.serve_release(PROJECT, "7", &release);
        misbehave(&registry);
        let out = sandbox.path().join(what.replace(' ', "-"));
        let reference = format!("{}/{PROJECT}:7", registry.addr);
        let mut command =
            sandbox.command(&["pull", &reference, "--out", out.to_str().expect("utf-8")]);
        let (output, peak) = run_measuring_memory(&mut command);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{what}: {stderr}");
        assert!(output.stdout.is_empty(), "{what}");
        assert!(peak > 0 && peak < MAX_PEAK_KIB, "{what}: peak {peak} KiB");
        eprintln!("{what}: peak {peak} KiB");
        assert!(!out.exists(), "{what}: nothing half-written");
    }
}

/// Issue 14: a blob whose bytes do not match its digest is a verification failure (5), not a
/// registry failure (4).
#[test]
fn a_blob_that_does_not_match_its_digest_exits_5() {
    let release = fixtures::image();
    let registry = HostileRegistry::start();
    registry.serve_release(PROJECT, "7", &release);
    let layer = release.manifest.resources();
    let mut forged = release.resources.to_vec();
    let middle = forged.len() / 2;
    forged[middle] ^= 0xff;
    registry.route(
        "GET",
        &format!("/v2/{PROJECT}/blobs/{}", layer.digest),
        Reply::ok(&forged, &[]),
    );
    let sandbox = Sandbox::new();
    let out = sandbox.path().join("out");
    let reference = format!("{}/{PROJECT}:7", registry.addr);
    let stderr = sandbox.fails(5, &["pull", &reference, "--out", out.to_str().expect("utf-8")]);
    assert!(stderr.contains(layer.digest.as_str()) && stderr.contains("hashes to"), "{stderr}");
}

#[test]
fn a_registry_that_never_answers_is_given_up_on_at_the_deadline() {
    let registry = HostileRegistry::start();
    registry.route("GET", "/v2/", Reply::Silent);
    let sandbox = Sandbox::new();
    for args in [
        vec!["inspect".to_owned(), format!("{}/{PROJECT}:7", registry.addr)],
        vec!["list".to_owned(), format!("{}/{PROJECT}", registry.addr)],
    ] {
        let started = Instant::now();
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.extend(["--timeout", "2s"]);
        let output = sandbox.run(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{args:?} took {:?}",
            started.elapsed()
        );
        assert_eq!(output.status.code(), Some(4), "{stderr}");
        assert!(stderr.contains("gave up after 2 s (--timeout)"), "{stderr}");
    }
}
