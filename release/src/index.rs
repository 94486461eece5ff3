//! The release index: one small document per project listing every release with what
//! `forge-pack list` shows of it, kept in the project's repository under the bookkeeping tag
//! [`INDEX_TAG`], so that a listing costs a tag listing and two reads rather than one read per
//! release.
//!
//! The index is a hint, never the record: the tags are. A reader lists an entry only when the
//! tags confirm it and reads anything the index lacks from the release itself; a writer
//! merges into what is there, and a write lost to a concurrent one is made good by the next.
//! Its blob is deterministic JSON: the same releases give the same bytes and digest.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::aliases::{Claim, is_bookkeeping, is_commit_sha, is_valid_oci_tag, release_number};
use crate::digest::Digest;
use crate::manifest::{Descriptor, MANIFEST_MEDIA_TYPE, Manifest, annotations};

/// The tag naming a project's index.
pub const INDEX_TAG: &str = "_index";
/// The index manifest's `artifactType`, and the media type of its one blob.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.forge.release-index.v1+json";
/// The OCI empty descriptor's media type: an artifact without a config of its own.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The bytes of the OCI empty config blob.
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// The largest index blob read or written: some 30,000 releases.
pub const MAX_INDEX_BYTES: u64 = 8 << 20;
/// The largest `created` or `trigger` text an entry may carry (they are printed).
const MAX_FIELD_CHARS: usize = 64;
const VERSION: u32 = 1;

/// Why an index is not used.
#[derive(Debug, thiserror::Error)]
#[error("the release index is not usable: {0}")]
pub struct IndexError(pub String);

/// One release as the index records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    /// Release number.
    pub number: u64,
    /// Commit SHA (its tag).
    pub commit: String,
    /// Manifest digest.
    pub digest: Digest,
    /// Creation (commit) time, as the manifest's annotation says.
    pub created: String,
    /// Trigger type, as the manifest's annotation says.
    pub trigger: String,
    /// Aliases naming it, besides its number and commit, sorted.
    pub aliases: Vec<String>,
}

impl Entry {
    /// The entry of the release `manifest` (digest `digest`) named by `aliases` (its number
    /// and commit, if among them, are left out); `None` if it carries no number or commit.
    pub fn of_release(digest: &Digest, manifest: &Manifest, aliases: &[String]) -> Option<Entry> {
        let note = |key: &str| manifest.annotation(key).unwrap_or_default().to_owned();
        let number = manifest.annotation(annotations::FORGE_NUMBER).and_then(release_number)?;
        Entry::new(
            Entry {
                number,
                commit: note(annotations::REVISION),
                digest: digest.clone(),
                created: note(annotations::CREATED),
                trigger: note(annotations::FORGE_TRIGGER),
                aliases: Vec::new(),
            },
            aliases,
        )
    }

    /// `entry` named by `aliases` (sorted, and without its number and commit); `None` if it
    /// is not one an index may hold.
    pub fn new(entry: Entry, aliases: &[String]) -> Option<Entry> {
        let mut aliases: Vec<String> = aliases
            .iter()
            .filter(|a| **a != entry.commit && release_number(a) != Some(entry.number))
            .cloned()
            .collect();
        aliases.sort();
        aliases.dedup();
        let entry = Entry { aliases, ..entry };
        entry.check().ok().map(|()| entry)
    }

    fn check(&self) -> Result<(), IndexError> {
        let bad = |why: String| Err(IndexError(format!("entry {}: {why}", self.number)));
        if self.number == 0 || release_number(&self.number.to_string()).is_none() {
            return bad("not a release number".into());
        }
        if !is_commit_sha(&self.commit) {
            return bad("its commit is not a commit SHA".into());
        }
        for text in [&self.created, &self.trigger] {
            // Printed in a terminal: no control characters, nothing long.
            if text.chars().count() > MAX_FIELD_CHARS || text.chars().any(char::is_control) {
                return bad("a field is too long or holds control characters".into());
            }
        }
        if let Some(alias) = self
            .aliases
            .iter()
            .find(|a| !is_valid_oci_tag(a) || is_bookkeeping(a) || is_commit_sha(a))
        {
            return bad(format!("`{}` is not an alias", alias.escape_default()));
        }
        if !self.aliases.is_sorted_by(|a, b| a < b) {
            return bad("its aliases are not sorted and distinct".into());
        }
        Ok(())
    }
}

/// Every release of a project the index knows, by commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseIndex {
    entries: BTreeMap<String, Entry>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Document {
    schema_version: u32,
    releases: Vec<Entry>,
}

/// The index manifest: an OCI artifact with an empty config and the index as its one layer.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexManifest {
    schema_version: u32,
    media_type: String,
    artifact_type: String,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

