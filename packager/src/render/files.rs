//! Finding and parsing template files.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Problem, SourcedObject};
use super::{ReadScope, RenderError};
use crate::fsutil::LocalError;

const MANIFEST_EXTENSIONS: &[&str] = &["yaml", "yml", "json", "jsonnet"];

/// Every template file under `dir`, sorted by path so the walk is the same everywhere.
/// Hidden entries are skipped; directory symlinks are not followed (no cycles, no escapes).
pub fn template_files(dir: &Path) -> Result<Vec<PathBuf>, RenderError> {
    if !dir.is_dir() {
        return Err(RenderError::NoTemplateDir(dir.to_owned()));
    }
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|e| LocalError::io(&current, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| LocalError::io(&current, e))?;
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let kind = entry.file_type().map_err(|e| LocalError::io(&path, e))?;
            if kind.is_dir() {
                pending.push(path);
            } else if is_template(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn is_template(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| MANIFEST_EXTENSIONS.contains(&e))
}

/// Parses one template file into objects.
pub fn load(
    path: &Path,
    shown: &Path,
    scope: &ReadScope,
) -> Result<Vec<SourcedObject>, Vec<Problem>> {
    let problem = |line: Option<usize>, message: String| {
        vec![Problem { file: shown.to_owned(), line, message }]
    };
    let bytes = scope.read(path).map_err(|e| problem(None, e))?;
    let text =
        String::from_utf8(bytes).map_err(|_| problem(None, "the file is not UTF-8".into()))?;
    // JSON is read as the YAML it is, by the same parser (a duplicate key is refused in both,
    // nesting is bounded alike), once it is known to be JSON.
    if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str::<serde::de::IgnoredAny>(&text)
            .map_err(|e| problem(Some(e.line()), e.to_string()))?;
    }
    let documents: Vec<Value> = forge_release::yaml::from_multiple(&text).map_err(|e| {
        problem(yaml_line(&e), without_position(&forge_release::yaml::error_summary(&e)))
    })?;
    let inexact = super::numbers::inexact_numbers(&text);
    if !inexact.is_empty() {
        return Err(inexact
            .into_iter()
            .map(|(line, number)| Problem {
                file: shown.to_owned(),
                line: Some(line),
                message: format!(
                    "the number `{number}` cannot be kept exactly (integers are 64-bit, other numbers \
                     double precision); quote it if it is text"
                ),
            })
            .collect());
    }
    Ok(documents
        .into_iter()
        .enumerate()
        .filter(|(_, doc)| !doc.is_null())
        .map(|(index, value)| SourcedObject { file: shown.to_owned(), document: index + 1, value })
        .collect())
}

fn yaml_line(error: &serde_saphyr::Error) -> Option<usize> {
    error.location().map(|l| l.line() as usize)
}

/// The line number is shown separately; keep the sentence after saphyr's position.
fn without_position(summary: &str) -> String {
    let located = summary.strip_prefix("line ").and_then(|rest| rest.split_once(": "));
    match located {
        Some((_position, sentence)) => sentence.to_owned(),
        None => summary.to_owned(),
    }
}
