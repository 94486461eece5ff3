//! Publishing a release into a store: numbering, immutability, idempotency and aliases.
//!
//! One commit, one release; one number, one release; under concurrent pipelines, slow
//! registries and killed jobs. Registries have no conditional tag write and a write may land
//! late, so nothing is taken by writing a tag and reading it back: see [`claims`]. A publisher
//! first takes the commit (one publisher per commit numbers a release; the others wait for it
//! and add their aliases to its release), then a number, then writes, in order, the number tag,
//! the commit tag and the aliases: no tag ever names unfinished content. A push killed at any
//! point and run again goes on as the same publisher, and completes a release its earlier
//! attempt numbered rather than making a second.

mod claims;
mod finish;

use std::time::{Duration, Instant};

use forge_release::Digest;
use forge_release::aliases::{self, Claim, CommitClaim, TagStrategy};
use forge_release::image::ReleaseImage;
use forge_release::manifest::{Manifest, annotations};
use forge_release::metadata::TriggerKind;
use forge_release::package::{self, PackageError, ReleaseInput};

use crate::error::StoreError;
use crate::store::{Store, UploadProgress};

use self::claims::{Outcome, back_off, contend_commit, contend_number, live_rivals};
use self::finish::{Finish, claim_alias, index_release};

/// How long a publisher may take unless its caller says: its commit claim lapses then.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// How many numbers are tried when concurrent publishers claim them first.
const NUMBER_ATTEMPTS: usize = 20;

/// What publishing did.
#[derive(Debug, Clone)]
pub struct Published {
    /// Manifest digest of the release.
    pub digest: Digest,
    /// Release number.
    pub number: u64,
    /// Commit SHA (also a tag).
    pub commit: String,
    /// Whether the release already existed with the same content (complete, or left
    /// unfinished by an earlier push and now completed).
    pub existed: bool,
    /// Tags this run added.
    pub tags_added: Vec<String>,
    /// Things the user should know (rejected git tags, aliases held by other releases).
    pub warnings: Vec<String>,
    /// Bytes uploaded (blobs and manifest the store did not have).
    pub bytes_uploaded: u64,
}

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The commit already has a release with different resources.
    #[error(
        "commit {commit} already has release {number} ({existing}) with different resources \
         ({existing_resources}, now {new_resources}); releases are immutable"
    )]
    ContentChanged {
        /// The commit.
        commit: String,
        /// Its release number.
        number: u64,
        /// Manifest digest of the existing release.
        existing: Digest,
        /// Resources layer digest of the existing release.
        existing_resources: Digest,
        /// Resources layer digest of what was rendered now.
        new_resources: Digest,
    },
    /// The commit tag names something that is not a readable release.
    #[error("tag {commit} exists but is not a readable release: {reason}")]
    ExistingUnreadable {
        /// The commit tag.
        commit: String,
        /// What went wrong reading it.
        reason: String,
    },
    /// Another publisher released the same commit at the same time.
    #[error("commit {commit} was released concurrently by another publisher as {other}")]
    ConcurrentCommit {
        /// The commit.
        commit: String,
        /// The other manifest.
        other: Digest,
    },
    /// Another publisher has been releasing the commit for as long as this one may take.
    #[error(
        "commit {commit} is being released by another push (claim {claim}), which neither finished nor gave up in time"
    )]
    CommitBusy {
        /// The commit.
        commit: String,
        /// The other publisher's claim.
        claim: String,
    },
    /// No release number could be claimed.
    #[error(
        "could not claim a release number after {NUMBER_ATTEMPTS} attempts: too many concurrent publishers"
    )]
    NumberContention,
    /// Packaging failed.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Aliases for a release numbered `number`, plus warnings for git names that cannot be used.
fn aliases_for(
    input: &ReleaseInput,
    strategy: TagStrategy,
    number: u64,
) -> (Vec<String>, Vec<String>) {
    let mut list = vec![number.to_string()];
    let mut warnings = Vec::new();
    let (tag_aliases, rejected) =
        aliases::tag_aliases(strategy, &input.project, &input.source.tags);
    list.extend(tag_aliases);
    for r in rejected {
        warnings.push(format!("git tag `{}` is not used as an alias: {}", r.name, r.reason));
    }
    match &input.source.branch {
        // A pull request's head branch may be anyone's (a fork's `main`): no `main-3` for it.
        Some(branch) if input.trigger.kind == TriggerKind::PullRequest => warnings.push(format!(
            "branch `{branch}` gives no alias: a pull request build is not a push to it"
        )),
        Some(branch) => match aliases::branch_alias(branch, number) {
            Ok(alias) => list.push(alias),
            Err(r) => warnings.push(format!("branch `{}` gives no alias: {}", r.name, r.reason)),
        },
        None => {}
    }
    (list, warnings)
}