impl ReleaseIndex {
    /// Parses index blob bytes: bounded, versioned, every entry checked, one per commit.
    pub fn parse(bytes: &[u8]) -> Result<ReleaseIndex, IndexError> {
        if bytes.len() as u64 > MAX_INDEX_BYTES {
            return Err(IndexError(format!("larger than {} MiB", MAX_INDEX_BYTES >> 20)));
        }
        let document: Document =
            serde_json::from_slice(bytes).map_err(|e| IndexError(e.to_string()))?;
        if document.schema_version != VERSION {
            return Err(IndexError(format!("schema version {}", document.schema_version)));
        }
        let mut entries = BTreeMap::new();
        for entry in document.releases {
            entry.check()?;
            if let Some(twice) = entries.insert(entry.commit.clone(), entry) {
                return Err(IndexError(format!("commit {} is there twice", twice.commit)));
            }
        }
        Ok(ReleaseIndex { entries })
    }

    /// The blob bytes: releases newest first, compact JSON, so equal indexes are equal bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut releases: Vec<Entry> = self.entries.values().cloned().collect();
        releases.sort_by(|a, b| b.number.cmp(&a.number).then_with(|| a.commit.cmp(&b.commit)));
        let document = Document { schema_version: VERSION, releases };
        serde_json::to_vec(&document).expect("an index always serialises")
    }

    /// The entries, by commit.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// The entry of `commit`.
    pub fn get(&self, commit: &str) -> Option<&Entry> {
        self.entries.get(commit)
    }

    /// How many releases it records.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it records none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries a tag listing confirms: their commit and number tags exist, and where the
    /// publisher's number claims are there (see [`Claim`]), one of them names the entry's
    /// digest. (Releases copied in have no claims to go by.) Which of its aliases exist is the
    /// reader's to check.
    pub fn confirmed_by(&self, tags: &[String]) -> Vec<&Entry> {
        let present: BTreeSet<&str> = tags.iter().map(String::as_str).collect();
        let mut claimed: BTreeMap<(u64, &str), Vec<String>> = BTreeMap::new();
        for claim in tags.iter().filter_map(|t| Claim::parse(t)) {
            if let Some(commit) = present.get(claim.commit.as_str()) {
                claimed.entry((claim.number, commit)).or_default().push(claim.digest_prefix);
            }
        }
        self.entries
            .values()
            .filter(|e| {
                present.contains(e.commit.as_str())
                    && present.contains(e.number.to_string().as_str())
                    && claimed
                        .get(&(e.number, e.commit.as_str()))
                        .is_none_or(|named| named.iter().any(|p| e.digest.hex().starts_with(p)))
            })
            .collect()
    }

    /// Whether it records `entry`: its release, with at least its aliases.
    pub fn covers(&self, entry: &Entry) -> bool {
        self.get(&entry.commit).is_some_and(|known| {
            Entry { aliases: entry.aliases.clone(), ..known.clone() } == *entry
                && entry.aliases.iter().all(|a| known.aliases.contains(a))
        })
    }

    /// Records `entry`; returns whether anything changed. The same release gains the
    /// aliases (aliases only ever get added); another release of the commit replaces it.
    pub fn merge(&mut self, entry: Entry) -> bool {
        if self.covers(&entry) {
            return false;
        }
        let mut entry = entry;
        if let Some(known) = self.entries.get(&entry.commit)
            && known.digest == entry.digest
        {
            entry.aliases.extend(known.aliases.iter().cloned());
            entry.aliases.sort();
            entry.aliases.dedup();
        }
        self.entries.insert(entry.commit.clone(), entry);
        true
    }

    /// Keeps only the entries `keep` accepts (those whose commit tag still exists, say);
    /// returns whether any went.
    pub fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) -> bool {
        let before = self.entries.len();
        self.entries.retain(|_, e| keep(e));
        self.entries.len() != before
    }

    /// The manifest naming the index blob `blob`, and its digest.
    pub fn manifest_for(blob: &[u8]) -> (Vec<u8>, Digest) {
        let manifest = IndexManifest {
            schema_version: 2,
            media_type: MANIFEST_MEDIA_TYPE.into(),
            artifact_type: INDEX_MEDIA_TYPE.into(),
            config: Descriptor::for_bytes(EMPTY_MEDIA_TYPE, EMPTY_CONFIG),
            layers: vec![Descriptor::for_bytes(INDEX_MEDIA_TYPE, blob)],
        };
        let bytes = serde_json::to_vec(&manifest).expect("a manifest always serialises");
        let digest = Digest::of(&bytes);
        (bytes, digest)
    }

    /// The index blob an index manifest names, refused if it is not one or claims more
    /// bytes than an index may have (before any is read).
    pub fn blob_of(manifest: &[u8]) -> Result<Descriptor, IndexError> {
        let manifest: IndexManifest =
            serde_json::from_slice(manifest).map_err(|e| IndexError(e.to_string()))?;
        let [blob] = manifest.layers.as_slice() else {
            return Err(IndexError("its manifest has not exactly one layer".into()));
        };
        if manifest.artifact_type != INDEX_MEDIA_TYPE || blob.media_type != INDEX_MEDIA_TYPE {
            return Err(IndexError(format!("artifact type `{}`", manifest.artifact_type)));
        }
        if blob.size > MAX_INDEX_BYTES {
            return Err(IndexError(format!(
                "it says it is {} bytes, more than the {} MiB an index may be",
                blob.size,
                MAX_INDEX_BYTES >> 20
            )));
        }
        Ok(blob.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(number: u64, commit: char, aliases: &[&str]) -> Entry {
        Entry {
            number,
            commit: commit.to_string().repeat(40),
            digest: Digest::of(format!("{number}{commit}").as_bytes()),
            created: "2024-05-01T12:00:00Z".into(),
            trigger: "branch_push".into(),
            aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    #[test]
    fn an_index_round_trips_to_the_same_bytes_newest_first() {
        let mut index = ReleaseIndex::default();
        assert!(index.merge(entry(1, 'a', &["main-1"])));
        assert!(index.merge(entry(2, 'b', &["main-2", "v1.0.0"])));
        let bytes = index.to_bytes();
        let text = String::from_utf8(bytes.clone()).expect("utf-8");
        assert!(text.find("bbbb").expect("2") < text.find("aaaa").expect("1"), "{text}");
        let parsed = ReleaseIndex::parse(&bytes).expect("parse");
        assert_eq!(parsed, index);
        assert_eq!(parsed.to_bytes(), bytes);
    }

    #[test]
    fn merging_adds_aliases_and_a_known_release_changes_nothing() {
        let mut index = ReleaseIndex::default();
        index.merge(entry(1, 'a', &["main-1"]));
        assert!(!index.merge(entry(1, 'a', &["main-1"])));
        assert!(!index.merge(entry(1, 'a', &[])));
        assert!(index.merge(entry(1, 'a', &["v1"])));
        assert_eq!(index.get(&"a".repeat(40)).expect("entry").aliases, ["main-1", "v1"]);
        assert!(index.covers(&entry(1, 'a', &["v1"])));
        assert!(!index.covers(&entry(2, 'b', &[])));
    }

    #[test]
    fn only_entries_the_tags_confirm_are_used() {
        let mut index = ReleaseIndex::default();
        for e in [entry(1, 'a', &[]), entry(2, 'b', &[]), entry(3, 'c', &[]), entry(4, 'd', &[])] {
            index.merge(e);
        }
        let claim = |e: &Entry, digest: &Digest| Claim::new(e.number, &e.commit, digest).tag();
        let (one, three, four) = (entry(1, 'a', &[]), entry(3, 'c', &[]), entry(4, 'd', &[]));
        let tags: Vec<String> = vec![
            "1".into(),
            one.commit.clone(),
            claim(&one, &one.digest),
            // 2: its number tag only (its commit tag is gone).
            "2".into(),
            // 3: its claims name another manifest.
            "3".into(),
            three.commit.clone(),
            claim(&three, &Digest::of(b"another")),
            // 4: copied in, no claims.
            "4".into(),
            four.commit.clone(),
        ];
        let confirmed: Vec<u64> = index.confirmed_by(&tags).iter().map(|e| e.number).collect();
        assert_eq!(confirmed, [1, 4]);
    }

    #[test]
    fn hostile_or_foreign_indexes_are_refused() {
        let good = |number: u64| entry(number, 'c', &[]);
        let mut twice = ReleaseIndex::default();
        twice.merge(good(1));
        let doubled = String::from_utf8(twice.to_bytes())
            .expect("utf-8")
            .replace("[{", &format!("[{},{{", serde_json::to_string(&good(2)).expect("json")));
        for bad in [
            b"not json".to_vec(),
            br#"{"schemaVersion":2,"releases":[]}"#.to_vec(),
            br#"{"schemaVersion":1,"releases":[],"more":1}"#.to_vec(),
            doubled.into_bytes(),
            vec![b' '; MAX_INDEX_BYTES as usize + 1],
        ] {
            assert!(ReleaseIndex::parse(&bad).is_err(), "{}", String::from_utf8_lossy(&bad));
        }
        for bad in [
            Entry { commit: "main".into(), ..good(1) },
            Entry { number: 0, ..good(1) },
            Entry { created: "\u{1b}[2J".into(), ..good(1) },
            Entry { aliases: vec!["_index".into()], ..good(1) },
            Entry { aliases: vec!["b".into(), "a".into()], ..good(1) },
            Entry { aliases: vec!["not a tag".into()], ..good(1) },
        ] {
            let bytes = serde_json::to_vec(&Document { schema_version: 1, releases: vec![bad] })
                .expect("json");
            assert!(ReleaseIndex::parse(&bytes).is_err(), "{}", String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn an_index_manifest_names_its_blob_within_bounds() {
        let blob = ReleaseIndex::default().to_bytes();
        let (manifest, digest) = ReleaseIndex::manifest_for(&blob);
        assert_eq!(digest, Digest::of(&manifest));
        let named = ReleaseIndex::blob_of(&manifest).expect("an index manifest");
        assert_eq!(named, Descriptor::for_bytes(INDEX_MEDIA_TYPE, &blob));
        let huge = String::from_utf8(manifest).expect("utf-8").replace(
            &format!("\"size\":{}", blob.len()),
            &format!("\"size\":{}", MAX_INDEX_BYTES + 1),
        );
        assert!(ReleaseIndex::blob_of(huge.as_bytes()).is_err());
        assert!(ReleaseIndex::blob_of(b"{}").is_err());
    }
}
