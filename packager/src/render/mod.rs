//! Rendering a project's templates into validated Kubernetes objects.

pub mod digests;
mod files;
mod jsonnet;
mod objects;

use std::path::{Path, PathBuf};

use forge_release::objects::ResourceFile;

pub use files::template_files;
pub use jsonnet::JsonnetInputs;
pub use objects::{Collected, Collector, Content, Keep, RenderedObject, SourcedObject};

use crate::artifacts::{ArtifactResolver, ArtifactSet};
use crate::cli::ArtifactArgs;
use crate::config::ProjectConfig;
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

/// The rendered set: the objects and the artifacts they reference.
#[derive(Debug, Clone)]
pub struct RenderedSet {
    /// The objects, sorted by path.
    pub objects: Vec<RenderedObject>,
    /// The referenced artifacts with every field and its source.
    pub artifacts: Vec<forge_release::metadata::Artifact>,
}

impl RenderedSet {
    /// The objects as release files, each written as YAML if it is not yet.
    pub fn into_files(self) -> Result<Vec<ResourceFile>, Error> {
        let mut problems = Vec::new();
        let mut files = Vec::with_capacity(self.objects.len());
        for object in self.objects {
            let path = object.path.clone();
            match object.into_file() {
                Ok(file) => files.push(file),
                Err(message) => problems.push(format!("{path}: {message}")),
            }
        }
        if problems.is_empty() {
            Ok(files)
        } else {
            Err(Error::input(format!("rendering failed:\n  {}", problems.join("\n  "))))
        }
    }
}

/// Loads the artifact sources and renders the project's templates; `commit` is what
/// `forge.commit` says in Jsonnet; `keep` says which objects stay values (see [`Keep`]).
pub fn render_project(
    project_dir: &Path,
    config: &ProjectConfig,
    inputs: &ArtifactArgs,
    commit: Option<&str>,
    keep: Keep,
) -> Result<RenderedSet, Error> {
    let artifacts = ArtifactSet::load(&inputs.files, &inputs.values)?;
    let jsonnet = JsonnetInputs {
        library_paths: config.library_paths.iter().map(|p| project_dir.join(p)).collect(),
        ext_str: inputs.ext_str.clone(),
        ext_code: inputs.ext_code.clone(),
        tla_str: inputs.tla_str.clone(),
        tla_code: inputs.tla_code.clone(),
        artifacts: Default::default(),
        project: config.project.clone(),
        commit: commit.unwrap_or_default().to_owned(),
    };
    render_dir(project_dir, &config.templates_dir(project_dir), artifacts, &jsonnet, keep)
}

/// Renders every template under `templates` (paths shown relative to `project_dir`) into
/// objects with every `@artifact(...)` resolved, reporting every problem at once.
pub fn render_dir(
    project_dir: &Path,
    templates: &Path,
    artifacts: ArtifactSet,
    jsonnet: &JsonnetInputs,
    keep: Keep,
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
    let mut collector = Collector::new(&resolver, keep);
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
    let Collected { mut objects, problems: object_problems } = collector.finish();
    problems.extend(object_problems);
    // The tarball's order: cluster-scoped objects first, then namespace by namespace.
    objects.sort_by(|a, b| a.path.cmp(&b.path));
    if !problems.is_empty() {
        // Parse problems are found before object problems; show them file by file.
        problems.sort_by(|a, b| a.file.cmp(&b.file));
        return Err(problems_error("rendering failed", problems));
    }
    if objects.is_empty() {
        return Err(Error::input(format!(
            "no Kubernetes objects found under {}",
            templates.display()
        ))
        .with_hint(
            "templates are *.jsonnet, *.yaml, *.yml and *.json files in the templates directory of forge.yaml",
        ));
    }
    Ok(RenderedSet { objects, artifacts: resolver.used() })
}
