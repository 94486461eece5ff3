//! `forge-pack inspect`: a release's identity, source, artifacts and resources. Reads only the
//! manifest and metadata unless one object's content is asked for.

use forge_release::FormatError;
use forge_release::metadata::{ObjectInfo, ReleaseMetadata};
use forge_release::tarball::Limits;
use serde::Serialize;

use crate::access::{Access, LookupError};
use crate::cli::{GlobalArgs, InspectArgs};
use crate::commands::list::{self, State};
use crate::error::{Error, exit};
use crate::output::{Output, table};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct InspectReport<'a> {
    digest: String,
    tags: Vec<String>,
    state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    metadata: &'a ReleaseMetadata,
}

/// Runs `inspect`.
pub async fn run(args: &InspectArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    let resolved = Access::from_args(global)?.resolve(&args.reference).await?;
    let head = resolved.store.fetch_head(&resolved.digest).await?;
    let metadata = &head.metadata;

    if args.provenance {
        return provenance(args, &resolved, output).await;
    }
    if args.images {
        let head = resolved.store.fetch_head(&resolved.digest).await?;
        let images = &head.metadata.images;
        if output.json() {
            output.print_json(images)?;
        } else {
            let mut rows =
                vec![vec!["IMAGE".to_owned(), "PINNED".to_owned(), "OBJECTS".to_owned()]];
            for image in images {
                let pinned = if image.digest.is_some() { "yes" } else { "no" };
                rows.push(vec![image.image.clone(), pinned.to_owned(), image.objects.join(", ")]);
            }
            output.print(&table(&rows))?;
        }
        return Ok(exit::OK);
    }
    if let Some(selector) = &args.show {
        let object = find_object(&metadata.resources.objects, selector, &resolved.digest)?;
        let release = resolved.store.fetch_release(&resolved.digest, &Limits::default()).await?;
        let file = release.files.iter().find(|f| f.path == object.path).ok_or_else(|| {
            FormatError::ContentMismatch {
                path: object.path.clone(),
                reason: "listed in the metadata but missing from the tarball".into(),
            }
        })?;
        if output.json() {
            let value = forge_release::objects::read_object(&file.content).map_err(|reason| {
                FormatError::ContentMismatch { path: file.path.clone(), reason }
            })?;
            output.print_json(&value)?;
        } else {
            output.print_bytes(&file.content)?;
        }
        return Ok(exit::OK);
    }

    let (tags, (state, note)) = futures_util::future::try_join(
        list::tags_of(&resolved.store, &resolved.digest, &head.manifest),
        list::state_of(&resolved.store, &resolved.digest, &head.manifest),
    )
    .await?;
    if output.json() {
        let digest = resolved.digest.to_string();
        let report = InspectReport { digest, tags, state, note, metadata };
        output.print_json(&report)?;
    } else {
        let mut text = summary(metadata, &resolved.digest.to_string(), &tags, note.as_deref());
        if args.resources {
            text.push_str("\nObjects\n");
            let mut rows =
                vec![vec!["NAMESPACE".into(), "KIND".into(), "NAME".into(), "API VERSION".into()]];
            for object in &metadata.resources.objects {
                rows.push(vec![
                    object.id.namespace.clone().unwrap_or_else(|| "-".into()),
                    object.id.kind.clone(),
                    object.id.name.clone(),
                    object.id.api_version.clone(),
                ]);
            }
            text.push_str(&indent(&table(&rows)));
        }
        output.print(&text)?;
    }
    Ok(exit::OK)
}

