//! Signing releases and checking their signatures: keys from files (cosign's encrypted
//! `cosign.key` opens with `COSIGN_PASSWORD`, as cosign's does), and the release facts a
//! signature needs (its manifest's size and media type, its repository, its commit time).

use std::path::{Path, PathBuf};

use forge_release::Digest;
use forge_release::manifest::MANIFEST_MEDIA_TYPE;
use forge_sign::bundle::Subject;
use forge_sign::{KeySigner, PublicKey};
use forge_store::Store;
use forge_store::registry::RegistryStore;
use forge_store::signatures::{self, SignatureForm, Verification};

use crate::error::Error;
use crate::exit;

/// The password of an encrypted private key (cosign's variable, so one setting serves both).
pub const PASSWORD_VAR: &str = "COSIGN_PASSWORD";

/// The largest key file read.
const KEY_BYTES: u64 = 64 * 1024;

/// Why signing or verifying cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// A key file cannot be used.
    #[error("{}: {reason}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Signatures live in registries.
    #[error(
        "{location} is not a registry: signatures are stored in registries (as cosign stores them)"
    )]
    NotARegistry {
        /// The store.
        location: String,
    },
    /// The release found under this commit is not what this push built.
    #[error(
        "release {digest} was made by another push from other source facts ({differs}): this push signs only what it built"
    )]
    NotThisBuild {
        /// The release.
        digest: Digest,
        /// What differs.
        differs: String,
    },
    /// No provenance signed by a trusted key.
    #[error(transparent)]
    NoProvenance(#[from] NoProvenance),
    /// No trusted key signed the release.
    #[error("release {digest} in {location} is not signed by any of the keys given ({}){}",
        keys.join(", "), if rejected.is_empty() { "; it has no signatures".to_owned() } else { format!("; signatures found: {}", rejected.join("; ")) })]
    NotSigned {
        /// The release.
        digest: Digest,
        /// Where.
        location: String,
        /// The keys tried, by fingerprint.
        keys: Vec<String>,
        /// Why each signature found does not count.
        rejected: Vec<String>,
    },
}

/// A release signed but without signed provenance.
#[derive(Debug, thiserror::Error)]
#[error("release {digest} carries no build provenance signed by the keys given ({})", keys.join(", "))]
pub struct NoProvenance {
    /// The release.
    pub digest: Digest,
    /// The keys tried.
    pub keys: Vec<String>,
}

impl SigningError {
    /// Bad keys are input errors; an unsigned release fails verification.
    pub fn code(&self) -> u8 {
        match self {
            SigningError::Key { .. } | SigningError::NotARegistry { .. } => exit::INPUT,
            SigningError::NotThisBuild { .. } => exit::REFUSED,
            SigningError::NotSigned { .. } | SigningError::NoProvenance(_) => exit::VERIFY,
        }
    }

    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        match self {
            SigningError::Key { reason, .. } if reason.contains("password") => Some(format!(
                "set {PASSWORD_VAR} to the key's password (as for cosign sign)"
            )),
            SigningError::NotSigned { .. } => Some(
                "sign it (forge-pack sign <release> --key <private key>, or cosign sign), or check that the right public key is trusted".into(),
            ),
            _ => None,
        }
    }
}

fn read_key_file(path: &Path) -> Result<String, SigningError> {
    let bad = |reason: String| SigningError::Key { path: path.to_owned(), reason };
    let bytes = forge_store::bounded::read_file(path, KEY_BYTES).map_err(|e| bad(e.to_string()))?;
    String::from_utf8(bytes).map_err(|_| bad("not a PEM text file".into()))
}

/// Whether the release described by `metadata` is the build of `source` and `artifacts`:
/// a release found under the commit may have been pushed by anyone who can push, and a key
/// must not vouch for facts it did not see (repository, commit, files read, artifacts).
pub fn same_build(
    metadata: &forge_release::metadata::ReleaseMetadata,
    source: &forge_release::metadata::SourceInfo,
    artifacts: &[forge_release::metadata::Artifact],
    digest: &Digest,
) -> Result<(), SigningError> {
    let theirs = &metadata.source;
    let mut differs = Vec::new();
    if theirs.repository_url != source.repository_url {
        differs.push(format!(
            "repository {} here, {} in the release",
            source.repository_url.as_deref().unwrap_or("unknown"),
            theirs.repository_url.as_deref().unwrap_or("unknown")
        ));
    }
    if theirs.commit != source.commit {
        differs.push("commit".to_owned());
    }
    if theirs.files != source.files {
        differs.push("the files read".to_owned());
    }
    if metadata.artifacts != artifacts {
        differs.push("artifacts".to_owned());
    }
    if differs.is_empty() {
        Ok(())
    } else {
        Err(SigningError::NotThisBuild { digest: digest.clone(), differs: differs.join(", ") })
    }
}

