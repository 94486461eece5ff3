//! Jsonnet templates, evaluated in-process with jrsonnet.
//!
//! `import 'forge.libsonnet'` gives `forge.artifact('<name>.<field>')`, `forge.project` and
//! `forge.commit`. An unknown artifact evaluates to the literal `@artifact("<ref>")`, so the
//! reference pass that follows reports every unresolved reference at once instead of
//! stopping at the first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::inputs::ReadScope;
use super::{Problem, SourcedObject};
use crate::artifacts::ArtifactResolver;
use jrsonnet_evaluator::error::{ErrorKind, StackTraceElement};
use jrsonnet_evaluator::function::builtin;
use jrsonnet_evaluator::tla::TlaArg;
use jrsonnet_evaluator::trace::{CompactFormat, PathResolver, TraceFormat};
use jrsonnet_evaluator::{
    AsPathLike, FileImportResolver, IStr, ImportResolver, Result as JrResult, SourcePath, State,
    apply_tla,
};
use jrsonnet_stdlib::ContextInitializer;

mod documents;

const FORGE_LIBSONNET: &str = "{\n  artifact(ref):: std.native('forge.artifact')(ref),\n  project:: std.extVar('forge.project'),\n  commit:: std.extVar('forge.commit'),\n}\n";

/// Everything a Jsonnet evaluation needs besides the file.
#[derive(Debug, Clone)]
pub struct JsonnetInputs {
    /// Library paths (`-J`), searched after the importing file's directory.
    pub library_paths: Vec<PathBuf>,
    /// `--ext-str` values.
    pub ext_str: Vec<(String, String)>,
    /// `--ext-code` values.
    pub ext_code: Vec<(String, String)>,
    /// `--tla-str` values.
    pub tla_str: Vec<(String, String)>,
    /// `--tla-code` values.
    pub tla_code: Vec<(String, String)>,
    /// Resolves `forge.artifact('<name>.<field>')`, recording the use.
    pub artifacts: Arc<ArtifactResolver>,
    /// What may be read, and what was.
    pub scope: Arc<ReadScope>,
    /// Project name for `forge.project`.
    pub project: String,
    /// Commit for `forge.commit` (empty when rendering without a release).
    pub commit: String,
}

#[builtin(fields(artifacts: Arc<ArtifactResolver>))]
fn forge_artifact(this: &forge_artifact, reference: IStr) -> JrResult<String> {
    Ok(match this.artifacts.resolve(reference.as_str()) {
        Ok(value) => value.to_owned(),
        Err(_) => format!("@artifact(\"{}\")", reference.as_str()),
    })
}

/// Evaluates one `.jsonnet` file, giving each object it renders to `found` as soon as it is
/// evaluated. On an error, the objects found before it have been given already.
///
/// The evaluator runs on a thread of its own: its state is not `Send`, so it stays off the
/// async runtime; the caller checks each object while the next is evaluated; and freeing the
/// evaluator's state (a sizeable share of its time) happens after the caller has the last
/// object, not before.
pub fn load(
    path: &Path,
    shown: &Path,
    inputs: &JsonnetInputs,
    forge_lib: &Path,
    found: &mut dyn FnMut(SourcedObject),
) -> Result<(), Vec<Problem>> {
    let problem = |message: String| vec![Problem { file: shown.to_owned(), line: None, message }];
    let (sender, receiver) = std::sync::mpsc::channel();
    let job = (path.to_owned(), inputs.clone(), forge_lib.to_owned());
    std::thread::Builder::new()
        .name("jsonnet".into())
        .stack_size(EVALUATOR_STACK)
        .spawn(move || {
            let (path, inputs, forge_lib) = job;
            evaluate(&path, &inputs, &forge_lib, sender);
        })
        .map_err(|e| problem(format!("cannot start the Jsonnet evaluator: {e}")))?;
    let mut finished = false;
    let mut too_deep = Vec::new();
    for message in receiver {
        let document = match message {
            Ok(document) => document,
            Err(Evaluated::Failed(text)) => return Err(problem(text)),
            Err(Evaluated::Finished) => {
                finished = true;
                break;
            }
        };
        // YAML templates and released files have the nesting limit enforced as they are
        // parsed; JSON has no such budget (serde_json stops at 128 levels), so it is checked
        // here.
        let object = match serde_json::from_str(&document.json) {
            Ok(value) if !nested_deeper_than(&value, forge_release::yaml::MAX_NESTING) => {
                SourcedObject { file: shown.to_owned(), document: document.number, value }
            }
            Err(e) if !e.to_string().starts_with("recursion limit exceeded") => {
                return Err(problem(format!("output is not JSON: {e}")));
            }
            // Too deep, found by the check or by serde_json's own limit.
            _ => {
                let message = forge_release::yaml::too_deep_message();
                too_deep.push(format!("document {}: {message}", document.number));
                continue;
            }
        };
        found(object);
    }
    if !finished {
        return Err(problem("the Jsonnet evaluator stopped unexpectedly".into()));
    }
    if too_deep.is_empty() { Ok(()) } else { Err(too_deep.into_iter().flat_map(problem).collect()) }
}

