//! `forge-pack list`: a project's releases, newest first, from manifests only.

use std::collections::{BTreeMap, BTreeSet};

use forge_release::Digest;
use forge_release::aliases::{is_commit_sha, release_number};
use forge_release::manifest::{Manifest, annotations};
use forge_release::reference::ReleaseRef;
use forge_store::Store;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;

use crate::access::{Access, LookupError};
use crate::cli::{GlobalArgs, ListArgs};
use crate::error::{Error, exit};
use crate::output::{Output, table};

/// Manifests fetched at once: enough to hide registry latency, few enough to be polite.
const CONCURRENCY: usize = 16;

/// One release in a listing.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedRelease {
    /// Release number.
    pub number: u64,
    /// Commit SHA.
    pub commit: String,
    /// Creation (commit) time.
    pub created: String,
    /// Every tag except the commit SHA.
    pub aliases: Vec<String>,
    /// Trigger type.
    pub trigger: String,
    /// Manifest digest.
    pub digest: String,
}

/// Runs `list`.
pub async fn run(args: &ListArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    let access = Access::from_args(global)?;
    let reference = ReleaseRef::parse(&args.project, &access.default_root(None)?)?;
    if reference.release.is_some() {
        return Err(LookupError::NamesARelease(args.project.clone()).into());
    }
    let store = access.open_release(&reference.project)?;
    let releases = list(&store, output).await?;
    if output.json() {
        output.print_json(&releases)?;
    } else if releases.is_empty() {
        output.note(&format!("no releases in {}", reference.project));
    } else {
        let mut rows = vec![vec![
            "NUMBER".into(),
            "COMMIT".into(),
            "CREATED".into(),
            "TRIGGER".into(),
            "ALIASES".into(),
        ]];
        for r in &releases {
            let number = r.number.to_string();
            let aliases: Vec<&str> =
                r.aliases.iter().map(String::as_str).filter(|a| *a != number).collect();
            rows.push(vec![
                number,
                r.commit[..12].to_owned(),
                r.created.clone(),
                r.trigger.clone(),
                aliases.join(", "),
            ]);
        }
        output.print(&table(&rows))?;
    }
    Ok(exit::OK)
}

/// Every release in `store`, newest first.
pub async fn list(store: &Store, output: &Output) -> Result<Vec<ListedRelease>, Error> {
    let tags = store.list_tags().await?;
    let commits: Vec<&String> = tags.iter().filter(|t| is_commit_sha(t)).collect();
    let bar = output.count_bar("reading releases", commits.len() as u64);
    let bar = &bar;
    let manifests = stream::iter(commits)
        .map(|commit| async move {
            let fetched = store.fetch_manifest_by_tag(commit).await;
            bar.inc(1);
            let Some((bytes, digest)) = fetched? else {
                return Ok(None);
            };
            // Only forge releases are listed; anything else under a SHA-like tag is skipped.
            Ok::<_, Error>(
                Manifest::parse_release(&bytes, Some(&digest))
                    .ok()
                    .map(|m| (commit.clone(), digest, m)),
            )
        })
        .buffer_unordered(CONCURRENCY)
        .try_filter_map(|found| async move { Ok(found) })
        .try_collect::<Vec<(String, Digest, Manifest)>>()
        .await;
    bar.finish_and_clear();
    let manifests = manifests?;
    let assigned = assign_tags(store, &tags, manifests.iter().map(|(_, d, m)| (d, m))).await?;
    let mut releases: Vec<ListedRelease> = manifests
        .iter()
        .map(|(commit, digest, manifest)| {
            let note = |key: &str| manifest.annotation(key).unwrap_or_default().to_owned();
            let mut aliases: Vec<String> = assigned
                .get(digest)
                .into_iter()
                .flatten()
                .filter(|t| *t != commit)
                .cloned()
                .collect();
            aliases.sort_by_key(|a| (release_number(a).is_none(), a.clone()));
            ListedRelease {
                number: manifest
                    .annotation(annotations::FORGE_NUMBER)
                    .and_then(release_number)
                    .unwrap_or(0),
                commit: commit.clone(),
                created: note(annotations::CREATED),
                aliases,
                trigger: note(annotations::FORGE_TRIGGER),
                digest: digest.to_string(),
            }
        })
        .collect();
    releases.sort_by_key(|r| std::cmp::Reverse(r.number));
    Ok(releases)
}

/// The tags naming `digest` (for `inspect`).
pub async fn tags_of(
    store: &Store,
    digest: &Digest,
    manifest: &Manifest,
) -> Result<Vec<String>, Error> {
    let tags = store.list_tags().await?;
    let assigned = assign_tags(store, &tags, [(digest, manifest)]).await?;
    Ok(assigned.get(digest).cloned().unwrap_or_default())
}

/// Works out which tags name which of the given releases. A release's manifest says which
/// number, commit and aliases it was created with, so most tags need no request; only tags
/// that are unclaimed or claimed twice are looked up, concurrently.
async fn assign_tags<'a>(
    store: &Store,
    tags: &[String],
    releases: impl IntoIterator<Item = (&'a Digest, &'a Manifest)>,
) -> Result<BTreeMap<Digest, Vec<String>>, Error> {
    let present: BTreeSet<&str> = tags.iter().map(String::as_str).collect();
    let mut claims: BTreeMap<&str, Vec<&Digest>> = BTreeMap::new();
    let mut known: BTreeSet<&Digest> = BTreeSet::new();
    for (digest, manifest) in releases {
        known.insert(digest);
        let expected = [annotations::REVISION, annotations::FORGE_NUMBER]
            .into_iter()
            .filter_map(|key| manifest.annotation(key))
            .chain(manifest.annotation(annotations::FORGE_ALIASES).unwrap_or_default().split(','));
        for tag in expected.filter(|t| present.contains(t)) {
            claims.entry(tag).or_default().push(digest);
        }
    }
    let mut assigned: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    let mut unsure: Vec<&String> = Vec::new();
    for tag in tags {
        match claims.get(tag.as_str()).map(Vec::as_slice) {
            Some([one]) => assigned.entry((*one).clone()).or_default().push(tag.clone()),
            // Another release's commit or number tag needs no lookup.
            None if is_commit_sha(tag) || release_number(tag).is_some() => {}
            _ => unsure.push(tag),
        }
    }
    let looked_up: Vec<(String, Option<Digest>)> = stream::iter(unsure)
        .map(|tag| async move { Ok::<_, Error>((tag.clone(), store.resolve_tag(tag).await?)) })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    for (tag, digest) in looked_up {
        if let Some(digest) = digest.filter(|d| known.contains(d)) {
            assigned.entry(digest).or_default().push(tag);
        }
    }
    for tags in assigned.values_mut() {
        tags.sort();
    }
    Ok(assigned)
}