/// Reads a private key; an encrypted one opens with [`PASSWORD_VAR`].
pub fn load_signer(path: &Path) -> Result<KeySigner, SigningError> {
    let text = read_key_file(path)?;
    let password = std::env::var(PASSWORD_VAR).ok();
    KeySigner::from_pem(&text, password.as_deref())
        .map_err(|e| SigningError::Key { path: path.to_owned(), reason: e.to_string() })
}

/// Reads public keys (PEM `PUBLIC KEY`, as cosign.pub).
pub fn load_public_keys(paths: &[PathBuf]) -> Result<Vec<PublicKey>, SigningError> {
    paths
        .iter()
        .map(|path| {
            PublicKey::from_pem(&read_key_file(path)?)
                .map_err(|e| SigningError::Key { path: path.clone(), reason: e.to_string() })
        })
        .collect()
}

/// The registry a release lives in.
pub fn registry_of(store: &Store) -> Result<&RegistryStore, SigningError> {
    match store {
        Store::Registry(registry) => Ok(registry),
        Store::Layout(_) => Err(SigningError::NotARegistry { location: store.location() }),
    }
}

/// A release about to be signed: what a signature's subject says of it, and its metadata
/// (read once, for every signature and statement made of it).
#[derive(Debug)]
pub struct Target {
    /// The manifest, as a referrer's subject names it.
    pub subject: Subject,
    /// The release's metadata.
    pub metadata: forge_release::metadata::ReleaseMetadata,
}

impl Target {
    /// Reads the release `digest` in `store` (its manifest and metadata).
    pub async fn read(store: &Store, digest: &Digest) -> Result<Self, Error> {
        registry_of(store)?;
        let (manifest, head) =
            futures_util::future::try_join(store.fetch_manifest(digest), store.fetch_head(digest))
                .await?;
        let subject = Subject {
            media_type: MANIFEST_MEDIA_TYPE.to_owned(),
            size: manifest.len() as u64,
            digest: digest.clone(),
        };
        Ok(Target { subject, metadata: head.metadata })
    }

    /// The commit time, not the clock: signing again writes the same referrer.
    fn created(&self) -> &str {
        &self.metadata.source.commit_time
    }
}

/// Signs the release `target` in `store` in each of `forms`.
pub async fn sign(
    store: &Store,
    target: &Target,
    signer: &KeySigner,
    forms: &[SignatureForm],
) -> Result<(), Error> {
    let registry = registry_of(store)?;
    let location = registry.location();
    signatures::sign(registry, &target.subject, &location, signer, forms, target.created()).await?;
    Ok(())
}

/// Attaches a signed statement of `predicate_type` about the release `target` (provenance).
pub async fn attest(
    store: &Store,
    target: &Target,
    signer: &KeySigner,
    predicate_type: &str,
    predicate: serde_json::Value,
) -> Result<(), Error> {
    let registry = registry_of(store)?;
    let statement =
        forge_sign::bundle::statement(&target.subject.digest, predicate_type, predicate);
    let (subject, created) = (&target.subject, target.created());
    signatures::attach(registry, subject, signer, &statement, predicate_type, created).await?;
    Ok(())
}

/// Checks the signatures of the release `digest` in `store` against `keys`.
pub async fn verify(
    store: &Store,
    digest: &Digest,
    keys: &[PublicKey],
) -> Result<Verification, Error> {
    let registry = registry_of(store)?;
    let found = signatures::verify(registry, digest, keys).await?;
    if !found.is_signed() {
        return Err(SigningError::NotSigned {
            digest: digest.clone(),
            location: store.location(),
            keys: keys.iter().map(PublicKey::fingerprint).collect(),
            rejected: found.rejected,
        }
        .into());
    }
    Ok(found)
}
