//! Publishing a release into a store: numbering, immutability, idempotency and aliases.
//!
//! Registries have no conditional tag write, and a write may land late (a loaded registry, a
//! proxy), so a number is never taken by writing its tag and reading it back. Instead each
//! publisher first writes a claim of its own ([`Claim`]: a tag no other publisher writes),
//! then lists the tags. It takes the number once every other claim on it that the listing
//! shows is withdrawn (none at all, usually); it withdraws its own, for good, if it sees a
//! claim that sorts before it (that one waits for the others), or if the rest do not
//! withdraw in time (their publisher was killed, say). Of two publishers whose claims both
//! landed, the one that listed later saw the other's, and took the number only if that one
//! had withdrawn: two never both take a number. (This holds where a listing shows every write
//! acknowledged before it, as CNCF distribution's and other consistent tag listings do.)
//!
//! Order matters for readers: blobs, then the claim (which stores the manifest), then the
//! number tag, then the commit tag, then the other aliases: no tag ever names incomplete
//! content. A push killed at any point and run again finds its earlier claims by commit and
//! completes the release they led to, rather than making a second one.

use forge_release::Digest;
use forge_release::aliases::{self, Claim, TagStrategy};
use forge_release::image::ReleaseImage;
use forge_release::manifest::{Manifest, annotations};
use forge_release::metadata::TriggerKind;
use forge_release::package::{self, PackageError, ReleaseInput};

use crate::error::{StoreError, TagClaim};
use crate::store::{Store, UploadProgress};

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
    publish_with_progress(store, input, strategy, &|_, _| {}).await
}

/// [`publish`], reporting upload progress.
pub async fn publish_with_progress(
    store: &Store,
    input: ReleaseInput,
    strategy: TagStrategy,
    progress: UploadProgress<'_>,
) -> Result<Published, PublishError> {
    let commit = input.source.commit.clone();
    let mut tags = store.list_tags().await?;
    if tags.contains(&commit) {
        return republish(store, &input, strategy, &tags).await;
    }
    if let Some(completed) = complete_earlier_attempt(store, &input, strategy, &tags).await? {
        return Ok(completed);
    }
    let mut number = aliases::next_number(tags.iter().map(String::as_str));
    for attempt in 0..NUMBER_ATTEMPTS {
        if attempt > 0 {
            back_off(attempt).await;
        }
        let (release, aliases, warnings) = package_numbered(&input, strategy, number)?;
        let mut bytes_uploaded = store.put_blobs(&release, progress).await?;
        let claim = Claim::new(number, &commit, &release.digest);
        // The claim stores the manifest too: one upload.
        store.set_tag(&claim.tag(), &release.digest, &release.manifest_bytes).await?;
        bytes_uploaded += release.manifest_bytes.len() as u64;
        tags = store.list_tags().await?;
        let won;
        (won, tags) = contend(store, &claim, tags).await?;
        if won {
            let finish = Finish { number, aliases, warnings, bytes_uploaded, completed: false };
            let manifest = (release.digest.clone(), release.manifest_bytes.clone());
            if let Some(published) = finish.run(store, &commit, manifest).await? {
                return Ok(published);
            }
        }
        number = aliases::next_number(tags.iter().map(String::as_str)).max(number + 1);
    }
    Err(PublishError::NumberContention)
}

/// How long a claim that sorts first waits for the others on its number to be withdrawn.
const WAIT_FOR_WITHDRAWALS: std::time::Duration = std::time::Duration::from_secs(10);

/// How often the tags are listed again meanwhile.
const POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Whether `claim` (written, and its manifest with it) takes its number, given the tags
/// listed since; also the latest listing. Withdraws it when it does not.
async fn contend(
    store: &Store,
    claim: &Claim,
    mut tags: Vec<String>,
) -> Result<(bool, Vec<String>), StoreError> {
    let mine = claim.tag();
    let deadline = std::time::Instant::now() + WAIT_FOR_WITHDRAWALS;
    loop {
        if tags.contains(&claim.number.to_string()) {
            return Ok((false, tags));
        }
        let rivals = rivals(&tags, claim);
        // A claim missing from the listing cannot be judged: give it up.
        let seen = tags.contains(&mine);
        if seen && rivals.is_empty() {
            return Ok((true, tags));
        }
        if !seen || rivals.iter().any(|rival| *rival < mine) || std::time::Instant::now() > deadline
        {
            withdraw(store, claim).await?;
            return Ok((false, tags));
        }
        tokio::time::sleep(POLL).await;
        tags = store.list_tags().await?;
    }
}

/// The claims on `claim`'s number other than it, not withdrawn.
fn rivals(tags: &[String], claim: &Claim) -> Vec<String> {
    let mine = claim.tag();
    tags.iter()
        .filter(|tag| **tag != mine)
        .filter_map(|tag| Claim::parse(tag))
        .filter(|other| other.number == claim.number && !tags.contains(&other.withdrawal()))
        .map(|other| other.tag())
        .collect()
}

/// Withdraws a claim for good: the withdrawal names the claim's manifest, already stored.
async fn withdraw(store: &Store, claim: &Claim) -> Result<(), StoreError> {
    let Some((manifest, digest)) = store.fetch_manifest_by_tag(&claim.tag()).await? else {
        return Ok(());
    };
    store.set_tag(&claim.withdrawal(), &digest, &manifest).await
}

