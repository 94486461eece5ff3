//! `forge-pack list`: a project's releases, newest first, from manifests only.

use std::collections::{BTreeMap, BTreeSet};

use forge_release::Digest;
use forge_release::aliases::{Claim, is_commit_sha, release_number};
use forge_release::index::{Entry, INDEX_TAG};
use forge_release::manifest::{Manifest, annotations};
use forge_release::reference::ReleaseRef;
use forge_store::{Store, release_index};
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
    /// Whether it is whole: see [`State`].
    pub state: State,
    /// Why it is not complete, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// How whole a release is in its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Its number and commit tags name it.
    Complete,
    /// Its number tag names it, its commit tag does not exist: a push stopped before it was
    /// done (pushing the commit again completes it).
    Incomplete,
    /// Its number, or its commit, is another release's: two releases met where one was
    /// meant (a registry that let a late write through, or an earlier forge-pack).
    Conflict,
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
        // A state column only when something is not whole: the usual listing stays narrow.
        let states = releases.iter().any(|r| r.state != State::Complete);
        if states {
            rows[0].push("STATE".into());
        }
        for r in &releases {
            let number = r.number.to_string();
            let aliases: Vec<&str> =
                r.aliases.iter().map(String::as_str).filter(|a| *a != number).collect();
            let mut row = vec![
                number,
                r.commit[..12].to_owned(),
                r.created.clone(),
                r.trigger.clone(),
                aliases.join(", "),
            ];
            if states {
                row.push(r.note.clone().unwrap_or_default());
            }
            rows.push(row);
        }
        output.print(&table(&rows))?;
        for r in releases.iter().filter(|r| r.state == State::Incomplete) {
            output.note(&format!(
                "release {} is incomplete: push commit {} again to complete it",
                r.number, r.commit
            ));
        }
    }
    Ok(exit::OK)
}

/// Every release in `store`, newest first: one tag listing, the release index, and one
/// manifest for each release the index lacks or the tags do not confirm.
pub async fn list(store: &Store, output: &Output) -> Result<Vec<ListedRelease>, Error> {
    let tags = store.list_tags().await?;
    let indexed = indexed(store, &tags).await;
    let known: BTreeSet<&str> = indexed.iter().map(|e| e.commit.as_str()).collect();
    let commits: Vec<&String> =
        tags.iter().filter(|t| is_commit_sha(t) && !known.contains(t.as_str())).collect();
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
    let found: Vec<Found> = manifests
        .iter()
        .map(|(commit, digest, manifest)| Found::of_manifest(commit, digest, manifest))
        .chain(indexed.iter().map(Found::of_entry))
        .collect();
    let assigned =
        assign_tags(store, &tags, found.iter().map(|f| (&f.digest, f.expected.clone()))).await?;
    let mut releases: Vec<ListedRelease> = found
        .into_iter()
        .map(|f| {
            let mut aliases: Vec<String> = assigned
                .get(&f.digest)
                .into_iter()
                .flatten()
                .filter(|t| **t != f.commit)
                .cloned()
                .collect();
            aliases.sort_by_key(|a| (release_number(a).is_none(), a.clone()));
            ListedRelease {
                number: f.number,
                commit: f.commit,
                created: f.created,
                aliases,
                trigger: f.trigger,
                digest: f.digest.to_string(),
                state: State::Complete,
                note: None,
            }
        })
        .collect();
    releases.extend(incomplete(store, &tags, &releases).await?);
    copied(store, &tags, &mut releases).await?;
    // After the copies are in: a copy that carries a number another release holds is marked.
    mark_conflicts(store, &tags, &mut releases).await?;
    releases.sort_by_key(|r| (std::cmp::Reverse(r.number), r.state != State::Complete));
    Ok(releases)
}

/// A release found under its commit tag, in its manifest or in the index.
struct Found {
    number: u64,
    commit: String,
    created: String,
    trigger: String,
    digest: Digest,
    /// The tags it was given, as far as its manifest or the index knows.
    expected: Vec<String>,
}

