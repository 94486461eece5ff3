//! Registry authentication: the challenge a registry answers with (`WWW-Authenticate`), and
//! the bearer tokens of the Docker token protocol (fetched with Basic credentials, or by
//! exchanging a refresh token), cached by scope.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use http::{HeaderValue, Method};
use reqwest::Url;

use super::credentials::HostAuth;
use super::options::{Secret, limits};
use super::transport::{Call, Failure, Transport, clean, error_text, read_limited, url_host};

/// How a registry wants to be authenticated, learnt from its first `401`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Challenge {
    /// `Basic`: the credentials on every request.
    Basic,
    /// `Bearer`: a token from `realm` for `service`, per scope.
    Bearer {
        /// The token service.
        realm: String,
        /// The `service` parameter.
        service: Option<String>,
    },
}

/// Reads a `WWW-Authenticate` header: Bearer when offered, else Basic.
pub(super) fn parse_challenge(header: &str) -> Option<Challenge> {
    let challenges = parse_challenges(header);
    let bearer = challenges.iter().find(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"));
    if let Some((_, params)) = bearer {
        let param = |name: &str| {
            params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
        };
        return Some(Challenge::Bearer { realm: param("realm")?, service: param("service") });
    }
    challenges
        .iter()
        .any(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .then_some(Challenge::Basic)
}

/// `Scheme k="v", k2=v2, Scheme2 ...` as (scheme, parameters).
fn parse_challenges(header: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches([',', ' ']);
        let token_end = rest.find([' ', ',', '=']).unwrap_or(rest.len());
        let token = &rest[..token_end];
        let after = &rest[token_end..];
        if after.trim_start().starts_with('=') {
            // A parameter of the current challenge.
            let value_start = after.trim_start()[1..].trim_start();
            let (value, remaining) = if let Some(quoted) = value_start.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                (value, &quoted[end.min(quoted.len())..])
            } else {
                let end = value_start.find(',').unwrap_or(value_start.len());
                (value_start[..end].trim().to_owned(), &value_start[end..])
            };
            if let Some((_, params)) = out.last_mut() {
                params.push((token.to_owned(), value));
            }
            rest = remaining;
        } else if !token.is_empty() {
            out.push((token.to_owned(), Vec::new()));
            rest = after;
        } else {
            break;
        }
    }
    out
}

/// Bearer tokens of one store, by scope, until they expire.
#[derive(Debug, Default)]
pub(super) struct Tokens {
    cache: tokio::sync::Mutex<HashMap<String, (Secret, Instant)>>,
}

/// Who asks a token service for tokens: the registry's users, with their credentials.
#[derive(Debug, Clone, Copy)]
pub struct TokenClient<'a> {
    /// The credentials for the registry.
    pub auth: &'a HostAuth,
    /// The registry's `host[:port]`.
    pub registry_host: &'a str,
    /// Whether the registry itself is reached over plain HTTP.
    pub registry_plain: bool,
}

impl Tokens {
    /// A token for `scope` from `realm`: cached, or fetched (the lock is held while fetching,
    /// so concurrent requests share one fetch).
    pub async fn get(
        &self,
        transport: &Transport,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        client: &TokenClient<'_>,
    ) -> Result<Secret, Failure> {
        let mut cache = self.cache.lock().await;
        if let Some((token, expiry)) = cache.get(scope)
            && Instant::now() < *expiry
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = fetch(transport, realm, service, scope, client).await?;
        // Refreshed a little early: a token that expires in flight fails the request.
        let expiry = Instant::now()
            + lifetime.saturating_sub(Duration::from_secs(10)).max(Duration::from_secs(5));
        cache.insert(scope.to_owned(), (token.clone(), expiry));
        Ok(token)
    }

    /// Forgets every token (after the registry refused one).
    pub async fn clear(&self) {
        self.cache.lock().await.clear();
    }
}

