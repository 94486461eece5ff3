//! HTTP to registries: which client (TLS trust, plain HTTP), which addresses may be reached,
//! redirects followed by hand (credentials never follow to another host), and every response
//! body read with a bound.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, StatusCode};
use reqwest::{Client, Url};

use super::options::{RegistryOptions, is_forbidden_address, limits};

/// Why a request did not get an answer worth reading.
#[derive(Debug)]
pub(super) enum Failure {
    /// The connection or the transfer failed (refused, reset, timed out).
    Transport(reqwest::Error),
    /// The registry answered with an error status.
    Status {
        /// The status.
        status: StatusCode,
        /// Its headers (`WWW-Authenticate`, `Retry-After`).
        headers: HeaderMap,
        /// The registry's error code and message, sanitised (see [`error_text`]).
        text: String,
    },
    /// A rule of ours refused the request or the answer.
    Refused(String),
}

impl Failure {
    /// A transport failure, without its URL: a redirect's URL may carry a signature (blob
    /// storage) that must not reach a log or Argo CD's UI.
    pub fn transport(error: reqwest::Error) -> Self {
        Failure::Transport(error.without_url())
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Transport(e) => f.write_str(&with_causes(e)),
            Failure::Status { text, .. } => f.write_str(text),
            Failure::Refused(reason) => f.write_str(reason),
        }
    }
}

/// A request, kept so that it can be sent again (after a token, on a retry, to a redirect).
#[derive(Debug, Clone)]
pub(super) struct Call {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
}

impl Call {
    pub fn new(method: Method, url: Url) -> Self {
        Call { method, url, headers: HeaderMap::new(), body: None }
    }
}

/// The HTTP clients of one registry store.
pub(super) struct Transport {
    /// For `http://` URLs of hosts allowed plain HTTP: trusts no certificate authority, so
    /// building it loads none (a plain-HTTP registry never needs them).
    plain: Client,
    /// For `https://`: the system's authorities and the CA files, built on first use.
    tls: OnceLock<Result<Client, String>>,
    options: Arc<RegistryOptions>,
    ca_certificates: Vec<reqwest::Certificate>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").finish_non_exhaustive()
    }
}

impl Transport {
    pub fn new(options: Arc<RegistryOptions>) -> Result<Self, String> {
        static CRYPTO: std::sync::Once = std::sync::Once::new();
        // rustls needs one process-wide provider; ring keeps the build free of C toolchains.
        CRYPTO.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let ca_certificates = read_ca_files(&options)?;
        let plain = builder(&options).tls_certs_only([]).build().map_err(|e| with_causes(&e))?;
        Ok(Transport { plain, tls: OnceLock::new(), options, ca_certificates })
    }

    fn client_for(&self, url: &Url) -> Result<&Client, Failure> {
        let host = url_host(url);
        match url.scheme() {
            "https" => self
                .tls
                .get_or_init(|| {
                    builder(&self.options)
                        .tls_certs_merge(self.ca_certificates.iter().cloned())
                        .build()
                        .map_err(|e| {
                            format!(
                                "cannot set up TLS: {} (a system without CA certificates needs the ca-certificates package)",
                                with_causes(&e)
                            )
                        })
                })
                .as_ref()
                .map_err(|reason| Failure::Refused(reason.clone())),
            "http" if self.options.plain_http_for(&host) => Ok(&self.plain),
            "http" => Err(Failure::Refused(format!(
                "refusing plain HTTP to {host}: registries are reached over TLS unless they are on loopback or allowed plain HTTP"
            ))),
            other => Err(Failure::Refused(format!("refusing a `{other}:` URL"))),
        }
    }

    /// Sends `call`, following redirects: an `Authorization` header or a body goes only to the
    /// origin it was made for, never from HTTPS to plain HTTP, never to a forbidden address.
    pub async fn send(&self, call: &Call) -> Result<reqwest::Response, Failure> {
        let mut call = call.clone();
        let origin = call.url.origin();
        for _ in 0..=limits::REDIRECTS {
            check_address(&call.url)?;
            let client = self.client_for(&call.url)?;
            let mut request = client.request(call.method.clone(), call.url.clone());
            let mut headers = call.headers.clone();
            if call.url.origin() != origin {
                headers.remove(http::header::AUTHORIZATION);
            }
            request = request.headers(headers);
            if let Some(body) = &call.body {
                request = request.body(body.clone());
            }
            let response = request.send().await.map_err(Failure::transport)?;
            if !response.status().is_redirection() {
                return Ok(response);
            }
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| call.url.join(l).ok())
                .ok_or_else(|| Failure::Refused("a redirect without a usable Location".into()))?;
            if call.url.scheme() == "https" && location.scheme() != "https" {
                return Err(Failure::Refused(format!(
                    "refusing a redirect from HTTPS to {}",
                    location.scheme()
                )));
            }
            // As browsers do: 303, and 301/302 after a POST, go on as a GET without the body.
            let status = response.status();
            if status == StatusCode::SEE_OTHER
                || (call.method == Method::POST
                    && matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND))
            {
                call.method = Method::GET;
                call.body = None;
            }
            // A body (a refresh token, say) stays with the origin it was written for.
            if call.body.is_some() && location.origin() != origin {
                return Err(Failure::Refused(format!(
                    "refusing to send a request body on to {}, another host",
                    url_host(&location)
                )));
            }
            call.url = location;
        }
        Err(Failure::Refused(format!("more than {} redirects", limits::REDIRECTS)))
    }
}

