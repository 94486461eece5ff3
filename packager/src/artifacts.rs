//! Artifact values from build records, and `@artifact("<name>.<field>")` references.
//!
//! Sources, detected from content, any number combined:
//! - forge's own file: `{apiVersion: forge.dev/v1alpha1, kind: Artifacts, artifacts: {<name>: {<field>: <value>}}}`
//! - `component-tags.json`: `{"<name>": {"tag": …, "sha": …, "digest": …}}`
//! - a polyrepo release manifest: `{"services": {"<name>": {"sha": …, "image": …, "tag": …}}}`
//! - a release manifest: `{repositories: [{name, tag, commit_sha, package_version}]}`
//! - `--artifact <name>.<field>=<value>`
//!
//! Derived fields where unambiguous: `uri` = `image:tag`, `ref` = `image@digest`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use forge_release::metadata::{Artifact, ManifestInfo};
use serde_json::Value;

/// Artifact sources that cannot be used, every problem at once.
#[derive(Debug, thiserror::Error)]
#[error("artifact sources are invalid:{}", problems.iter().map(|p| format!("\n  {p}")).collect::<String>())]
pub struct ArtifactsError {
    /// Each problem, naming its file or flag.
    pub problems: Vec<String>,
}

/// Where a value came from: a file path, `--artifact`, or `derived`.
pub type Source = String;

/// All artifact values, by artifact name and field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArtifactSet {
    values: BTreeMap<String, BTreeMap<String, (String, Source)>>,
    /// The release manifests among the files, as they describe themselves.
    pub manifests: Vec<ManifestInfo>,
}

impl ArtifactSet {
    /// Loads every `--artifacts` file and `--artifact` flag; conflicts are errors naming both
    /// sources. All problems are reported together.
    pub fn load(files: &[impl AsRef<Path>], flags: &[String]) -> Result<Self, ArtifactsError> {
        let mut set = ArtifactSet::default();
        let mut problems = Vec::new();
        for file in files {
            let path = file.as_ref();
            match parse_file(path) {
                Ok((entries, described)) => {
                    // The file name, not the path: a release must not depend on where the
                    // build machine keeps its files.
                    let source = path.file_name().map_or_else(
                        || path.display().to_string(),
                        |n| n.to_string_lossy().into_owned(),
                    );
                    if let Some((version, description)) = described {
                        set.manifests.push(ManifestInfo {
                            file: source.clone(),
                            version,
                            description,
                        });
                    }
                    for (name, field, value) in entries {
                        set.insert(&name, &field, value, source.clone(), &mut problems);
                    }
                }
                Err(problem) => problems.push(problem),
            }
        }
        for flag in flags {
            match flag
                .split_once('=')
                .and_then(|(key, value)| key.split_once('.').map(|(n, f)| (n, f, value)))
            {
                Some((name, field, value)) if !name.is_empty() && !field.is_empty() => {
                    set.insert(name, field, value.to_owned(), "--artifact".into(), &mut problems);
                }
                _ => problems.push(format!("--artifact `{flag}`: expected <name>.<field>=<value>")),
            }
        }
        if !problems.is_empty() {
            return Err(ArtifactsError { problems });
        }
        set.derive();
        Ok(set)
    }

    fn insert(
        &mut self,
        name: &str,
        field: &str,
        value: String,
        source: Source,
        problems: &mut Vec<String>,
    ) {
        let fields = self.values.entry(name.to_owned()).or_default();
        match fields.get(field) {
            Some((existing, first)) if *existing != value => problems.push(format!(
                "{name}.{field} is `{existing}` in {first} but `{value}` in {source}"
            )),
            Some(_) => {}
            None => {
                fields.insert(field.to_owned(), (value, source));
            }
        }
    }

    fn derive(&mut self) {
        for fields in self.values.values_mut() {
            let get = |f: &str| fields.get(f).map(|(v, _)| v.clone());
            let (image, tag, digest) = (get("image"), get("tag"), get("digest"));
            if let (Some(image), Some(tag)) = (&image, &tag) {
                fields
                    .entry("uri".into())
                    .or_insert_with(|| (format!("{image}:{tag}"), "derived".into()));
            }
            if let (Some(image), Some(digest)) = (&image, &digest) {
                fields
                    .entry("ref".into())
                    .or_insert_with(|| (format!("{image}@{digest}"), "derived".into()));
            }
        }
    }

