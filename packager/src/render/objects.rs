//! Validating rendered documents and turning them into release files.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

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
    /// The YAML document (no leading `---`), shared with the layer written early (see
    /// [`super::pipeline`]) rather than copied.
    Yaml(Arc<Vec<u8>>),
    /// The object itself.
    Value(Value),
}

impl RenderedObject {
    /// The object as its release file, writing it as YAML if it is still a value.
    pub fn into_file(self) -> Result<ResourceFile, String> {
        let content = match self.content {
            Content::Yaml(bytes) => Arc::unwrap_or_clone(bytes),
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
        for checked in check_document(self.artifacts, self.keep, document) {
            self.accept(checked);
        }
    }

    /// Adds one object, `List`s already taken apart.
    pub fn add_object(&mut self, object: SourcedObject) {
        self.accept(check(self.artifacts, self.keep, object));
    }

    /// Takes an object checked on its own: it is the release's unless an earlier one has its
    /// path. Objects must arrive in template order, so that "also defined in" names the first.
    pub fn accept(&mut self, checked: Checked) {
        let Checked { file, document, reference_problems, outcome } = checked;
        let problem = |message: String| Problem {
            file: file.clone(),
            line: None,
            message: format!("document {document}: {message}"),
        };
        self.reference_problems.extend(reference_problems.into_iter().map(problem));
        let outcome = outcome.and_then(|object| match self.seen.get(&object.path) {
            Some((first_file, first_doc)) => Err(format!(
                "duplicate object {}: also defined in {} document {first_doc}",
                object.id,
                first_file.display()
            )),
            None => object.content.map(|content| RenderedObject {
                id: object.id,
                path: object.path,
                images: object.images,
                content,
            }),
        });
        match outcome {
            Ok(rendered) => {
                self.seen.insert(rendered.path.clone(), (file, document));
                self.objects.push(rendered);
            }
            Err(message) => self.object_problems.push(problem(message)),
        }
    }

    /// Everything collected.
    pub fn finish(self) -> Collected {
        let mut problems = self.reference_problems;
        problems.extend(self.object_problems);
        Collected { objects: self.objects, problems }
    }
}

/// An object checked on its own, on any thread: its references resolved, its identity,
/// path and images found, its YAML written. Whether it repeats another is
/// [`Collector::accept`]'s to say.
#[derive(Debug)]
pub struct Checked {
    file: PathBuf,
    document: usize,
    reference_problems: Vec<String>,
    outcome: Result<Identified, String>,
}

impl Checked {
    /// The object's identity, path and YAML, if it was checked and written.
    pub fn written(&self) -> Option<(&ObjectId, &str, &Arc<Vec<u8>>)> {
        match &self.outcome {
            Ok(Identified { id, path, content: Ok(Content::Yaml(yaml)), .. }) => {
                Some((id, path, yaml))
            }
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Identified {
    id: ObjectId,
    path: String,
    images: Vec<ImageRef>,
    content: Result<Content, String>,
}

/// [`check`] of a document's objects: a `List` (any `*List` with `items`) stands for its
/// items, as kubectl and Argo CD read one.
pub fn check_document(
    artifacts: &ArtifactResolver,
    keep: Keep,
    document: SourcedObject,
) -> Vec<Checked> {
    let is_list =
        document.value.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"))
            && document.value.get("items").is_some_and(Value::is_array);
    if !is_list {
        return vec![check(artifacts, keep, document)];
    }
    let SourcedObject { file, document, mut value } = document;
    let Some(Value::Array(items)) = value.get_mut("items").map(Value::take) else {
        return Vec::new();
    };
    items
        .into_iter()
        .map(|value| check(artifacts, keep, SourcedObject { file: file.clone(), document, value }))
        .collect()
}

/// Checks one object (see [`Checked`]).
pub fn check(artifacts: &ArtifactResolver, keep: Keep, mut object: SourcedObject) -> Checked {
    let reference_problems = crate::artifacts::resolve_references(&mut object.value, artifacts);
    let SourcedObject { file, document, value } = object;
    let identified = |value: Value| {
        let id = ObjectId::of(&value)?;
        let path = id.file_path().map_err(|e| e.to_string())?;
        let images = crate::images::images(&value);
        let keep = match keep {
            Keep::All => true,
            Keep::Unpinned => images.iter().any(|image| !image.is_pinned()),
            Keep::None => false,
        };
        let content = if keep {
            Ok(Content::Value(value))
        } else {
            write_yaml(&value).map(|yaml| Content::Yaml(Arc::new(yaml)))
        };
        Ok(Identified { id, path, images, content })
    };
    Checked { file, document, reference_problems, outcome: identified(value) }
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
