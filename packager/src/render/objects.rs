//! Validating rendered documents and turning them into release files.

use std::collections::BTreeMap;
use std::path::PathBuf;

use forge_release::objects::{ObjectId, ResourceFile};
use serde_json::Value;

use super::Problem;
use crate::artifacts::ArtifactResolver;

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

/// Turns rendered documents into release files one at a time, as templates yield them:
/// resolves their `@artifact` references, validates them, writes them as YAML and rejects
/// duplicates, keeping every problem for the end.
#[derive(Debug)]
pub struct Collector<'a> {
    artifacts: &'a ArtifactResolver,
    reference_problems: Vec<Problem>,
    object_problems: Vec<Problem>,
    seen: BTreeMap<String, (PathBuf, usize)>,
    files: Vec<ResourceFile>,
}

/// What the collector made of every document.
#[derive(Debug)]
pub struct Collected {
    /// The valid objects' files, in the order they came.
    pub files: Vec<ResourceFile>,
    /// Every reference problem, then every object problem, each in the order found.
    pub problems: Vec<Problem>,
}

impl<'a> Collector<'a> {
    /// A collector resolving references against `artifacts`.
    pub fn new(artifacts: &'a ArtifactResolver) -> Self {
        Collector {
            artifacts,
            reference_problems: Vec::new(),
            object_problems: Vec::new(),
            seen: BTreeMap::new(),
            files: Vec::new(),
        }
    }

    /// Adds a document as a YAML or JSON file holds it: a `List` (any `*List` with `items`)
    /// stands for its items, as kubectl and Argo CD read one.
    pub fn add_document(&mut self, document: SourcedObject) {
        let is_list =
            document.value.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"))
                && document.value.get("items").is_some_and(Value::is_array);
        if !is_list {
            return self.add_object(document);
        }
        let SourcedObject { file, document, mut value } = document;
        if let Some(Value::Array(items)) = value.get_mut("items").map(Value::take) {
            for value in items {
                self.add_object(SourcedObject { file: file.clone(), document, value });
            }
        }
    }

    /// Adds one object, `List`s already taken apart.
    pub fn add_object(&mut self, mut object: SourcedObject) {
        let messages = crate::artifacts::resolve_references(&mut object.value, self.artifacts);
        self.reference_problems.extend(messages.into_iter().map(|m| object.problem(m)));
        match self.to_file(&object) {
            Ok(file) => {
                self.seen.insert(file.path.clone(), (object.file.clone(), object.document));
                self.files.push(file);
            }
            Err(message) => self.object_problems.push(object.problem(message)),
        }
    }

    fn to_file(&self, object: &SourcedObject) -> Result<ResourceFile, String> {
        let id = ObjectId::of(&object.value)?;
        let yaml = forge_release::yaml::to_string(&object.value)
            .map_err(|e| format!("cannot be written as YAML: {e}"))?;
        let file = ResourceFile::new(id, yaml.into_bytes()).map_err(|e| e.to_string())?;
        if let Some((first_file, first_doc)) = self.seen.get(&file.path) {
            return Err(format!(
                "duplicate object {}: also defined in {} document {first_doc}",
                file.id,
                first_file.display()
            ));
        }
        Ok(file)
    }

    /// Everything collected.
    pub fn finish(self) -> Collected {
        let mut problems = self.reference_problems;
        problems.extend(self.object_problems);
        Collected { files: self.files, problems }
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
        let artifacts = ArtifactResolver::default();
        let mut collector = Collector::new(&artifacts);
        objects.into_iter().for_each(|object| collector.add_document(object));
        let collected = collector.finish();
        assert_eq!(collected.files.len(), 1);
        let messages: Vec<String> = collected.problems.iter().map(|p| p.message.clone()).collect();
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
