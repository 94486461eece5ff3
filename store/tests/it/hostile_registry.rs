//! Issue 14: a hostile or broken registry cannot exhaust memory, hang a caller, loop its tag
//! pages, have its error bodies echoed, or receive credentials meant for another host.

use std::time::{Duration, Instant};

use forge_release::tarball::Limits;
use forge_store::StoreError;
use forge_store::registry::{Credentials, HostCredentials, RegistryOptions, RetryPolicy, Secret};
use forge_testkit::{HostileRegistry, Reply, fixtures};

use crate::registry::{runtime, store_at};

const REPO: &str = "company/app";

fn quick() -> RegistryOptions {
    RegistryOptions {
        retry: RetryPolicy {
            attempts: 2,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        },
        read_timeout: Duration::from_millis(500),
        ..RegistryOptions::default()
    }
}

#[test]
fn a_manifest_over_4_mib_is_refused_whether_its_length_is_declared_or_not() {
    let hostile = HostileRegistry::start();
    let store = store_at(&hostile.addr, REPO, &quick());
    let rt = runtime();
    for (tag, length) in [("declared", Some(2u64 << 30)), ("chunked", None)] {
        hostile.route(
            "GET",
            &format!("/v2/{REPO}/manifests/{tag}"),
            Reply::Endless {
                status: 200,
                headers: Vec::new(),
                length,
                chunk: vec![b' '; 64 << 10],
            },
        );
        let err = rt.block_on(store.fetch_manifest_by_tag(tag)).expect_err(tag);
        assert!(
            err.to_string().contains("a manifest is larger than 4194304 bytes"),
            "{tag}: {err}"
        );
    }
}

#[test]
fn an_endless_blob_is_read_no_further_than_its_descriptor_says() {
    let hostile = HostileRegistry::start();
    let release = fixtures::image();
    hostile.serve_release(REPO, "1", &release);
    let layer = &release.manifest.resources().digest;
    hostile.route(
        "GET",
        &format!("/v2/{REPO}/blobs/{layer}"),
        Reply::Endless { status: 200, headers: Vec::new(), length: None, chunk: vec![0; 64 << 10] },
    );
    let store = store_at(&hostile.addr, REPO, &quick());
    let err = runtime()
        .block_on(store.fetch_release(&release.digest, &Limits::default()))
        .expect_err("endless layer");
    let message = err.to_string();
    assert!(matches!(err, StoreError::Format(_)), "verification, exit 5: {message}");
    assert!(message.contains(layer.as_str()) && message.contains("more than"), "{message}");
}

#[test]
fn tag_pages_are_followed_by_link_and_a_page_loop_is_an_error() {
    let hostile = HostileRegistry::start();
    let page = |tags: &[&str], next: Option<&str>| Reply::Fixed {
        status: 200,
        headers: next
            .map(|n| vec![("Link".to_owned(), format!("<{n}>; rel=\"next\""))])
            .unwrap_or_default(),
        body: serde_json::json!({"name": REPO, "tags": tags}).to_string().into_bytes(),
    };
    // Quay pages by 50 whatever `n` says: a short page with a Link is not the last.
    let list = format!("/v2/{REPO}/tags/list");
    hostile.route("GET", &list, page(&["a", "b"], Some(&format!("{list}?page=2"))));
    hostile.route("GET", &format!("{list}?page=2"), page(&["c"], Some(&format!("{list}?page=3"))));
    hostile.route("GET", &format!("{list}?page=3"), page(&["d"], None));
    let store = store_at(&hostile.addr, REPO, &quick());
    let rt = runtime();
    assert_eq!(rt.block_on(store.list_tags()).expect("tags"), ["a", "b", "c", "d"]);

    hostile.route("GET", &format!("{list}?page=3"), page(&["d"], Some(&format!("{list}?page=2"))));
    let err = rt.block_on(store.list_tags()).expect_err("a loop");
    assert!(err.to_string().contains("loop back"), "{err}");

    hostile.route(
        "GET",
        &format!("{list}?page=3"),
        page(&["d"], Some("http://169.254.169.254/latest/")),
    );
    let err = rt.block_on(store.list_tags()).expect_err("another host");
    assert!(err.to_string().contains("on another host"), "{err}");

    // A "tag" of 16 MiB per page, ten thousand pages: refused at the first, as no tag is
    // longer than 128 characters.
    let huge = "x".repeat(1 << 20);
    hostile.route("GET", &format!("{list}?page=3"), page(&[&huge], None));
    let err = rt.block_on(store.list_tags()).expect_err("not a tag");
    assert!(err.to_string().contains("which is not a tag"), "{err}");
    assert!(err.to_string().len() < 400, "{err}");
}

