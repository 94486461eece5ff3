//! Taking a thing several publishers may want at once — a commit, a release number — where
//! the registry has no conditional write and a write may land late.
//!
//! Each publisher writes a claim of its own (a tag no other publisher writes), then lists the
//! tags. It takes the thing once every rival claim the listing shows is withdrawn (usually
//! there is none); it withdraws its own claim, for good, if it sees a rival that sorts before
//! it (that one waits for the others), or if the rivals do not withdraw in time. Of two
//! publishers whose claims both landed, the one that listed later saw the other's, and took the
//! thing only if that one had withdrawn: two never both take it. A publisher withdraws only
//! claims it wrote itself. (This holds where a listing shows every write acknowledged before
//! it, as CNCF distribution's and other consistent tag listings do.)

use std::time::{Duration, Instant};

use forge_release::aliases::{self, Claim, CommitClaim};

use crate::error::StoreError;
use crate::store::Store;

/// How long a claim that sorts first waits for its rivals to withdraw.
pub const WAIT_FOR_WITHDRAWALS: Duration = Duration::from_secs(10);

/// How often the tags are listed again meanwhile.
pub const POLL: Duration = Duration::from_millis(100);

/// What contending for a claim came to.
#[derive(Debug)]
pub enum Outcome {
    /// The thing is ours.
    Won,
    /// It is not: the claim is withdrawn (or was beaten outright).
    Lost,
    /// It is taken already (a number tag, a commit tag is there): by whom is the caller's to
    /// see.
    Taken,
}

/// Seconds since the epoch, now.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Contends for a number with `claim` (written, and its manifest `digest` with it), given the
/// tags listed since; returns the outcome and the latest listing. A number tag naming the
/// claim's own manifest is a win: an earlier attempt of this push got it that far.
pub async fn contend_number(
    store: &Store,
    claim: &Claim,
    digest: &forge_release::Digest,
    tags: Vec<String>,
) -> Result<(Outcome, Vec<String>), StoreError> {
    let number = claim.number.to_string();
    let rivals = |tags: &[String]| -> Vec<String> {
        tags.iter()
            .filter_map(|tag| Claim::parse(tag))
            .filter(|other| other.number == claim.number && *other != *claim)
            .map(|other| other.tag())
            .filter(|other| !tags.contains(&aliases::withdrawal(other)))
            .collect()
    };
    let taken = |tags: &[String]| tags.contains(&number);
    let (outcome, tags) = contend(store, &claim.tag(), tags, rivals, taken).await?;
    if let Outcome::Taken = outcome {
        let holder = fetch_listed(store, &number).await?.map(|(_, d)| d);
        let ours = holder.as_ref() == Some(digest);
        return Ok((if ours { Outcome::Won } else { Outcome::Lost }, tags));
    }
    Ok((outcome, tags))
}

/// Contends for the right to release `claim.commit`, given the tags listed since. Rivals are
/// the other live claims of the commit: not withdrawn, not lapsed, and of another identity (one
/// identity is one publisher: a push run again after it was killed goes on where it stopped).
/// A commit that gets its tag meanwhile is taken: its release exists.
pub async fn contend_commit(
    store: &Store,
    claim: &CommitClaim,
    tags: Vec<String>,
) -> Result<(Outcome, Vec<String>), StoreError> {
    let rivals = |tags: &[String]| live_rivals(tags, claim);
    let taken = |tags: &[String]| tags.contains(&claim.commit);
    contend(store, &claim.tag(), tags, rivals, taken).await
}

/// The live claims of `claim`'s commit by other publishers.
pub fn live_rivals(tags: &[String], claim: &CommitClaim) -> Vec<String> {
    let now = now();
    tags.iter()
        .filter_map(|tag| CommitClaim::parse(tag))
        .filter(|other| {
            other.commit == claim.commit && other.identity != claim.identity && other.expires > now
        })
        .map(|other| other.tag())
        .filter(|other| !tags.contains(&aliases::withdrawal(other)))
        .collect()
}

async fn contend(
    store: &Store,
    mine: &str,
    mut tags: Vec<String>,
    rivals: impl Fn(&[String]) -> Vec<String>,
    taken: impl Fn(&[String]) -> bool,
) -> Result<(Outcome, Vec<String>), StoreError> {
    let deadline = Instant::now() + WAIT_FOR_WITHDRAWALS;
    loop {
        if taken(&tags) {
            return Ok((Outcome::Taken, tags));
        }
        let rivals = rivals(&tags);
        // A claim missing from the listing cannot be judged: give it up.
        let seen = tags.iter().any(|t| t == mine);
        if seen && rivals.is_empty() {
            return Ok((Outcome::Won, tags));
        }
        if !seen || rivals.iter().any(|rival| rival.as_str() < mine) || Instant::now() > deadline {
            withdraw(store, mine).await?;
            return Ok((Outcome::Lost, tags));
        }
        tokio::time::sleep(POLL).await;
        tags = store.list_tags().await?;
    }
}

/// The manifest a listed tag names. A registry may list a tag a moment before it can be read
/// (CNCF distribution makes a tag's directory before its link), so a listed tag that cannot be
/// read yet is asked for again, for up to a couple of seconds, before it counts as gone.
pub async fn fetch_listed(
    store: &Store,
    tag: &str,
) -> Result<Option<(Vec<u8>, forge_release::Digest)>, StoreError> {
    for _ in 0..40 {
        if let Some(found) = store.fetch_manifest_by_tag(tag).await? {
            return Ok(Some(found));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(None)
}

/// Withdraws this publisher's claim `tag` for good: the withdrawal names the claim's
/// manifest, already stored.
pub async fn withdraw(store: &Store, tag: &str) -> Result<(), StoreError> {
    let Some((manifest, digest)) = store.fetch_manifest_by_tag(tag).await? else {
        return Ok(());
    };
    store.set_tag(&aliases::withdrawal(tag), &digest, &manifest).await
}

/// Waits a little, more with each attempt and by a random amount, so that publishers that saw
/// each other's claims do not meet again on the next number.
pub async fn back_off(attempt: usize) {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new().hash_one(attempt);
    let most = 50 * (attempt as u64).min(8);
    tokio::time::sleep(Duration::from_millis(random % most.max(1))).await;
}
