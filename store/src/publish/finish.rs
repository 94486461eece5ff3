//! What is left once a number is a publisher's: the number tag, the commit tag, the aliases.

use forge_release::Digest;

use super::{PublishError, Published};
use crate::error::{StoreError, TagClaim};
use crate::release_index;
use crate::store::Store;

/// What is left to do once a number is ours: its tag, the commit tag, the aliases.
pub(super) struct Finish {
    pub(super) number: u64,
    pub(super) aliases: Vec<String>,
    pub(super) warnings: Vec<String>,
    pub(super) bytes_uploaded: u64,
    pub(super) completed: bool,
    /// A tag pipeline's push: the release gets the tagged marker (see
    /// [`forge_release::aliases::tagged_marker`]).
    pub(super) tagged: bool,
}

impl Finish {
    /// Tags the manifest `(digest, bytes)`; `None` if the number turns out to be held by
    /// another release (a registry with immutable tags refused ours).
    pub(super) async fn run(
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
        let mut naming = Vec::new();
        for alias in self.aliases.iter().skip(1) {
            if claim_alias(store, alias, &digest, &manifest, &mut tags_added, &mut self.warnings)
                .await?
            {
                naming.push(alias.clone());
            }
        }
        if self.tagged {
            let marker = forge_release::aliases::tagged_marker(commit);
            store.set_tag(&marker, &digest, &manifest).await?;
        }
        index_release(store, &digest, &manifest, &naming, &mut self.warnings).await;
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

/// Points `alias` at the release unless it names another; whether it names the release.
pub(super) async fn claim_alias(
    store: &Store,
    alias: &str,
    digest: &Digest,
    manifest: &[u8],
    added: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<bool, StoreError> {
    match store.claim_tag(alias, digest, manifest).await? {
        TagClaim::Claimed => added.push(alias.to_owned()),
        TagClaim::AlreadyOurs => {}
        TagClaim::Taken(other) => {
            warnings.push(format!(
                "alias `{alias}` already names another release ({other}); left unchanged"
            ));
            return Ok(false);
        }
    }
    Ok(true)
}

/// Records the release, named by `aliases` too, in the project's index. A failure is a
/// warning only: the release is whole already, and `list` reads what the index lacks from
/// the release itself.
pub(super) async fn index_release(
    store: &Store,
    digest: &Digest,
    manifest: &[u8],
    aliases: &[String],
    warnings: &mut Vec<String>,
) {
    let Some(entry) = release_index::entry_of(digest, manifest, aliases) else { return };
    if let Err(error) = release_index::record(store, &[entry]).await {
        warnings.push(format!(
            "the release index was not updated ({error}); listing reads this release from its tags"
        ));
    }
}