/// The release numbered `number`, with its aliases and the warnings about them. Only the
/// metadata, config and manifest are made: the resources layer is the input's.
fn package_numbered(
    input: &ReleaseInput,
    strategy: TagStrategy,
    number: u64,
) -> Result<(ReleaseImage, Vec<String>, Vec<String>), PackageError> {
    let (aliases, warnings) = aliases_for(input, strategy, number);
    let release = package::package(input, number, &aliases)?;
    Ok((release, aliases, warnings))
}

/// Publishes `input` into `store`, numbering it and giving it its aliases.
pub async fn publish(
    store: &Store,
    input: ReleaseInput,
    strategy: TagStrategy,
) -> Result<Published, PublishError> {
    publish_with_progress(store, input, strategy, &|_, _| {}, DEFAULT_LIFETIME).await
}

/// [`publish`], reporting upload progress, for a publisher that will have given up within
/// `lifetime` (its deadline: its claims lapse then).
pub async fn publish_with_progress(
    store: &Store,
    input: ReleaseInput,
    strategy: TagStrategy,
    progress: UploadProgress<'_>,
    lifetime: Duration,
) -> Result<Published, PublishError> {
    let commit = input.source.commit.clone();
    let tags = store.list_tags().await?;
    if tags.contains(&commit) {
        return republish(store, &input, strategy, &tags).await;
    }
    if let Some(completed) = complete_numbered(store, &input, strategy, &tags).await? {
        return Ok(completed);
    }
    // What this publisher would release, numbered 0: its identity, and what its commit claim
    // names (its blobs are the release's but for the small config and metadata).
    let identity = package::package(&input, 0, &[])?;
    let bytes_uploaded = store.put_blobs(&identity, progress).await?;
    let deadline = Instant::now() + lifetime;
    // A minute's margin for clocks that disagree.
    let mut expires = claims::now() + lifetime.as_secs() + 60;
    let (claim, tags) = loop {
        let claim = CommitClaim::new(&commit, &identity.digest, expires);
        store.set_tag(&claim.tag(), &identity.digest, &identity.manifest_bytes).await?;
        let listed = store.list_tags().await?;
        let (outcome, listed) = contend_commit(store, &claim, listed).await?;
        match outcome {
            Outcome::Won => break (claim, listed),
            Outcome::Taken => return republish(store, &input, strategy, &listed).await,
            Outcome::Lost => {}
        }
        // Another publisher releases this commit: its release gets our aliases once it is
        // there, or, if it gives up, we claim again (with a new claim: ours is withdrawn).
        let listed = wait_for_commit(store, &claim, listed, deadline).await?;
        if listed.contains(&commit) {
            return republish(store, &input, strategy, &listed).await;
        }
        if let Some(completed) = complete_numbered(store, &input, strategy, &listed).await? {
            return Ok(completed);
        }
        expires = (claims::now() + lifetime.as_secs() + 60).max(expires + 1);
    };
    // A number tag of an earlier attempt may have landed since the first listing.
    let numbered = match complete_numbered(store, &input, strategy, &tags).await {
        Ok(Some(completed)) => Ok(completed),
        Ok(None) => number(store, &input, strategy, progress, tags).await,
        Err(error) => Err(error),
    };
    if numbered.is_err() {
        // Others waiting for this commit need not wait for the claim to lapse.
        let _ = claims::withdraw(store, &claim.tag()).await;
    }
    numbered.map(|mut published| {
        published.bytes_uploaded += bytes_uploaded;
        published
    })
}

