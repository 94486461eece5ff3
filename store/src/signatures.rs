//! Signatures of releases in a registry, in both forms cosign reads: sigstore bundles attached
//! as OCI referrers (listed by the referrers API, or the `sha256-<hex>` index where the
//! registry has none), and the classic `sha256-<hex>.sig` image. Every read is bounded; a
//! signature counts only when a trusted key verifies it and it names this very manifest, so a
//! signature copied from another release, a moved tag or a foreign index entry counts for
//! nothing.

use std::collections::BTreeMap;

use forge_release::Digest;
use forge_release::manifest::Descriptor;
use forge_sign::bundle::{self, Subject};
use forge_sign::{PublicKey, Signer, classic};
use serde::Serialize;

use crate::error::StoreError;
use crate::registry::RegistryStore;
use crate::store::Store;

/// A form of signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureForm {
    /// A sigstore bundle attached as a referrer (cosign v3's default).
    Bundle,
    /// The classic `.sig` image (cosign v2 and older).
    Classic,
}

fn sign_failed(store: &RegistryStore, reason: String) -> StoreError {
    StoreError::Registry { location: store.location(), operation: "signing".into(), reason }
}

/// Signs the release `subject` (in the repository `docker_reference`) in each of `forms`.
/// Signing again with the same key writes nothing new: ECDSA here is deterministic, and a
/// signature already there is recognised.
pub async fn sign(
    store: &RegistryStore,
    subject: &Subject,
    docker_reference: &str,
    signer: &dyn Signer,
    forms: &[SignatureForm],
    created: &str,
) -> Result<(), StoreError> {
    for form in forms {
        match form {
            SignatureForm::Bundle => {
                let statement = bundle::statement(
                    &subject.digest,
                    bundle::SIGNATURE_PREDICATE,
                    serde_json::json!({}),
                );
                attach(store, subject, signer, &statement, bundle::SIGNATURE_PREDICATE, created)
                    .await?;
            }
            SignatureForm::Classic => {
                sign_classic(store, subject, docker_reference, signer).await?;
            }
        }
    }
    Ok(())
}

/// Attaches `statement`, signed, to `subject` as a bundle referrer; its manifest digest.
pub async fn attach(
    store: &RegistryStore,
    subject: &Subject,
    signer: &dyn Signer,
    statement: &[u8],
    predicate_type: &str,
    created: &str,
) -> Result<Digest, StoreError> {
    let signed = bundle::sign(signer, statement).map_err(|e| sign_failed(store, e))?;
    store.put_blob(&Digest::of(bundle::EMPTY_CONFIG), bundle::EMPTY_CONFIG).await?;
    store.put_blob(&Digest::of(&signed), &signed).await?;
    let referrer = bundle::referrer(&signed, subject, predicate_type, created);
    let digest = Digest::of(&referrer);
    store.put_manifest_as(digest.as_str(), &referrer, MANIFEST).await?;
    // A registry with the referrers API indexes the referrer itself; others need the index.
    if store.referrers(&subject.digest).await?.is_none() {
        let tag = bundle::fallback_tag(&subject.digest);
        let existing = store.fetch_small_manifest_by_tag(&tag).await?;
        let updated = bundle::add_to_index(existing.as_deref(), &digest, referrer.len() as u64)
            .map_err(|e| sign_failed(store, e))?;
        if let Some(index) = updated {
            store.put_manifest_as(&tag, &index, bundle::INDEX_MEDIA_TYPE).await?;
        }
    }
    Ok(digest)
}

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

async fn sign_classic(
    store: &RegistryStore,
    subject: &Subject,
    docker_reference: &str,
    signer: &dyn Signer,
) -> Result<(), StoreError> {
    let signed = classic::sign(signer, docker_reference, &subject.digest)
        .map_err(|e| sign_failed(store, e))?;
    store.put_blob(&Digest::of(&signed.payload), &signed.payload).await?;
    let tag = classic::tag(&subject.digest);
    add_classic_layers(&Store::Registry(store.clone()), &tag, vec![signed.layer]).await?;
    Ok(())
}

