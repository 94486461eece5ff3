//! Which credentials a registry host gets: the explicit ones only if they were given for that
//! host, else what the auth files say for it (`REGISTRY_AUTH_FILE`, podman's `auth.json`, the
//! docker config, with credential helpers), else none.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;

use super::options::{Credentials, RegistryOptions, Secret};

/// What a registry host is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAuth {
    /// No credentials: anonymous requests and anonymous tokens.
    Anonymous,
    /// A user name and password (or access token).
    Basic(Credentials),
    /// An OAuth2 refresh token (`identitytoken`, as `az acr login` writes), exchanged at the
    /// token service for access tokens.
    IdentityToken(Secret),
}

/// Where a host's credentials came from (for messages; never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// Given explicitly for this host: `--username`, `FORGE_REGISTRY_USERNAME`.
    Explicit(&'static str),
    /// An auth file's entry for this host.
    File(PathBuf),
    /// A credential helper named by an auth file.
    Helper(String),
    /// None found.
    Anonymous,
}

/// The credentials `host` (holding `repository`) gets under `options`.
pub fn for_host(
    host: &str,
    repository: &str,
    options: &RegistryOptions,
) -> (HostAuth, CredentialSource) {
    if let Some(explicit) = &options.credentials
        && same_host(&explicit.host, host)
    {
        return (
            HostAuth::Basic(explicit.credentials.clone()),
            CredentialSource::Explicit(explicit.origin),
        );
    }
    let files = if options.auth_files.is_empty() {
        default_auth_files()
    } else {
        options.auth_files.clone()
    };
    for file in files.iter().filter(|f| f.is_file()) {
        match from_file(file, host, repository) {
            Ok(Some(found)) => return found,
            Ok(None) => {}
            Err(reason) => tracing::warn!(
                "{}: cannot read credentials for {host}: {reason}; trying the next source",
                file.display()
            ),
        }
    }
    (HostAuth::Anonymous, CredentialSource::Anonymous)
}

/// Whether two `host[:port]` names are one registry (Docker Hub's names are one).
pub fn same_host(a: &str, b: &str) -> bool {
    canonical_host(a) == canonical_host(b)
}

fn canonical_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        _ => host,
    }
}

/// Where credentials are looked for, in order, as skopeo and podman look: `REGISTRY_AUTH_FILE`,
/// `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json`, then the docker
/// config (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`).
pub fn default_auth_files() -> Vec<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let home = var("HOME");
    let mut files = Vec::new();
    files.extend(var("REGISTRY_AUTH_FILE"));
    files.extend(var("XDG_RUNTIME_DIR").map(|dir| dir.join("containers/auth.json")));
    files.extend(home.as_ref().map(|home| home.join(".config/containers/auth.json")));
    files.extend(
        var("DOCKER_CONFIG")
            .or_else(|| home.map(|h| h.join(".docker")))
            .map(|d| d.join("config.json")),
    );
    files
}

/// The file a `login` writes to: `REGISTRY_AUTH_FILE` if set, else the docker config.
pub fn login_file() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("REGISTRY_AUTH_FILE").or_else(|| {
        var("DOCKER_CONFIG")
            .or_else(|| var("HOME").map(|h| h.join(".docker")))
            .map(|d| d.join("config.json"))
    })
}

/// An auth file (docker's `config.json` and podman's `auth.json` share the shape).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthFile {
    /// `host` (or `host/namespace`, podman) → entry.
    #[serde(default)]
    pub auths: serde_json::Map<String, serde_json::Value>,
    /// `host` → helper name (`docker-credential-<name>`).
    #[serde(default)]
    pub cred_helpers: std::collections::BTreeMap<String, String>,
    /// The helper for hosts without an entry.
    #[serde(default)]
    pub creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// Reads an auth file (bounded: an auth file is small).
pub fn read_auth_file(path: &Path) -> Result<AuthFile, String> {
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(4 << 20).read_to_end(&mut text))
        .map_err(|e| e.to_string())?;
    // Where, not what: serde's message may quote a value, which may be a secret.
    serde_json::from_slice(&text)
        .map_err(|e| format!("not a valid auth file (line {}, column {})", e.line(), e.column()))
}