/// Whether mappings and lists nest more than `limit` levels, the value itself the first.
fn nested_deeper_than(value: &serde_json::Value, limit: usize) -> bool {
    use serde_json::Value;
    // Only called with limit > 0: the arms test for 0 first.
    let deeper = |child: &Value| nested_deeper_than(child, limit - 1);
    match value {
        Value::Array(items) => limit == 0 || items.iter().any(deeper),
        Value::Object(map) => limit == 0 || map.values().any(deeper),
        _ => false,
    }
}

/// How an evaluation ended, sent after its documents.
enum Evaluated {
    Finished,
    Failed(String),
}

/// Nested calls allowed, as go-jsonnet and the C++ jsonnet allow (jrsonnet's own default is
/// 200), so that a template Argo CD's Jsonnet renders renders here too.
const MAX_STACK: usize = 500;

/// Stack for the evaluator's thread: deep Jsonnet recursion needs more than a spawned
/// thread's default, as much as a main thread gets.
const EVALUATOR_STACK: usize = 8 << 20;

/// Evaluates `path`, sending its documents and then how it ended; the evaluator's state is
/// freed after that, on return. A send fails only once the caller stopped listening.
fn evaluate(
    path: &Path,
    inputs: &JsonnetInputs,
    forge_lib: &Path,
    send: std::sync::mpsc::Sender<Result<documents::Document, Evaluated>>,
) {
    let context = ContextInitializer::new(PathResolver::new_cwd_fallback());
    context.add_ext_str("forge.project".into(), inputs.project.as_str().into());
    context.add_ext_str("forge.commit".into(), inputs.commit.as_str().into());
    for (name, value) in &inputs.ext_str {
        context.add_ext_str(name.as_str().into(), value.as_str().into());
    }
    for (name, code) in &inputs.ext_code {
        if let Err(e) = context.add_ext_code(name, code) {
            let _ = send
                .send(Err(Evaluated::Failed(format!("--ext-code {name}: {}", format_error(&e)))));
            return;
        }
    }
    context
        .add_native("forge.artifact", forge_artifact { artifacts: Arc::clone(&inputs.artifacts) });
    let mut paths = inputs.library_paths.clone();
    paths.push(forge_lib.to_owned());
    let resolver = ScopedImports {
        files: FileImportResolver::new(paths),
        scope: Arc::clone(&inputs.scope),
        forge_lib: forge_lib.to_owned(),
    };
    let mut builder = State::builder();
    builder.import_resolver(resolver).context_initializer(context);
    let state = builder.build();
    let _entered = state.enter();
    let _depth_limit = jrsonnet_evaluator::stack::limit_stack_depth(MAX_STACK);
    let evaluated = state.import(path).and_then(|value| {
        // IStr hashes by content; its interior mutability is the interner's, not the key's.
        #[allow(clippy::mutable_key_type)]
        let mut tlas = HashMap::<IStr, TlaArg>::new();
        for (name, value) in &inputs.tla_str {
            tlas.insert(name.as_str().into(), TlaArg::String(value.as_str().into()));
        }
        for (name, code) in &inputs.tla_code {
            tlas.insert(name.as_str().into(), TlaArg::InlineCode(code.clone()));
        }
        apply_tla(&tlas, value)
    });
    let walked = evaluated
        .and_then(|value| documents::walk(&value, &mut |document| send.send(Ok(document)).is_ok()));
    let end = match walked {
        Ok(()) => Evaluated::Finished,
        Err(e) => Evaluated::Failed(format_error(&e)),
    };
    let _ = send.send(Err(end));
    // The caller is done once the channel closes; the state is freed after that.
    drop(send);
}