/// Waits until the commit has its tag, or a numbered release of it is there to complete, or
/// no other publisher claims it any more; the latest listing.
async fn wait_for_commit(
    store: &Store,
    claim: &CommitClaim,
    mut tags: Vec<String>,
    deadline: Instant,
) -> Result<Vec<String>, PublishError> {
    loop {
        let rivals = live_rivals(&tags, claim);
        if tags.contains(&claim.commit)
            || rivals.is_empty()
            || numbered_claims(&tags, &claim.commit)
        {
            return Ok(tags);
        }
        if Instant::now() > deadline {
            return Err(PublishError::CommitBusy {
                commit: claim.commit.clone(),
                claim: rivals[0].clone(),
            });
        }
        tokio::time::sleep(claims::POLL * 5).await;
        tags = store.list_tags().await?;
    }
}

/// Whether some number claim of `commit` has its number tag (which only its winner writes).
fn numbered_claims(tags: &[String], commit: &str) -> bool {
    tags.iter()
        .filter_map(|t| Claim::parse(t))
        .any(|c| c.commit == commit && tags.contains(&c.number.to_string()))
}

/// Takes a number for the commit this publisher holds, and finishes the release.
async fn number(
    store: &Store,
    input: &ReleaseInput,
    strategy: TagStrategy,
    progress: UploadProgress<'_>,
    mut tags: Vec<String>,
) -> Result<Published, PublishError> {
    let commit = &input.source.commit;
    let mut number = match earlier_claim(input, strategy, &tags)? {
        Some(earlier) => earlier,
        None => aliases::next_number(tags.iter().map(String::as_str)),
    };
    for attempt in 0..NUMBER_ATTEMPTS {
        if attempt > 0 {
            back_off(attempt).await;
        }
        let (release, aliases, warnings) = package_numbered(input, strategy, number)?;
        let mut bytes_uploaded = store.put_blobs(&release, progress).await?;
        let claim = Claim::new(number, commit, &release.digest);
        // The claim stores the manifest too: one upload.
        store.set_tag(&claim.tag(), &release.digest, &release.manifest_bytes).await?;
        bytes_uploaded += release.manifest_bytes.len() as u64;
        let listed = store.list_tags().await?;
        let outcome;
        (outcome, tags) = contend_number(store, &claim, &release.digest, listed).await?;
        if let Outcome::Won = outcome {
            let tagged = input.trigger.kind == TriggerKind::Tag;
            let finish =
                Finish { number, aliases, warnings, bytes_uploaded, completed: false, tagged };
            let manifest = (release.digest.clone(), release.manifest_bytes.clone());
            if let Some(published) = finish.run(store, commit, manifest).await? {
                return Ok(published);
            }
        }
        number = aliases::next_number(tags.iter().map(String::as_str)).max(number + 1);
    }
    Err(PublishError::NumberContention)
}

/// The number this push claimed before it was killed, if it did and no release holds that
/// number: the same inputs give the same manifest there, so the claim is this push's own, and
/// taking it up again makes a number tag the killed push may still have on its way land on
/// the same release.
fn earlier_claim(
    input: &ReleaseInput,
    strategy: TagStrategy,
    tags: &[String],
) -> Result<Option<u64>, PublishError> {
    let commit = &input.source.commit;
    let mut earlier: Vec<Claim> = tags
        .iter()
        .filter_map(|t| Claim::parse(t))
        .filter(|c| c.commit == *commit && !tags.contains(&c.withdrawal()))
        .filter(|c| !tags.contains(&c.number.to_string()))
        .collect();
    earlier.sort_by_key(|c| c.number);
    for claim in earlier {
        let (release, _, _) = package_numbered(input, strategy, claim.number)?;
        if Claim::new(claim.number, commit, &release.digest) == claim {
            return Ok(Some(claim.number));
        }
    }
    Ok(None)
}

