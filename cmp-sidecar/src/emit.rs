//! Writing objects for Argo CD: one compact JSON object per line.
//!
//! JSON is what Argo CD converts YAML to anyway; emitting it removes every YAML 1.1
//! ambiguity and every `---` separator pitfall from the plugin's output.

use std::collections::BTreeMap;
use std::fmt::Write;

use forge_release::metadata::ObjectInfo;
use forge_release::tarball::TarFile;
use forge_release::verify::VerifiedRelease;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::CmpError;

/// Annotation keys added with `annotate`.
pub mod annotations {
    /// Canonical release id.
    pub const RELEASE: &str = "forge.dev/release";
    /// Release number.
    pub const NUMBER: &str = "forge.dev/release-number";
    /// Commit SHA.
    pub const COMMIT: &str = "forge.dev/commit";
    /// Manifest digest.
    pub const DIGEST: &str = "forge.dev/release-digest";
}

/// A release rendered for Argo CD: the output lines and what they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendered {
    /// Commit of the release.
    pub commit: String,
    /// `<repository>/<project>` of the release.
    pub name: String,
    /// `kind/namespace/name` of each object, in output order.
    pub objects: Vec<String>,
    /// The output: one JSON object per line.
    pub body: String,
}

/// Renders every object of `release`, checking each against its metadata entry. Files are
/// parsed on all cores: YAML parsing is the bulk of a cold generate.
pub fn render(release: &VerifiedRelease, annotate: bool) -> Result<Rendered, CmpError> {
    let metadata = &release.head.metadata;
    let by_path: BTreeMap<&str, &ObjectInfo> =
        metadata.resources.objects.iter().map(|o| (o.path.as_str(), o)).collect();
    let bad = |reason: String| CmpError::BadObject { digest: release.head.digest.clone(), reason };
    let render_file = |file: &TarFile| -> Result<(String, String), String> {
        let info = by_path
            .get(file.path.as_str())
            .ok_or_else(|| format!("{} is not in the metadata", file.path))?;
        let text = std::str::from_utf8(&file.content)
            .map_err(|_| format!("{} is not UTF-8", file.path))?;
        let mut documents: Vec<Value> = serde_saphyr::from_multiple(text)
            .map_err(|e| format!("{}: {}", file.path, first_line(&e.to_string())))?;
        if documents.len() != 1 {
            return Err(format!(
                "{} holds {} documents, expected exactly one",
                file.path,
                documents.len()
            ));
        }
        let mut object = documents.remove(0);
        check_matches(&object, info).map_err(|reason| format!("{}: {reason}", file.path))?;
        if annotate {
            add_annotations(&mut object, release);
        }
        let line = serde_json::to_string(&object).map_err(|e| e.to_string())?;
        Ok((
            format!("{}/{}/{}", info.kind, info.namespace.as_deref().unwrap_or(""), info.name),
            line,
        ))
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let chunk = release.files.len().div_ceil(threads).max(1);
    let results: Vec<Result<(String, String), String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = release
            .files
            .chunks(chunk)
            .map(|files| scope.spawn(move || files.iter().map(render_file).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|_| vec![Err("a render thread panicked".into())]))
            .collect()
    });
    let mut rendered = Rendered {
        commit: release.head.config.commit.clone(),
        name: format!("{}/{}", release.head.config.repository, release.head.config.project),
        objects: Vec::with_capacity(results.len()),
        body: String::new(),
    };
    for result in results {
        let (key, line) = result.map_err(bad)?;
        rendered.objects.push(key);
        let _ = writeln!(rendered.body, "{line}");
    }
    Ok(rendered)
}

fn check_matches(object: &Value, info: &ObjectInfo) -> Result<(), String> {
    let field = |path: &[&str]| {
        let mut value = object;
        for key in path {
            value = value.get(key)?;
        }
        value.as_str()
    };
    let actual = (
        field(&["apiVersion"]),
        field(&["kind"]),
        field(&["metadata", "namespace"]),
        field(&["metadata", "name"]),
    );
    let expected = (
        Some(info.api_version.as_str()),
        Some(info.kind.as_str()),
        info.namespace.as_deref(),
        Some(info.name.as_str()),
    );
    if !object.is_object() || actual != expected {
        return Err(format!("object {actual:?} does not match its metadata entry {expected:?}"));
    }
    Ok(())
}

fn add_annotations(object: &mut Value, release: &VerifiedRelease) {
    let info = &release.head.metadata.release;
    let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else { return };
    let notes = metadata.entry("annotations").or_insert_with(|| Value::Object(Default::default()));
    if !notes.is_object() {
        *notes = Value::Object(Default::default());
    }
    if let Some(notes) = notes.as_object_mut() {
        notes.insert(annotations::RELEASE.into(), info.id.clone().into());
        notes.insert(annotations::NUMBER.into(), info.number.to_string().into());
        notes.insert(annotations::COMMIT.into(), release.head.config.commit.clone().into());
        notes.insert(annotations::DIGEST.into(), release.head.digest.to_string().into());
    }
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or(message)
}
