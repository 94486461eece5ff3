//! A project's release index in its registry repository (the format is
//! [`forge_release::index`]): read with bounds, and brought up to date by whatever adds
//! releases — a push, a copy, an import — once the releases' tags are written.
//!
//! Registries have no conditional write, so two writers may each replace the index without
//! the other's entry. A writer reads the index back after writing and tries again while its
//! own entries are missing; whatever is still lost (a writer that re-read before the other
//! wrote) is found by the next writer, which adds every release whose commit tag the index
//! lacks. Readers never depend on it: they check it against the tags and read what it lacks
//! from the releases themselves.
//!
//! Layout directories keep no index: listing one reads local files anyway, and each update
//! would leave the replaced index behind as a blob nothing deletes.

use std::collections::BTreeSet;
use std::time::Duration;

use forge_release::Digest;
use forge_release::aliases::is_commit_sha;
use forge_release::index::{
    EMPTY_CONFIG, Entry, INDEX_TAG, IndexError, MAX_INDEX_BYTES, ReleaseIndex,
};
use forge_release::manifest::{Manifest, annotations};
use futures_util::stream::{self, StreamExt};

use crate::error::StoreError;
use crate::store::Store;

/// Times an update is tried while concurrent writers keep replacing the index.
const ATTEMPTS: u32 = 5;
/// Releases missing from the index that one update reads and adds: a store with many
/// releases and no index gets one over a few updates, each costing little.
const REPAIRS: usize = 64;
/// Releases read at once while repairing.
const CONCURRENCY: usize = 16;

/// The index of `store` and its manifest digest; `None` if it has none. An index that is not
/// one, or is larger than an index may be, is an error ([`StoreError::Corrupt`]).
pub async fn read(store: &Store) -> Result<Option<(Digest, ReleaseIndex)>, StoreError> {
    let Some((manifest, digest)) = store.fetch_manifest_by_tag(INDEX_TAG).await? else {
        return Ok(None);
    };
    let unusable = |e: IndexError| StoreError::Corrupt {
        location: format!("{}:{INDEX_TAG}", store.location()),
        reason: e.to_string(),
    };
    // The size is checked before the blob is asked for; the blob is read no further.
    let blob = ReleaseIndex::blob_of(&manifest).map_err(unusable)?;
    let bytes = store.fetch_blob(&blob).await?;
    Ok(Some((digest, ReleaseIndex::parse(&bytes).map_err(unusable)?)))
}

/// The entry of the release `digest` (manifest `manifest`) named by `aliases`; `None` for a
/// manifest that is not a numbered release.
pub fn entry_of(digest: &Digest, manifest: &[u8], aliases: &[String]) -> Option<Entry> {
    let manifest = Manifest::parse_release(manifest, Some(digest)).ok()?;
    Entry::of_release(digest, &manifest, aliases)
}

/// Records `entries` (releases whose tags are written) in the index of `store`, dropping
/// entries whose commit tag is gone and adding releases the index lacks. An index that is
/// not one is replaced. Nothing is written if nothing changes.
pub async fn record(store: &Store, entries: &[Entry]) -> Result<(), StoreError> {
    if matches!(store, Store::Layout(_)) {
        return Ok(());
    }
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            back_off(attempt).await;
        }
        let current = match read(store).await {
            Ok(found) => found.map(|(_, index)| index).unwrap_or_default(),
            Err(
                StoreError::Corrupt { .. }
                | StoreError::Format(_)
                | StoreError::Tampered { .. }
                | StoreError::BlobNotFound { .. },
            ) => ReleaseIndex::default(),
            Err(error) => return Err(error),
        };
        // Listed after the index was read: every entry in it had its commit tag by then.
        let tags = store.list_tags().await?;
        let present: BTreeSet<&str> = tags.iter().map(String::as_str).collect();
        let mut index = current.clone();
        index.retain(|e| present.contains(e.commit.as_str()));
        for entry in entries {
            index.merge(entry.clone());
        }
        repair(store, &tags, &mut index).await?;
        if index == current {
            return Ok(());
        }
        let written = write(store, &index).await?;
        // Read back: a concurrent writer may have replaced it with one lacking ours.
        match store.fetch_manifest_by_tag(INDEX_TAG).await? {
            Some((_, digest)) if digest == written => return Ok(()),
            _ => match read(store).await {
                Ok(Some((_, now))) if entries.iter().all(|e| now.covers(e)) => return Ok(()),
                _ => {}
            },
        }
    }
    Err(StoreError::Registry {
        location: store.location(),
        operation: format!("updating {INDEX_TAG}"),
        reason: format!("concurrent writers replaced it {ATTEMPTS} times"),
    })
}

/// Adds up to [`REPAIRS`] releases whose commit tag the index lacks, read from their
/// manifests (with the aliases their manifests name that exist).
async fn repair(
    store: &Store,
    tags: &[String],
    index: &mut ReleaseIndex,
) -> Result<(), StoreError> {
    let missing: Vec<&String> =
        tags.iter().filter(|t| is_commit_sha(t) && index.get(t).is_none()).take(REPAIRS).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let present: BTreeSet<&str> = tags.iter().map(String::as_str).collect();
    let present = &present;
    let found: Vec<Result<Option<Entry>, StoreError>> = stream::iter(missing)
        .map(|commit| async move {
            let Some((bytes, digest)) = store.fetch_manifest_by_tag(commit).await? else {
                return Ok(None);
            };
            let Ok(manifest) = Manifest::parse_release(&bytes, Some(&digest)) else {
                return Ok(None);
            };
            // A release another commit's tag found (a moved tag) is not this commit's.
            if manifest.annotation(annotations::REVISION) != Some(commit.as_str()) {
                return Ok(None);
            }
            let aliases: Vec<String> = manifest
                .annotation(annotations::FORGE_ALIASES)
                .unwrap_or_default()
                .split(',')
                .filter(|a| present.contains(a))
                .map(str::to_owned)
                .collect();
            Ok(Entry::of_release(&digest, &manifest, &aliases))
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for entry in found {
        if let Some(entry) = entry? {
            index.merge(entry);
        }
    }
    Ok(())
}

/// Writes `index` under [`INDEX_TAG`]; its manifest digest.
async fn write(store: &Store, index: &ReleaseIndex) -> Result<Digest, StoreError> {
    let blob = index.to_bytes();
    // Readers would refuse it: better no update than an index nobody reads.
    if blob.len() as u64 > MAX_INDEX_BYTES {
        return Err(StoreError::Format(forge_release::FormatError::LimitExceeded {
            what: "bytes of release index",
            limit: MAX_INDEX_BYTES,
        }));
    }
    let (manifest, digest) = ReleaseIndex::manifest_for(&blob);
    let config = Digest::of(EMPTY_CONFIG);
    if !store.has_blob(&config).await? {
        store.put_blob(&config, EMPTY_CONFIG).await?;
    }
    store.put_blob(&Digest::of(&blob), &blob).await?;
    store.set_tag(INDEX_TAG, &digest, &manifest).await?;
    Ok(digest)
}

/// Waits a little, more with each attempt and by a random amount, so that writers that
/// replaced each other's index do not meet again.
async fn back_off(attempt: u32) {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new().hash_one(attempt);
    tokio::time::sleep(Duration::from_millis(random % (40 * u64::from(attempt)))).await;
}
