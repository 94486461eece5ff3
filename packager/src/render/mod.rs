//! Rendering a project's templates into validated Kubernetes objects.

pub mod digests;
mod files;
pub mod inputs;
mod jsonnet;
mod numbers;
mod objects;
mod parallel;
pub mod pipeline;
mod predict;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use forge_release::objects::ResourceFile;

pub use files::template_files;
pub use inputs::ReadScope;
pub use jsonnet::JsonnetInputs;
pub use objects::{Collected, Collector, Content, Keep, RenderedObject, SourcedObject};

use crate::artifacts::ArtifactsError;
use crate::artifacts::{ArtifactResolver, ArtifactSet};
use crate::cli::{ArtifactArgs, LoadRestrictor};
use crate::config::ProjectConfig;
use crate::fsutil::LocalError;

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

/// Why a project did not render into a release's objects.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The artifact sources cannot be used.
    #[error(transparent)]
    Artifacts(#[from] ArtifactsError),
    /// A template or directory could not be read, or a scratch file written.
    #[error(transparent)]
    Local(#[from] LocalError),
    /// `templates:` names no directory.
    #[error("template directory {} does not exist", .0.display())]
    NoTemplateDir(PathBuf),
    /// Templates or objects with problems, every one of them.
    #[error("{what}: {} problem{}{}", problems.len(), if problems.len() == 1 { "" } else { "s" },
        problems.iter().map(|p| format!("\n  {}", p.to_string().replace('\n', "\n    "))).collect::<String>())]
    Problems {
        /// What failed.
        what: &'static str,
        /// Each problem with its template.
        problems: Vec<Problem>,
    },
    /// The templates render to nothing: a release of nothing would make Argo CD prune all.
    #[error("no Kubernetes objects found under {}", .0.display())]
    NoObjects(PathBuf),
    /// `--require-digests` found images given by tag.
    #[error("--require-digests: {} container image{} not pinned by digest:{}", unpinned.len(),
        if unpinned.len() == 1 { " is" } else { "s are" },
        unpinned.iter().map(|u| format!("\n  {u}")).collect::<String>())]
    Unpinned {
        /// `<file> <container>: <image>` of each.
        unpinned: Vec<String>,
    },
    /// `--resolve-digests` could not pin some images.
    #[error("--resolve-digests failed:{}", problems.iter().map(|p| format!("\n  {p}")).collect::<String>())]
    Pinning {
        /// `<file> <container>: <why>` of each.
        problems: Vec<String>,
    },
    /// A read outside the project and its library paths.
    #[error("{0}")]
    Outside(String),
    /// The objects cannot be packaged.
    #[error(transparent)]
    Package(#[from] forge_release::package::PackageError),
}

impl RenderError {
    /// The exit code: a tag that could not be looked up is "not found", the rest is input.
    pub fn code(&self) -> u8 {
        match self {
            RenderError::Pinning { .. } => crate::exit::NOT_FOUND,
            RenderError::Local(LocalError::NotEmpty(_)) => crate::exit::INPUT,
            RenderError::Local(_) => crate::exit::LOCAL,
            _ => crate::exit::INPUT,
        }
    }

    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            RenderError::NoTemplateDir(_) => {
                "set `templates:` in forge.yaml to the directory holding your manifests"
            }
            RenderError::NoObjects(_) => {
                "templates are *.jsonnet, *.yaml, *.yml and *.json files in the templates directory of forge.yaml"
            }
            RenderError::Unpinned { .. } => {
                "reference images as @artifact(\"<name>.ref\"), or pass --resolve-digests"
            }
            _ => return None,
        };
        Some(hint.to_owned())
    }
}

/// The rendered set: the objects and the artifacts they reference.
#[derive(Debug)]
pub struct RenderedSet {
    /// The objects, sorted by path.
    pub objects: Vec<RenderedObject>,
    /// The referenced artifacts with every field and its source.
    pub artifacts: Vec<forge_release::metadata::Artifact>,
    /// The release manifests among the artifacts files, as they describe themselves.
    pub manifests: Vec<forge_release::metadata::ManifestInfo>,
    /// Every file read, relative to the repository, with its git blob id.
    pub inputs: Vec<(String, String)>,
    /// The repository's top directory (the project directory outside git).
    pub repository: PathBuf,
    /// The resources layer, written while the templates were parsed, when that could be done
    /// (see [`pipeline`]); checked against the objects before use.
    pub early_layer: Option<pipeline::EarlyLayer>,
}

