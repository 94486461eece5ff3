//! Choosing the release store and resolving references to manifest digests.

use forge_release::Digest;
use forge_release::aliases;
use forge_release::reference::{ProjectLocation, ReleaseRef, ReleaseSelector, StoreRoot};
use forge_release::store::Store;

use crate::error::Error;

/// The store that references without a host use: `--registry`/`FORGE_REGISTRY`, else the
/// project's `registry:`, else the embedded store.
pub fn default_root(
    flag: Option<&str>,
    project_registry: Option<&str>,
) -> Result<StoreRoot, Error> {
    match flag.or(project_registry) {
        Some(text) => Ok(StoreRoot::parse(text)?),
        None => StoreRoot::embedded().ok_or_else(|| {
            Error::input(
                "cannot find the default release store: neither XDG_DATA_HOME nor HOME is set",
            )
            .with_hint("pass --registry oci:<dir> or a registry host")
        }),
    }
}

/// Opens one project's release stream.
pub fn open(location: &ProjectLocation) -> Result<Store, Error> {
    Store::open(location).map_err(|e| {
        Error::from(e).with_hint("use the embedded store (no --registry) or --registry oci:<dir>")
    })
}

/// A release found in a store.
#[derive(Debug)]
pub struct Resolved {
    /// The store.
    pub store: Store,
    /// The manifest digest.
    pub digest: Digest,
    /// The tag it was found under, if resolved by id.
    pub tag: Option<String>,
}

/// Parses and resolves a release reference; a reference without a release id is an error.
pub async fn resolve(text: &str, default_root: &StoreRoot) -> Result<Resolved, Error> {
    let reference = ReleaseRef::parse(text, default_root)?;
    let store = open(&reference.project)?;
    let selector = reference.release.ok_or_else(|| {
        Error::input(format!("`{text}` names a project, not a release")).with_hint(format!(
            "add a release id, e.g. `{text}:1`, or run `forge-pack list {text}`"
        ))
    })?;
    match selector {
        ReleaseSelector::Digest(digest) => Ok(Resolved { store, digest, tag: None }),
        ReleaseSelector::Id(id) => {
            let tags = store.list_tags().await?;
            if tags.is_empty() {
                return Err(Error::new(
                    crate::error::exit::NOT_FOUND,
                    format!("no releases in {}", reference.project),
                )
                .with_hint("build or push a release first, or check --registry"));
            }
            let (tag, digest) = aliases::resolve(&id, &tags, &reference.project.to_string())?;
            Ok(Resolved { store, digest, tag: Some(tag) })
        }
    }
}