    /// The value of `<name>.<field>`, or why there is none.
    pub fn lookup(&self, reference: &str) -> Result<&str, String> {
        let Some((name, field)) = reference.split_once('.') else {
            return Err(format!("`{reference}` is not <artifact>.<field>"));
        };
        let Some(fields) = self.values.get(name) else {
            let known: Vec<&str> = self.values.keys().map(String::as_str).collect();
            return Err(if known.is_empty() {
                format!(
                    "unknown artifact `{name}` (no artifact sources were given; pass --artifacts FILE)"
                )
            } else {
                format!("unknown artifact `{name}` (known: {})", known.join(", "))
            });
        };
        fields.get(field).map(|(v, _)| v.as_str()).ok_or_else(|| {
            let known: Vec<&str> = fields.keys().map(String::as_str).collect();
            format!("artifact `{name}` has no field `{field}` (it has: {})", known.join(", "))
        })
    }

    /// The named artifacts with every field and its source, for the release metadata.
    pub fn describe<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<Artifact> {
        let mut wanted: Vec<&str> = names.into_iter().collect();
        wanted.sort_unstable();
        wanted.dedup();
        wanted
            .into_iter()
            .filter_map(|name| {
                let fields = self.values.get(name)?;
                Some(Artifact {
                    name: name.to_owned(),
                    fields: fields.iter().map(|(k, (v, _))| (k.clone(), v.clone())).collect(),
                    sources: fields.iter().map(|(k, (_, s))| (k.clone(), s.clone())).collect(),
                })
            })
            .collect()
    }
}

/// Resolves artifact references for every template syntax (`@artifact("...")` strings and
/// Jsonnet's `forge.artifact(...)`) and remembers which artifacts were used, so the release
/// records exactly those. Shared with the Jsonnet evaluator's thread; it holds no Jsonnet
/// values, so the evaluator's cycle collector skips it (`Acyclic`).
#[derive(Debug, Default, jrsonnet_gcmodule::Acyclic)]
pub struct ArtifactResolver {
    set: ArtifactSet,
    used: Mutex<BTreeSet<String>>,
}

impl ArtifactResolver {
    /// A resolver over `set`, nothing used yet.
    pub fn new(set: ArtifactSet) -> Self {
        ArtifactResolver { set, used: Mutex::default() }
    }

    /// The value of `<name>.<field>`, recording `<name>` as used; or why there is none.
    pub fn resolve(&self, reference: &str) -> Result<&str, String> {
        let value = self.set.lookup(reference)?;
        let name = reference.split('.').next().unwrap_or_default();
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        if !used.contains(name) {
            used.insert(name.to_owned());
        }
        Ok(value)
    }

    /// The release manifests the artifacts came from, as they describe themselves.
    pub fn manifests(&self) -> Vec<ManifestInfo> {
        self.set.manifests.clone()
    }

    /// Every artifact resolved so far, with every field and its source.
    pub fn used(&self) -> Vec<Artifact> {
        let used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        self.set.describe(used.iter().map(String::as_str))
    }
}

/// A file's artifact values, and, for a release manifest that says so, its own version and
/// description.
type Parsed = (Vec<(String, String, String)>, Option<(Option<String>, Option<String>)>);

fn parse_file(path: &Path) -> Result<Parsed, String> {
    let text = fs_err::read_to_string(path).map_err(|e| e.to_string())?;
    let value: Value = if text.trim_start().starts_with(['{', '[']) {
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        forge_release::yaml::from_str_untyped(&text).map_err(|e| {
            format!("{}: {}", path.display(), forge_release::yaml::error_summary(&e))
        })?
    };
    let shown = path.display();
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let fields_of = |name: &str,
                     object: &Value,
                     out: &mut Vec<(String, String, String)>|
     -> Result<(), String> {
        let Value::Object(map) = object else {
            return Err(format!("{shown}: `{name}` is not a mapping of fields"));
        };
        // A field without a value (`package_version: null`) is a field not given.
        for (field, value) in map.iter().filter(|(_, v)| !v.is_null()) {
            let value = scalar(value)
                .ok_or_else(|| format!("{shown}: {name}.{field} is not a string or number"))?;
            out.push((name.to_owned(), field.clone(), value));
        }
        Ok(())
    };
    let mut out = Vec::new();
    if value.get("kind").and_then(Value::as_str) == Some("Artifacts") {
        let Some(Value::Object(artifacts)) = value.get("artifacts") else {
            return Err(format!("{shown}: a forge Artifacts file needs an `artifacts` mapping"));
        };
        for (name, fields) in artifacts {
            fields_of(name, fields, &mut out)?;
        }
    } else if let Some(Value::Object(services)) = value.get("services") {
        for (name, fields) in services {
            fields_of(name, fields, &mut out)?;
        }
    } else if let Some(Value::Array(repositories)) = value.get("repositories") {
        for entry in repositories {
            let name = entry
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{shown}: a repositories entry has no name"))?;
            let Value::Object(map) = entry else { unreachable!("has a name, so it is a mapping") };
            for (field, value) in map.iter().filter(|(k, v)| *k != "name" && !v.is_null()) {
                let value = scalar(value)
                    .ok_or_else(|| format!("{shown}: {name}.{field} is not a string or number"))?;
                // `commit_sha` is the conventional name for what other formats call `sha`.
                let field = if field == "commit_sha" { "sha".to_owned() } else { field.clone() };
                out.push((name.to_owned(), field, value));
            }
        }
    } else if let Value::Object(components) = &value
        && !components.is_empty()
        && components.values().all(|c| {
            c.as_object()
                .is_some_and(|m| m.keys().any(|k| ["tag", "sha", "digest"].contains(&k.as_str())))
        })
    {
        for (name, fields) in components {
            fields_of(name, fields, &mut out)?;
        }
    } else {
        return Err(format!(
            "{shown}: not a known artifacts format (forge Artifacts, component-tags.json, a `services` release manifest, or a `repositories` release manifest)"
        ));
    }
    // A release manifest describes itself: its version (or release) and description.
    let described = if value.get("services").is_some() || value.get("repositories").is_some() {
        let text = |key: &str| value.get(key).and_then(scalar);
        let version = text("version").or_else(|| text("release"));
        let description = text("description");
        (version.is_some() || description.is_some()).then_some((version, description))
    } else {
        None
    };
    Ok((out, described))
}