#[test]
fn error_bodies_are_never_echoed_only_codes_and_short_clean_messages() {
    let hostile = HostileRegistry::start();
    let store = store_at(&hostile.addr, REPO, &quick());
    let rt = runtime();
    let secret = "AKIAIOSFODNN7EXAMPLE";
    hostile.route(
        "GET",
        &format!("/v2/{REPO}/tags/list"),
        Reply::json(400, &format!(r#"{{"config": {{"aws_access_key_id": "{secret}"}}}}"#)),
    );
    let err = rt.block_on(store.list_tags()).expect_err("400");
    assert!(!err.to_string().contains(secret), "{err}");
    assert!(err.to_string().ends_with("400 Bad Request"), "{err}");

    let long = "x".repeat(5000);
    hostile.route(
        "GET",
        &format!("/v2/{REPO}/tags/list"),
        Reply::json(400, &format!(r#"{{"errors":[{{"code":"DENIED","message":"no\u001b[2J {long}","detail":"{secret}"}}]}}"#)),
    );
    let err = rt.block_on(store.list_tags()).expect_err("400");
    let message = err.to_string();
    assert!(message.contains("400 Bad Request: DENIED: no[2J xxx"), "{message}");
    assert!(!message.contains('\u{1b}') && !message.contains(secret), "{message}");
    assert!(message.len() < 400, "cut short: {} characters", message.len());
}

#[test]
fn a_registry_that_accepts_and_never_answers_times_out() {
    let hostile = HostileRegistry::start();
    hostile.route("GET", "/v2/", Reply::Silent);
    let store = store_at(&hostile.addr, REPO, &quick());
    let started = Instant::now();
    let err = runtime().block_on(store.list_tags()).expect_err("silence");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(err.to_string().contains("listing tags failed"), "{err}");
}

#[test]
fn credentials_never_follow_a_redirect_to_another_host_nor_reach_other_hosts() {
    let release = fixtures::image();
    let home = HostileRegistry::start();
    let elsewhere = HostileRegistry::start();
    home.serve_release(REPO, "1", &release);
    elsewhere.serve_release(REPO, "1", &release);
    let layer = &release.manifest.resources().digest;
    home.route(
        "GET",
        &format!("/v2/{REPO}/blobs/{layer}"),
        Reply::redirect(&format!("http://{}/v2/{REPO}/blobs/{layer}", elsewhere.addr)),
    );
    let options = RegistryOptions {
        credentials: Some(HostCredentials {
            host: home.addr.clone(),
            credentials: Credentials { username: "ci".into(), password: Secret::new("s3cret") },
            origin: "--username",
        }),
        ..quick()
    };
    let rt = runtime();
    rt.block_on(
        store_at(&home.addr, REPO, &options).fetch_release(&release.digest, &Limits::default()),
    )
    .expect("fetched through the redirect");
    assert!(home.requests().iter().all(|r| r.authorization.is_some()), "{:#?}", home.requests());
    let redirected = elsewhere.requests();
    assert!(redirected.iter().any(|r| r.path.contains(layer.as_str())), "{redirected:#?}");
    assert!(redirected.iter().all(|r| r.authorization.is_none()), "{redirected:#?}");

    // The same options opening another host's store send it nothing either.
    rt.block_on(store_at(&elsewhere.addr, REPO, &options).list_tags()).expect("tags");
    assert!(
        elsewhere.requests().iter().all(|r| r.authorization.is_none()),
        "{:#?}",
        elsewhere.requests()
    );
}

#[test]
fn link_local_and_metadata_addresses_are_never_contacted() {
    let rt = runtime();
    for host in ["169.254.169.254", "[fd00:ec2::254]"] {
        let store = store_at(host, REPO, &quick());
        let err = rt.block_on(store.list_tags()).expect_err(host);
        assert!(
            err.to_string().contains("link-local and cloud metadata addresses are never contacted"),
            "{err}"
        );
    }
    let release = fixtures::image();
    let hostile = HostileRegistry::start();
    hostile.serve_release(REPO, "1", &release);
    let layer = &release.manifest.resources().digest;
    hostile.route(
        "GET",
        &format!("/v2/{REPO}/blobs/{layer}"),
        Reply::redirect("http://169.254.169.254/latest/meta-data/"),
    );
    let err = rt
        .block_on(
            store_at(&hostile.addr, REPO, &quick())
                .fetch_release(&release.digest, &Limits::default()),
        )
        .expect_err("a redirect to the metadata service");
    assert!(err.to_string().contains("never contacted"), "{err}");
}

fn with_credentials_for(host: &str) -> RegistryOptions {
    RegistryOptions {
        credentials: Some(HostCredentials {
            host: host.to_owned(),
            credentials: Credentials { username: "ci".into(), password: Secret::new("s3cret") },
            origin: "--username",
        }),
        ..quick()
    }
}

/// A redirect's target answering 401 with a token service of its own learns nothing: the
/// challenge counts only from the registry itself.
#[test]
fn a_redirect_target_asking_for_credentials_gets_none() {
    let release = fixtures::image();
    let home = HostileRegistry::start();
    let elsewhere = HostileRegistry::start();
    home.serve_release(REPO, "1", &release);
    let layer = &release.manifest.resources().digest;
    home.route(
        "GET",
        &format!("/v2/{REPO}/blobs/{layer}"),
        Reply::redirect(&format!("http://{}/v2/{REPO}/blobs/{layer}", elsewhere.addr)),
    );
    let challenge = format!(r#"Bearer realm="http://{}/token",service="evil""#, elsewhere.addr);
    elsewhere.route(
        "GET",
        "/v2/",
        Reply::Fixed {
            status: 401,
            headers: vec![("WWW-Authenticate".into(), challenge)],
            body: Vec::new(),
        },
    );
    elsewhere.route("GET", "/token", Reply::json(200, r#"{"token":"t"}"#));
    let store = store_at(&home.addr, REPO, &with_credentials_for(&home.addr));
    let err = runtime()
        .block_on(store.fetch_release(&release.digest, &Limits::default()))
        .expect_err("the redirect target refuses");
    assert!(err.to_string().contains("asks for credentials"), "{err}");
    let seen = elsewhere.requests();
    assert!(seen.iter().all(|r| r.authorization.is_none()), "{seen:#?}");
    assert!(!seen.iter().any(|r| r.path.starts_with("/token")), "{seen:#?}");
}

/// The registry itself cannot send its users' credentials to a token service on a host of its
/// choosing; an anonymous token is fetched from anywhere.
#[test]
fn a_token_service_on_another_host_gets_no_credentials() {
    let home = HostileRegistry::start();
    let elsewhere = HostileRegistry::start();
    // `localhost` is another host name than the registry's 127.0.0.1.
    let port = elsewhere.addr.rsplit(':').next().expect("port");
    let challenge = format!(r#"Bearer realm="http://localhost:{port}/token",service="evil""#);
    home.route(
        "GET",
        "/v2/",
        Reply::Fixed {
            status: 401,
            headers: vec![("WWW-Authenticate".into(), challenge)],
            body: Vec::new(),
        },
    );
    elsewhere.route("GET", "/token", Reply::json(200, r#"{"token":"t"}"#));
    let store = store_at(&home.addr, REPO, &with_credentials_for(&home.addr));
    let err = runtime().block_on(store.list_tags()).expect_err("refused");
    assert!(err.to_string().contains("token service on another host"), "{err}");
    assert!(elsewhere.requests().is_empty(), "{:#?}", elsewhere.requests());

    // Anonymous, the token comes from wherever the registry says.
    let anonymous = store_at(&home.addr, REPO, &quick());
    let _ = runtime().block_on(anonymous.list_tags());
    assert!(elsewhere.requests().iter().any(|r| r.path.starts_with("/token")));
    assert!(elsewhere.requests().iter().all(|r| r.authorization.is_none()));
}

/// A refresh token is sent in a POST body; a redirect to another host does not carry it.
#[test]
fn a_refresh_token_never_follows_a_redirect_to_another_host() {
    let home = HostileRegistry::start();
    let elsewhere = HostileRegistry::start();
    let challenge = format!(r#"Bearer realm="http://{}/token",service="home""#, home.addr);
    home.route(
        "GET",
        "/v2/",
        Reply::Fixed {
            status: 401,
            headers: vec![("WWW-Authenticate".into(), challenge)],
            body: Vec::new(),
        },
    );
    home.route("POST", "/token", Reply::redirect(&format!("http://{}/token", elsewhere.addr)));
    elsewhere.route("POST", "/token", Reply::json(200, r#"{"access_token":"t"}"#));
    let dir = fixtures::temp_dir();
    let auth = dir.path().join("auth.json");
    std::fs::write(
        &auth,
        format!(r#"{{"auths":{{"{}":{{"identitytoken":"refresh-s3cret"}}}}}}"#, home.addr),
    )
    .expect("auth file");
    let options = RegistryOptions { auth_files: vec![auth], ..quick() };
    let err =
        runtime().block_on(store_at(&home.addr, REPO, &options).list_tags()).expect_err("refused");
    assert!(err.to_string().contains("refusing to send a request body"), "{err}");
    assert!(elsewhere.requests().is_empty(), "{:#?}", elsewhere.requests());
}
