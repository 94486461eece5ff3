//! Benchmark peer: the jrsonnet engine alone, evaluating a file and printing JSON, as its CLI
//! does. `forge-pack render` is measured against it.
//!
//! Usage: jsonnet_engine FILE

use jrsonnet_evaluator::manifest::JsonFormat;
use jrsonnet_evaluator::trace::PathResolver;
use jrsonnet_evaluator::{FileImportResolver, State};
use jrsonnet_stdlib::ContextInitializer;

fn main() {
    let path = std::env::args().nth(1).expect("usage: jsonnet_engine FILE");
    let mut builder = State::builder();
    builder
        .import_resolver(FileImportResolver::new(Vec::new()))
        .context_initializer(ContextInitializer::new(PathResolver::new_cwd_fallback()));
    let state = builder.build();
    let _entered = state.enter();
    let value = state.import(path.as_str()).expect("evaluate");
    let json = value.manifest(JsonFormat::cli(3)).expect("manifest");
    let mut stdout = std::io::stdout().lock();
    std::io::Write::write_all(&mut stdout, json.as_bytes())
        .and_then(|()| std::io::Write::write_all(&mut stdout, b"\n"))
        .expect("write");
}