impl RenderedSet {
    /// The objects as release files, each written as YAML if it is not yet.
    pub fn into_files(self) -> Result<Vec<ResourceFile>, RenderError> {
        let mut problems = Vec::new();
        let mut files = Vec::with_capacity(self.objects.len());
        for object in self.objects {
            let file = PathBuf::from(&object.path);
            match object.into_file() {
                Ok(written) => files.push(written),
                Err(message) => problems.push(Problem { file, line: None, message }),
            }
        }
        if problems.is_empty() {
            Ok(files)
        } else {
            Err(RenderError::Problems { what: "writing objects failed", problems })
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
    layer_time: Option<i64>,
) -> Result<RenderedSet, RenderError> {
    let artifacts = ArtifactSet::load(&inputs.files, &inputs.values)?;
    let library_paths: Vec<PathBuf> =
        config.library_paths.iter().map(|p| project_dir.join(p)).collect();
    let repository = crate::git::Git::new(project_dir)
        .output(&["rev-parse", "--show-toplevel"])
        .ok()
        .flatten()
        .map_or_else(|| project_dir.to_owned(), |top| PathBuf::from(top.trim_end()));
    let restricted = inputs.load_restrictor == LoadRestrictor::Project;
    let scope = ReadScope::new(&repository, project_dir, &library_paths, restricted)
        .map_err(RenderError::Outside)?;
    // forge.yaml shapes the release too: recorded with the templates.
    scope.read(&project_dir.join(crate::config::FILE_NAME)).map_err(RenderError::Outside)?;
    let jsonnet = JsonnetInputs {
        scope: Arc::new(scope),
        library_paths,
        ext_str: inputs.ext_str.clone(),
        ext_code: inputs.ext_code.clone(),
        tla_str: inputs.tla_str.clone(),
        tla_code: inputs.tla_code.clone(),
        artifacts: Default::default(),
        project: config.project.clone(),
        commit: commit.unwrap_or_default().to_owned(),
    };
    let early = layer_time.filter(|_| keep == Keep::None);
    render_dir(project_dir, &config.templates_dir(project_dir), artifacts, &jsonnet, keep, early)
}

/// Renders every template under `templates` (paths shown relative to `project_dir`) into
/// objects with every `@artifact(...)` resolved, reporting every problem at once; every file
/// is read through `jsonnet.scope`. With `layer_time`, the resources layer is written while
/// the templates are parsed when their text tells the objects' order (see [`pipeline`]).
pub fn render_dir(
    project_dir: &Path,
    templates: &Path,
    artifacts: ArtifactSet,
    jsonnet: &JsonnetInputs,
    keep: Keep,
    layer_time: Option<i64>,
) -> Result<RenderedSet, RenderError> {
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
            .map_err(|e| LocalError::io(std::env::temp_dir().join("forge.libsonnet"), e))?;
        Some(dir)
    } else {
        None
    };
    let mut jsonnet = jsonnet.clone();
    let resolver = std::sync::Arc::new(ArtifactResolver::new(artifacts));
    jsonnet.artifacts = std::sync::Arc::clone(&resolver);
    // YAML and JSON files are parsed and checked on every core, then Jsonnet files evaluated;
    // objects are taken in template order, as one thread would take them.
    let shown = |file: &Path| file.strip_prefix(project_dir).unwrap_or(file).to_path_buf();
    // For a layer written early, the templates' text is read first: it gives the order.
    let early = layer_time.filter(|_| forge_lib.is_none()).and_then(|time| {
        let predicted = parallel::map_indexes(templates_found.len(), None, |i| {
            predict::file_paths(&templates_found[i], &jsonnet.scope)
        });
        let predicted = predicted.into_iter().collect::<Option<Vec<_>>>()?;
        pipeline::EarlyLayer::start(predicted, u64::try_from(time).unwrap_or(0))
    });
    let (early_layer, order) = early.unzip();
    // The layer's writer keeps a core to itself: it is the longest piece, and the parsing
    // must not hold it up.
    let reserved = usize::from(early_layer.is_some());
    let checked = parallel::check_files(
        &templates_found,
        (order.as_deref(), reserved),
        |index, file| match &forge_lib {
            Some(_) if is_jsonnet(file) => None,
            _ => {
                let documents = files::load(file, &shown(file), &jsonnet.scope);
                let checked: Result<Vec<_>, _> = documents.map(|documents| {
                    documents
                        .into_iter()
                        .flat_map(|d| objects::check_document(&resolver, keep, d))
                        .collect()
                });
                if let (Some(layer), Ok(checked)) = (&early_layer, &checked) {
                    layer.offer(index, checked);
                }
                Some(checked)
            }
        },
        |file| {
            let lib = forge_lib.as_ref().expect("only Jsonnet files are evaluated");
            let mut found = Vec::new();
            jsonnet::load(file, &shown(file), &jsonnet, lib.path(), &mut |o| {
                found.push(objects::check(&resolver, keep, o))
            })
            .map(|()| found)
        },
    );
    let mut collector = Collector::new(&resolver, keep);
    for result in checked {
        match result {
            Ok(objects) => objects.into_iter().for_each(|c| collector.accept(c)),
            Err(mut found) => problems.append(&mut found),
        }
    }
    let Collected { mut objects, problems: object_problems } = collector.finish();
    problems.extend(object_problems);
    // The tarball's order: cluster-scoped objects first, then namespace by namespace.
    objects.sort_by(|a, b| a.path.cmp(&b.path));
    if !problems.is_empty() {
        // Parse problems are found before object problems; show them file by file.
        problems.sort_by(|a, b| a.file.cmp(&b.file));
        return Err(RenderError::Problems { what: "rendering failed", problems });
    }
    if objects.is_empty() {
        return Err(RenderError::NoObjects(templates.to_owned()));
    }
    Ok(RenderedSet {
        objects,
        artifacts: resolver.used(),
        manifests: resolver.manifests(),
        inputs: jsonnet.scope.files(),
        repository: jsonnet.scope.repository.clone(),
        early_layer,
    })
}
