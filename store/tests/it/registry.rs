//! Round trips through a real CNCF distribution registry (plain, htpasswd, TLS), read back
//! with skopeo and the oras client.

use std::process::Command;

use forge_release::aliases::TagStrategy;
use forge_release::reference::{ProjectLocation, StoreRoot};
use forge_release::tarball::Limits;
use forge_store::publish::{PublishError, publish};
use forge_store::registry::{Credentials, HostCredentials, RegistryOptions, RetryPolicy, Secret};
use forge_store::{Store, StoreError};
use forge_testkit::{FaultProxy, Registry, RegistryKind};

use forge_testkit::fixtures;

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

pub fn store_at(host: &str, path: &str, options: &RegistryOptions) -> Store {
    let location = ProjectLocation::InRoot {
        root: StoreRoot::Registry(host.to_owned()),
        path: path.to_owned(),
    };
    Store::open(&location, options).expect("open registry store")
}

/// Options with credentials for `host` only.
pub fn credentials_for(host: &str, password: &str) -> RegistryOptions {
    RegistryOptions {
        credentials: Some(HostCredentials {
            host: host.to_owned(),
            credentials: Credentials {
                username: forge_testkit::REGISTRY_USER.into(),
                password: Secret::new(password),
            },
            origin: "--username",
        }),
        ..RegistryOptions::default()
    }
}

pub fn fast_retries() -> RegistryOptions {
    RegistryOptions {
        retry: RetryPolicy {
            attempts: 4,
            base_delay: std::time::Duration::from_millis(5),
            max_delay: std::time::Duration::from_millis(20),
        },
        ..RegistryOptions::default()
    }
}

