//! How forge-pack and forge-cmp read YAML: one set of rules for templates, config, pointers
//! and released files, so that the two tools never read the same text two ways.

/// Parser options: YAML 1.2's core schema, where only `true` and `false` are booleans and
/// numbers with a leading zero stay text, so `on`, `yes` or `012` mean what they look like.
pub fn reading_options() -> serde_saphyr::options::Options {
    let mut options = serde_saphyr::options::Options::default();
    options.strict_booleans = true;
    options.leading_zero_numbers_as_strings = true;
    options
}

/// The first line of a parse error (serde-saphyr adds a source excerpt after it), for
/// messages that already name the file.
pub fn error_summary(error: &serde_saphyr::Error) -> String {
    let text = error.to_string();
    text.lines().next().unwrap_or_default().trim_start_matches("error: ").to_owned()
}