fn builder(options: &RegistryOptions) -> reqwest::ClientBuilder {
    Client::builder()
        .user_agent(concat!("forge-pack/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(options.connect_timeout)
        .read_timeout(options.read_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(SafeResolver))
}

/// `host[:port]` of a URL, as references write it.
pub(super) fn url_host(url: &Url) -> String {
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(host) => host.to_string(),
        None => String::new(),
    };
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

/// A URL naming a forbidden address literally never leaves (names are checked as resolved).
fn check_address(url: &Url) -> Result<(), Failure> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    if is_forbidden_address(ip) {
        return Err(Failure::Refused(forbidden(&ip.to_string())));
    }
    Ok(())
}

fn forbidden(what: &str) -> String {
    format!(
        "refusing to connect to {what}: link-local and cloud metadata addresses are never contacted"
    )
}

/// Resolves names as the system does, then drops addresses no request may reach.
struct SafeResolver;

impl reqwest::dns::Resolve for SafeResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                found.iter().copied().filter(|a| !is_forbidden_address(a.ip())).collect();
            if allowed.is_empty() && !found.is_empty() {
                let error: Box<dyn std::error::Error + Send + Sync> =
                    forbidden(&format!("{host} ({})", found[0].ip())).into();
                return Err(error);
            }
            let addresses: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addresses)
        })
    }
}

/// Reads a whole body, refusing one longer than `limit` (by its `Content-Length` before
/// reading, and as it streams).
pub(super) async fn read_limited(
    mut response: reqwest::Response,
    limit: u64,
    what: &str,
) -> Result<Bytes, Failure> {
    let too_large =
        || Failure::Refused(format!("{what} is larger than {limit} bytes, the most accepted"));
    if response.content_length().is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(Failure::transport)? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// What an error response says, safe to show: the status, and the registry's error codes
/// and messages (cut short, control characters removed). The body itself is never echoed: an
/// internal service answering with secrets must not see them printed in Argo CD's UI.
pub(super) async fn error_text(response: reqwest::Response) -> (StatusCode, HeaderMap, String) {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let status = response.status();
    let headers = response.headers().clone();
    let body =
        read_limited(response, limits::ERROR_BYTES, "an error response").await.unwrap_or_default();
    let mut text = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""))
        .trim_end()
        .to_owned();
    if let Ok(envelope) = serde_json::from_slice::<Envelope>(&body) {
        for entry in envelope.errors.iter().take(3) {
            let code = clean(&entry.code, 40);
            let message = clean(&entry.message, 200);
            match (code.is_empty(), message.is_empty()) {
                (false, false) => text.push_str(&format!(": {code}: {message}")),
                (false, true) => text.push_str(&format!(": {code}")),
                (true, false) => text.push_str(&format!(": {message}")),
                (true, true) => {}
            }
        }
    }
    (status, headers, text)
}

/// `text` without control characters, at most `max` characters (an ellipsis says it was cut).
pub(super) fn clean(text: &str, max: usize) -> String {
    let printable: String = text.chars().filter(|c| !c.is_control()).collect();
    if printable.chars().count() <= max {
        return printable;
    }
    let mut cut: String = printable.chars().take(max).collect();
    cut.push('…');
    cut
}

/// An error and its causes (`error sending request: ...: invalid peer certificate: ...`):
/// reqwest's own message leaves out why a connection failed.
pub(super) fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

fn read_ca_files(options: &RegistryOptions) -> Result<Vec<reqwest::Certificate>, String> {
    let mut certificates = Vec::new();
    for path in &options.ca_files {
        let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let not_pem = || {
            format!(
                "{} is not a PEM certificate (expected -----BEGIN CERTIFICATE-----)",
                path.display()
            )
        };
        if !String::from_utf8_lossy(&data).contains("-----BEGIN CERTIFICATE-----") {
            return Err(not_pem());
        }
        certificates.extend(reqwest::Certificate::from_pem_bundle(&data).map_err(|_| not_pem())?);
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_is_cleaned_and_cut() {
        assert_eq!(clean("bad\u{1b}[31m thing\n", 100), "bad[31m thing");
        assert_eq!(clean(&"x".repeat(10), 4), "xxxx…");
    }

    #[test]
    fn forbidden_addresses_in_urls_never_leave() {
        for url in ["http://169.254.169.254/v2/", "https://[fd00:ec2::254]/v2/"] {
            let url = Url::parse(url).expect("url");
            assert!(matches!(check_address(&url), Err(Failure::Refused(_))), "{url}");
        }
        assert!(check_address(&Url::parse("http://127.0.0.1:5000/v2/").expect("url")).is_ok());
    }

    #[test]
    fn a_transport_failure_never_shows_the_url_it_had() {
        let transport = Transport::new(Arc::new(RegistryOptions::default())).expect("transport");
        // Nothing listens on port 1; the query stands for a storage signature.
        let url = Url::parse("http://127.0.0.1:1/blob?X-Amz-Signature=s3cr3t").expect("url");
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let failure = runtime
            .block_on(transport.send(&Call::new(Method::GET, url)))
            .expect_err("nothing listens");
        let text = failure.to_string();
        assert!(matches!(failure, Failure::Transport(_)), "{text}");
        assert!(!text.contains("s3cr3t") && !text.contains("127.0.0.1:1"), "{text}");
    }
}
