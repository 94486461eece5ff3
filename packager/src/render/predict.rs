//! The paths a template's objects will most likely have in the release, read from its text
//! without parsing it, so that the resources layer can be written while templates are still
//! being parsed (see [`super::pipeline`]).
//!
//! Only a guess: the parsed objects are checked against it, and a wrong guess costs the time
//! the early writing took, never a different release. So the reading is simple and declines
//! anything it is not sure of.

use std::path::Path;

use forge_release::objects::ObjectId;

use super::ReadScope;

/// [`object_paths`] of the template file `path`, if `scope` allows it. Read for this alone
/// and not recorded: it is read again, and recorded, when it is parsed.
pub fn file_paths(path: &Path, scope: &ReadScope) -> Option<Vec<String>> {
    let resolved = scope.check(path).ok()?;
    let bytes = forge_store::bounded::read_file(&resolved, MOST_BYTES).ok()?;
    object_paths(std::str::from_utf8(&bytes).ok()?)
}

/// The largest template read for a guess: more than a release may hold.
const MOST_BYTES: u64 = 256 << 20;

/// The release paths of the objects `text` holds, document by document; `None` when the text
/// is not simple enough to tell (flow or quoted keys at the top, anchors, tags, directives,
/// lists of objects, identities that are not plain one-line scalars).
pub fn object_paths(text: &str) -> Option<Vec<String>> {
    let mut paths = Vec::new();
    let mut document = Document::default();
    for line in text.lines() {
        if line == "---" || line.starts_with("--- ") || line.starts_with("---\t") {
            if !line[3..].trim().is_empty() && !line[3..].trim_start().starts_with('#') {
                return None;
            }
            paths.extend(document.path()?);
            document = Document::default();
            continue;
        }
        if line.starts_with("...") || line.starts_with('%') {
            return None;
        }
        document.line(line)?;
    }
    paths.extend(document.path()?);
    Some(paths)
}

/// What one document's lines say of its identity.
#[derive(Debug, Default)]
struct Document {
    /// Any content at all (an empty document gives no object).
    content: bool,
    api_version: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
    /// Inside `metadata:`, with the indentation of its keys once seen.
    metadata: Option<Option<usize>>,
}

impl Document {
    fn line(&mut self, line: &str) -> Option<()> {
        let text = line.trim_start_matches(' ');
        if text.is_empty() || text.starts_with('#') {
            return Some(());
        }
        self.content = true;
        let indent = line.len() - text.len();
        if indent == 0 {
            self.metadata = None;
            let (key, value) = text.split_once(':')?;
            if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                return None;
            }
            let slot = match key {
                "apiVersion" => &mut self.api_version,
                "kind" => &mut self.kind,
                "metadata" => {
                    let value = value.trim();
                    if value.starts_with('{') {
                        return self.flow_metadata(value);
                    }
                    if !(value.is_empty() || value.starts_with('#')) {
                        return None;
                    }
                    self.metadata = Some(None);
                    return Some(());
                }
                _ => return Some(()),
            };
            if slot.replace(scalar(value)?).is_some() {
                return None;
            }
            return Some(());
        }
        let Some(keys) = self.metadata else { return Some(()) };
        let keys = *self.metadata.insert(Some(keys.unwrap_or(indent)));
        if indent != keys.unwrap_or(indent) {
            return Some(());
        }
        let Some((key, value)) = text.split_once(':') else { return Some(()) };
        let slot = match key {
            "name" => &mut self.name,
            "namespace" => &mut self.namespace,
            _ => return Some(()),
        };
        if slot.replace(scalar(value)?).is_some() {
            return None;
        }
        Some(())
    }

    /// `metadata: {name: a, namespace: b, labels: {...}}` on one line: its top-level pairs.
    fn flow_metadata(&mut self, value: &str) -> Option<()> {
        let inner = value.strip_prefix('{')?.strip_suffix('}')?;
        let (mut depth, mut start, mut pairs) = (0usize, 0, Vec::new());
        for (at, c) in inner.char_indices() {
            match c {
                '{' | '[' => depth += 1,
                '}' | ']' => depth = depth.checked_sub(1)?,
                ',' if depth == 0 => {
                    pairs.push(&inner[start..at]);
                    start = at + 1;
                }
                '"' | '\'' | '&' | '*' | '!' | '#' => return None,
                _ => {}
            }
        }
        pairs.push(&inner[start..]);
        for pair in pairs {
            let (key, value) = pair.split_once(':')?;
            let slot = match key.trim() {
                "name" => &mut self.name,
                "namespace" => &mut self.namespace,
                _ => continue,
            };
            if slot.replace(scalar(value)?).is_some() {
                return None;
            }
        }
        Some(())
    }

    /// The document's path; nothing for an empty document.
    fn path(self) -> Option<Option<String>> {
        if !self.content {
            return Some(None);
        }
        let kind = self.kind?;
        if kind.ends_with("List") {
            return None;
        }
        let id = ObjectId::new(&self.api_version?, &kind, self.namespace.as_deref(), &self.name?);
        id.file_path().ok().map(Some)
    }
}

/// A one-line scalar value (after the key's colon): plain, or quoted without escapes.
fn scalar(value: &str) -> Option<String> {
    let value = match value.find(" #") {
        Some(comment) => &value[..comment],
        None => value,
    }
    .trim();
    let quoted = |quote: char| {
        let inner = value.strip_prefix(quote)?.strip_suffix(quote)?;
        (!inner.contains(quote) && !inner.contains('\\')).then(|| inner.to_owned())
    };
    match value.chars().next()? {
        '"' => quoted('"'),
        '\'' => quoted('\''),
        first if "&*!|>{[@`%,?:-".contains(first) => None,
        _ if value.contains(": ") || value.contains('#') => None,
        _ => Some(value.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_read_document_by_document_and_anything_unsure_is_declined() {
        let text = "# a comment\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  \
                    labels:\n    name: other\n  namespace: \"auth\"\nspec: {replicas: 1}\n---\n\n---\n\
                    apiVersion: v1\nkind: Namespace\nmetadata:\n  name: 'auth' # the team's\n---\n\
                    apiVersion: v1\nkind: Service\nmetadata: {labels: {a: b}, name: api, namespace: auth}\n";
        assert_eq!(
            object_paths(text),
            Some(vec![
                "auth/apps.Deployment.api.yaml".into(),
                "_cluster/core.Namespace.auth.yaml".into(),
                "auth/core.Service.api.yaml".into(),
            ])
        );
        for declined in [
            "apiVersion: v1\nkind: ConfigMapList\nmetadata:\n  name: a\n",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \"a\"}\n",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, name: b}\n",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: &a x\n",
            "apiVersion: v1\nkind: ConfigMap\nkind: Secret\nmetadata:\n  name: a\n",
            "<<: *base\nmetadata:\n  name: a\n",
            "--- !tag\napiVersion: v1\n",
            "%YAML 1.2\n---\napiVersion: v1\n",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \"a\\tb\"\n",
            "apiVersion: v1\nkind: ConfigMap\n",
        ] {
            assert_eq!(object_paths(declined), None, "{declined}");
        }
    }
}