fn tool(program: &str, args: &[&str], hint: &str) -> Vec<u8> {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is required ({e}); {hint}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn a_pushed_release_reads_back_identically_with_skopeo_oras_and_forge() {
    let registry = Registry::shared(RegistryKind::Plain);
    let path = format!("{}/auth-service", registry.unique_repository("roundtrip"));
    let store = store_at(&registry.addr, &path, &RegistryOptions::default());
    let rt = runtime();
    let published =
        rt.block_on(publish(&store, fixtures::input(), TagStrategy::Monorepo)).expect("publish");
    assert_eq!(published.tags_added, ["1", fixtures::COMMIT, "v1.2.3", "main-1"]);

    let image = format!("docker://{}/{path}", registry.addr);
    let raw = tool(
        "skopeo",
        &["inspect", "--raw", "--tls-verify=false", &format!("{image}:v1.2.3")],
        "apt-get install skopeo",
    );
    assert_eq!(
        forge_release::Digest::of(&raw),
        published.digest,
        "skopeo sees our exact manifest bytes"
    );
    let tags =
        tool("skopeo", &["list-tags", "--tls-verify=false", &image], "apt-get install skopeo");
    let tags: serde_json::Value = serde_json::from_slice(&tags).expect("json");
    // 1, the commit, v1.2.3, main-1, the claims by which the commit and number 1 were taken,
    // the marker of a tag pipeline's release and the release index.
    assert_eq!(tags["Tags"].as_array().map(Vec::len), Some(8));

    let out = fixtures::temp_dir();
    let script = format!(
        "import oras.client\nc = oras.client.OrasClient(hostname='{host}', insecure=True)\nprint(sorted(c.pull(target='{host}/{path}:1', outdir='{out}')))",
        host = registry.addr,
        out = out.path().display()
    );
    tool("python3", &["-c", &script], "pip install oras (make test installs it)");
    let pulled_metadata =
        std::fs::read(out.path().join("release.json")).expect("oras names layers by title");
    assert!(String::from_utf8_lossy(&pulled_metadata).contains("\"schemaVersion\": 1"));
    // oras unpacks the standard tar+gzip layer: the files are the release's files.
    for file in fixtures::files() {
        let pulled = std::fs::read(out.path().join(&file.path)).expect("file unpacked by oras");
        assert_eq!(pulled, file.content, "{}", file.path);
    }

    let fresh = store_at(&registry.addr, &path, &RegistryOptions::default());
    let release = rt
        .block_on(fresh.fetch_release(&published.digest, &Limits::default()))
        .expect("verified pull");
    assert_eq!(release.files.len(), 4);
    assert_eq!(release.head.metadata.release.number, 1);
}

/// Registries in production authenticate: with Basic credentials for the registry's host, an
/// unchanged re-push is a handful of reads and no write.
#[test]
fn an_unchanged_re_push_uploads_nothing_in_at_most_three_requests() {
    let registry = Registry::shared(RegistryKind::Htpasswd);
    let proxy = FaultProxy::start(&registry.addr);
    let path = format!("{}/auth-service", registry.unique_repository("repush"));
    let options = credentials_for(&proxy.addr, forge_testkit::REGISTRY_PASSWORD);
    let rt = runtime();
    let first = rt.block_on(publish(
        &store_at(&proxy.addr, &path, &options),
        fixtures::input(),
        TagStrategy::Monorepo,
    ));
    let first = first.expect("publish");
    proxy.clear_log();
    let again = rt
        .block_on(publish(
            &store_at(&proxy.addr, &path, &options),
            fixtures::input(),
            TagStrategy::Monorepo,
        ))
        .expect("re-publish");
    assert!(again.existed);
    assert_eq!((again.digest, again.bytes_uploaded), (first.digest, 0));
    let requests = proxy.requests();
    assert!(
        requests.len() <= 3,
        "an unchanged re-push made {} requests: {requests:#?}",
        requests.len()
    );
    assert!(
        requests.iter().all(|r| r.starts_with("GET ") || r.starts_with("HEAD ")),
        "{requests:#?}"
    );
}

/// On a registry without auth, each read is one request: no challenge probe, no second try.
#[test]
fn an_auth_free_registry_is_asked_for_a_challenge_once() {
    let registry = Registry::shared(RegistryKind::Plain);
    let proxy = FaultProxy::start(&registry.addr);
    let path = format!("{}/auth-service", registry.unique_repository("pings"));
    let rt = runtime();
    let published = rt
        .block_on(publish(
            &store_at(&proxy.addr, &path, &RegistryOptions::default()),
            fixtures::input(),
            TagStrategy::Monorepo,
        ))
        .expect("publish");
    proxy.clear_log();
    let store = store_at(&proxy.addr, &path, &RegistryOptions::default());
    let all = rt.block_on(store.list_tags()).expect("tags");
    // The publisher's claims name what it would have released numbered 0 (the commit claim):
    // bookkeeping, not names of the release.
    let tags: Vec<&String> =
        all.iter().filter(|t| !forge_release::aliases::is_bookkeeping(t)).collect();
    for tag in &tags {
        let (_, digest) =
            rt.block_on(store.fetch_manifest_by_tag(tag)).expect("fetch").expect("tag exists");
        assert_eq!(digest, published.digest);
    }
    let requests = proxy.requests();
    let pings = requests.iter().filter(|r| *r == "GET /v2/").count();
    assert!(pings <= 1, "{requests:#?}");
    assert!(requests.len() <= 2 + tags.len(), "{requests:#?}");
}

#[test]
fn basic_auth_works_with_credentials_and_fails_clearly_without() {
    let registry = Registry::shared(RegistryKind::Htpasswd);
    let path = format!("{}/auth-service", registry.unique_repository("htpasswd"));
    let rt = runtime();
    let anonymous = store_at(&registry.addr, &path, &RegistryOptions::default());
    let err = rt.block_on(anonymous.list_tags()).expect_err("anonymous is refused");
    assert!(matches!(err, StoreError::Unauthorized { anonymous: true, .. }), "{err}");
    assert!(err.to_string().contains("access denied (no credentials were found)"), "{err}");

    let wrong = credentials_for(&registry.addr, "wrong");
    let err = rt
        .block_on(store_at(&registry.addr, &path, &wrong).list_tags())
        .expect_err("wrong password");
    assert!(matches!(err, StoreError::Unauthorized { anonymous: false, .. }), "{err}");
    assert!(!err.to_string().contains("wrong"), "the password never appears: {err}");

    let good = credentials_for(&registry.addr, forge_testkit::REGISTRY_PASSWORD);
    let store = store_at(&registry.addr, &path, &good);
    let published = rt
        .block_on(publish(&store, fixtures::input(), TagStrategy::Monorepo))
        .expect("authenticated publish");
    assert_eq!(rt.block_on(store.resolve_tag("1")).expect("resolve"), Some(published.digest));
}

/// Docker token authentication: the registry challenges with Bearer, the client fetches a
/// token from the realm (with Basic credentials when it has them) and retries.
#[test]
fn bearer_token_auth_pushes_with_credentials_and_pulls_anonymously() {
    let registry = Registry::shared(RegistryKind::Token);
    let path = format!("{}/auth-service", registry.unique_repository("token"));
    let rt = runtime();
    let credentials = |password: &str| credentials_for(&registry.addr, password);

    let anonymous = store_at(&registry.addr, &path, &RegistryOptions::default());
    let err = rt
        .block_on(publish(&anonymous, fixtures::input(), TagStrategy::Monorepo))
        .expect_err("an anonymous token grants pull only");
    assert!(
        matches!(err, PublishError::Store(StoreError::Unauthorized { anonymous: true, .. })),
        "{err}"
    );
    let err = rt
        .block_on(store_at(&registry.addr, &path, &credentials("wrong")).list_tags())
        .expect_err("the token server refuses a wrong password");
    assert!(matches!(err, StoreError::Unauthorized { anonymous: false, .. }), "{err}");
    assert!(!err.to_string().contains("wrong"), "the password never appears: {err}");

    let store = store_at(&registry.addr, &path, &credentials(forge_testkit::REGISTRY_PASSWORD));
    let published = rt
        .block_on(publish(&store, fixtures::input(), TagStrategy::Monorepo))
        .expect("publish with a bearer token");
    let pushes = registry.token_requests();
    assert!(
        pushes.iter().any(|r| *r == format!("alice repository:{path}:pull,push")),
        "a push token was fetched with the credentials: {pushes:#?}"
    );

    let release = rt
        .block_on(anonymous.fetch_release(&published.digest, &Limits::default()))
        .expect("anonymous pull");
    assert_eq!(release.files.len(), 4);
    // A pull as a store's very first call: it goes out before the registry has said it wants
    // a token, is refused, and runs again with the anonymous token.
    let first = store_at(&registry.addr, &path, &RegistryOptions::default());
    let release = rt
        .block_on(first.fetch_release(&published.digest, &Limits::default()))
        .expect("anonymous pull as the first call");
    assert_eq!(release.files.len(), 4);
    let anonymous_pulls = registry
        .token_requests()
        .iter()
        .filter(|r| **r == format!("anonymous repository:{path}:pull"))
        .count();
    assert!(anonymous_pulls >= 2, "{:#?}", registry.token_requests());
    let raw = tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/{path}:1", registry.addr),
        ],
        "apt-get install skopeo",
    );
    assert_eq!(
        forge_release::Digest::of(&raw),
        published.digest,
        "skopeo reads it through a token"
    );
}

