//! A release stream in an OCI registry repository, spoken to over the OCI distribution API.
//!
//! Every answer is read with a bound (manifests 4 MiB, blobs their descriptor's size and no
//! more, tag pages, token answers, error bodies) and every blob is hashed as it streams in.
//! Requests have connect and idle-read timeouts; transient failures are retried with backoff,
//! honouring `Retry-After`. Credentials go only to the host they belong to (see
//! [`credentials`]); redirects are followed by hand and never carry them elsewhere.

mod auth;
pub mod credentials;
pub mod options;
mod referrers;
mod retry;
mod transport;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use forge_release::Digest;
use forge_release::aliases;
use forge_release::manifest::{Descriptor, MANIFEST_MEDIA_TYPE};
use http::{HeaderValue, Method, StatusCode};
use reqwest::Url;
use sha2::Digest as _;

pub use credentials::{CredentialSource, HostAuth};
pub use options::{
    Credentials, HostCredentials, PlainHttp, RegistryOptions, RetryPolicy, Secret, is_loopback,
};
pub use referrers::SMALL_MANIFEST_BYTES;

use self::auth::{Challenge, TokenClient, Tokens};
use self::options::limits;
use self::transport::{Call, Failure, Transport};
use crate::error::{StoreError, TagClaim};

/// Tags asked for per page when listing.
const TAG_PAGE: usize = 1000;

/// What manifests are accepted as: OCI and Docker images and indexes (a tag of a container
/// image may name any of them).
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// Read or write access to the repository (the token scope asked for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Pull,
    Push,
}

/// One repository (`<repository>/<project>`) in a registry.
#[derive(Clone)]
pub struct RegistryStore {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    /// `<scheme>://<host>/v2/`.
    base: Url,
    host: String,
    repository: String,
    auth: HostAuth,
    source: CredentialSource,
    plain: bool,
    retry: RetryPolicy,
    /// How the registry wants to be authenticated, once it has said (its first `401`).
    challenge: Mutex<Option<Challenge>>,
    tokens: Tokens,
}

impl std::fmt::Debug for RegistryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryStore")
            .field("location", &self.location())
            .field("credentials", &self.inner.source)
            .finish_non_exhaustive()
    }
}

