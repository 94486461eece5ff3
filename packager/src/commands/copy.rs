//! `forge-pack copy`: one release, or every release of a project, into another repository,
//! byte for byte (same digests), with its tags and its signatures; only missing blobs travel,
//! and a copy run again goes on where it stopped.

use forge_release::Digest;
use forge_release::index::Entry;
use forge_release::manifest::{Manifest, annotations};
use forge_release::reference::{ProjectLocation, ReleaseRef};
use forge_store::copy::{Copied, tag_release, upload_release};
use forge_store::{Store, release_index};
use serde::Serialize;

use crate::access::Access;
use crate::cli::{CopyArgs, GlobalArgs};
use crate::commands::list::{self, State};
use crate::error::{Error, exit};
use crate::output::{Output, table};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CopyReport {
    number: u64,
    #[serde(flatten)]
    copied: Copied,
}

/// A release to copy.
struct ToCopy {
    number: u64,
    digest: Digest,
    commit: String,
    /// The tags naming it in the source.
    tags: Vec<String>,
    /// Its index entry, its aliases filled in once they are copied.
    entry: Option<Entry>,
}

/// Releases whose blobs travel at once: enough to keep a link busy while earlier releases
/// are tagged, few enough to be polite to both registries.
const UPLOADS_AHEAD: usize = 4;

/// A release copied, and its index entry (aliases not yet filled in).
type Copy = (CopyReport, Option<Entry>);

/// Copies `releases` (newest first, as listed) oldest first: blobs and manifests of up to
/// [`UPLOADS_AHEAD`] releases travel at once, tags are written one release at a time in
/// number order, so the destination never shows a number before the ones made earlier.
async fn copy_in_order(
    from: &Store,
    to: &Store,
    releases: Vec<ToCopy>,
    bar: &indicatif::ProgressBar,
) -> Result<Vec<Copy>, (Error, Vec<Copy>)> {
    // Uploads still running when this returns (an error) are stopped with the set.
    let mut uploads = tokio::task::JoinSet::new();
    let mut pending = std::collections::VecDeque::new();
    let mut queue = releases.into_iter().rev();
    let mut reports = Vec::new();
    let mut bytes = 0;
    loop {
        while pending.len() < UPLOADS_AHEAD
            && let Some(ToCopy { number, digest, tags, entry, .. }) = queue.next()
        {
            let (from, to) = (from.clone(), to.clone());
            let (done, result) = tokio::sync::oneshot::channel();
            uploads.spawn(async move {
                let _ = done.send(upload_release(&from, &to, &digest).await);
            });
            pending.push_back((number, tags, entry, result));
        }
        let Some((number, tags, entry, result)) = pending.pop_front() else { break };
        // Finished tasks are let go of (their results came through their channels).
        while uploads.try_join_next().is_some() {}
        let uploaded = match result.await {
            Ok(uploaded) => uploaded.map_err(Error::Copy),
            Err(_) => Err(Error::Copy(forge_store::copy::CopyError::Store(
                forge_store::StoreError::Registry {
                    location: to.location(),
                    operation: "copying".into(),
                    reason: "a release's upload stopped before it finished".into(),
                },
            ))),
        };
        let copied = match uploaded {
            Ok(uploaded) => tag_release(from, to, uploaded, &tags).await.map_err(Error::Copy),
            Err(error) => Err(error),
        };
        match copied {
            Ok(copied) => {
                bytes += copied.bytes_uploaded;
                bar.inc(1);
                bar.set_message(format!("copying releases ({})", indicatif::HumanBytes(bytes)));
                reports.push((CopyReport { number, copied }, entry));
            }
            Err(error) => return Err((error, reports)),
        }
    }
    Ok(reports)
}