/// Frames of an error's trace shown from its innermost end, and from its outermost end; a
/// runaway recursion would otherwise print hundreds of identical lines.
const INNER_FRAMES: usize = 10;
const OUTER_FRAMES: usize = 5;

fn format_error(error: &jrsonnet_evaluator::Error) -> String {
    let mut error = error.clone();
    let frames = &mut error.trace_mut().0;
    if frames.len() > INNER_FRAMES + OUTER_FRAMES + 1 {
        let hidden = frames.len() - INNER_FRAMES - OUTER_FRAMES;
        let elision =
            StackTraceElement { location: None, desc: format!("... {hidden} more frames ...") };
        frames.splice(INNER_FRAMES..frames.len() - OUTER_FRAMES, [elision]);
    }
    let mut text = String::new();
    if CompactFormat::default().write_trace(&mut text, &error).is_err() {
        text = error.to_string();
    }
    if matches!(error.error(), ErrorKind::StackOverflow) {
        // jrsonnet's own text suggests a command-line flag forge-pack does not have.
        let trace = text.split_once('\n').map_or("", |(_, trace)| trace);
        text = format!(
            "stack overflow: calls nested more than {MAX_STACK} deep (the limit go-jsonnet \
             sets too); look for a recursion that does not end\n{trace}"
        );
    }
    text.trim_end().replace('\n', "\n  ")
}

/// Jsonnet's file imports within the read scope: every file the evaluator loads (the template
/// itself, libraries, `importstr`/`importbin` data) must be in the project or its library
/// paths, and is recorded. `forge.libsonnet` is forge-pack's own.
#[derive(jrsonnet_gcmodule::Acyclic)]
struct ScopedImports {
    files: FileImportResolver,
    scope: Arc<ReadScope>,
    forge_lib: PathBuf,
}

impl ImportResolver for ScopedImports {
    fn resolve_from(&self, from: &SourcePath, path: &dyn AsPathLike) -> JrResult<SourcePath> {
        let resolved = self.files.resolve_from(from, path)?;
        if let Some(file) = resolved.path()
            && !file.starts_with(&self.forge_lib)
        {
            self.scope
                .check(file)
                .map_err(|e| jrsonnet_evaluator::Error::from(ErrorKind::ImportIo(e)))?;
        }
        Ok(resolved)
    }

    fn load_file_contents(&self, resolved: &SourcePath) -> JrResult<Vec<u8>> {
        let bytes = self.files.load_file_contents(resolved)?;
        if let Some(file) = resolved.path()
            && !file.starts_with(&self.forge_lib)
        {
            let canonical = self
                .scope
                .check(file)
                .map_err(|e| jrsonnet_evaluator::Error::from(ErrorKind::ImportIo(e)))?;
            self.scope.record(canonical, &bytes);
        }
        Ok(bytes)
    }
}

/// Writes `forge.libsonnet` into `dir` so templates can import it.
pub fn write_forge_lib(dir: &Path) -> std::io::Result<()> {
    std::fs::write(dir.join("forge.libsonnet"), FORGE_LIBSONNET)
}