async fn fetch(
    transport: &Transport,
    realm: &str,
    service: Option<&str>,
    scope: &str,
    client: &TokenClient<'_>,
) -> Result<(Secret, Duration), Failure> {
    let TokenClient { auth, registry_host, registry_plain } = *client;
    let mut url = Url::parse(realm).map_err(|_| {
        Failure::Refused(format!(
            "the registry names a token service that is not a URL: `{}`",
            clean(realm, 200)
        ))
    })?;
    // The token service gets the registry's credentials: it must be as safe to reach as the
    // registry (TLS, unless the registry itself is plain HTTP on loopback or allowed).
    if url.scheme() != "https" && !(url.scheme() == "http" && registry_plain) {
        return Err(Failure::Refused(format!(
            "refusing the token service {} without TLS",
            url_host(&url)
        )));
    }
    if *auth != HostAuth::Anonymous && !may_receive_credentials(&url, registry_host) {
        return Err(Failure::Refused(format!(
            "the registry names a token service on another host, {}: credentials go only to the registry's host and the hosts of its parent domain (auth.docker.io for registry-1.docker.io)",
            url_host(&url)
        )));
    }
    let mut call = match auth {
        HostAuth::IdentityToken(refresh) => {
            // OAuth2: exchange the refresh token (`az acr login`, podman) for an access token.
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token");
            form.append_pair("refresh_token", refresh.expose());
            form.append_pair("client_id", "forge-pack");
            form.append_pair("scope", scope);
            if let Some(service) = service {
                form.append_pair("service", service);
            }
            let mut call = Call::new(Method::POST, url);
            call.headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            call.body = Some(form.finish().into_bytes().into());
            call
        }
        HostAuth::Basic(_) | HostAuth::Anonymous => {
            {
                let mut query = url.query_pairs_mut();
                if let Some(service) = service {
                    query.append_pair("service", service);
                }
                query.append_pair("scope", scope);
            }
            let mut call = Call::new(Method::GET, url);
            if let HostAuth::Basic(credentials) = auth {
                call.headers.insert(
                    http::header::AUTHORIZATION,
                    basic(&credentials.username, credentials.password.expose()),
                );
            }
            call
        }
    };
    call.headers.insert(http::header::ACCEPT, HeaderValue::from_static("application/json"));
    let response = transport.send(&call).await?;
    if !response.status().is_success() {
        let (status, headers, text) = error_text(response).await;
        return Err(Failure::Status {
            status,
            headers,
            text: format!("the token service answered {text}"),
        });
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        access_token: Option<String>,
        #[serde(default)]
        expires_in: Option<u64>,
    }
    let body = read_limited(response, limits::TOKEN_BYTES, "the token service's answer").await?;
    let answer: Answer = serde_json::from_slice(&body)
        .map_err(|_| Failure::Refused("the token service's answer is not a token".into()))?;
    let token = answer
        .token
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Failure::Refused("the token service's answer holds no token".into()))?;
    // The spec's default lifetime is 60 seconds.
    let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(60).clamp(5, 3600));
    Ok((Secret::new(token), lifetime))
}

/// Whether a token service at `realm` may receive the credentials of `registry_host`: on the
/// same host (any port), one below it, or a host of the registry's parent domain, as Docker Hub
/// (registry-1.docker.io → auth.docker.io) and GitLab (registry.gitlab.com → gitlab.com) put
/// theirs. A registry cannot send its users' credentials to a host of its choosing.
fn may_receive_credentials(realm: &Url, registry_host: &str) -> bool {
    let normal = |host: &str| host.trim_end_matches('.').to_ascii_lowercase();
    let realm_host = match realm.host() {
        Some(url::Host::Domain(name)) => normal(name),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return false,
    };
    let registry = normal(super::options::host_name(registry_host));
    if realm_host == registry {
        return true;
    }
    // An address is only ever itself.
    if registry.parse::<std::net::IpAddr>().is_ok()
        || realm_host.parse::<std::net::IpAddr>().is_ok()
    {
        return false;
    }
    if realm_host.ends_with(&format!(".{registry}")) {
        return true;
    }
    let Some((_, parent)) = registry.split_once('.') else { return false };
    parent.contains('.') && (realm_host == parent || realm_host.ends_with(&format!(".{parent}")))
}

/// `Basic base64(user:password)`, marked sensitive so that it never appears in debug output.
pub(super) fn basic(username: &str, password: &str) -> HeaderValue {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    sensitive(&format!("Basic {encoded}"))
}

/// `Bearer <token>`, marked sensitive.
pub(super) fn bearer(token: &Secret) -> HeaderValue {
    sensitive(&format!("Bearer {}", token.expose()))
}

fn sensitive(text: &str) -> HeaderValue {
    let mut value = HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""));
    value.set_sensitive(true);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_to_token_services_of_the_registrys_own_domain_only() {
        let may = |realm: &str, registry: &str| {
            may_receive_credentials(&Url::parse(realm).expect("url"), registry)
        };
        assert!(may("https://registry.example.com/token", "registry.example.com"));
        assert!(may("https://REGISTRY.example.com.:8443/token", "registry.example.com:5000"));
        assert!(may("https://auth.docker.io/token", "registry-1.docker.io"));
        assert!(may("https://gitlab.com/jwt/auth", "registry.gitlab.com"));
        assert!(may("http://127.0.0.1:9000/token", "127.0.0.1:5000"));
        assert!(!may("https://evil.example/token", "registry.example.com"));
        assert!(!may("https://example.com.evil.io/token", "registry.example.com"));
        assert!(may("https://auth.docker.io/token", "docker.io"));
        assert!(!may("https://io/token", "docker.io"));
        assert!(!may("https://evil.io/token", "docker.io"));
        assert!(!may("http://localhost:9000/token", "127.0.0.1:5000"));
        assert!(!may("http://127.0.0.2/token", "127.0.0.1"));
    }

    #[test]
    fn challenges_are_read_as_registries_write_them() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(parse_challenge(r#"Basic realm="registry""#), Some(Challenge::Basic));
        assert_eq!(
            parse_challenge(r#"Basic realm="x", Bearer realm="https://t/token", service=reg"#),
            Some(Challenge::Bearer {
                realm: "https://t/token".into(),
                service: Some("reg".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Bearer realm="https://t/a\"b""#),
            Some(Challenge::Bearer { realm: "https://t/a\"b".into(), service: None })
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None, "a Bearer challenge needs a realm");
    }

    #[test]
    fn authorization_values_never_print() {
        let value = bearer(&Secret::new("t0ken"));
        assert!(value.is_sensitive());
        assert!(!format!("{value:?}").contains("t0ken"));
    }
}
