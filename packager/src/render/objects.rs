//! Validating rendered documents and turning them into release files.

use std::collections::BTreeMap;
use std::path::PathBuf;

use forge_release::objects::{ObjectId, ResourceFile};
use serde_json::Value;

use super::Problem;

/// A rendered document and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcedObject {
    /// Template file it came from.
    pub file: PathBuf,
    /// 1-based document index in that file.
    pub document: usize,
    /// The document.
    pub value: Value,
}

impl SourcedObject {
    fn problem(&self, message: String) -> Problem {
        Problem {
            file: self.file.clone(),
            line: None,
            message: format!("document {}: {message}", self.document),
        }
    }
}

/// Flattens `List` objects, validates each object, and serialises it to YAML. Problems are
/// appended to `problems`; the valid objects are returned.
pub fn to_resource_files(
    objects: Vec<SourcedObject>,
    problems: &mut Vec<Problem>,
) -> Vec<ResourceFile> {
    let mut files = Vec::new();
    let mut seen: BTreeMap<String, (PathBuf, usize)> = BTreeMap::new();
    for object in flatten_lists(objects) {
        let id = match object_id(&object.value) {
            Ok(id) => id,
            Err(message) => {
                problems.push(object.problem(message));
                continue;
            }
        };
        if nested_deeper_than(&object.value, forge_release::yaml::MAX_NESTING) {
            problems.push(object.problem(forge_release::yaml::too_deep_message()));
            continue;
        }
        let yaml = match crate::yaml::to_string(&object.value) {
            Ok(yaml) => yaml,
            Err(e) => {
                problems.push(object.problem(format!("cannot be written as YAML: {e}")));
                continue;
            }
        };
        let file = match ResourceFile::new(id, yaml.into_bytes()) {
            Ok(file) => file,
            Err(e) => {
                problems.push(object.problem(e.to_string()));
                continue;
            }
        };
        if let Some((first_file, first_doc)) = seen.get(&file.path) {
            problems.push(object.problem(format!(
                "duplicate object {}: also defined in {} document {first_doc}",
                file.id,
                first_file.display()
            )));
            continue;
        }
        seen.insert(file.path.clone(), (object.file.clone(), object.document));
        files.push(file);
    }
    files
}

/// `kind: List` (or any `*List` with `items`) becomes its items, as kubectl and Argo CD do.
fn flatten_lists(objects: Vec<SourcedObject>) -> Vec<SourcedObject> {
    let mut flat = Vec::with_capacity(objects.len());
    for object in objects {
        let is_list =
            object.value.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"))
                && object.value.get("items").is_some_and(Value::is_array);
        if !is_list {
            flat.push(object);
            continue;
        }
        let SourcedObject { file, document, mut value } = object;
        if let Some(Value::Array(items)) = value.get_mut("items").map(Value::take) {
            for item in items {
                flat.push(SourcedObject { file: file.clone(), document, value: item });
            }
        }
    }
    flat
}

fn object_id(value: &Value) -> Result<ObjectId, String> {
    let Value::Object(map) = value else {
        return Err(format!(
            "expected a Kubernetes object (a mapping), found {}",
            type_name(value)
        ));
    };
    let string_field = |name: &str| match map.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(other) => {
            Err(format!("`{name}` must be a non-empty string, found {}", type_name(other)))
        }
        None => Err(format!("missing `{name}`")),
    };
    let api_version = string_field("apiVersion")?;
    let kind = string_field("kind")?;
    let Some(Value::Object(metadata)) = map.get("metadata") else {
        return Err(format!("{kind}: missing `metadata` mapping"));
    };
    let name = match metadata.get("name") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        _ => return Err(format!("{kind}: missing `metadata.name`")),
    };
    let namespace = match metadata.get("namespace") {
        None | Some(Value::Null) => None,
        Some(Value::String(ns)) if !ns.is_empty() => Some(ns.clone()),
        Some(other) => {
            return Err(format!(
                "{kind}/{name}: `metadata.namespace` must be a string, found {}",
                type_name(other)
            ));
        }
    };
    Ok(ObjectId { api_version, kind, namespace, name })
}

/// Whether mappings and lists nest more than `limit` levels, the object itself the first.
fn nested_deeper_than(value: &Value, limit: usize) -> bool {
    // Only called with limit > 0: the arms test for 0 first.
    let deeper = |child: &Value| nested_deeper_than(child, limit - 1);
    match value {
        Value::Array(items) => limit == 0 || items.iter().any(deeper),
        Value::Object(map) => limit == 0 || map.values().any(deeper),
        _ => false,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sourced(value: Value) -> SourcedObject {
        SourcedObject { file: "t.yaml".into(), document: 1, value }
    }

    #[test]
    fn lists_are_flattened_and_objects_validated_all_at_once() {
        let objects = vec![
            sourced(json!({"apiVersion": "v1", "kind": "List", "items": [
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}},
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}},
            ]})),
            sourced(json!({"kind": "Secret", "metadata": {"name": "s"}})),
            sourced(json!(["not", "an", "object"])),
            sourced(json!({"apiVersion": "v1", "kind": "Service", "metadata": {}})),
        ];
        let mut problems = Vec::new();
        let files = to_resource_files(objects, &mut problems);
        assert_eq!(files.len(), 1);
        let messages: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
        assert_eq!(
            messages,
            [
                "document 1: duplicate object core/ConfigMap a: also defined in t.yaml document 1",
                "document 1: missing `apiVersion`",
                "document 1: expected a Kubernetes object (a mapping), found a list",
                "document 1: Service: missing `metadata.name`",
            ]
        );
    }
}
