//! Validating rendered documents and turning them into release files.

use std::collections::BTreeMap;
use std::path::PathBuf;

use forge_release::objects::{ObjectId, ResourceFile};
use serde_json::Value;

use super::Problem;
use crate::artifacts::ArtifactResolver;
use crate::images::ImageRef;

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
    /// A problem of this document.
    fn problem(&self, message: String) -> Problem {
        Problem {
            file: self.file.clone(),
            line: None,
            message: format!("document {}: {message}", self.document),
        }
    }
}

/// Which objects keep their content as a value instead of being written as YAML at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// None: every object is written as YAML as soon as it is checked (and its value freed).
    None,
    /// Objects with a container image not pinned by digest, which digest pinning may change.
    Unpinned,
    /// All of them (for JSON output).
    All,
}

/// A rendered object on its way to a release: its identity, its file's path, its container
/// images, and its content. Each object is written once: as soon as it is checked, or, when
/// it is kept as a value, after digest pinning.
#[derive(Debug, Clone)]
pub struct RenderedObject {
    /// The object's identity.
    pub id: ObjectId,
    /// Its file's path in a release.
    pub path: String,
    /// Its container images, in document order.
    pub images: Vec<ImageRef>,
    /// Its content.
    pub content: Content,
}

/// An object's content: written, or still a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// The YAML document (no leading `---`).
    Yaml(Vec<u8>),
    /// The object itself.
    Value(Value),
}

impl RenderedObject {
    /// The object as its release file, writing it as YAML if it is still a value.
    pub fn into_file(self) -> Result<ResourceFile, String> {
        let content = match self.content {
            Content::Yaml(bytes) => bytes,
            Content::Value(value) => write_yaml(&value)?,
        };
        Ok(ResourceFile { id: self.id, path: self.path, content })
    }
}

fn write_yaml(value: &Value) -> Result<Vec<u8>, String> {
    forge_release::yaml::to_string(value)
        .map(String::into_bytes)
        .map_err(|e| format!("cannot be written as YAML: {e}"))
}

/// Turns rendered documents into release objects one at a time, as templates yield them:
/// resolves their `@artifact` references, validates them, finds their images, writes them as
/// YAML (unless kept, see [`Keep`]) and rejects duplicates, keeping every problem for the end.
#[derive(Debug)]
pub struct Collector<'a> {
    artifacts: &'a ArtifactResolver,
    keep: Keep,
    reference_problems: Vec<Problem>,
    object_problems: Vec<Problem>,
    seen: BTreeMap<String, (PathBuf, usize)>,
    objects: Vec<RenderedObject>,
}

/// What the collector made of every document.
#[derive(Debug)]
pub struct Collected {
    /// The valid objects, in the order they came.
    pub objects: Vec<RenderedObject>,
    /// Every reference problem, then every object problem, each in the order found.
    pub problems: Vec<Problem>,
}

impl<'a> Collector<'a> {
    /// A collector resolving references against `artifacts`, keeping the values `keep` says.
    pub fn new(artifacts: &'a ArtifactResolver, keep: Keep) -> Self {
        Collector {
            artifacts,
            keep,
            reference_problems: Vec::new(),
            object_problems: Vec::new(),
            seen: BTreeMap::new(),
            objects: Vec::new(),
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
        let SourcedObject { file, document, value } = object;
        match self.checked(value) {
            Ok(rendered) => {
                self.seen.insert(rendered.path.clone(), (file, document));
                self.objects.push(rendered);
            }
            Err(message) => {
                let problem = Problem {
                    file,
                    line: None,
                    message: format!("document {document}: {message}"),
                };
                self.object_problems.push(problem);
            }
        }
    }

    fn checked(&self, value: Value) -> Result<RenderedObject, String> {
        let id = ObjectId::of(&value)?;
        let path = id.file_path().map_err(|e| e.to_string())?;
        if let Some((first_file, first_doc)) = self.seen.get(&path) {
            return Err(format!(
                "duplicate object {id}: also defined in {} document {first_doc}",
                first_file.display()
            ));
        }
        let images = crate::images::images(&value);
        let keep = match self.keep {
            Keep::All => true,
            Keep::Unpinned => images.iter().any(|image| !image.is_pinned()),
            Keep::None => false,
        };
        let content = if keep { Content::Value(value) } else { Content::Yaml(write_yaml(&value)?) };
        Ok(RenderedObject { id, path, images, content })
    }

    /// Everything collected.
    pub fn finish(self) -> Collected {
        let mut problems = self.reference_problems;
        problems.extend(self.object_problems);
        Collected { objects: self.objects, problems }
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
        let mut collector = Collector::new(&artifacts, Keep::None);
        objects.into_iter().for_each(|object| collector.add_document(object));
        let collected = collector.finish();
        assert_eq!(collected.objects.len(), 1);
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
