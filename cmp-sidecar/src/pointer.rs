//! ReleasePointer files: which release an environment runs.

use std::path::{Path, PathBuf};

use forge_release::Digest;
use forge_release::aliases::is_commit_sha;
use forge_release::reference::{ReleaseRef, StoreRoot};
use serde::Deserialize;

use crate::error::CmpError;

/// The pointer's `apiVersion`.
pub const API_VERSION: &str = "forge.dev/v1alpha1";
/// The pointer's `kind`.
pub const KIND: &str = "ReleasePointer";

/// A ReleasePointer document.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReleasePointer {
    /// Must be [`API_VERSION`].
    pub api_version: String,
    /// Must be [`KIND`].
    pub kind: String,
    /// Metadata.
    pub metadata: PointerMetadata,
    /// What to deploy.
    pub spec: PointerSpec,
}

/// Pointer metadata.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointerMetadata {
    /// Usually the project name.
    pub name: String,
    /// Free-form labels.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Free-form annotations.
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// Pointer spec.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointerSpec {
    /// Release image without tag: `registry/repository/project`, `repository/project` (the
    /// default store) or `oci:<layout-dir>`.
    pub image: String,
    /// Full commit SHA of the release.
    pub commit: String,
    /// Manifest digest pin (written by `forge-pack deploy`).
    #[serde(default)]
    pub digest: Option<Digest>,
    /// Release number, informational.
    #[serde(default)]
    pub release: Option<u64>,
}

/// A pointer read from a file, with the file it came from.
#[derive(Debug, Clone)]
pub struct LoadedPointer {
    /// The file.
    pub path: PathBuf,
    /// The pointer.
    pub pointer: ReleasePointer,
    /// The parsed image location.
    pub location: ReleaseRef,
}

/// Whether a YAML document declares itself a ReleasePointer (checked before strict parsing so
/// other files in the app directory are left alone).
pub fn declares_pointer(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Kind {
        kind: Option<String>,
    }
    serde_saphyr::from_str::<Kind>(text).ok().and_then(|k| k.kind).as_deref() == Some(KIND)
}

/// Parses and validates a pointer file.
pub fn load(path: &Path, text: &str, default_root: &StoreRoot) -> Result<LoadedPointer, CmpError> {
    let invalid = |reason: String| CmpError::InvalidPointer { path: path.to_owned(), reason };
    let pointer: ReleasePointer = serde_saphyr::from_str(text).map_err(|e| {
        let message = e.to_string();
        invalid(message.lines().next().unwrap_or_default().trim_start_matches("error: ").to_owned())
    })?;
    if pointer.api_version != API_VERSION {
        return Err(invalid(format!(
            "apiVersion is `{}`, expected `{API_VERSION}`",
            pointer.api_version
        )));
    }
    if pointer.kind != KIND {
        return Err(invalid(format!("kind is `{}`, expected `{KIND}`", pointer.kind)));
    }
    if !is_commit_sha(&pointer.spec.commit) {
        return Err(invalid(format!(
            "spec.commit `{}` must be a full lowercase commit SHA (40 or 64 hex characters)",
            pointer.spec.commit
        )));
    }
    let location = ReleaseRef::parse(&pointer.spec.image, default_root)
        .map_err(|e| invalid(format!("spec.image: {e}")))?;
    if location.release.is_some() {
        return Err(invalid(format!(
            "spec.image `{}` must not carry a tag or digest; use spec.commit and spec.digest",
            pointer.spec.image
        )));
    }
    Ok(LoadedPointer { path: path.to_owned(), pointer, location })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: forge.dev/v1alpha1\nkind: ReleasePointer\nmetadata:\n  name: auth\nspec:\n  image: registry.example.com/company/monorepo/auth\n  commit: 0123456789abcdef0123456789abcdef01234567\n  release: 42\n";

    fn root() -> StoreRoot {
        StoreRoot::Layouts("/store".into())
    }

    #[test]
    fn a_valid_pointer_loads() {
        let loaded = load(Path::new("release.yaml"), GOOD, &root()).expect("valid");
        assert_eq!(loaded.pointer.spec.release, Some(42));
        assert_eq!(
            loaded.location.project.to_string(),
            "registry.example.com/company/monorepo/auth"
        );
        assert!(declares_pointer(GOOD));
        assert!(!declares_pointer("kind: ConfigMap\n"));
    }

    #[test]
    fn invalid_pointers_name_the_file_and_field() {
        let cases = [
            (
                GOOD.replace("0123456789abcdef0123456789abcdef01234567", "0123456"),
                "spec.commit `0123456` must be a full",
            ),
            (GOOD.replace("forge.dev/v1alpha1", "forge.dev/v2"), "apiVersion is `forge.dev/v2`"),
            (
                GOOD.replace("company/monorepo/auth", "company/monorepo/auth:latest"),
                "must not carry a tag",
            ),
            (GOOD.replace("  release: 42", "  relase: 42"), "relase"),
            (GOOD.replace("  release: 42", "  digest: sha256:abc"), "invalid digest"),
        ];
        for (text, expected) in cases {
            let err =
                load(Path::new("envs/prod/release.yaml"), &text, &root()).expect_err(expected);
            let message = err.to_string();
            assert!(
                message.starts_with("invalid ReleasePointer envs/prod/release.yaml: "),
                "{message}"
            );
            assert!(message.contains(expected), "{message} should contain {expected}");
        }
    }
}
