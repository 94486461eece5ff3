//! Jsonnet templates, evaluated in-process with jrsonnet.
//!
//! `import 'forge.libsonnet'` gives `forge.artifact('<name>.<field>')`, `forge.project` and
//! `forge.commit`. An unknown artifact evaluates to the literal `@artifact("<ref>")`, so the
//! reference pass that follows reports every unresolved reference at once instead of
//! stopping at the first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use jrsonnet_evaluator::error::{ErrorKind, StackTraceElement};
use jrsonnet_evaluator::function::builtin;
use jrsonnet_evaluator::tla::TlaArg;
use jrsonnet_evaluator::trace::{CompactFormat, PathResolver, TraceFormat};
use jrsonnet_evaluator::{FileImportResolver, IStr, Result as JrResult, State, apply_tla};
use jrsonnet_stdlib::ContextInitializer;
use serde_json::Value;

use super::{Problem, SourcedObject};

const FORGE_LIBSONNET: &str = "{\n  artifact(ref):: std.native('forge.artifact')(ref),\n  project:: std.extVar('forge.project'),\n  commit:: std.extVar('forge.commit'),\n}\n";

/// Everything a Jsonnet evaluation needs besides the file.
#[derive(Debug, Clone, Default)]
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
    /// `<name>.<field>` → value.
    pub artifacts: Arc<HashMap<String, String>>,
    /// Project name for `forge.project`.
    pub project: String,
    /// Commit for `forge.commit` (empty when rendering without a release).
    pub commit: String,
}

#[builtin(fields(artifacts: Rc<HashMap<String, String>>))]
fn forge_artifact(this: &forge_artifact, reference: IStr) -> JrResult<String> {
    Ok(match this.artifacts.get(reference.as_str()) {
        Some(value) => value.clone(),
        None => format!("@artifact(\"{}\")", reference.as_str()),
    })
}

/// Evaluates one `.jsonnet` file into objects.
///
/// The evaluator runs on a thread of its own: its state is not `Send`, so it stays off the
/// async runtime, and freeing it (a sizeable share of an evaluation's time) overlaps with the
/// caller parsing and checking the output instead of delaying it.
pub fn load(
    path: &Path,
    shown: &Path,
    inputs: &JsonnetInputs,
    forge_lib: &Path,
) -> Result<Vec<SourcedObject>, Vec<Problem>> {
    let problem = |message: String| vec![Problem { file: shown.to_owned(), line: None, message }];
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    let job = (path.to_owned(), inputs.clone(), forge_lib.to_owned());
    let spawned = std::thread::Builder::new()
        .name("jsonnet".into())
        .stack_size(EVALUATOR_STACK)
        .spawn(move || {
            let (path, inputs, forge_lib) = job;
            evaluate(&path, &inputs, &forge_lib, |manifested| {
                // The receiver only goes away if the caller panicked.
                let _ = sender.send(manifested);
            });
        });
    if let Err(e) = spawned {
        return Err(problem(format!("cannot start the Jsonnet evaluator: {e}")));
    }
    let text = match receiver.recv() {
        Ok(manifested) => manifested.map_err(problem)?,
        Err(_) => return Err(problem("the Jsonnet evaluator stopped unexpectedly".into())),
    };
    let json: Value = serde_json::from_str(&text).map_err(|e| {
        // serde_json stops at 128 levels; anything that deep is over forge-pack's limit.
        if e.to_string().starts_with("recursion limit exceeded") {
            problem(forge_release::yaml::too_deep_message())
        } else {
            problem(format!("output is not JSON: {e}"))
        }
    })?;
    drop(text);
    let mut objects = Vec::new();
    flatten(json, &mut objects);
    Ok(objects
        .into_iter()
        .enumerate()
        .map(|(i, value)| SourcedObject { file: shown.to_owned(), document: i + 1, value })
        .collect())
}

/// Nested calls allowed, as go-jsonnet and the C++ jsonnet allow (jrsonnet's own default is
/// 200), so that a template Argo CD's Jsonnet renders renders here too.
const MAX_STACK: usize = 500;

/// Stack for the evaluator's thread: deep Jsonnet recursion needs more than a spawned
/// thread's default, as much as a main thread gets.
const EVALUATOR_STACK: usize = 8 << 20;

/// Evaluates `path` and hands its output, minified JSON, or the error's text to `manifested`;
/// the evaluator's state is freed after that, on return.
fn evaluate(
    path: &Path,
    inputs: &JsonnetInputs,
    forge_lib: &Path,
    manifested: impl FnOnce(Result<String, String>),
) {
    let context = ContextInitializer::new(PathResolver::new_cwd_fallback());
    context.add_ext_str("forge.project".into(), inputs.project.as_str().into());
    context.add_ext_str("forge.commit".into(), inputs.commit.as_str().into());
    for (name, value) in &inputs.ext_str {
        context.add_ext_str(name.as_str().into(), value.as_str().into());
    }
    for (name, code) in &inputs.ext_code {
        if let Err(e) = context.add_ext_code(name, code) {
            return manifested(Err(format!("--ext-code {name}: {}", format_error(&e))));
        }
    }
    let artifacts = Rc::new(inputs.artifacts.as_ref().clone());
    context.add_native("forge.artifact", forge_artifact { artifacts });
    let mut paths = inputs.library_paths.clone();
    paths.push(forge_lib.to_owned());
    let mut builder = State::builder();
    builder.import_resolver(FileImportResolver::new(paths)).context_initializer(context);
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
    // Manifesting to text and parsing that is much faster than serialising `Val` into a
    // `serde_json::Value` field by field.
    let text = evaluated
        .and_then(|value| value.manifest(jrsonnet_evaluator::manifest::JsonFormat::minify()))
        .map_err(|e| format_error(&e));
    manifested(text);
}

/// An object with `kind` is a Kubernetes object; an array or a map of name → object is a
/// collection, flattened in order (maps in key order).
fn flatten(value: Value, out: &mut Vec<Value>) {
    match value {
        Value::Array(items) => items.into_iter().for_each(|item| flatten(item, out)),
        Value::Object(map)
            if !map.contains_key("kind") && map.values().all(|v| v.is_object() || v.is_array()) =>
        {
            map.into_iter().for_each(|(_, item)| flatten(item, out));
        }
        other => out.push(other),
    }
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

/// Writes `forge.libsonnet` into `dir` so templates can import it.
pub fn write_forge_lib(dir: &Path) -> std::io::Result<()> {
    std::fs::write(dir.join("forge.libsonnet"), FORGE_LIBSONNET)
}
