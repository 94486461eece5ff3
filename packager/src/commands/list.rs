//! `forge-pack list`: a project's releases, newest first, from manifests only.

use std::collections::BTreeMap;

use forge_release::Digest;
use forge_release::aliases::{is_commit_sha, release_number};
use forge_release::manifest::{Manifest, annotations};
use forge_release::reference::ReleaseRef;
use serde::Serialize;

use crate::cli::{GlobalArgs, ListArgs};
use crate::commands::stdout_result;
use crate::error::{Error, exit};
use crate::output::{Output, table};
use crate::stores;

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
    let root = stores::default_root(global.registry.as_deref(), None)?;
    let reference = ReleaseRef::parse(&args.project, &root)?;
    if reference.release.is_some() {
        return Err(Error::input(format!(
            "`{}` names a release; list takes a project",
            args.project
        ))
        .with_hint("drop the `:<id>` part"));
    }
    let store = stores::open(&reference.project)?;
    let tags = store.list_tags().await?;
    let mut by_digest: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    for (tag, digest) in tags {
        by_digest.entry(digest).or_default().push(tag);
    }
    let mut releases = Vec::new();
    for (digest, tags) in by_digest {
        // Only digests with a commit tag are releases; anything else is foreign content.
        let Some(commit) = tags.iter().find(|t| is_commit_sha(t)).cloned() else { continue };
        let bytes = store.fetch_manifest(&digest).await?;
        let manifest = Manifest::parse_release(&bytes, Some(&digest))?;
        let note = |key: &str| manifest.annotation(key).unwrap_or_default().to_owned();
        let number =
            manifest.annotation(annotations::FORGE_NUMBER).and_then(release_number).unwrap_or(0);
        let mut aliases: Vec<String> = tags.into_iter().filter(|t| *t != commit).collect();
        aliases.sort_by_key(|a| (release_number(a).is_none(), a.clone()));
        releases.push(ListedRelease {
            number,
            commit,
            created: note(annotations::CREATED),
            aliases,
            trigger: note(annotations::FORGE_TRIGGER),
            digest: digest.to_string(),
        });
    }
    releases.sort_by_key(|r| std::cmp::Reverse(r.number));
    if output.json() {
        stdout_result(output.print_json(&releases))?;
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
            let aliases: Vec<&str> = r
                .aliases
                .iter()
                .map(String::as_str)
                .filter(|a| *a != r.number.to_string())
                .collect();
            rows.push(vec![
                r.number.to_string(),
                r.commit[..12].to_owned(),
                r.created.clone(),
                r.trigger.clone(),
                aliases.join(", "),
            ]);
        }
        stdout_result(output.print(&table(&rows)))?;
    }
    Ok(exit::OK)
}
