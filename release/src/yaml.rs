//! How forge-pack and forge-cmp read and write YAML: one set of rules for templates, config,
//! pointers and released files, so that the two tools never read the same text two ways.
//!
//! Reading: only `true`/`false` are booleans and leading-zero numbers stay strings, so `on`,
//! `yes` or `012` in a template mean what they look like. Writing: every string that a
//! YAML 1.1 reader (Kubernetes, Argo CD) would take for a boolean, null, number or timestamp
//! is quoted, so the object means the same to them as to us.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_saphyr::budget::BudgetBreach;

/// The deepest nesting of mappings and lists accepted in an object, by both tools and from
/// every kind of template: real Kubernetes objects (CRD schemas included) stay well under
/// it, and it bounds the recursion of everything that walks an object.
pub const MAX_NESTING: usize = 100;

/// Parser options: YAML 1.2's core schema, where only `true` and `false` are booleans and
/// numbers with a leading zero stay text, so `on`, `yes` or `012` mean what they look like.
pub fn reading_options() -> serde_saphyr::options::Options {
    let mut options = serde_saphyr::options::Options::default();
    options.strict_booleans = true;
    options.leading_zero_numbers_as_strings = true;
    if let Some(budget) = options.budget.as_mut() {
        budget.max_depth = MAX_NESTING;
    }
    options
}

/// Parses one YAML document.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options(text, reading_options())
}

/// Parses one document reading every scalar as a string (artifact values such as a `1.20`
/// tag must not become numbers).
pub fn from_str_untyped<T: DeserializeOwned>(text: &str) -> Result<T, serde_saphyr::Error> {
    let mut options = reading_options();
    options.no_schema = true;
    serde_saphyr::from_str_with_options(text, options)
}

/// Parses a multi-document stream; empty documents are dropped.
pub fn from_multiple<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, serde_saphyr::Error> {
    let mut options = reading_options();
    // Large rendered sets have thousands of documents; alias and depth limits still apply.
    if let Some(budget) = options.budget.as_mut() {
        budget.max_documents = usize::MAX;
        budget.max_events = usize::MAX;
    }
    serde_saphyr::from_multiple_with_options(text, options)
}

/// Writes one value as a YAML document (no leading `---`, trailing newline).
///
/// Written into a buffer kept by the thread and then copied out at its exact size: a document
/// written into a string of its own grows it again and again, and every larger copy is fresh
/// memory (a build writes megabytes of objects, and fresh pages are slow to come by).
pub fn to_string<T: Serialize>(value: &T) -> Result<String, serde_saphyr::SerializeError> {
    use std::cell::RefCell;
    thread_local! {
        static WRITTEN: RefCell<String> = const { RefCell::new(String::new()) };
    }
    let mut options = serde_saphyr::SerializerOptions::default();
    // Long single-line values (image references, URLs) stay on one line, as kubectl writes
    // them; multi-line values still use `|` blocks.
    options.folded_wrap_chars = usize::MAX;
    WRITTEN.with_borrow_mut(|written| {
        written.clear();
        serde_saphyr::to_fmt_writer_with_options(written, value, options)?;
        Ok(written.as_str().to_owned())
    })
}

/// What a too-deep object is told, whichever parser found it.
pub fn too_deep_message() -> String {
    format!("mappings and lists nested more than {MAX_NESTING} levels deep, the most accepted")
}

/// The first line of a parse error (serde-saphyr adds a source excerpt after it), for
/// messages that already name the file.
pub fn error_summary(error: &serde_saphyr::Error) -> String {
    if let serde_saphyr::Error::Budget { breach: BudgetBreach::Depth { .. }, .. } =
        error.without_snippet()
    {
        return too_deep_message();
    }
    let text = error.to_string();
    text.lines().next().unwrap_or_default().trim_start_matches("error: ").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        let mut text = String::new();
        for level in 0..levels {
            text.push_str(&"  ".repeat(level));
            text.push_str("a:\n");
        }
        text.push_str(&"  ".repeat(levels));
        text.push_str("b: 1\n");
        text
    }

    #[test]
    fn nesting_up_to_the_limit_is_read_and_deeper_is_refused_by_name() {
        let read = |text: &str| {
            serde_saphyr::from_str_with_options::<serde_json::Value>(text, reading_options())
        };
        assert!(read(&nested(MAX_NESTING - 1)).is_ok(), "{MAX_NESTING} mappings deep");
        let error = read(&nested(MAX_NESTING)).expect_err("one level more");
        assert_eq!(
            error_summary(&error),
            "mappings and lists nested more than 100 levels deep, the most accepted"
        );
    }
}
