//! Signatures a release must carry before forge-cmp renders a byte of it: the public keys the
//! operator trusts for an Argo CD project (any one of them will do), and the check itself,
//! against both forms cosign writes (bundle referrers and `.sig` images). A release signed by
//! no trusted key is refused, and so are signatures of other releases set beside it, which a
//! moved tag or a copied signature would bring. The keys that verified a release are kept
//! with it in the cache, so a warm generate makes no request.

use std::path::{Path, PathBuf};

use forge_release::Digest;
use forge_sign::PublicKey;
use forge_store::Store;
use forge_store::signatures;
use serde::Deserialize;

use crate::error::CmpError;

/// A project rule's `signatures:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SignatureRule {
    /// PEM public keys (cosign.pub files), any of which will do.
    pub keys: Vec<PathBuf>,
    /// Whether a release without a trusted signature is refused (the default) or only
    /// reported on stderr.
    #[serde(default = "required")]
    pub required: bool,
    /// The keys, read when the configuration is loaded.
    #[serde(skip)]
    pub trusted: Vec<PublicKey>,
    /// Their fingerprints (what the cache records), worked out once at load.
    #[serde(skip)]
    fingerprints: Vec<String>,
}

fn required() -> bool {
    true
}

impl SignatureRule {
    /// A rule requiring a signature by one of the keys in `paths`.
    pub fn required_by(paths: Vec<PathBuf>) -> Self {
        SignatureRule { keys: paths, required: true, trusted: Vec::new(), fingerprints: Vec::new() }
    }

    /// Reads the keys; a rule without keys, or a key that cannot be read, is a configuration
    /// error (a sidecar must not start trusting nothing by mistake).
    pub fn load(&mut self, config: &Path) -> Result<(), CmpError> {
        let invalid = |reason: String| CmpError::Config { path: config.to_owned(), reason };
        if self.keys.is_empty() {
            return Err(invalid("signatures: lists no keys".into()));
        }
        // forge-cmp runs in the Application's directory, which its GitOps writers control: a
        // relative path would let them name a key of their own.
        if let Some(relative) = self.keys.iter().find(|k| !k.is_absolute()) {
            return Err(invalid(format!(
                "signature key {} must be an absolute path (a file the operator mounts into the sidecar)",
                relative.display()
            )));
        }
        self.trusted = self
            .keys
            .iter()
            .map(|path| {
                let text = forge_store::bounded::read_file(path, 64 * 1024)
                    .map_err(|e| invalid(format!("signature key {}: {e}", path.display())))?;
                PublicKey::from_pem(&String::from_utf8_lossy(&text))
                    .map_err(|e| invalid(format!("signature key {}: {e}", path.display())))
            })
            .collect::<Result<_, _>>()?;
        self.fingerprints = self.trusted.iter().map(PublicKey::fingerprint).collect();
        Ok(())
    }

    /// The trusted keys' fingerprints.
    pub fn fingerprints(&self) -> &[String] {
        &self.fingerprints
    }

    /// Whether keys `signed_by` (fingerprints a verification recorded) satisfy the rule.
    pub fn satisfied_by(&self, signed_by: &[String]) -> bool {
        signed_by.iter().any(|key| self.fingerprints.contains(key))
    }

    /// Checks the signatures of `digest` in `store`; the fingerprints of the trusted keys that
    /// signed it. Unsigned: an error when required, else a warning and no keys.
    pub async fn check(
        &self,
        store: &Store,
        image: &str,
        digest: &Digest,
    ) -> Result<Vec<String>, CmpError> {
        let store_error = |source| CmpError::Store { image: image.to_owned(), source };
        let verification = match store {
            Store::Registry(registry) => {
                match signatures::verify_signed(registry, digest, &self.trusted).await {
                    Ok(verification) => verification,
                    Err(source) if !self.required => {
                        eprintln!(
                            "forge-cmp: warning: {} (signatures are not required for this project)",
                            store_error(source)
                        );
                        return Ok(Vec::new());
                    }
                    Err(source) => return Err(store_error(source)),
                }
            }
            // Signatures live in registries; a layout carries none.
            Store::Layout(_) => signatures::Verification::default(),
        };
        if verification.is_signed() {
            return Ok(verification.signatures.into_iter().map(|s| s.key).collect());
        }
        let error = CmpError::NotSigned {
            image: image.to_owned(),
            digest: digest.clone(),
            keys: self.fingerprints.clone(),
            rejected: verification.rejected,
        };
        if self.required {
            return Err(error);
        }
        eprintln!("forge-cmp: warning: {error} (signatures are not required for this project)");
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_named_by_absolute_paths_only() {
        let mut rule = SignatureRule::required_by(vec!["keys/ci.pub".into()]);
        let refused = rule.load(Path::new("/etc/forge-cmp/config.yaml")).expect_err("relative");
        assert!(refused.to_string().contains("must be an absolute path"), "{refused}");
    }
}
