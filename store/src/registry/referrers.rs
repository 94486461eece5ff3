//! What signatures need of a registry beyond releases: the referrers API (OCI 1.1), and
//! manifests of other media types (the referrers tag schema's index, signature images); and
//! the login check.

use bytes::Bytes;
use forge_release::Digest;
use http::{HeaderValue, Method, StatusCode};

use super::transport::{self, Call, Failure};
use super::{RegistryStore, Scope};
use crate::error::StoreError;

/// The most a referrers list, a referrer manifest or a signature image may take: they are a
/// few hundred bytes each, and a registry that sends more is not sending signatures.
pub const SMALL_MANIFEST_BYTES: u64 = 256 * 1024;

/// The OCI index media type (the referrers API's answer, the fallback tag's manifest).
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

impl RegistryStore {
    /// The referrers of `digest` as the registry's referrers API lists them (an OCI index);
    /// `None` when the registry has no such API (404 or 400, as CNCF distribution 2.8
    /// answers) or answers with something else than an index.
    pub async fn referrers(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        let mut call = Call::new(Method::GET, self.url(&format!("referrers/{digest}")));
        call.headers.insert(http::header::ACCEPT, HeaderValue::from_static(INDEX_MEDIA_TYPE));
        let listed = self
            .exchange(call, Scope::Pull, |response| async move {
                let is_index = response
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.split(';').next().map(str::trim) == Some(INDEX_MEDIA_TYPE));
                let body =
                    transport::read_limited(response, SMALL_MANIFEST_BYTES, "a referrers list")
                        .await?;
                Ok(is_index.then(|| body.to_vec()))
            })
            .await;
        match listed {
            Ok(found) => Ok(found),
            Err(Failure::Status {
                status: StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST,
                ..
            }) => Ok(None),
            Err(failure) => Err(self.error(&format!("listing the referrers of {digest}"), failure)),
        }
    }

    /// Uploads a manifest of `media_type` under `reference` (a tag or its digest).
    pub async fn put_manifest_as(
        &self,
        reference: &str,
        bytes: &[u8],
        media_type: &'static str,
    ) -> Result<(), StoreError> {
        let mut call = Call::new(Method::PUT, self.url(&format!("manifests/{reference}")));
        call.headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(media_type));
        call.body = Some(Bytes::copy_from_slice(bytes));
        self.exchange(call, Scope::Push, |_| async { Ok(()) })
            .await
            .map_err(|failure| self.error(&format!("uploading manifest {reference}"), failure))
    }

    /// Whether the registry accepts this store's credentials: `GET /v2/`, answering its
    /// challenge as any request does (what `docker login` and `oras login` check).
    pub async fn check_login(&self) -> Result<(), StoreError> {
        let call = Call::new(Method::GET, self.inner.base.clone());
        self.exchange(call, Scope::Pull, |_| async { Ok(()) })
            .await
            .map_err(|failure| self.error("logging in", failure))
    }

    /// A small manifest (at most [`SMALL_MANIFEST_BYTES`]) by digest, verified; `None` if
    /// there is none.
    pub async fn fetch_small_manifest(
        &self,
        digest: &Digest,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let operation = format!("fetching manifest {digest}");
        let Some(bytes) =
            self.get_manifest_within(digest.as_str(), &operation, SMALL_MANIFEST_BYTES).await?
        else {
            return Ok(None);
        };
        self.check_digest(&bytes, digest)?;
        Ok(Some(bytes.to_vec()))
    }

    /// A small manifest (at most [`SMALL_MANIFEST_BYTES`]) by tag; `None` if the tag is not
    /// there.
    pub async fn fetch_small_manifest_by_tag(
        &self,
        tag: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let operation = format!("fetching manifest {tag}");
        Ok(self
            .get_manifest_within(tag, &operation, SMALL_MANIFEST_BYTES)
            .await?
            .map(|b| b.to_vec()))
    }
}