fn from_file(
    path: &Path,
    host: &str,
    repository: &str,
) -> Result<Option<(HostAuth, CredentialSource)>, String> {
    let file = read_auth_file(path)?;
    if let Some((_, helper)) =
        file.cred_helpers.iter().find(|(key, _)| same_host(key_host(key).0, host))
    {
        return Ok(helper_credentials(helper, host)?
            .map(|auth| (auth, CredentialSource::Helper(helper.clone()))));
    }
    // The most specific entry: podman allows `host/namespace` keys.
    let wanted = format!("{}/{repository}", canonical_host(host));
    let best = file
        .auths
        .iter()
        .filter_map(|(key, value)| {
            let (key_host, path) = key_host(key);
            let scope = format!("{}/{path}", canonical_host(key_host));
            let applies = same_host(key_host, host)
                && (path.is_empty()
                    || path == "v1"
                    || path == "v2"
                    || wanted.starts_with(&format!("{scope}/"))
                    || wanted == scope);
            applies.then_some((path.len(), value))
        })
        .max_by_key(|(specificity, _)| *specificity);
    if let Some((_, value)) = best {
        // serde's message would quote the value, which may be a secret.
        let entry: AuthEntry = serde_json::from_value(value.clone()).map_err(|_| {
            format!("the entry for {host} is not an object with `auth`, `username`/`password` or `identitytoken` strings")
        })?;
        if let Some(auth) = entry_auth(&entry, host)? {
            return Ok(Some((auth, CredentialSource::File(path.to_owned()))));
        }
    }
    if let Some(helper) = &file.creds_store {
        return Ok(helper_credentials(helper, host)?
            .map(|auth| (auth, CredentialSource::Helper(helper.clone()))));
    }
    Ok(None)
}

/// `https://index.docker.io/v1/` → (`index.docker.io`, `v1`); `host/ns` → (`host`, `ns`).
fn key_host(key: &str) -> (&str, &str) {
    let key = key.split_once("://").map_or(key, |(_, rest)| rest);
    let key = key.trim_end_matches('/');
    key.split_once('/').unwrap_or((key, ""))
}

fn entry_auth(entry: &AuthEntry, host: &str) -> Result<Option<HostAuth>, String> {
    if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(HostAuth::IdentityToken(Secret::new(token))));
    }
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Ok(Some(HostAuth::Basic(Credentials {
            username: username.clone(),
            password: Secret::new(password.clone()),
        })));
    }
    let Some(encoded) = entry.auth.as_deref().filter(|a| !a.is_empty()) else { return Ok(None) };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            format!("the `auth` of the entry for {host} is not base64 of `user:password`")
        })?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or_else(|| format!("the `auth` of the entry for {host} is not `user:password`"))?;
    Ok(Some(HostAuth::Basic(Credentials {
        username: username.to_owned(),
        password: Secret::new(password),
    })))
}

/// The server a credential helper is asked about, as docker names it: `host:port` whole (a
/// port is another service, with credentials of its own), Docker Hub as its index URL.
fn helper_server(host: &str) -> String {
    match canonical_host(host).as_str() {
        "docker.io" => "https://index.docker.io/v1/".to_owned(),
        _ => host.to_owned(),
    }
}