impl Found {
    fn of_manifest(commit: &str, digest: &Digest, manifest: &Manifest) -> Found {
        let note = |key: &str| manifest.annotation(key).unwrap_or_default().to_owned();
        Found {
            number: number_of(manifest),
            commit: commit.to_owned(),
            created: note(annotations::CREATED),
            trigger: note(annotations::FORGE_TRIGGER),
            digest: digest.clone(),
            expected: expected_tags(manifest),
        }
    }

    fn of_entry(entry: &Entry) -> Found {
        Found {
            number: entry.number,
            commit: entry.commit.clone(),
            created: entry.created.clone(),
            trigger: entry.trigger.clone(),
            digest: entry.digest.clone(),
            expected: [entry.commit.clone(), entry.number.to_string()]
                .into_iter()
                .chain(entry.aliases.iter().cloned())
                .collect(),
        }
    }
}

/// The releases of the index the tags confirm (see [`ReleaseIndex::confirmed_by`]); the
/// others are read from the releases themselves, so an index a concurrent push left behind,
/// or one written by someone else, changes nothing. A store without a usable index has none.
///
/// [`ReleaseIndex::confirmed_by`]: forge_release::index::ReleaseIndex::confirmed_by
async fn indexed(store: &Store, tags: &[String]) -> Vec<Entry> {
    if !tags.iter().any(|t| t == INDEX_TAG) {
        return Vec::new();
    }
    let index = match release_index::read(store).await {
        Ok(Some((_, index))) => index,
        Ok(None) => return Vec::new(),
        Err(error) => {
            tracing::debug!("listing without the release index: {error}");
            return Vec::new();
        }
    };
    index.confirmed_by(tags).into_iter().cloned().collect()
}

/// The tags a release's manifest says it was created with: commit, number, aliases.
fn expected_tags(manifest: &Manifest) -> Vec<String> {
    [annotations::REVISION, annotations::FORGE_NUMBER]
        .into_iter()
        .filter_map(|key| manifest.annotation(key))
        .chain(manifest.annotation(annotations::FORGE_ALIASES).unwrap_or_default().split(','))
        .map(str::to_owned)
        .collect()
}

fn number_of(manifest: &Manifest) -> u64 {
    manifest.annotation(annotations::FORGE_NUMBER).and_then(release_number).unwrap_or(0)
}

/// A number two listed releases carry, or whose claims leave room for doubt (see
/// [`doubtful`]): its tag says which release holds it, and the others are marked. One request
/// per such number; none in a sound store.
async fn mark_conflicts(
    store: &Store,
    tags: &[String],
    releases: &mut [ListedRelease],
) -> Result<(), Error> {
    let mut carriers: BTreeMap<u64, usize> = BTreeMap::new();
    for r in releases.iter() {
        *carriers.entry(r.number).or_default() += 1;
    }
    let mut checked: BTreeSet<u64> =
        carriers.iter().filter(|(_, n)| **n > 1).map(|(n, _)| *n).collect();
    let claims = live_claims(tags);
    checked.extend(releases.iter().filter(|r| doubtful(&claims, r)).map(|r| r.number));
    for number in checked {
        let holder = store.resolve_tag(&number.to_string()).await?.map(|d| d.to_string());
        for r in releases.iter_mut().filter(|r| r.number == number) {
            if holder.as_deref() != Some(r.digest.as_str()) {
                r.state = State::Conflict;
                r.note = Some(match &holder {
                    Some(holder) => format!("conflict: number {number} names {holder}"),
                    None => format!("conflict: number {number} is named by no release"),
                });
            }
        }
    }
    Ok(())
}

/// Whether the claims on a release's number leave room for doubt that its tag names it:
/// another claim on the number was never withdrawn, or the release's own claim is missing
/// while others are there. (Releases made without claims raise no doubt.)
fn doubtful(claims: &BTreeMap<u64, Vec<Claim>>, release: &ListedRelease) -> bool {
    let hex = release.digest.trim_start_matches("sha256:");
    let own = |c: &Claim| c.commit == release.commit && hex.starts_with(&c.digest_prefix);
    claims.get(&release.number).into_iter().flatten().any(|c| !own(c))
}

