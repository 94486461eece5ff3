//! Build provenance: an in-toto statement with a SLSA provenance v1 predicate about the
//! release manifest, signed with the release's key and attached beside its signature. It says
//! what CI built it (and its run), from which repository and commit, on what trigger, branch
//! and tag, who released it, and the digest of every build-record file it used. A policy that
//! trusts the key reads trigger and branch from here, not from what the metadata self-reports.

use std::path::PathBuf;

use forge_release::Digest;
use forge_release::metadata::{ReleaseMetadata, SourceInfo, Trigger, TriggerKind};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// forge-pack's build type.
pub const BUILD_TYPE: &str = "https://forge-pack.dev/release/v1";

/// The predicate for the release described by `metadata`, as this push saw it (`source`, the
/// facts of its own checkout and CI), released (or, by a later push of its commit, tagged or
/// aliased) by `trigger`, built with the artifact files `files` (path as
/// given, and their digest). Each push that signs attests its own trigger: a tag pipeline
/// re-tagging a release pushed from main attests `tag`.
pub fn predicate(
    metadata: &ReleaseMetadata,
    source: &SourceInfo,
    trigger: &Trigger,
    files: &[(String, Digest)],
) -> Value {
    let mut dependencies = vec![json!({
        "uri": source.repository_url.as_deref().map(|u| format!("git+{u}")).unwrap_or_default(),
        "digest": {"gitCommit": source.commit},
    })];
    dependencies.extend(
        files
            .iter()
            .map(|(name, digest)| json!({"name": name, "digest": {"sha256": digest.hex()}})),
    );
    let builder = match &trigger.run_url {
        Some(url) => url.split("/actions/runs/").next().unwrap_or(url).to_owned(),
        None => "forge-pack (no CI)".to_owned(),
    };
    json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "repository": metadata.release.repository,
                "project": metadata.release.project,
                "trigger": trigger.kind,
                "branch": trigger.branch,
                "tag": trigger.tag,
                "actor": trigger.actor,
            },
            "internalParameters": {"branchVerified": trigger.branch_verified},
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {"id": builder},
            "metadata": {"invocationId": trigger.run_url},
        },
    })
}

/// The facts a policy reads from a signed provenance predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attested {
    /// The trigger.
    pub trigger: TriggerKind,
    /// The branch, if any.
    pub branch: Option<String>,
    /// Whether the builder verified it.
    pub branch_verified: bool,
    /// The tag, if any.
    pub tag: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct External {
    trigger: TriggerKind,
    #[serde(default)]
    branch: Option<String>,
    #[serde(default)]
    tag: Option<String>,
}

/// Reads the facts of a predicate [`predicate`] wrote; `None` for anything else.
pub fn attested(predicate: &Value) -> Option<Attested> {
    let definition = predicate.get("buildDefinition")?;
    if definition.get("buildType")?.as_str()? != BUILD_TYPE {
        return None;
    }
    let external: External =
        serde_json::from_value(definition.get("externalParameters")?.clone()).ok()?;
    let branch_verified = definition
        .pointer("/internalParameters/branchVerified")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Some(Attested {
        trigger: external.trigger,
        branch: external.branch,
        branch_verified,
        tag: external.tag,
    })
}

/// The artifact files a release used, with their digests, read again (bounded) for the
/// statement.
pub fn artifact_files(files: &[PathBuf]) -> Result<Vec<(String, Digest)>, crate::error::Error> {
    files
        .iter()
        .map(|path| {
            let bytes = forge_store::bounded::read_file(path, 64 << 20)
                .map_err(|e| crate::fsutil::LocalError::io(path, e))?;
            Ok((path.display().to_string(), Digest::of(&bytes)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_facts_read_back_are_the_ones_written() {
        let image = forge_testkit::fixtures::image();
        let mut metadata: ReleaseMetadata =
            serde_json::from_slice(&image.metadata).expect("metadata");
        metadata.release.trigger = forge_release::metadata::Trigger {
            branch_verified: true,
            run_url: Some("https://github.com/o/r/actions/runs/9".into()),
            ..forge_release::metadata::Trigger::new(
                TriggerKind::Tag,
                Some("main".into()),
                Some("v1".into()),
            )
        };
        let trigger = metadata.release.trigger.clone();
        let value = predicate(
            &metadata,
            &metadata.source,
            &trigger,
            &[("artifacts.json".into(), Digest::of(b"x"))],
        );
        let facts = attested(&value).expect("facts");
        assert_eq!(facts.trigger, TriggerKind::Tag);
        assert_eq!((facts.branch.as_deref(), facts.branch_verified), (Some("main"), true));
        assert_eq!(value["runDetails"]["builder"]["id"], "https://github.com/o/r");
        assert_eq!(
            value["buildDefinition"]["resolvedDependencies"][1]["digest"]["sha256"],
            Digest::of(b"x").hex()
        );
    }
}
