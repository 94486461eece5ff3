//! Release aliases (numbers, git tags, `<branch>-<n>`) and resolution of user-given release ids.

/// How git tags become aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TagStrategy {
    /// `<project>/v1.2.3` becomes `v1.2.3`; tags of other projects are ignored.
    #[default]
    Monorepo,
    /// Every tag on the commit becomes an alias.
    TagAll,
}

/// Whether `tag` matches the OCI tag grammar `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn is_valid_oci_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b))
}

/// Whether `tag` is a full commit SHA (SHA-1 or SHA-256 object name).
pub fn is_commit_sha(tag: &str) -> bool {
    matches!(tag.len(), 40 | 64) && tag.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The release number a tag stands for, if it is a numeric alias.
pub fn release_number(tag: &str) -> Option<u64> {
    if tag.len() > 18 || tag.starts_with('0') {
        return None;
    }
    tag.parse().ok()
}

/// The next free release number given the existing tags: above every number taken or
/// claimed.
pub fn next_number<'a>(tags: impl IntoIterator<Item = &'a str>) -> u64 {
    tags.into_iter()
        .filter_map(|tag| release_number(tag).or_else(|| Claim::parse(tag).map(|c| c.number)))
        .max()
        .unwrap_or(0)
        + 1
}

/// A publisher's claim on a release number: the bookkeeping tag
/// `_claim.<number>.<commit>.<first 12 hex of the manifest digest>`, naming the manifest that
/// would be release `number`. A publisher takes a number only when every other claim on it
/// that it sees is withdrawn (see `forge_store::publish`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The number claimed.
    pub number: u64,
    /// The commit of the release claiming it.
    pub commit: String,
    /// The first 12 hex characters of its manifest digest (what makes claims distinct).
    pub digest_prefix: String,
}

const CLAIM: &str = "_claim.";
const COMMIT_CLAIM: &str = "_commit.";
const WITHDRAWN: &str = "_withdrawn";
const TAGGED: &str = "_tagged.";

/// The tag recording that a tag pipeline released or re-tagged the release of `commit`. A
/// release's own trigger is in its metadata; a later tag event leaves its bytes as they were,
/// so this marker (naming the same manifest) is the record. Only a push whose trigger is a
/// git tag writes it: an alias alone (`hotfix-1`, `--alias`) says nothing about tags.
pub fn tagged_marker(commit: &str) -> String {
    format!("{TAGGED}{commit}")
}

/// The tag by which a publisher withdraws its claim `tag`, for good.
pub fn withdrawal(tag: &str) -> String {
    format!("{WITHDRAWN}{tag}")
}

/// Whether `tag` is bookkeeping rather than a name for users (a claim, a withdrawal, a
/// tagged marker or the release index).
pub fn is_bookkeeping(tag: &str) -> bool {
    tag == crate::index::INDEX_TAG
        || [CLAIM, COMMIT_CLAIM, WITHDRAWN, TAGGED].iter().any(|p| tag.starts_with(p))
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Claim {
    /// The claim of the manifest `digest`, of `commit`, on `number`.
    pub fn new(number: u64, commit: &str, digest: &crate::Digest) -> Self {
        Claim { number, commit: commit.to_owned(), digest_prefix: digest.hex()[..12].to_owned() }
    }

    /// Its tag.
    pub fn tag(&self) -> String {
        format!("{CLAIM}{}.{}.{}", self.number, self.commit, self.digest_prefix)
    }

    /// The tag that withdraws it.
    pub fn withdrawal(&self) -> String {
        withdrawal(&self.tag())
    }

    /// The claim a tag stands for, if it is one.
    pub fn parse(tag: &str) -> Option<Claim> {
        let mut parts = tag.strip_prefix(CLAIM)?.split('.');
        let (number, commit, digest) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !is_commit_sha(commit) || !is_hex(digest, 12) {
            return None;
        }
        let number = release_number(number)?;
        Some(Claim { number, commit: commit.to_owned(), digest_prefix: digest.to_owned() })
    }

    /// Whether `tag` is bookkeeping rather than a name for users (see [`is_bookkeeping`]).
    pub fn is_claim(tag: &str) -> bool {
        is_bookkeeping(tag)
    }
}

/// A publisher's claim on releasing a commit at all: the bookkeeping tag
/// `_commit.<commit>.<identity>.<expiry>`, where the identity is the first 12 hex of what it
/// would release (its inputs, numbered 0) and the expiry the time, in seconds since the epoch,
/// after which its publisher has certainly given up. One publisher per commit goes on to
/// number a release; the others wait for it, then add their aliases to its release. Two
/// claims of one identity are one publisher (a push run again after it was killed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitClaim {
    /// The commit.
    pub commit: String,
    /// What it would release.
    pub identity: String,
    /// When it lapses.
    pub expires: u64,
}

