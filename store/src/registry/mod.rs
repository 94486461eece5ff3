//! A release stream in an OCI registry, through oci-client.

mod auth;
mod clients;
pub mod options;
mod retry;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};

use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

pub use auth::CredentialSource;
pub use options::{Credentials, RegistryOptions, RetryPolicy, Secret, is_loopback};

use forge_release::Digest;
use forge_release::manifest::{Descriptor, MANIFEST_MEDIA_TYPE};

use crate::error::{StoreError, TagClaim};

/// Tags requested per page when listing.
const TAG_PAGE: usize = 1000;

/// One repository (`<repository>/<project>`) in a registry.
#[derive(Clone)]
pub struct RegistryStore {
    clients: Arc<clients::Clients>,
    host: String,
    repository: String,
    auth: RegistryAuth,
    source: CredentialSource,
    retry: RetryPolicy,
    /// Set once an anonymous store has sent its first request assuming the registry wants no
    /// token (see [`Self::authed`]).
    assumed_auth_free: Arc<AtomicBool>,
    /// Set once an anonymous store has asked the registry whether it wants a token: whether
    /// it does (and a token was fetched).
    challenge: Arc<tokio::sync::OnceCell<bool>>,
}

impl std::fmt::Debug for RegistryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryStore")
            .field("location", &self.location())
            .field("credentials", &self.source)
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
        static CRYPTO: Once = Once::new();
        // rustls needs one process-wide provider; ring keeps the build free of C toolchains.
        CRYPTO.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let clients = clients::Clients::new(host, options)?;
        let (auth, source) = auth::resolve(host, options.credentials.as_ref());
        Ok(RegistryStore {
            clients: Arc::new(clients),
            host: host.to_owned(),
            repository: repository.to_owned(),
            auth,
            source,
            retry: options.retry,
            assumed_auth_free: Arc::default(),
            challenge: Arc::default(),
        })
    }

    /// `host/repository`.
    pub fn location(&self) -> String {
        format!("{}/{}", self.host, self.repository)
    }

    fn tagged(&self, tag: &str) -> Reference {
        Reference::with_tag(self.host.clone(), self.repository.clone(), tag.to_owned())
    }

    fn by_digest(&self, digest: &Digest) -> Reference {
        Reference::with_digest(self.host.clone(), self.repository.clone(), digest.to_string())
    }

    /// Runs `operation` with retries (see [`retry::with_retries`]); an anonymous store's
    /// first calls ask for an auth challenge alongside (see [`Self::authed`]), and one refused
    /// for want of the token that brought runs once more with it. When it is refused, the
    /// token service is asked again in the open, since oci-client drops why it could not get
    /// a token: a certificate a plain-HTTP store's client could not trust swaps in a client
    /// that trusts the system's authorities (see [`clients`]) and the operation runs once
    /// more; any other failure to reach the token service is the error reported.
    async fn call<T, F, Fut>(&self, mut operation: F) -> Result<T, OciDistributionError>
    where
        F: FnMut(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T, OciDistributionError>>,
    {
        let (mut first, mut token_retried) = (true, false);
        loop {
            let attempt = retry::with_retries(&self.retry, || operation(self.clients.get()));
            let result = if std::mem::take(&mut first) {
                futures_util::future::join(attempt, self.probe_challenge_once()).await.0
            } else {
                attempt.await
            };
            let error = match result {
                Err(error) if is_refusal(&error) => error,
                other => return other,
            };
            if !token_retried && self.challenge.get() == Some(&true) {
                token_retried = true;
                continue;
            }
            let error = self.token_check().await.err().unwrap_or(error);
            // At most once: afterwards there is nothing left to upgrade.
            if !self.clients.upgrade_after(&error).unwrap_or(false) {
                return Err(error);
            }
            self.authed().await;
        }
    }

    /// Asks the token service for a pull token, reporting a failure to reach it.
    async fn token_check(&self) -> Result<(), OciDistributionError> {
        use oci_client::RegistryOperation;
        let reference = self.tagged("latest");
        match self.clients.get().auth(&reference, &self.auth, RegistryOperation::Pull).await {
            Err(e @ OciDistributionError::RequestError(_)) => Err(e),
            _ => Ok(()),
        }
    }

    /// Readies the client for a request.
    ///
    /// oci-client asks `/v2/` for an auth challenge before every request it holds no cached
    /// token for, and it caches nothing when the registry sets no challenge: on an auth-free
    /// registry every request would cost two. An anonymous store therefore caches an empty
    /// bearer token for pulls before its first request (no network; a registry without auth
    /// ignores the header), and its first calls ask `/v2/` alongside (see
    /// [`Self::probe_challenge`]): on an auth-free registry the first pull costs one round
    /// trip, not two; with a token service, the refused request runs again with the token.
    async fn authed(&self) {
        let client = self.clients.get();
        client.store_auth_if_needed(&self.host, &self.auth).await;
        if self.source == CredentialSource::Anonymous
            && !self.assumed_auth_free.swap(true, Ordering::SeqCst)
        {
            let empty = RegistryAuth::Bearer(String::new());
            let pull = oci_client::RegistryOperation::Pull;
            let _ = client.auth(&self.tagged("latest"), &empty, pull).await;
        }
    }

    /// An anonymous store's challenge probe, run (or waited for) once; nothing for others.
    async fn probe_challenge_once(&self) {
        if self.source == CredentialSource::Anonymous {
            self.challenge.get_or_init(|| self.probe_challenge()).await;
        }
    }

    /// Asks `/v2/` whether an anonymous caller needs a token: with a Bearer challenge,
    /// oci-client fetches the anonymous pull token and caches it in place of the empty one
    /// (true); without, pushes get the empty token too (false).
    async fn probe_challenge(&self) -> bool {
        use oci_client::RegistryOperation;
        let reference = self.tagged("latest");
        let client = self.clients.get();
        let anonymous = client.auth(&reference, &RegistryAuth::Anonymous, RegistryOperation::Pull);
        match anonymous.await {
            Ok(None) => {
                let empty = RegistryAuth::Bearer(String::new());
                let _ = client.auth(&reference, &empty, RegistryOperation::Push).await;
                false
            }
            Ok(Some(_)) => true,
            Err(_) => false,
        }
    }

    fn error(&self, operation: &str, error: OciDistributionError) -> StoreError {
        match &error {
            // Some calls (blob upload) report a 401 as a bare server error.
            _ if is_refusal(&error) => StoreError::Unauthorized {
                location: self.location(),
                anonymous: self.source == CredentialSource::Anonymous,
            },
            _ => StoreError::Registry {
                location: self.location(),
                operation: operation.to_owned(),
                reason: with_causes(&error),
            },
        }
    }

    /// Every tag in the repository (none if the repository does not exist yet).
    pub async fn list_tags(&self) -> Result<Vec<String>, StoreError> {
        self.authed().await;
        let image = self.tagged("latest");
        let mut tags: BTreeSet<String> = BTreeSet::new();
        loop {
            let last = tags.last().cloned();
            let (image, last) = (&image, last.as_deref());
            let page = self
                .call(|client| async move {
                    client.list_tags(image, &self.auth, Some(TAG_PAGE), last).await
                })
                .await;
            let page = match page {
                Ok(page) => page,
                Err(e) if is_not_found(&e) => break,
                Err(e) => return Err(self.error("listing tags", e)),
            };
            let count = page.tags.len();
            let before = tags.len();
            tags.extend(page.tags);
            // A short page is the last one. Some registries (distribution 2.x) ignore `n` and
            // `last` and return everything at once: a page with nothing new ends the walk too.
            if count != TAG_PAGE || tags.len() == before {
                break;
            }
        }
        Ok(tags.into_iter().collect())
    }

    /// The manifest digest a tag names, if it exists.
    pub async fn resolve_tag(&self, tag: &str) -> Result<Option<Digest>, StoreError> {
        self.authed().await;
        let image = self.tagged(tag);
        let image = &image;
        match self
            .call(|client| async move { client.fetch_manifest_digest(image, &self.auth).await })
            .await
        {
            Ok(digest) => digest.parse().map(Some).map_err(|_| StoreError::Registry {
                location: self.location(),
                operation: format!("resolving tag {tag}"),
                reason: format!("the registry answered with an unsupported digest `{digest}`"),
            }),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.error(&format!("resolving tag {tag}"), e)),
        }
    }

    async fn pull_manifest(
        &self,
        image: &Reference,
        what: &str,
    ) -> Result<Option<(Vec<u8>, Digest)>, StoreError> {
        self.authed().await;
        let result = self
            .call(|client| async move {
                client.pull_manifest_raw(image, &self.auth, &[MANIFEST_MEDIA_TYPE]).await
            })
            .await;
        match result {
            // The digest is recomputed from the bytes: the registry's header is not trusted.
            Ok((bytes, _)) => {
                let bytes = bytes.to_vec();
                let digest = Digest::of(&bytes);
                Ok(Some((bytes, digest)))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.error(what, e)),
        }
    }

    /// Fetches manifest bytes by digest, verified.
    pub async fn fetch_manifest(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        match self
            .pull_manifest(&self.by_digest(digest), &format!("fetching manifest {digest}"))
            .await?
        {
            Some((bytes, actual)) if &actual == digest => Ok(bytes),
            Some((_, actual)) => Err(StoreError::Tampered {
                digest: digest.clone(),
                actual,
                location: self.location(),
            }),
            None => {
                Err(StoreError::BlobNotFound { digest: digest.clone(), location: self.location() })
            }
        }
    }

    /// Fetches the manifest a tag names, with its digest computed from the bytes.
    pub async fn fetch_manifest_by_tag(
        &self,
        tag: &str,
    ) -> Result<Option<(Vec<u8>, Digest)>, StoreError> {
        self.pull_manifest(&self.tagged(tag), &format!("fetching manifest {tag}")).await
    }

    /// Fetches a blob into memory; the caller verifies it against its descriptor.
    pub async fn fetch_blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>, StoreError> {
        self.authed().await;
        let image = self.by_digest(&descriptor.digest);
        let (image, digest) = (&image, descriptor.digest.to_string());
        let digest = digest.as_str();
        let result = self
            .call(|client| async move {
                let mut out =
                    Vec::with_capacity(usize::try_from(descriptor.size).unwrap_or(0).min(64 << 20));
                client.pull_blob(image, digest, &mut out).await.map(|()| out)
            })
            .await;
        match result {
            Ok(bytes) => Ok(bytes),
            Err(e) if is_not_found(&e) => Err(StoreError::BlobNotFound {
                digest: descriptor.digest.clone(),
                location: self.location(),
            }),
            Err(OciDistributionError::DigestError(e)) => Err(StoreError::Registry {
                location: self.location(),
                operation: format!("fetching blob {}", descriptor.digest),
                reason: format!("content does not match its digest: {e}"),
            }),
            Err(e) => Err(self.error(&format!("fetching blob {}", descriptor.digest), e)),
        }
    }

    /// Whether the repository has a blob.
    pub async fn has_blob(&self, digest: &Digest) -> Result<bool, StoreError> {
        self.authed().await;
        let image = &self.by_digest(digest);
        self.call(|client| async move { client.blob_exists(image, digest.as_str()).await })
            .await
            .map_err(|e| self.error(&format!("checking blob {digest}"), e))
    }

    /// Uploads a blob.
    pub async fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        self.authed().await;
        let image = &self.by_digest(digest);
        self.call(
            |client| async move { client.push_blob(image, bytes.to_vec(), digest.as_str()).await },
        )
        .await
        .map(drop)
        .map_err(|e| self.error(&format!("uploading blob {digest}"), e))
    }

    /// Uploads manifest bytes under their digest (no tag).
    pub async fn put_manifest(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        self.push_manifest(&self.by_digest(digest), bytes, &format!("uploading manifest {digest}"))
            .await
    }

    /// Uploads a manifest by digest or tag. A blob the registry still lacks after the retries
    /// is reported as [`StoreError::BlobNotFound`].
    async fn push_manifest(
        &self,
        image: &Reference,
        bytes: &[u8],
        what: &str,
    ) -> Result<(), StoreError> {
        self.authed().await;
        let content_type = &http::HeaderValue::from_static(MANIFEST_MEDIA_TYPE);
        self.call(|client| async move {
            client.push_manifest_raw(image, bytes.to_vec(), content_type.clone()).await
        })
        .await
        .map(drop)
        .map_err(|e| match unknown_blob(&e) {
            Some(blob) => StoreError::BlobNotFound { digest: blob, location: self.location() },
            None => self.error(what, e),
        })
    }

    /// Points `tag` at `digest` unless it names another manifest. The registry API has no
    /// compare-and-swap: the tag is checked, written, and read back, so a concurrent writer is
    /// detected in all but a window of one round trip.
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
        self.push_manifest(&self.tagged(tag), bytes, &format!("tagging {tag}")).await?;
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
        self.push_manifest(&self.tagged(tag), bytes, &format!("tagging {tag}")).await
    }
}