/// Adds `layers` (their payloads uploaded already) to the `.sig` image `tag`, keeping the
/// signatures there: an image that cannot be read is an error, not an empty one, and the
/// image stays within [`classic::MAX_LAYERS`]. Whether it changed.
pub(crate) async fn add_classic_layers(
    store: &Store,
    tag: &str,
    new: Vec<serde_json::Value>,
) -> Result<bool, StoreError> {
    let refused = |reason: String| StoreError::Registry {
        location: store.location(),
        operation: format!("writing {tag}"),
        reason,
    };
    let mut layers = match store.fetch_small_manifest_by_tag(tag).await? {
        Some(bytes) => classic::layers(&bytes).map_err(refused)?,
        None => Vec::new(),
    };
    let before = layers.len();
    for layer in new {
        if !layers.contains(&layer) {
            layers.push(layer);
        }
    }
    if layers.len() == before {
        return Ok(false);
    }
    if layers.len() > classic::MAX_LAYERS {
        return Err(refused(format!("more than {} signatures", classic::MAX_LAYERS)));
    }
    let (config, manifest) = classic::image(&layers);
    store.put_blob(&Digest::of(&config), &config).await?;
    store.put_manifest_as(tag, &manifest, MANIFEST).await?;
    Ok(true)
}

/// A signature that verified.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Signature {
    /// Its form.
    pub form: SignatureForm,
    /// The key's fingerprint (`sha256:` of its DER public key).
    pub key: String,
}

/// A signed statement about the release that verified (provenance, for one).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Statement {
    /// The key's fingerprint.
    pub key: String,
    /// The predicate type.
    pub predicate_type: String,
    /// The predicate.
    pub predicate: serde_json::Value,
}

/// What a release's signatures come to under some trusted keys.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// Signatures by trusted keys of this release.
    pub signatures: Vec<Signature>,
    /// Other signed statements about it, by trusted keys.
    pub statements: Vec<Statement>,
    /// Why each other signature found does not count.
    pub rejected: Vec<String>,
}

impl Verification {
    /// Whether some trusted key signed the release.
    pub fn is_signed(&self) -> bool {
        !self.signatures.is_empty()
    }
}

/// Finds the signatures of the release `digest` and checks them against `keys`: every
/// signature and signed statement.
pub async fn verify(
    store: &RegistryStore,
    digest: &Digest,
    keys: &[PublicKey],
) -> Result<Verification, StoreError> {
    // Both forms at once, and every referrer at once: latency, not bytes, is the cost.
    let (mut found, classic) = futures_util::future::try_join(
        verify_bundles(store, digest, keys),
        verify_classic(store, digest, keys),
    )
    .await?;
    found.merge(classic);
    Ok(found)
}

/// [`verify`] for a reader that needs one trusted signature and no statements: whichever form
/// shows one first ends the search.
pub async fn verify_signed(
    store: &RegistryStore,
    digest: &Digest,
    keys: &[PublicKey],
) -> Result<Verification, StoreError> {
    use futures_util::future::{Either, select};
    let bundles = std::pin::pin!(verify_bundles(store, digest, keys));
    let classic = std::pin::pin!(verify_classic(store, digest, keys));
    let (mut first, rest) = match select(bundles, classic).await {
        Either::Left((found, rest)) => (found?, Either::Left(rest)),
        Either::Right((found, rest)) => (found?, Either::Right(rest)),
    };
    if first.is_signed() {
        return Ok(first);
    }
    let second = match rest {
        Either::Left(classic) => classic.await?,
        Either::Right(bundles) => bundles.await?,
    };
    first.merge(second);
    Ok(first)
}

impl Verification {
    fn merge(&mut self, other: Verification) {
        self.signatures.extend(other.signatures);
        self.statements.extend(other.statements);
        self.rejected.extend(other.rejected);
        let mut seen = BTreeMap::new();
        self.signatures.retain(|s| seen.insert((s.form, s.key.clone()), ()).is_none());
    }
}