impl CommitClaim {
    /// The claim of releasing `commit` as `identity` (a manifest digest), lapsing at `expires`.
    pub fn new(commit: &str, identity: &crate::Digest, expires: u64) -> Self {
        CommitClaim {
            commit: commit.to_owned(),
            identity: identity.hex()[..12].to_owned(),
            expires,
        }
    }

    /// Its tag.
    pub fn tag(&self) -> String {
        format!("{COMMIT_CLAIM}{}.{}.{}", self.commit, self.identity, self.expires)
    }

    /// The tag that withdraws it.
    pub fn withdrawal(&self) -> String {
        withdrawal(&self.tag())
    }

    /// The commit claim a tag stands for, if it is one.
    pub fn parse(tag: &str) -> Option<CommitClaim> {
        let mut parts = tag.strip_prefix(COMMIT_CLAIM)?.split('.');
        let (commit, identity, expires) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !is_commit_sha(commit) || !is_hex(identity, 12) {
            return None;
        }
        let expires = expires.parse().ok().filter(|_| !expires.starts_with('0'))?;
        Some(CommitClaim { commit: commit.to_owned(), identity: identity.to_owned(), expires })
    }
}

/// A git tag or branch that cannot become an alias, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The git name.
    pub name: String,
    /// Why it was not used.
    pub reason: String,
}

/// The branch alias `<branch>-<number>`: `/` becomes `-`; anything else outside the OCI tag
/// grammar is rejected, not mangled.
pub fn branch_alias(branch: &str, number: u64) -> Result<String, Rejected> {
    let alias = format!("{}-{number}", branch.replace('/', "-"));
    if Claim::is_claim(&alias) {
        return Err(Rejected {
            name: branch.to_owned(),
            reason: format!("`{alias}` is reserved for release number claims"),
        });
    }
    if is_valid_oci_tag(&alias) {
        Ok(alias)
    } else {
        Err(Rejected {
            name: branch.to_owned(),
            reason: format!(
                "`{alias}` is not a valid OCI tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})"
            ),
        })
    }
}

/// Aliases from the git tags on a commit under `strategy`, and the tags that could not be used.
pub fn tag_aliases(
    strategy: TagStrategy,
    project: &str,
    tags: &[String],
) -> (Vec<String>, Vec<Rejected>) {
    let mut aliases = Vec::new();
    let mut rejected = Vec::new();
    for tag in tags {
        let candidate = match strategy {
            TagStrategy::Monorepo => {
                match tag.strip_prefix(project).and_then(|t| t.strip_prefix('/')) {
                    Some(version) => version,
                    None => continue,
                }
            }
            TagStrategy::TagAll => tag.as_str(),
        };
        if !is_valid_oci_tag(candidate) {
            rejected.push(Rejected {
                name: tag.clone(),
                reason: format!(
                    "`{candidate}` is not a valid OCI tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})"
                ),
            });
        } else if is_commit_sha(candidate) || release_number(candidate).is_some() {
            rejected.push(Rejected {
                name: tag.clone(),
                reason: format!("`{candidate}` would be read as a commit SHA or release number"),
            });
        } else if Claim::is_claim(candidate) {
            rejected.push(Rejected {
                name: tag.clone(),
                reason: format!("`{candidate}` is reserved for release number claims"),
            });
        } else if !aliases.iter().any(|a| a == candidate) {
            aliases.push(candidate.to_owned());
        }
    }
    (aliases, rejected)
}

/// Why a release id did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// Nothing matched.
    #[error("no release `{id}` in {location}")]
    NotFound {
        /// The id given.
        id: String,
        /// The store searched.
        location: String,
    },
    /// A SHA prefix matched several commits.
    #[error("release id `{id}` is ambiguous: it matches commits {}", candidates.join(", "))]
    Ambiguous {
        /// The id given.
        id: String,
        /// The matching commit SHAs.
        candidates: Vec<String>,
    },
}

