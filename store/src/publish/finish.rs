//! What is left once a number is a publisher's: the number tag, the commit tag, the aliases.

use forge_release::Digest;

use super::{PublishError, Published};
use crate::error::{StoreError, TagClaim};
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
        for alias in self.aliases.iter().skip(1) {
            claim_alias(store, alias, &digest, &manifest, &mut tags_added, &mut self.warnings)
                .await?;
        }
        if self.tagged {
            let marker = forge_release::aliases::tagged_marker(commit);
            store.set_tag(&marker, &digest, &manifest).await?;
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

pub(super) async fn claim_alias(
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