async fn verify_bundles(
    store: &RegistryStore,
    digest: &Digest,
    keys: &[PublicKey],
) -> Result<Verification, StoreError> {
    let mut found = Verification::default();
    for blob in bundles(store, digest).await? {
        match bundle::verify(&blob, digest, keys) {
            Ok(verified) if verified.predicate_type == bundle::SIGNATURE_PREDICATE => {
                found.signatures.push(Signature {
                    form: SignatureForm::Bundle,
                    key: verified.key.fingerprint(),
                });
            }
            Ok(verified) => found.statements.push(Statement {
                key: verified.key.fingerprint(),
                predicate_type: verified.predicate_type,
                predicate: verified.predicate,
            }),
            Err(why) => found.rejected.push(why),
        }
    }
    Ok(found)
}

async fn verify_classic(
    store: &RegistryStore,
    digest: &Digest,
    keys: &[PublicKey],
) -> Result<Verification, StoreError> {
    let mut found = Verification::default();
    for (payload, signature) in classic_signatures(store, digest).await? {
        match classic::verify(&payload, &signature, digest, keys) {
            Ok(key) => found
                .signatures
                .push(Signature { form: SignatureForm::Classic, key: key.fingerprint() }),
            Err(why) => found.rejected.push(why),
        }
    }
    Ok(found)
}

/// The referrer manifests of `digest` (digest and size): the referrers API and the tag
/// schema's index are asked at once, and the API's answer wins. An index that cannot be read
/// lists nothing: its signatures are not there.
pub(crate) async fn referrer_entries(
    store: &Store,
    digest: &Digest,
) -> Result<Vec<(Digest, u64)>, StoreError> {
    let fallback_tag = bundle::fallback_tag(digest);
    let (api, fallback) = futures_util::future::try_join(
        store.referrers(digest),
        store.fetch_small_manifest_by_tag(&fallback_tag),
    )
    .await?;
    Ok(api
        .or(fallback)
        .map(|index| bundle::index_entries(&index).unwrap_or_default())
        .unwrap_or_default())
}

/// The bundle blobs of every referrer of `digest` (at most [`bundle::MAX_REFERRERS`]).
async fn bundles(store: &RegistryStore, digest: &Digest) -> Result<Vec<Vec<u8>>, StoreError> {
    let fetches = referrer_entries(&Store::Registry(store.clone()), digest)
        .await?
        .into_iter()
        .filter(|(_, size)| *size <= crate::registry::SMALL_MANIFEST_BYTES)
        .map(|(referrer, _)| async move {
            let Some(manifest) = store.fetch_small_manifest(&referrer).await? else {
                return Ok(None);
            };
            let Some((layer, size)) = bundle::bundle_layer(&manifest) else { return Ok(None) };
            if size > bundle::MAX_BUNDLE_BYTES {
                return Ok(None);
            }
            let descriptor = Descriptor {
                media_type: bundle::MEDIA_TYPE.to_owned(),
                digest: layer,
                size,
                annotations: BTreeMap::new(),
            };
            store.fetch_blob(&descriptor).await.map(Some)
        });
    let blobs = futures_util::future::try_join_all(fetches).await?;
    Ok(blobs.into_iter().flatten().collect())
}

/// The payloads and signatures of the classic `.sig` image of `digest`.
async fn classic_signatures(
    store: &RegistryStore,
    digest: &Digest,
) -> Result<Vec<(Vec<u8>, String)>, StoreError> {
    let Some(manifest) = store.fetch_small_manifest_by_tag(&classic::tag(digest)).await? else {
        return Ok(Vec::new());
    };
    let layers = classic::signed_layers(&manifest);
    let fetches = layers.into_iter().filter(|(_, size, _)| *size <= classic::MAX_PAYLOAD_BYTES);
    let fetches = fetches.map(|(payload, size, signature)| async move {
        let descriptor = Descriptor {
            media_type: classic::PAYLOAD_MEDIA_TYPE.to_owned(),
            digest: payload,
            size,
            annotations: BTreeMap::new(),
        };
        Ok::<_, StoreError>((store.fetch_blob(&descriptor).await?, signature))
    });
    futures_util::future::try_join_all(fetches).await
}