#[test]
fn tls_registries_work_with_their_ca_and_fail_without_it() {
    let registry = Registry::shared(RegistryKind::Tls);
    let path = format!("{}/auth-service", registry.unique_repository("tls"));
    let rt = runtime();
    let without_ca = store_at(&registry.addr, &path, &fast_retries());
    assert!(rt.block_on(without_ca.list_tags()).is_err(), "plain HTTP to a TLS registry fails");
    let trusted = RegistryOptions { ca_files: vec![registry.ca_file()], ..fast_retries() };
    let store = store_at(&registry.addr, &path, &trusted);
    let published = rt
        .block_on(publish(&store, fixtures::input(), TagStrategy::Monorepo))
        .expect("publish over TLS");
    let release = rt
        .block_on(store.fetch_release(&published.digest, &Limits::default()))
        .expect("pull over TLS");
    assert_eq!(release.files.len(), 4);
}

#[test]
fn a_ca_file_that_is_not_a_certificate_is_refused_by_name() {
    let dir = fixtures::temp_dir();
    let bogus = dir.path().join("ca.pem");
    std::fs::write(&bogus, "not a certificate").expect("write");
    let location = ProjectLocation::InRoot {
        root: StoreRoot::Registry("registry.example.com".into()),
        path: "a/b".into(),
    };
    let err = Store::open(
        &location,
        &RegistryOptions { ca_files: vec![bogus.clone()], ..RegistryOptions::default() },
    )
    .expect_err("bogus CA");
    assert_eq!(
        err.to_string(),
        format!(
            "{} is not a PEM certificate (expected -----BEGIN CERTIFICATE-----)",
            bogus.display()
        )
    );
}