/// Replaces every `@artifact("<name>.<field>")` in every string of `value`; returns the
/// problems, each naming its reference.
pub fn resolve_references(value: &mut Value, artifacts: &ArtifactResolver) -> Vec<String> {
    let pattern = reference_pattern();
    let mut problems = Vec::new();
    visit_strings(value, &mut |text: &mut String| {
        if !text.contains("@artifact(") {
            return;
        }
        let mut result = String::with_capacity(text.len());
        let mut last = 0;
        for captures in pattern.captures_iter(text) {
            let whole = captures.get(0).expect("match");
            let reference = &captures[1];
            result.push_str(&text[last..whole.start()]);
            match artifacts.resolve(reference) {
                Ok(resolved) => result.push_str(resolved),
                Err(problem) => {
                    problems.push(format!("@artifact(\"{reference}\"): {problem}"));
                    result.push_str(whole.as_str());
                }
            }
            last = whole.end();
        }
        result.push_str(&text[last..]);
        if result.contains("@artifact(") && problems.is_empty() {
            problems.push(format!(
                "malformed artifact reference in `{text}`: expected @artifact(\"<name>.<field>\")"
            ));
        }
        *text = result;
    });
    problems
}

fn reference_pattern() -> &'static regex_lite::Regex {
    static PATTERN: std::sync::OnceLock<regex_lite::Regex> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| {
        regex_lite::Regex::new(r#"@artifact\(\s*"([^"]*)"\s*\)"#).expect("valid pattern")
    })
}

fn visit_strings(value: &mut Value, f: &mut impl FnMut(&mut String)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter_mut().for_each(|v| visit_strings(v, f)),
        Value::Object(map) => map.values_mut().for_each(|v| visit_strings(v, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn set(pairs: &[(&str, &str, &str)]) -> ArtifactSet {
        let mut s = ArtifactSet::default();
        let mut problems = Vec::new();
        for (n, f, v) in pairs {
            s.insert(n, f, (*v).to_owned(), "test".into(), &mut problems);
        }
        s.derive();
        s
    }

    #[test]
    fn references_resolve_whole_and_embedded_and_every_problem_is_reported() {
        let artifacts = set(&[
            ("api", "image", "r.example.com/api"),
            ("api", "tag", "1.2"),
            ("api", "digest", "sha256:ab"),
        ]);
        let mut value = json!({"a": "@artifact(\"api.uri\")", "b": ["x-@artifact(\"api.ref\")-y"], "c": "@artifact(\"web.uri\") @artifact(\"api.nope\")"});
        let resolver = ArtifactResolver::new(artifacts);
        let problems = resolve_references(&mut value, &resolver);
        assert_eq!(value["a"], "r.example.com/api:1.2");
        assert_eq!(value["b"][0], "x-r.example.com/api@sha256:ab-y");
        assert_eq!(problems.len(), 2);
        assert!(problems[0].contains("unknown artifact `web` (known: api)"), "{problems:?}");
        assert!(
            problems[1].contains(
                "artifact `api` has no field `nope` (it has: digest, image, ref, tag, uri)"
            ),
            "{problems:?}"
        );
        let used: Vec<String> = resolver.used().into_iter().map(|a| a.name).collect();
        assert_eq!(used, ["api"], "only artifacts that resolved are recorded");
    }
}