/// Resolves a release id against a store's tags to the tag that names it: exact alias or
/// commit tag, then release number, then a unique commit-SHA prefix of at least 7 hex
/// characters.
pub fn resolve(id: &str, tags: &[String], location: &str) -> Result<String, ResolveError> {
    if tags.iter().any(|tag| tag == id) {
        return Ok(id.to_owned());
    }
    // Numeric ids are tags too; this also accepts the `#42` and `042` forms people type.
    let numeric = id.trim_start_matches('#').trim_start_matches('0');
    if release_number(numeric).is_some() && tags.iter().any(|tag| tag == numeric) {
        return Ok(numeric.to_owned());
    }
    let prefix = id.to_ascii_lowercase();
    if prefix.len() >= 7 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        let matches: Vec<&String> =
            tags.iter().filter(|tag| is_commit_sha(tag) && tag.starts_with(&prefix)).collect();
        match matches.as_slice() {
            [one] => return Ok((*one).clone()),
            [] => {}
            many => {
                return Err(ResolveError::Ambiguous {
                    id: id.to_owned(),
                    candidates: many.iter().map(|t| (*t).clone()).collect(),
                });
            }
        }
    }
    Err(ResolveError::NotFound { id: id.to_owned(), location: location.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_aliases_replace_slashes_and_reject_other_characters() {
        assert_eq!(branch_alias("release/1.2", 7).ok().as_deref(), Some("release-1.2-7"));
        assert_eq!(branch_alias("main", 42).ok().as_deref(), Some("main-42"));
        assert!(branch_alias("feat@x", 1).is_err());
        assert!(branch_alias(".hidden", 1).is_err());
    }

    #[test]
    fn monorepo_strategy_keeps_only_this_projects_tags() {
        let tags = vec![
            "auth/v1.2.3".to_owned(),
            "billing/v9".to_owned(),
            "v0".to_owned(),
            "auth/v+bad".to_owned(),
        ];
        let (aliases, rejected) = tag_aliases(TagStrategy::Monorepo, "auth", &tags);
        assert_eq!(aliases, ["v1.2.3"]);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].name, "auth/v+bad");
        let (all, rejected) = tag_aliases(TagStrategy::TagAll, "auth", &tags);
        assert_eq!(all, ["v0"]);
        assert_eq!(rejected.len(), 3);
    }

    #[test]
    fn next_number_ignores_non_numeric_and_leading_zero_tags() {
        assert_eq!(next_number(["1", "2", "main-9", "010", "v3"]), 3);
        assert_eq!(next_number([]), 1);
    }

    #[test]
    fn claims_read_back_and_count_towards_the_next_number() {
        let digest = crate::Digest::of(b"manifest");
        let claim = Claim::new(7, &"a".repeat(40), &digest);
        let tag = claim.tag();
        assert!(is_valid_oci_tag(&tag), "{tag}");
        assert_eq!(Claim::parse(&tag), Some(claim));
        assert_eq!(next_number(["1", "2", tag.as_str()]), 8);
        for not_a_claim in ["_claim.7", "_claim.x.aaaa.bbbbbbbbbbbb", "claim.7.a.b", "v1"] {
            assert_eq!(Claim::parse(not_a_claim), None, "{not_a_claim}");
        }
        let (aliases, rejected) =
            tag_aliases(TagStrategy::TagAll, "auth", &["_claim.1.x".to_owned()]);
        assert!(aliases.is_empty() && rejected.len() == 1);
        assert!(branch_alias("_claim.", 3).is_err());
        assert!(is_bookkeeping(&Claim::parse(&tag).expect("claim").withdrawal()));
        let commit_claim = CommitClaim::new(&"b".repeat(40), &digest, 1_800_000_000);
        let tag = commit_claim.tag();
        assert!(is_valid_oci_tag(&tag) && is_valid_oci_tag(&commit_claim.withdrawal()), "{tag}");
        assert_eq!(CommitClaim::parse(&tag), Some(commit_claim));
        assert!(is_bookkeeping(&tag));
        assert_eq!(next_number(["1", tag.as_str()]), 2, "commit claims hold no number");
        assert!(is_bookkeeping(crate::index::INDEX_TAG));
        let (aliases, _) = tag_aliases(TagStrategy::TagAll, "auth", &["_index".to_owned()]);
        assert!(aliases.is_empty(), "a git tag cannot stand in for the index");
    }

    #[test]
    fn resolution_prefers_alias_then_number_then_sha_prefix() {
        let sha_a = "abcdef1".to_owned() + &"0".repeat(33);
        let sha_b = "abcdef2".to_owned() + &"0".repeat(33);
        let tags: Vec<String> =
            vec!["1".into(), "2".into(), "v1.0".into(), sha_a.clone(), sha_b.clone()];
        assert_eq!(resolve("v1.0", &tags, "s"), Ok("v1.0".to_owned()));
        assert_eq!(resolve("#2", &tags, "s"), Ok("2".to_owned()));
        assert_eq!(resolve("abcdef2", &tags, "s"), Ok(sha_b));
        match resolve("abcdef", &tags, "s") {
            Err(ResolveError::NotFound { id, .. }) => assert_eq!(id, "abcdef"),
            other => panic!("short prefix must not resolve: {other:?}"),
        }
        let mut ambiguous = tags.clone();
        ambiguous.push("abcdef10".to_owned() + &"1".repeat(32));
        match resolve("abcdef1", &ambiguous, "s") {
            Err(ResolveError::Ambiguous { candidates, .. }) => assert_eq!(candidates.len(), 2),
            other => panic!("expected ambiguity, got {other:?}"),
        }
    }
}