/// Waits a little, more with each attempt and by a random amount, so that publishers that saw
/// each other's claims do not meet again on the next number.
async fn back_off(attempt: usize) {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new().hash_one(attempt);
    let most = 50 * (attempt as u64).min(8);
    tokio::time::sleep(std::time::Duration::from_millis(random % most.max(1))).await;
}

/// What is left to do once a number is ours: its tag, the commit tag, the aliases.
struct Finish {
    number: u64,
    aliases: Vec<String>,
    warnings: Vec<String>,
    bytes_uploaded: u64,
    completed: bool,
}

impl Finish {
    /// Tags the manifest `(digest, bytes)`; `None` if the number turns out to be held by
    /// another release (a registry with immutable tags refused ours).
    async fn run(
        self,
        store: &Store,
        commit: &str,
        (digest, manifest): (Digest, Vec<u8>),
    ) -> Result<Option<Published>, PublishError> {
        let number_tag = self.number.to_string();
        if let Err(error) = store.set_tag(&number_tag, &digest, &manifest).await {
            // Harbor's and ECR's immutable tags refuse a second writer: then it is not ours.
            return match store.resolve_tag(&number_tag).await? {
                Some(holder) if holder == digest => {
                    self.tag_commit(store, commit, digest, manifest).await.map(Some)
                }
                Some(_) => Ok(None),
                None => Err(error.into()),
            };
        }
        self.tag_commit(store, commit, digest, manifest).await.map(Some)
    }

    async fn tag_commit(
        mut self,
        store: &Store,
        commit: &str,
        digest: Digest,
        manifest: Vec<u8>,
    ) -> Result<Published, PublishError> {
        match store.claim_tag(commit, &digest, &manifest).await? {
            TagClaim::Claimed | TagClaim::AlreadyOurs => {}
            TagClaim::Taken(other) => {
                return Err(PublishError::ConcurrentCommit { commit: commit.to_owned(), other });
            }
        }
        let mut tags_added = vec![self.number.to_string(), commit.to_owned()];
        for alias in self.aliases.iter().skip(1) {
            claim_alias(store, alias, &digest, &manifest, &mut tags_added, &mut self.warnings)
                .await?;
        }
        if self.completed {
            self.warnings.insert(
                0,
                format!(
                    "completed release {}, which an earlier push of this commit left unfinished",
                    self.number
                ),
            );
        }
        Ok(Published {
            digest,
            number: self.number,
            commit: commit.to_owned(),
            existed: self.completed,
            tags_added,
            warnings: self.warnings,
            bytes_uploaded: self.bytes_uploaded,
        })
    }
}

/// An earlier push of this commit stopped before its commit tag (killed, cancelled): find its
/// claims and, where one led to a number (or still can), finish that release instead of
/// making a second. A release with other resources is refused, as for a released commit.
async fn complete_earlier_attempt(
    store: &Store,
    input: &ReleaseInput,
    strategy: TagStrategy,
    tags: &[String],
) -> Result<Option<Published>, PublishError> {
    let commit = &input.source.commit;
    let mut earlier: Vec<Claim> =
        tags.iter().filter_map(|t| Claim::parse(t)).filter(|c| c.commit == *commit).collect();
    earlier.sort_by_key(|c| std::cmp::Reverse(c.number));
    for claim in earlier {
        let Some((manifest, digest)) = store.fetch_manifest_by_tag(&claim.tag()).await? else {
            continue;
        };
        if tags.contains(&claim.withdrawal()) {
            continue;
        }
        let holder = store.resolve_tag(&claim.number.to_string()).await?;
        let numbered = holder.as_ref() == Some(&digest);
        if holder.is_some() && !numbered {
            // Another release took that number.
            continue;
        }
        let parsed = Manifest::parse_release(&manifest, Some(&digest)).map_err(|e| {
            PublishError::ExistingUnreadable { commit: claim.tag(), reason: e.to_string() }
        })?;
        let existing_resources = parsed.resources().digest.clone();
        let new_resources = input.resources.info.digest.clone();
        if existing_resources != new_resources {
            if numbered {
                return Err(PublishError::ContentChanged {
                    commit: commit.clone(),
                    number: claim.number,
                    existing: digest,
                    existing_resources,
                    new_resources,
                });
            }
            // Not this content: the claim will never be pursued, so it keeps no one waiting.
            withdraw(store, &claim).await?;
            continue;
        }
        // Not numbered yet: the claim contends again, as when it was made.
        if !numbered && !contend(store, &claim, tags.to_vec()).await?.0 {
            continue;
        }
        let (aliases, warnings) = aliases_for(input, strategy, claim.number);
        let finish =
            Finish { number: claim.number, aliases, warnings, bytes_uploaded: 0, completed: true };
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
    let (bytes, existing) = store
        .fetch_manifest_by_tag(&commit)
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

async fn claim_alias(
    store: &Store,
    alias: &str,
    digest: &Digest,
    manifest: &[u8],
    added: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<(), StoreError> {
    match store.claim_tag(alias, digest, manifest).await? {
        TagClaim::Claimed => added.push(alias.to_owned()),
        TagClaim::AlreadyOurs => {}
        TagClaim::Taken(other) => warnings.push(format!(
            "alias `{alias}` already names another release ({other}); left unchanged"
        )),
    }
    Ok(())
}