impl RegistryStore {
    /// A store for `host`/`repository` (`repository` may include a registry path prefix).
    pub fn new(
        host: &str,
        repository: &str,
        options: &RegistryOptions,
    ) -> Result<Self, StoreError> {
        let plain = options.plain_http_for(host);
        let scheme = if plain { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{host}/v2/")).map_err(|_| {
            StoreError::Config { reason: format!("`{host}` is not a registry host") }
        })?;
        let transport = Transport::new(Arc::new(options.clone()))
            .map_err(|reason| StoreError::Config { reason })?;
        let (auth, source) = credentials::for_host(host, repository, options);
        Ok(RegistryStore {
            inner: Arc::new(Inner {
                transport,
                base,
                host: host.to_owned(),
                repository: repository.to_owned(),
                auth,
                source,
                plain,
                retry: options.retry,
                challenge: Mutex::new(None),
                tokens: Tokens::default(),
            }),
        })
    }

    /// `host/repository`.
    pub fn location(&self) -> String {
        format!("{}/{}", self.inner.host, self.inner.repository)
    }

    /// Where this store's credentials came from.
    pub fn credential_source(&self) -> &CredentialSource {
        &self.inner.source
    }

    fn url(&self, path: &str) -> Url {
        // Repository names are `[a-z0-9._/-]` and references tags or digests: nothing to escape.
        self.inner.base.join(&format!("{}/{path}", self.inner.repository)).expect("a valid URL")
    }

    fn scope(&self, scope: Scope) -> String {
        match scope {
            Scope::Pull => format!("repository:{}:pull", self.inner.repository),
            Scope::Push => format!("repository:{}:pull,push", self.inner.repository),
        }
    }

    /// The `Authorization` for a request needing `scope`, as far as the registry has said how.
    async fn authorization(&self, scope: Scope) -> Result<Option<HeaderValue>, Failure> {
        let challenge = self.inner.challenge.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match (challenge, &self.inner.auth) {
            (Some(Challenge::Bearer { realm, service }), auth) => {
                let token = self
                    .inner
                    .tokens
                    .get(
                        &self.inner.transport,
                        &realm,
                        service.as_deref(),
                        &self.scope(scope),
                        &TokenClient {
                            auth,
                            registry_host: &self.inner.host,
                            registry_plain: self.inner.plain,
                        },
                    )
                    .await?;
                Ok(Some(auth::bearer(&token)))
            }
            // Basic credentials go to their own host at once: no round trip to be told so.
            (_, HostAuth::Basic(c)) => Ok(Some(auth::basic(&c.username, c.password.expose()))),
            _ => Ok(None),
        }
    }

    /// Sends `call` with the authorization `scope` needs; a `401` teaches the challenge and the
    /// call is sent once more with it.
    async fn send(&self, call: &Call, scope: Scope) -> Result<reqwest::Response, Failure> {
        let mut answered_challenge = false;
        loop {
            let mut call = call.clone();
            if let Some(value) = self.authorization(scope).await? {
                call.headers.insert(http::header::AUTHORIZATION, value);
            }
            let response = self.inner.transport.send(&call).await?;
            if response.status() != StatusCode::UNAUTHORIZED || answered_challenge {
                return Ok(response);
            }
            // Only the registry says how to authenticate to it: a redirect's target asking
            // for credentials (with a token service of its own) gets none.
            if response.url().origin() != self.inner.base.origin() {
                return Err(Failure::Refused(format!(
                    "{} (where the registry redirected) asks for credentials; they go to the registry only",
                    transport::url_host(response.url())
                )));
            }
            let challenge = response
                .headers()
                .get(http::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(auth::parse_challenge);
            let Some(challenge) = challenge else { return Ok(response) };
            let known = self
                .inner
                .challenge
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .replace(challenge.clone());
            if known.as_ref() == Some(&challenge) {
                if matches!(challenge, Challenge::Basic) {
                    // Refused with the credentials the registry asked for.
                    return Ok(response);
                }
                // A token that no longer works: fetch a fresh one, once.
                self.inner.tokens.clear().await;
            }
            answered_challenge = true;
        }
    }

    /// `call` with retries; a success is handed to `read`, whose failures are retried too (a
    /// transfer cut short is worth another try).
    async fn exchange<T, F, Fut>(&self, call: Call, scope: Scope, read: F) -> Result<T, Failure>
    where
        F: Fn(reqwest::Response) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        retry::with_retries(&self.inner.retry, || async {
            let response = self.send(&call, scope).await?;
            if !response.status().is_success() {
                let (status, headers, text) = transport::error_text(response).await;
                return Err(Failure::Status { status, headers, text });
            }
            read(response).await
        })
        .await
    }

    fn error(&self, operation: &str, failure: Failure) -> StoreError {
        match failure {
            Failure::Status {
                status: StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, ..
            } => StoreError::Unauthorized {
                location: self.location(),
                anonymous: self.inner.auth == HostAuth::Anonymous,
            },
            other => StoreError::Registry {
                location: self.location(),
                operation: operation.to_owned(),
                reason: other.to_string(),
            },
        }
    }

    /// Every tag in the repository (none if the repository does not exist yet), following the
    /// registry's `Link` pages to the end: a page loop or an endless listing is an error.
    pub async fn list_tags(&self) -> Result<Vec<String>, StoreError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let fail = |reason: String| StoreError::Registry {
            location: self.location(),
            operation: "listing tags".into(),
            reason,
        };
        let mut url = self.url(&format!("tags/list?n={TAG_PAGE}"));
        // Pages seen, by a hash of their URL (a URL may be long; ten thousand of them more so).
        let mut seen = std::collections::HashSet::new();
        let page_key = |url: &Url| {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            url.as_str().hash(&mut hasher);
            hasher.finish()
        };
        let mut tags = BTreeSet::new();
        let mut tag_bytes = 0;
        for _ in 0..limits::TAG_PAGES {
            if !seen.insert(page_key(&url)) {
                return Err(fail(format!("the registry's pages loop back to {}", url.path())));
            }
            let call = Call::new(Method::GET, url.clone());
            let page = self
                .exchange(call, Scope::Pull, |response| async move {
                    let next = next_link(response.headers());
                    let body =
                        transport::read_limited(response, limits::TAG_PAGE_BYTES, "a page of tags")
                            .await?;
                    let page: Page = serde_json::from_slice(&body)
                        .map_err(|_| Failure::Refused("a page of tags is not a tag list".into()))?;
                    Ok((page.tags.unwrap_or_default(), next))
                })
                .await;
            let (page, next) = match page {
                Ok(found) => found,
                Err(Failure::Status { status: StatusCode::NOT_FOUND, .. }) => break,
                Err(failure) => return Err(self.error("listing tags", failure)),
            };
            if let Some(bad) = page.iter().find(|t| !aliases::is_valid_oci_tag(t)) {
                return Err(fail(format!(
                    "the registry lists `{}`, which is not a tag",
                    transport::clean(bad, 140)
                )));
            }
            tag_bytes += page.iter().map(String::len).sum::<usize>();
            tags.extend(page);
            if tags.len() > limits::TAGS || tag_bytes > limits::TAG_BYTES {
                return Err(fail(format!(
                    "more than {} tags or {} MiB of them, the most accepted",
                    limits::TAGS,
                    limits::TAG_BYTES >> 20
                )));
            }
            let Some(next) = next else { return Ok(tags.into_iter().collect()) };
            let next = url
                .join(&next)
                .map_err(|_| fail("the registry's next page is not a URL".into()))?;
            if next.origin() != url.origin() {
                return Err(fail(format!(
                    "the registry's next page is on another host ({})",
                    transport::url_host(&next)
                )));
            }
            url = next;
        }
        if seen.len() >= limits::TAG_PAGES {
            return Err(fail(format!("the listing did not end after {} pages", limits::TAG_PAGES)));
        }
        Ok(tags.into_iter().collect())
    }

    /// The manifest digest a tag names, if it exists (from the registry's digest header, or
    /// by hashing the manifest where the registry sends none).
    pub async fn resolve_tag(&self, tag: &str) -> Result<Option<Digest>, StoreError> {
        let mut call = Call::new(Method::HEAD, self.url(&format!("manifests/{tag}")));
        call.headers.insert(http::header::ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        let operation = format!("resolving tag {tag}");
        let headed = self
            .exchange(call, Scope::Pull, |response| async move {
                Ok(response
                    .headers()
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<Digest>().ok()))
            })
            .await;
        match headed {
            Ok(Some(digest)) => Ok(Some(digest)),
            Ok(None) => Ok(self.fetch_manifest_by_tag(tag).await?.map(|(_, digest)| digest)),
            Err(Failure::Status { status: StatusCode::NOT_FOUND, .. }) => Ok(None),
            Err(failure) => Err(self.error(&operation, failure)),
        }
    }

    async fn get_manifest(
        &self,
        reference: &str,
        operation: &str,
    ) -> Result<Option<Bytes>, StoreError> {
        self.get_manifest_within(reference, operation, limits::MANIFEST_BYTES).await
    }

    /// A manifest of at most `limit` bytes (more is an error).
    async fn get_manifest_within(
        &self,
        reference: &str,
        operation: &str,
        limit: u64,
    ) -> Result<Option<Bytes>, StoreError> {
        let mut call = Call::new(Method::GET, self.url(&format!("manifests/{reference}")));
        call.headers.insert(http::header::ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        let fetched = self
            .exchange(call, Scope::Pull, |response| {
                transport::read_limited(response, limit, "a manifest")
            })
            .await;
        match fetched {
            Ok(bytes) => Ok(Some(bytes)),
            Err(Failure::Status { status: StatusCode::NOT_FOUND, .. }) => Ok(None),
            Err(failure) => Err(self.error(operation, failure)),
        }
    }

    /// Fetches manifest bytes by digest, verified.
    pub async fn fetch_manifest(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let bytes = self
            .get_manifest(digest.as_str(), &format!("fetching manifest {digest}"))
            .await?
            .ok_or_else(|| StoreError::BlobNotFound {
                digest: digest.clone(),
                location: self.location(),
            })?;
        self.check_digest(&bytes, digest)?;
        Ok(bytes.to_vec())
    }

    /// Refuses `bytes` that do not hash to `digest`, naming this registry.
    fn check_digest(&self, bytes: &[u8], digest: &Digest) -> Result<(), StoreError> {
        let actual = Digest::of(bytes);
        if &actual != digest {
            return Err(StoreError::Tampered {
                digest: digest.clone(),
                actual,
                location: self.location(),
            });
        }
        Ok(())
    }

    /// Fetches the manifest a tag names, with its digest computed from the bytes (the
    /// registry's header is not trusted).
    pub async fn fetch_manifest_by_tag(
        &self,
        tag: &str,
    ) -> Result<Option<(Vec<u8>, Digest)>, StoreError> {
        let bytes = self.get_manifest(tag, &format!("fetching manifest {tag}")).await?;
        Ok(bytes.map(|bytes| {
            let digest = Digest::of(&bytes);
            (bytes.to_vec(), digest)
        }))
    }

    /// Fetches a blob, hashing it as it streams in and reading no more than its descriptor
    /// says: a registry sending more, less or other bytes is caught without holding them.
    pub async fn fetch_blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>, StoreError> {
        let digest = &descriptor.digest;
        let call = Call::new(Method::GET, self.url(&format!("blobs/{digest}")));
        let fetched = self
            .exchange(call, Scope::Pull, |mut response| async move {
                let expected = descriptor.size;
                if response.content_length().is_some_and(|length| length > expected) {
                    return Err(Failure::Refused(format!(
                        "the registry sends {} bytes for a blob of {expected}",
                        response.content_length().unwrap_or(0)
                    )));
                }
                let mut hasher = sha2::Sha256::new();
                // Room for what has arrived, not for what the descriptor claims: a claim of
                // gigabytes reserves nothing before the bytes come.
                let reserve = expected.min(content_length_or(&response, 1 << 20)).min(64 << 20);
                let mut bytes = Vec::with_capacity(usize::try_from(reserve).unwrap_or(0));
                while let Some(chunk) = response.chunk().await.map_err(Failure::transport)? {
                    if bytes.len() as u64 + chunk.len() as u64 > expected {
                        return Err(Failure::Refused(format!(
                            "the registry sends more than the {expected} bytes of the blob"
                        )));
                    }
                    hasher.update(&chunk);
                    bytes.extend_from_slice(&chunk);
                }
                Ok((bytes, hasher.finalize()))
            })
            .await;
        let (bytes, hash) = match fetched {
            Ok(found) => found,
            Err(Failure::Status { status: StatusCode::NOT_FOUND, .. }) => {
                return Err(StoreError::BlobNotFound {
                    digest: digest.clone(),
                    location: self.location(),
                });
            }
            Err(Failure::Refused(reason)) => {
                return Err(StoreError::Format(forge_release::FormatError::NotARelease {
                    reason: format!("blob {digest} from {}: {reason}", self.location()),
                }));
            }
            Err(failure) => return Err(self.error(&format!("fetching blob {digest}"), failure)),
        };
        let actual: Digest =
            format!("sha256:{}", hex::encode(hash)).parse().expect("a sha256 digest");
        if bytes.len() as u64 != descriptor.size {
            return Err(forge_release::FormatError::SizeMismatch {
                digest: digest.clone(),
                expected: descriptor.size,
                actual: bytes.len() as u64,
            }
            .into());
        }
        if &actual != digest {
            return Err(StoreError::Tampered {
                digest: digest.clone(),
                actual,
                location: self.location(),
            });
        }
        Ok(bytes)
    }

    /// Whether the repository has a blob.
    pub async fn has_blob(&self, digest: &Digest) -> Result<bool, StoreError> {
        let call = Call::new(Method::HEAD, self.url(&format!("blobs/{digest}")));
        match self.exchange(call, Scope::Pull, |_| async { Ok(()) }).await {
            Ok(()) => Ok(true),
            Err(Failure::Status { status: StatusCode::NOT_FOUND, .. }) => Ok(false),
            Err(failure) => Err(self.error(&format!("checking blob {digest}"), failure)),
        }
    }

    /// Uploads a blob: a session (`POST`), then the bytes in one `PUT`.
    pub async fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        let body = Bytes::copy_from_slice(bytes);
        let upload = retry::with_retries(&self.inner.retry, || async {
            let start = Call::new(Method::POST, self.url("blobs/uploads/"));
            let response = self.send(&start, Scope::Push).await?;
            if response.status() != StatusCode::ACCEPTED && !response.status().is_success() {
                let (status, headers, text) = transport::error_text(response).await;
                return Err(Failure::Status { status, headers, text });
            }
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| start.url.join(l).ok())
                .ok_or_else(|| {
                    Failure::Refused("the registry opened an upload without a Location".into())
                })?;
            let mut url = location;
            url.query_pairs_mut().append_pair("digest", digest.as_str());
            let mut put = Call::new(Method::PUT, url);
            put.headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            put.body = Some(body.clone());
            let response = self.send(&put, Scope::Push).await?;
            if !response.status().is_success() {
                let (status, headers, text) = transport::error_text(response).await;
                return Err(Failure::Status { status, headers, text });
            }
            Ok(())
        })
        .await;
        upload.map_err(|failure| self.error(&format!("uploading blob {digest}"), failure))
    }

    /// Uploads manifest bytes under their digest (no tag).
    pub async fn put_manifest(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        self.push_manifest(digest.as_str(), bytes, &format!("uploading manifest {digest}")).await
    }

    /// Uploads a manifest by digest or tag.
    async fn push_manifest(
        &self,
        reference: &str,
        bytes: &[u8],
        operation: &str,
    ) -> Result<(), StoreError> {
        let mut call = Call::new(Method::PUT, self.url(&format!("manifests/{reference}")));
        call.headers
            .insert(http::header::CONTENT_TYPE, HeaderValue::from_static(MANIFEST_MEDIA_TYPE));
        call.body = Some(Bytes::copy_from_slice(bytes));
        self.exchange(call, Scope::Push, |_| async { Ok(()) })
            .await
            .map_err(|failure| self.error(operation, failure))
    }

    /// Points `tag` at `digest` (whose manifest is `bytes`) unless it names another manifest.
    /// The registry API has no compare-and-swap: the tag is checked, written, and read back,
    /// so a concurrent writer is detected in all but a window of one round trip.
    pub async fn claim_tag(
        &self,
        tag: &str,
        digest: &Digest,
        bytes: &[u8],
    ) -> Result<TagClaim, StoreError> {
        match self.resolve_tag(tag).await? {
            Some(existing) if &existing == digest => return Ok(TagClaim::AlreadyOurs),
            Some(existing) => return Ok(TagClaim::Taken(existing)),
            None => {}
        }
        self.push_manifest(tag, bytes, &format!("tagging {tag}")).await?;
        match self.resolve_tag(tag).await? {
            Some(now) if &now == digest => Ok(TagClaim::Claimed),
            Some(now) => Ok(TagClaim::Taken(now)),
            None => Err(StoreError::Registry {
                location: self.location(),
                operation: format!("tagging {tag}"),
                reason: "the tag was written but cannot be read back".into(),
            }),
        }
    }

    /// Points `tag` at the manifest `bytes`, whatever it named before.
    pub async fn set_tag(&self, tag: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.push_manifest(tag, bytes, &format!("tagging {tag}")).await
    }
}

/// The `rel="next"` target of a `Link` header (`<url>; rel="next"`).
fn next_link(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (target, params) = link.split_once(';')?;
            let is_next = params.split(';').any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            is_next.then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
        })
}

/// The length the response announces, or `default`.
fn content_length_or(response: &reqwest::Response, default: u64) -> u64 {
    response.content_length().unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_is_read_from_link_headers() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::LINK,
            r#"</v2/a/tags/list?n=2&last=b>; rel="next""#.parse().expect("header"),
        );
        assert_eq!(next_link(&headers).as_deref(), Some("/v2/a/tags/list?n=2&last=b"));
        headers.insert(
            http::header::LINK,
            r#"<https://r/x>; rel="prev", <https://r/y>; rel=next"#.parse().expect("header"),
        );
        assert_eq!(next_link(&headers).as_deref(), Some("https://r/y"));
        headers.clear();
        assert_eq!(next_link(&headers), None);
    }
}
