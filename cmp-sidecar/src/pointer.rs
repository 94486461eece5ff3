//! ReleasePointer files: which release an environment runs.

use std::path::{Path, PathBuf};

pub use forge_release::pointer::ReleasePointer;
use forge_release::reference::{ReleaseRef, StoreRoot};

use crate::error::CmpError;

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

/// Parses and validates a pointer file.
pub fn load(path: &Path, text: &str, default_root: &StoreRoot) -> Result<LoadedPointer, CmpError> {
    let invalid = |reason: String| CmpError::InvalidPointer { path: path.to_owned(), reason };
    // Read as forge-pack writes and reads it.
    let pointer = ReleasePointer::from_yaml(text).map_err(invalid)?;
    let location = pointer.validate(default_root).map_err(invalid)?;
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