/// An error and its causes (`error sending request: ...: invalid peer certificate: ...`):
/// reqwest's own message leaves out why a connection failed.
fn with_causes(error: &OciDistributionError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// The blob a manifest upload was refused for (`MANIFEST_BLOB_UNKNOWN`), which oci-client
/// reports as a bare 400 with the registry's error list as its message.
fn unknown_blob(error: &OciDistributionError) -> Option<Digest> {
    let OciDistributionError::ServerError { code: 400, message, .. } = error else { return None };
    let body: serde_json::Value = serde_json::from_str(message).ok()?;
    body["errors"].as_array()?.iter().find_map(|e| {
        (e["code"] == "MANIFEST_BLOB_UNKNOWN").then(|| e["detail"].as_str()?.parse().ok())?
    })
}

/// A refusal: the registry wants other credentials (or a token that could not be fetched).
fn is_refusal(error: &OciDistributionError) -> bool {
    matches!(
        error,
        OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_)
            | OciDistributionError::ServerError { code: 401 | 403, .. }
    ) || has_code(error, &[OciErrorCode::Unauthorized, OciErrorCode::Denied])
}

fn has_code(error: &OciDistributionError, codes: &[OciErrorCode]) -> bool {
    match error {
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope.errors.iter().any(|e| codes.contains(&e.code))
        }
        _ => false,
    }
}

fn is_not_found(error: &OciDistributionError) -> bool {
    matches!(error, OciDistributionError::ImageManifestNotFoundError(_))
        || matches!(error, OciDistributionError::ServerError { code: 404, .. })
        || has_code(
            error,
            &[
                OciErrorCode::ManifestUnknown,
                OciErrorCode::NameUnknown,
                OciErrorCode::BlobUnknown,
                OciErrorCode::NotFound,
            ],
        )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_blob_a_manifest_upload_was_refused_for_is_read_from_the_error_list() {
        let digest = format!("sha256:{}", "6".repeat(64));
        let message = format!(
            r#"{{"errors":[{{"code":"DIGEST_INVALID"}},{{"code":"MANIFEST_BLOB_UNKNOWN","detail":"{digest}"}}]}}"#
        );
        let error = oci_client::errors::OciDistributionError::ServerError {
            code: 400,
            url: "http://registry/v2/app/manifests/1".into(),
            message,
        };
        assert_eq!(super::unknown_blob(&error).map(|d| d.to_string()), Some(digest));
    }
}
