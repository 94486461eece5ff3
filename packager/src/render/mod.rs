//! Rendering a project's templates into validated Kubernetes objects.

mod files;
mod jsonnet;
mod objects;

use std::path::{Path, PathBuf};

use forge_release::objects::ResourceFile;

pub use files::template_files;
pub use jsonnet::JsonnetInputs;
pub use objects::{Collected, Collector, SourcedObject};

use crate::artifacts::{ArtifactResolver, ArtifactSet};
use crate::error::Error;

/// One problem found while rendering, tied to the template it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The template file, relative to the project directory where possible.
    pub file: PathBuf,
    /// 1-based line, when the parser gives one.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Turns a list of problems into one error that shows all of them.
pub fn problems_error(what: &str, problems: Vec<Problem>) -> Error {
    let count = problems.len();
    let mut message = format!("{what}: {count} problem{}", if count == 1 { "" } else { "s" });
    for problem in problems {
        message.push_str("\n  ");
        message.push_str(&problem.to_string().replace('\n', "\n    "));
    }
    Error::input(message)
}

/// The rendered set: release files and the artifacts they reference.
#[derive(Debug, Clone)]
pub struct RenderedSet {
    /// One file per object, sorted by path.
    pub files: Vec<ResourceFile>,
    /// The referenced artifacts with every field and its source.
    pub artifacts: Vec<forge_release::metadata::Artifact>,
}

/// Renders every template under `templates` (paths shown relative to `project_dir`) into
/// release files with every `@artifact(...)` resolved, reporting every problem at once.
pub fn render_dir(
    project_dir: &Path,
    templates: &Path,
    artifacts: ArtifactSet,
    jsonnet: &JsonnetInputs,
) -> Result<RenderedSet, Error> {
    let mut problems = Vec::new();
    let templates_found = template_files(templates)?;
    let is_jsonnet = |file: &Path| file.extension().is_some_and(|e| e == "jsonnet");
    // `forge.libsonnet` lives in a directory of its own on the library path; YAML-only
    // projects need neither it nor the artifact table Jsonnet reads.
    let forge_lib = if templates_found.iter().any(|f| is_jsonnet(f)) {
        let dir = tempfile::Builder::new()
            .prefix("forge-libsonnet-")
            .tempdir()
            .and_then(|dir| jsonnet::write_forge_lib(dir.path()).map(|()| dir))
            .map_err(|e| {
                Error::new(crate::error::exit::STORE, format!("cannot write forge.libsonnet: {e}"))
            })?;
        Some(dir)
    } else {
        None
    };
    let mut jsonnet = jsonnet.clone();
    let resolver = std::sync::Arc::new(ArtifactResolver::new(artifacts));
    jsonnet.artifacts = std::sync::Arc::clone(&resolver);
    let mut collector = Collector::new(&resolver);
    for file in templates_found {
        let shown = file.strip_prefix(project_dir).unwrap_or(&file).to_path_buf();
        let loaded = match &forge_lib {
            Some(lib) if is_jsonnet(&file) => {
                jsonnet::load(&file, &shown, &jsonnet, lib.path(), &mut |o| collector.add_object(o))
            }
            _ => files::load(&file, &shown)
                .map(|documents| documents.into_iter().for_each(|d| collector.add_document(d))),
        };
        if let Err(mut found) = loaded {
            problems.append(&mut found);
        }
    }
    let Collected { mut files, problems: object_problems } = collector.finish();
    problems.extend(object_problems);
    // The tarball's order: cluster-scoped objects first, then namespace by namespace.
    files.sort_by(|a, b| a.path.cmp(&b.path));
    if !problems.is_empty() {
        // Parse problems are found before object problems; show them file by file.
        problems.sort_by(|a, b| a.file.cmp(&b.file));
        return Err(problems_error("rendering failed", problems));
    }
    if files.is_empty() {
        return Err(Error::input(format!(
            "no Kubernetes objects found under {}",
            templates.display()
        ))
        .with_hint(
            "templates are *.jsonnet, *.yaml, *.yml and *.json files in the templates directory of forge.yaml",
        ));
    }
    Ok(RenderedSet { files, artifacts: resolver.used() })
}
