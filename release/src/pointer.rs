//! ReleasePointer documents: which release an environment runs. Written by `forge-pack deploy`
//! into a GitOps repository, read by the Argo CD plugin: both go through this module, so the
//! two tools read every pointer the same way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::aliases::is_commit_sha;
use crate::digest::Digest;
use crate::reference::{ReleaseRef, StoreRoot};
use crate::yaml;

/// The pointer's `apiVersion`.
pub const API_VERSION: &str = "forge.dev/v1alpha1";
/// The pointer's `kind`.
pub const KIND: &str = "ReleasePointer";
/// Annotation holding the release's aliases (comma-separated), so the GitOps repository says
/// which release is deployed without asking the registry.
pub const ALIASES_ANNOTATION: &str = "forge.dev/aliases";
/// The annotation naming the release's identity, `<repository>/<project>` (its metadata's, not
/// where it is stored: a mirror may keep it under another path).
pub const RELEASE_ANNOTATION: &str = "forge.dev/release";

/// A ReleasePointer document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointerMetadata {
    /// Usually the project name.
    pub name: String,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Pointer spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointerSpec {
    /// Release image without tag: `registry/repository/project`, `repository/project` (the
    /// default store) or `oci:<layout-dir>`.
    pub image: String,
    /// Full commit SHA of the release.
    pub commit: String,
    /// Manifest digest pin (written by `forge-pack deploy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// Release number, informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<u64>,
}

impl ReleasePointer {
    /// A pointer to one release, as `deploy` writes it.
    pub fn new(name: &str, image: &str, commit: &str, digest: Digest, number: u64) -> Self {
        ReleasePointer {
            api_version: API_VERSION.to_owned(),
            kind: KIND.to_owned(),
            metadata: PointerMetadata {
                name: name.to_owned(),
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
            },
            spec: PointerSpec {
                image: image.to_owned(),
                commit: commit.to_owned(),
                digest: Some(digest),
                release: Some(number),
            },
        }
    }

    /// Reads a pointer file's text (strictly: unknown fields are refused). The fields are
    /// checked by [`Self::validate`].
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        yaml::from_str(text).map_err(|e| yaml::error_summary(&e))
    }

    /// The pointer file's text, as `deploy` writes it.
    pub fn to_yaml(&self) -> String {
        yaml::to_string(self).expect("a pointer always serialises")
    }

    /// Records the release's aliases in [`ALIASES_ANNOTATION`] (nothing when there are none).
    pub fn with_aliases(mut self, aliases: &[String]) -> Self {
        if !aliases.is_empty() {
            self.metadata.annotations.insert(ALIASES_ANNOTATION.to_owned(), aliases.join(","));
        }
        self
    }

    /// Records the release's identity, `<repository>/<project>` (see [`RELEASE_ANNOTATION`]).
    pub fn with_identity(mut self, repository: &str, project: &str) -> Self {
        self.metadata
            .annotations
            .insert(RELEASE_ANNOTATION.to_owned(), format!("{repository}/{project}"));
        self
    }

    /// The identity recorded by [`Self::with_identity`], if any.
    pub fn identity(&self) -> Option<&str> {
        self.metadata.annotations.get(RELEASE_ANNOTATION).map(String::as_str)
    }

    /// The aliases recorded by [`Self::with_aliases`].
    pub fn aliases(&self) -> Vec<String> {
        self.metadata
            .annotations
            .get(ALIASES_ANNOTATION)
            .map(|text| text.split(',').filter(|a| !a.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Checks the rules a pointer must follow and returns where its release lives. The error
    /// says which field is wrong and why.
    pub fn validate(&self, default_root: &StoreRoot) -> Result<ReleaseRef, String> {
        if self.api_version != API_VERSION {
            return Err(format!("apiVersion is `{}`, expected `{API_VERSION}`", self.api_version));
        }
        if self.kind != KIND {
            return Err(format!("kind is `{}`, expected `{KIND}`", self.kind));
        }
        if !is_commit_sha(&self.spec.commit) {
            return Err(format!(
                "spec.commit `{}` must be a full lowercase commit SHA (40 or 64 hex characters)",
                self.spec.commit
            ));
        }
        let location = ReleaseRef::parse(&self.spec.image, default_root)
            .map_err(|e| format!("spec.image: {e}"))?;
        if location.release.is_some() {
            return Err(format!(
                "spec.image `{}` must not carry a tag or digest; use spec.commit and spec.digest",
                self.spec.image
            ));
        }
        Ok(location)
    }

    /// Whether two pointers deploy the same release: same commit, and the same digest when
    /// both are pinned (a commit has one release per registry, but a copy elsewhere may differ).
    pub fn same_release_as(&self, other: &ReleasePointer) -> bool {
        self.spec.commit == other.spec.commit
            && match (&self.spec.digest, &other.spec.digest) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }

    /// `42 (v1.2.3, main-42)`: the number and the non-numeric aliases, for messages.
    pub fn describe(&self) -> String {
        let number = match self.spec.release {
            Some(n) => n.to_string(),
            None => self.spec.commit.chars().take(12).collect(),
        };
        describe_release(&number, &self.aliases())
    }
}

/// `42 (v1.2.3, main-42)`: a release number and its aliases other than the number itself.
pub fn describe_release(number: &str, aliases: &[String]) -> String {
    let named: Vec<&str> = aliases.iter().map(String::as_str).filter(|a| *a != number).collect();
    if named.is_empty() { number.to_owned() } else { format!("{number} ({})", named.join(", ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointer() -> ReleasePointer {
        let digest: Digest = format!("sha256:{}", "a".repeat(64)).parse().expect("digest");
        ReleasePointer::new(
            "auth",
            "registry.example.com/company/monorepo/auth",
            &"0".repeat(40),
            digest,
            42,
        )
        .with_aliases(&["42".into(), "v1.2.3".into(), "main-42".into()])
    }

    #[test]
    fn a_pointer_describes_its_release_and_round_trips_as_json() {
        let pointer = pointer();
        assert_eq!(pointer.describe(), "42 (v1.2.3, main-42)");
        let json = serde_json::to_string(&pointer).expect("serialise");
        let back: ReleasePointer = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, pointer);
        assert!(json.starts_with(r#"{"apiVersion":"forge.dev/v1alpha1","kind":"ReleasePointer""#));
    }

    #[test]
    fn validation_names_the_field() {
        let root = StoreRoot::Layouts("/store".into());
        assert!(pointer().validate(&root).is_ok());
        let mut bad = pointer();
        bad.spec.commit = "0123456".into();
        assert!(bad.validate(&root).expect_err("short").starts_with("spec.commit `0123456`"));
        let mut bad = pointer();
        bad.spec.image.push_str(":latest");
        assert!(bad.validate(&root).expect_err("tag").contains("must not carry a tag"));
    }

    #[test]
    fn same_release_compares_commit_and_pinned_digest() {
        let a = pointer();
        let mut b = pointer();
        b.spec.digest = None;
        assert!(a.same_release_as(&b));
        b.spec.digest = Some(format!("sha256:{}", "b".repeat(64)).parse().expect("digest"));
        assert!(!a.same_release_as(&b));
        let mut c = pointer();
        c.spec.commit = "1".repeat(40);
        assert!(!a.same_release_as(&c));
    }
}