/// Runs `copy`.
pub async fn run(args: &CopyArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    let access = Access::from_args(global)?;
    let root = access.default_root(None)?;
    let source = ReleaseRef::parse(&args.source, &root)?;
    let destination = ReleaseRef::parse(&args.destination, &root)?;
    if destination.release.is_some() {
        return Err(Error::usage_hint(
            format!("`{}` names a release; copy into a repository", args.destination),
            "give the destination as <registry>/<repository>/<project>, without :<id>",
        ));
    }
    // The destination is where this command writes: explicit credentials go there.
    let to = access.open_release(&destination.project)?;
    let from = access.open(&source.project)?;
    let releases: Vec<ToCopy> = match (&source.release, args.all) {
        (None, true) => {
            let listed = list::list(&from, output).await?;
            let partial = listed.iter().filter(|r| r.state != State::Complete).count();
            if partial > 0 {
                output.warn(&format!(
                    "{partial} release(s) in {} are not whole (incomplete or in conflict) and are not copied",
                    source.project
                ));
            }
            listed
                .into_iter()
                .filter(|r| r.state == State::Complete)
                .map(|r| {
                    let digest: Digest = r.digest.parse().expect("a listed digest");
                    let entry = Entry::new(
                        Entry {
                            number: r.number,
                            commit: r.commit.clone(),
                            digest: digest.clone(),
                            created: r.created,
                            trigger: r.trigger,
                            aliases: Vec::new(),
                        },
                        &[],
                    );
                    let mut tags = r.aliases;
                    tags.push(r.commit.clone());
                    ToCopy { number: r.number, digest, commit: r.commit, tags, entry }
                })
                .collect()
        }
        (Some(selector), false) => {
            let resolved = access.resolve_in(&source.project, selector.clone()).await?;
            let bytes = from.fetch_manifest(&resolved.digest).await?;
            let manifest = Manifest::parse_release(&bytes, Some(&resolved.digest))?;
            // Only a whole release travels: not a publisher's placeholder, not a release that
            // lost its number, not one whose push stopped.
            let (state, why) = list::state_of(&from, &resolved.digest, &manifest).await?;
            if state != State::Complete {
                return Err(Error::usage(format!(
                    "{} in {} is not a whole release: {}",
                    resolved.digest,
                    source.project,
                    why.unwrap_or_default()
                )));
            }
            let tags = list::tags_of(&from, &resolved.digest, &manifest).await?;
            let number = manifest
                .annotation(forge_release::manifest::annotations::FORGE_NUMBER)
                .and_then(forge_release::aliases::release_number)
                .unwrap_or(0);
            let commit = manifest
                .annotation(forge_release::manifest::annotations::REVISION)
                .unwrap_or_default()
                .to_owned();
            let entry = Entry::of_release(&resolved.digest, &manifest, &[]);
            vec![ToCopy { number, digest: resolved.digest, commit, tags, entry }]
        }
        (None, false) => {
            return Err(Error::usage_hint(
                format!("`{}` names a project, not a release", args.source),
                "name a release (<project>:<id>), or pass --all to copy every release",
            ));
        }
        (Some(_), true) => {
            return Err(Error::usage(
                "--all copies a whole project: give the source without :<id>",
            ));
        }
    };
    // forge-cmp renders a release only from a repository named after its project (a mirror
    // keeps the name): a copy anywhere else could never be deployed.
    if let (Some(ToCopy { digest, .. }), ProjectLocation::InRoot { path, .. }) =
        (releases.first(), &destination.project)
    {
        let bytes = from.fetch_manifest(digest).await?;
        let manifest = Manifest::parse_release(&bytes, Some(digest))?;
        let project = manifest.annotation(annotations::FORGE_PROJECT).unwrap_or_default();
        let named = path.rsplit('/').next().unwrap_or(path);
        if named != project {
            return Err(Error::usage_hint(
                format!("{} is not a repository for project `{project}`", destination.project),
                format!("copy into a repository whose last name is the project's: …/{project}"),
            ));
        }
    }
    // The destination's releases, however they got there (a copy by alias holds neither its
    // number nor its commit tag): another release of a number or commit is refused.
    let there = list::list(&to, output).await?;
    for ToCopy { number, digest, commit, .. } in &releases {
        if let Some(other) = there
            .iter()
            .find(|r| r.digest != digest.as_str() && (r.number == *number || r.commit == *commit))
        {
            let tag = if other.number == *number { number.to_string() } else { commit.clone() };
            return Err(Error::Copy(forge_store::copy::CopyError::Conflict {
                location: to.location(),
                tag,
                existing: other.digest.parse().expect("a listed digest"),
                digest: digest.clone(),
            }));
        }
    }
    let bar = output.count_bar("copying releases", releases.len() as u64);
    let copied = copy_in_order(&from, &to, releases, &bar).await;
    bar.finish_and_clear();
    let copied = match copied {
        Ok(copied) => copied,
        Err((error, done)) => {
            // What is there is whole: say which, so the next run's work is clear.
            if !done.is_empty() {
                let numbers: Vec<String> = done.iter().map(|(r, _)| r.number.to_string()).collect();
                output.warn(&format!(
                    "copied release(s) {} before stopping; run the copy again to go on",
                    numbers.join(", ")
                ));
            }
            return Err(error);
        }
    };
    let mut reports = Vec::new();
    let mut entries = Vec::new();
    for (report, entry) in copied {
        for warning in &report.copied.warnings {
            output.warn(warning);
        }
        // The aliases that name it there: those it added and those it had.
        let naming: Vec<String> = report
            .copied
            .tags_added
            .iter()
            .chain(
                there.iter().filter(|r| r.digest == report.copied.digest).flat_map(|r| &r.aliases),
            )
            .cloned()
            .collect();
        entries.extend(entry.and_then(|entry| Entry::new(entry, &naming)));
        reports.push(report);
    }
    // Once, for every release copied: a failure leaves them to be listed from their tags.
    if let Err(error) = release_index::record(&to, &entries).await {
        output.warn(&format!("the release index of {} was not updated: {error}", to.location()));
    }
    if output.json() {
        output.print_json(&reports)?;
        return Ok(exit::OK);
    }
    let mut rows = vec![vec![
        "NUMBER".to_owned(),
        "DIGEST".to_owned(),
        "TAGS ADDED".to_owned(),
        "UPLOADED".to_owned(),
        "SIGNATURES".to_owned(),
    ]];
    for r in &reports {
        rows.push(vec![
            r.number.to_string(),
            r.copied.digest.clone(),
            r.copied.tags_added.join(", "),
            format!("{} blobs, {} bytes", r.copied.blobs_uploaded, r.copied.bytes_uploaded),
            r.copied.signatures.to_string(),
        ]);
    }
    output.print(&table(&rows))?;
    Ok(exit::OK)
}
