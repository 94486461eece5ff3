//! YAML reading and writing with the rules Kubernetes needs.
//!
//! Reading: only `true`/`false` are booleans and leading-zero numbers stay strings, so `on`,
//! `yes` or `012` in a template mean what they look like. Writing: every string that a
//! YAML 1.1 reader (Kubernetes, Argo CD) would take for a boolean, null, number or timestamp
//! is quoted, so the object means the same to them as to us.

use serde::Serialize;
use serde::de::DeserializeOwned;

// Templates, config and pointer files are read as forge-cmp reads what it cannot pass on.
pub use forge_release::yaml::error_summary;
use forge_release::yaml::reading_options as options;

/// Parses one YAML document.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options(text, options())
}

/// Parses one document reading every scalar as a string (artifact values such as a `1.20`
/// tag must not become numbers).
pub fn from_str_untyped<T: DeserializeOwned>(text: &str) -> Result<T, serde_saphyr::Error> {
    let mut options = options();
    options.no_schema = true;
    serde_saphyr::from_str_with_options(text, options)
}

/// Parses a multi-document stream; empty documents are dropped.
pub fn from_multiple<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, serde_saphyr::Error> {
    let mut options = options();
    // Large rendered sets have thousands of documents; alias and depth limits still apply.
    if let Some(budget) = options.budget.as_mut() {
        budget.max_documents = usize::MAX;
        budget.max_events = usize::MAX;
    }
    serde_saphyr::from_multiple_with_options(text, options)
}

/// Writes one value as a YAML document (no leading `---`, trailing newline).
pub fn to_string<T: Serialize>(value: &T) -> Result<String, serde_saphyr::SerializeError> {
    let mut options = serde_saphyr::SerializerOptions::default();
    // Long single-line values (image references, URLs) stay on one line, as kubectl writes
    // them; multi-line values still use `|` blocks.
    options.folded_wrap_chars = usize::MAX;
    serde_saphyr::to_string_with_options(value, options)
}