fn summary(m: &ReleaseMetadata, digest: &str, tags: &[String], state: Option<&str>) -> String {
    let source = &m.source;
    let trigger = &m.release.trigger;
    let mut trigger_text = trigger.kind.as_str().to_owned();
    if let Some(tag) = &trigger.tag {
        trigger_text.push_str(&format!(" (tag {tag})"));
    } else if let Some(branch) = &trigger.branch {
        trigger_text.push_str(&format!(" (branch {branch})"));
    }
    let subject = source.message.lines().next().unwrap_or_default().to_owned();
    let aliases: Vec<&String> = tags.iter().filter(|t| **t != source.commit).collect();
    let mut rows = vec![
        vec!["Release".into(), m.release.id.clone()],
        vec!["Number".into(), m.release.number.to_string()],
        vec!["Aliases".into(), aliases.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")],
        vec!["Trigger".into(), trigger_text],
        vec!["Created".into(), m.release.created.clone()],
        vec!["Digest".into(), digest.to_owned()],
    ];
    if let Some(state) = state {
        rows.push(vec!["State".into(), state.to_owned()]);
    }
    rows.extend([
        vec!["Commit".into(), source.commit.clone()],
        vec!["Author".into(), format!("{} <{}>", source.author.name, source.author.email)],
        vec!["Message".into(), subject],
    ]);
    if let Some(url) = &source.repository_url {
        rows.push(vec!["Source".into(), url.clone()]);
    }
    if !source.tags.is_empty() {
        rows.push(vec!["Git tags".into(), source.tags.join(", ")]);
    }
    rows.push(vec!["Built by".into(), format!("{} {}", m.tool.name, m.tool.version)]);
    let mut text = table(&rows);
    text.push_str("\nArtifacts\n");
    if m.artifacts.is_empty() {
        text.push_str("  (none)\n");
    } else {
        let mut rows = vec![vec!["NAME".into(), "FIELD".into(), "VALUE".into(), "FROM".into()]];
        for artifact in &m.artifacts {
            for (field, value) in &artifact.fields {
                let from = artifact.sources.get(field).cloned().unwrap_or_default();
                rows.push(vec![artifact.name.clone(), field.clone(), value.clone(), from]);
            }
        }
        text.push_str(&indent(&table(&rows)));
    }
    text.push_str(&format!("\nResources ({} objects)\n", m.resources.count));
    let rows: Vec<Vec<String>> =
        m.resources.by_kind.iter().map(|(kind, n)| vec![kind.clone(), n.to_string()]).collect();
    text.push_str(&indent(&table(&rows)));
    text
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// Finds `kind/name` or `namespace/kind/name` (kind case-insensitive).
fn find_object<'a>(
    objects: &'a [ObjectInfo],
    selector: &str,
    digest: &forge_release::Digest,
) -> Result<&'a ObjectInfo, LookupError> {
    let parts: Vec<&str> = selector.split('/').collect();
    let (namespace, kind, name) = match parts.as_slice() {
        [kind, name] => (None, *kind, *name),
        [namespace, kind, name] => (Some(*namespace), *kind, *name),
        _ => {
            return Err(LookupError::ObjectSelector(selector.to_owned()));
        }
    };
    let matches: Vec<&ObjectInfo> = objects
        .iter()
        .filter(|o| o.id.kind.eq_ignore_ascii_case(kind) && o.id.name == name)
        .filter(|o| namespace.is_none_or(|ns| o.id.namespace.as_deref() == Some(ns)))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => {
            Err(LookupError::NoObject { selector: selector.to_owned(), digest: digest.to_string() })
        }
        many => Err(LookupError::SeveralObjects {
            selector: selector.to_owned(),
            paths: many.iter().map(|o| o.path.clone()).collect(),
        }),
    }
}

/// `inspect --provenance`: the release's build provenance, verified with the keys given.
async fn provenance(
    args: &InspectArgs,
    resolved: &crate::access::Resolved,
    output: &Output,
) -> Result<u8, Error> {
    use forge_sign::bundle::PROVENANCE_PREDICATE;
    let keys = crate::signing::load_public_keys(&args.key)?;
    let verification = crate::signing::verify(&resolved.store, &resolved.digest, &keys).await?;
    let statements: Vec<_> = verification
        .statements
        .into_iter()
        .filter(|s| s.predicate_type == PROVENANCE_PREDICATE)
        .collect();
    let Some(first) = statements.first() else {
        return Err(crate::signing::SigningError::from(crate::signing::NoProvenance {
            digest: resolved.digest.clone(),
            keys: keys.iter().map(forge_sign::PublicKey::fingerprint).collect(),
        })
        .into());
    };
    if output.json() {
        output.print_json(&serde_json::json!({
            "digest": resolved.digest.to_string(),
            "provenance": statements,
        }))?;
        return Ok(exit::OK);
    }
    let predicate = &first.predicate;
    let text = |pointer: &str| {
        predicate.pointer(pointer).map_or_else(
            || "-".to_owned(),
            |v| match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => "-".to_owned(),
                other => other.to_string(),
            },
        )
    };
    let mut rows = vec![
        vec!["release".to_owned(), resolved.digest.to_string()],
        vec!["signed by".to_owned(), first.key.clone()],
        vec!["builder".to_owned(), text("/runDetails/builder/id")],
        vec!["run".to_owned(), text("/runDetails/metadata/invocationId")],
        vec!["trigger".to_owned(), text("/buildDefinition/externalParameters/trigger")],
        vec!["branch".to_owned(), text("/buildDefinition/externalParameters/branch")],
        vec![
            "branch verified".to_owned(),
            text("/buildDefinition/internalParameters/branchVerified"),
        ],
        vec!["tag".to_owned(), text("/buildDefinition/externalParameters/tag")],
        vec!["released by".to_owned(), text("/buildDefinition/externalParameters/actor")],
    ];
    let dependencies = predicate
        .pointer("/buildDefinition/resolvedDependencies")
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default();
    for dependency in dependencies {
        let name = dependency.get("uri").or_else(|| dependency.get("name"));
        let name = name.and_then(serde_json::Value::as_str).unwrap_or("-");
        let digest = dependency.get("digest").map(ToString::to_string).unwrap_or_default();
        rows.push(vec!["input".to_owned(), format!("{name} {digest}")]);
    }
    output.print(&format!("Provenance (verified)\n{}", table(&rows)))?;
    Ok(exit::OK)
}