/// A release of this commit an earlier publisher numbered but did not finish (killed,
/// cancelled before its commit tag): finish it, rather than make a second. Only numbered
/// ones: a claim that got no number is its publisher's to pursue or give up, never another's.
/// A release with other resources is refused, as for a released commit.
async fn complete_numbered(
    store: &Store,
    input: &ReleaseInput,
    strategy: TagStrategy,
    tags: &[String],
) -> Result<Option<Published>, PublishError> {
    let commit = &input.source.commit;
    let mut earlier: Vec<Claim> = tags
        .iter()
        .filter_map(|t| Claim::parse(t))
        .filter(|c| c.commit == *commit && tags.contains(&c.number.to_string()))
        .collect();
    earlier.sort_by_key(|c| std::cmp::Reverse(c.number));
    for claim in earlier {
        let Some((manifest, digest)) = claims::fetch_listed(store, &claim.tag()).await? else {
            continue;
        };
        let holder = claims::fetch_listed(store, &claim.number.to_string()).await?;
        if holder.map(|(_, d)| d).as_ref() != Some(&digest) {
            continue; // another release took that number
        }
        let parsed = Manifest::parse_release(&manifest, Some(&digest)).map_err(|e| {
            PublishError::ExistingUnreadable { commit: claim.tag(), reason: e.to_string() }
        })?;
        let existing_resources = parsed.resources().digest.clone();
        let new_resources = input.resources.info.digest.clone();
        if existing_resources != new_resources {
            return Err(PublishError::ContentChanged {
                commit: commit.clone(),
                number: claim.number,
                existing: digest,
                existing_resources,
                new_resources,
            });
        }
        let (aliases, warnings) = aliases_for(input, strategy, claim.number);
        let finish = Finish {
            number: claim.number,
            aliases,
            warnings,
            bytes_uploaded: 0,
            completed: true,
            tagged: input.trigger.kind == TriggerKind::Tag,
        };
        if let Some(published) = finish.run(store, commit, (digest, manifest)).await? {
            return Ok(Some(published));
        }
    }
    Ok(None)
}

/// The commit already has a release: succeed if the resources are the same (adding any
/// missing aliases), refuse otherwise.
async fn republish(
    store: &Store,
    input: &ReleaseInput,
    strategy: TagStrategy,
    tags: &[String],
) -> Result<Published, PublishError> {
    let commit = input.source.commit.clone();
    let unreadable =
        |reason: String| PublishError::ExistingUnreadable { commit: commit.clone(), reason };
    let (bytes, existing) = claims::fetch_listed(store, &commit)
        .await?
        .ok_or_else(|| unreadable("the tag disappeared while publishing".into()))?;
    let manifest =
        Manifest::parse_release(&bytes, Some(&existing)).map_err(|e| unreadable(e.to_string()))?;
    let number = manifest
        .annotation(annotations::FORGE_NUMBER)
        .and_then(aliases::release_number)
        .ok_or_else(|| unreadable("it has no release number annotation".into()))?;
    let (aliases, mut warnings) = aliases_for(input, strategy, number);
    let new_resources = input.resources.info.digest.clone();
    let existing_resources = manifest.resources().digest.clone();
    if new_resources != existing_resources {
        return Err(PublishError::ContentChanged {
            commit,
            number,
            existing,
            existing_resources,
            new_resources,
        });
    }
    // Only aliases the store lacks are written: an unchanged re-push costs no more requests.
    let mut tags_added = Vec::new();
    for alias in aliases.iter().filter(|a| !tags.contains(a)) {
        claim_alias(store, alias, &existing, &bytes, &mut tags_added, &mut warnings).await?;
    }
    // New aliases go into the index too (an unchanged re-push leaves it alone).
    if !tags_added.is_empty() {
        let mut naming = tags_added.clone();
        naming.extend(
            manifest
                .annotation(annotations::FORGE_ALIASES)
                .unwrap_or_default()
                .split(',')
                .filter(|a| tags.iter().any(|t| t == a))
                .map(str::to_owned),
        );
        index_release(store, &existing, &bytes, &naming, &mut warnings).await;
    }
    // A tag pipeline that finds the release made by another push records that it tagged it.
    if input.trigger.kind == TriggerKind::Tag && !tags.contains(&aliases::tagged_marker(&commit)) {
        let (tag_names, _) = aliases::tag_aliases(strategy, &input.project, &input.source.tags);
        record_tagged(store, &commit, &tag_names, (&existing, &bytes)).await?;
    }
    Ok(Published {
        digest: existing,
        number,
        commit,
        existed: true,
        tags_added,
        warnings,
        bytes_uploaded: 0,
    })
}

/// Records that a tag pipeline re-tagged the release of `commit` (see
/// [`aliases::tagged_marker`]) once one of its git tag aliases names that release.
async fn record_tagged(
    store: &Store,
    commit: &str,
    tag_names: &[String],
    (digest, manifest): (&Digest, &[u8]),
) -> Result<(), StoreError> {
    let marker = aliases::tagged_marker(commit);
    for name in tag_names {
        if store.resolve_tag(name).await?.as_ref() == Some(digest) {
            return store.set_tag(&marker, digest, manifest).await;
        }
    }
    Ok(())
}