/// The number claims never withdrawn, by number: read once for all releases (a store has
/// a few per release).
fn live_claims(tags: &[String]) -> BTreeMap<u64, Vec<Claim>> {
    let present: BTreeSet<&str> = tags.iter().map(String::as_str).collect();
    let mut claims: BTreeMap<u64, Vec<Claim>> = BTreeMap::new();
    for claim in tags.iter().filter_map(|t| Claim::parse(t)) {
        if !present.contains(claim.withdrawal().as_str()) {
            claims.entry(claim.number).or_default().push(claim);
        }
    }
    claims
}

/// Releases a number tag names that no commit tag does: pushes that stopped before their
/// commit tag, or a commit's second release. Only number tags no listed release carries are
/// looked up.
async fn incomplete(
    store: &Store,
    tags: &[String],
    listed: &[ListedRelease],
) -> Result<Vec<ListedRelease>, Error> {
    let carried: BTreeSet<u64> = listed.iter().map(|r| r.number).collect();
    let present: BTreeSet<&str> = tags.iter().map(String::as_str).collect();
    let present = &present;
    let orphans = tags.iter().filter(|t| release_number(t).is_some_and(|n| !carried.contains(&n)));
    let found: Vec<Option<ListedRelease>> = stream::iter(orphans)
        .map(|tag| async move {
            let Some((bytes, digest)) = store.fetch_manifest_by_tag(tag).await? else {
                return Ok::<_, Error>(None);
            };
            let Ok(manifest) = Manifest::parse_release(&bytes, Some(&digest)) else {
                return Ok(None);
            };
            let note = |key: &str| manifest.annotation(key).unwrap_or_default().to_owned();
            let commit = note(annotations::REVISION);
            let (state, why) = if present.contains(commit.as_str()) {
                (
                    State::Conflict,
                    format!(
                        "conflict: commit {} has another release",
                        &commit[..commit.len().min(12)]
                    ),
                )
            } else if pushed_here(tags, &commit) {
                (State::Incomplete, "incomplete: push the commit again".to_owned())
            } else {
                (State::Complete, String::new())
            };
            Ok(Some(ListedRelease {
                number: release_number(tag).unwrap_or(0),
                commit,
                created: note(annotations::CREATED),
                aliases: vec![tag.clone()],
                trigger: note(annotations::FORGE_TRIGGER),
                digest: digest.to_string(),
                state,
                note: (!why.is_empty()).then_some(why),
            }))
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}

/// Releases only aliases name (a promotion that copied `v1.2.3` or `main-4`, not the commit
/// or the number): every tag no listed release carries is looked up, and the releases found
/// are listed once each, with all their tags. None in a store forge-pack pushed to.
async fn copied(
    store: &Store,
    tags: &[String],
    listed: &mut Vec<ListedRelease>,
) -> Result<(), Error> {
    let carried: BTreeSet<&str> = listed
        .iter()
        .flat_map(|r| r.aliases.iter().map(String::as_str).chain([r.commit.as_str()]))
        .collect();
    let orphans: Vec<&String> = tags
        .iter()
        .filter(|t| {
            !carried.contains(t.as_str())
                && !is_commit_sha(t)
                && release_number(t).is_none()
                && !forge_release::aliases::is_bookkeeping(t)
            // Signature images and referrers indexes (`sha256-<hex>[.sig|.att]`).
            && !t.starts_with("sha256-")
        })
        .collect();
    let fetched: Vec<Option<(String, Digest, Manifest)>> = stream::iter(orphans)
        .map(|tag| async move {
            let Some((bytes, digest)) = store.fetch_manifest_by_tag(tag).await? else {
                return Ok::<_, Error>(None);
            };
            Ok(Manifest::parse_release(&bytes, Some(&digest))
                .ok()
                .map(|m| (tag.clone(), digest, m)))
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    let mut found: BTreeMap<Digest, (Manifest, Vec<String>)> = BTreeMap::new();
    for (tag, digest, manifest) in fetched.into_iter().flatten() {
        // An alias of a release listed already (copied by number and alias, say).
        if let Some(release) = listed.iter_mut().find(|r| r.digest == digest.as_str()) {
            release.aliases.push(tag);
            continue;
        }
        found.entry(digest).or_insert_with(|| (manifest, Vec::new())).1.push(tag);
    }
    listed.extend(found.into_iter().map(|(digest, (manifest, mut aliases))| {
        let note = |key: &str| manifest.annotation(key).unwrap_or_default().to_owned();
        aliases.sort();
        ListedRelease {
            number: number_of(&manifest),
            commit: note(annotations::REVISION),
            created: note(annotations::CREATED),
            aliases,
            trigger: note(annotations::FORGE_TRIGGER),
            digest: digest.to_string(),
            state: State::Complete,
            note: None,
        }
    }));
    Ok(())
}

/// How whole the release `digest` is (its number and commit tags looked up), and why not.
pub async fn state_of(
    store: &Store,
    digest: &Digest,
    manifest: &Manifest,
) -> Result<(State, Option<String>), Error> {
    let commit = manifest.annotation(annotations::REVISION).unwrap_or_default();
    let number = number_of(manifest);
    let (by_commit, by_number) = futures_util::future::try_join(
        store.resolve_tag(commit),
        store.resolve_tag(&number.to_string()),
    )
    .await?;
    let mut why = Vec::new();
    if let Some(other) = by_number.as_ref().filter(|n| *n != digest) {
        why.push(format!("number {number} names {other}"));
    }
    if let Some(other) = by_commit.as_ref().filter(|c| *c != digest) {
        why.push(format!("commit {commit} names {other}"));
    }
    if !why.is_empty() {
        return Ok((State::Conflict, Some(format!("a conflict: {}", why.join(", ")))));
    }
    if by_commit.is_some() && by_number.is_some() {
        return Ok((State::Complete, None));
    }
    // A tag is missing: a push of this commit stopped here (its claims are here), or the
    // release was copied in by some of its tags (a promotion by number or alias): whole.
    let tags = store.list_tags().await?;
    if by_commit.is_none() && pushed_here(&tags, commit) {
        return Ok((
            State::Incomplete,
            Some("incomplete: its push stopped before its commit tag".into()),
        ));
    }
    Ok((State::Complete, None))
}

/// Whether a publisher claimed `commit` in this store (its claims stay as tags).
fn pushed_here(tags: &[String], commit: &str) -> bool {
    tags.iter().any(|t| {
        Claim::parse(t).is_some_and(|c| c.commit == commit)
            || forge_release::aliases::CommitClaim::parse(t).is_some_and(|c| c.commit == commit)
    })
}

/// The tags naming `digest` (for `inspect`).
pub async fn tags_of(
    store: &Store,
    digest: &Digest,
    manifest: &Manifest,
) -> Result<Vec<String>, Error> {
    let tags = store.list_tags().await?;
    let assigned = assign_tags(store, &tags, [(digest, expected_tags(manifest))]).await?;
    Ok(assigned.get(digest).cloned().unwrap_or_default())
}

/// Works out which tags name which of the given releases, each with the tags it is expected
/// to carry (its manifest's or its index entry's). Most tags need no request; only tags that
/// are unclaimed or claimed twice are looked up, concurrently.
async fn assign_tags<'a>(
    store: &Store,
    tags: &[String],
    releases: impl IntoIterator<Item = (&'a Digest, Vec<String>)>,
) -> Result<BTreeMap<Digest, Vec<String>>, Error> {
    let present: BTreeSet<&str> = tags.iter().map(String::as_str).collect();
    let mut claims: BTreeMap<&str, Vec<&Digest>> = BTreeMap::new();
    let mut known: BTreeSet<&Digest> = BTreeSet::new();
    for (digest, expected) in releases {
        known.insert(digest);
        // A manifest names its number among its aliases too: that tag is looked up, as a
        // tag claimed twice (an index entry names it once: the listing has confirmed it).
        for tag in expected {
            if let Some(tag) = present.get(tag.as_str()) {
                claims.entry(tag).or_default().push(digest);
            }
        }
    }
    let mut assigned: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    let mut unsure: Vec<&String> = Vec::new();
    for tag in tags {
        match claims.get(tag.as_str()).map(Vec::as_slice) {
            Some([one]) => assigned.entry((*one).clone()).or_default().push(tag.clone()),
            // Another release's commit or number tag needs no lookup; claims are bookkeeping.
            None if is_commit_sha(tag) || release_number(tag).is_some() || Claim::is_claim(tag) => {
            }
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