/// Asks `docker-credential-<helper> get` for `host`'s credentials (none when it has none).
fn helper_credentials(helper: &str, host: &str) -> Result<Option<HostAuth>, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        username: String,
        secret: String,
    }
    if !helper.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return Err(format!("credential helper name `{helper}` is not a plain name"));
    }
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let server = helper_server(host);
        let _ = stdin.write_all(server.as_bytes()).and_then(|()| stdin.write_all(b"\n"));
    }
    let mut stdout = child.stdout.take().map(|s| s.take(1 << 20));
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut out);
        }
        out
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if std::time::Instant::now() > deadline => {
                let _ = child.kill();
                return Err(format!("{program} did not answer within 30 s"));
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        // "credentials not found in native keychain": the helper has nothing for this host.
        return Ok(None);
    }
    let answer: Answer = serde_json::from_slice(&out)
        .map_err(|_| format!("{program} answered something that is not its JSON"))?;
    if answer.username == "<token>" {
        return Ok(Some(HostAuth::IdentityToken(Secret::new(answer.secret))));
    }
    Ok(Some(HostAuth::Basic(Credentials {
        username: answer.username,
        password: Secret::new(answer.secret),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::options::HostCredentials;

    fn options(files: Vec<PathBuf>, explicit: Option<&str>) -> RegistryOptions {
        RegistryOptions {
            credentials: explicit.map(|host| HostCredentials {
                host: host.into(),
                credentials: Credentials { username: "ci".into(), password: Secret::new("s3cret") },
                origin: "--username",
            }),
            auth_files: files,
            ..RegistryOptions::default()
        }
    }

    #[test]
    fn credential_helpers_are_asked_about_the_host_and_its_port() {
        assert_eq!(helper_server("registry.example.com:31337"), "registry.example.com:31337");
        assert_eq!(helper_server("registry.example.com"), "registry.example.com");
        assert_eq!(helper_server("docker.io"), "https://index.docker.io/v1/");
    }

    #[test]
    fn a_malformed_entry_is_reported_without_its_value() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("auth.json");
        std::fs::write(&file, r#"{"auths":{"registry.example.com":"dXNlcjpzM2NyZXQ="}}"#)
            .expect("write");
        let error = from_file(&file, "registry.example.com", "a/b").expect_err("malformed");
        assert!(error.contains("registry.example.com"), "{error}");
        assert!(!error.contains("dXNlcjpzM2NyZXQ="), "{error}");
        std::fs::write(&file, r#"{"auths":"c2VjcmV0"}"#).expect("write");
        let error = from_file(&file, "registry.example.com", "a/b").expect_err("malformed");
        assert!(!error.contains("c2VjcmV0"), "{error}");
    }

    #[test]
    fn explicit_credentials_go_to_their_host_only() {
        let o = options(vec!["/nonexistent".into()], Some("registry.example.com"));
        assert!(matches!(for_host("registry.example.com", "a/b", &o).0, HostAuth::Basic(_)));
        assert_eq!(for_host("evil.example.com", "a/b", &o).0, HostAuth::Anonymous);
        assert_eq!(for_host("registry.example.com:444", "a/b", &o).0, HostAuth::Anonymous);
    }

    #[test]
    fn auth_file_entries_apply_to_their_own_host_most_specific_first() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("auth.json");
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        std::fs::write(
            &file,
            serde_json::json!({"auths": {
                "https://index.docker.io/v1/": {"auth": b64("hub:one")},
                "registry.example.com": {"auth": b64("team:two")},
                "registry.example.com/team-b": {"auth": b64("b:three")},
                "x.azurecr.io": {"auth": b64("00000000-0000-0000-0000-000000000000:"), "identitytoken": "refresh"},
            }})
            .to_string(),
        )
        .expect("write");
        let o = options(vec![file], None);
        let user = |host: &str, repo: &str| match for_host(host, repo, &o).0 {
            HostAuth::Basic(c) => Some(c.username),
            HostAuth::IdentityToken(_) => Some("<token>".into()),
            HostAuth::Anonymous => None,
        };
        assert_eq!(user("registry-1.docker.io", "library/nginx").as_deref(), Some("hub"));
        assert_eq!(user("registry.example.com", "team-a/app").as_deref(), Some("team"));
        assert_eq!(user("registry.example.com", "team-b/app").as_deref(), Some("b"));
        assert_eq!(user("x.azurecr.io", "app").as_deref(), Some("<token>"));
        assert_eq!(user("other.example.com", "app"), None);
        assert_eq!(user("registry.example.com.evil.io", "app"), None);
    }
}
