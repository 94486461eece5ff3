//! `forge.yaml`: the project configuration.

use std::path::{Path, PathBuf};

use forge_release::aliases::TagStrategy;
use serde::Deserialize;

/// Why a project's configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read project configuration {}: {source}", path.display())]
    Read {
        /// forge.yaml's path.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not valid YAML or has unknown or mistyped keys.
    #[error("invalid {}: {summary}", path.display())]
    Syntax {
        /// forge.yaml's path.
        path: PathBuf,
        /// The parser's summary, with the line.
        summary: String,
    },
    /// A value breaks a rule.
    #[error("invalid {}: {reason}", path.display())]
    Invalid {
        /// forge.yaml's path.
        path: PathBuf,
        /// Which rule.
        reason: String,
    },
}

impl ConfigError {
    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        match self {
            ConfigError::Read { .. } => Some(format!(
                "run forge-pack in a project directory with a {FILE_NAME}, or pass --project-dir"
            )),
            _ => None,
        }
    }
}

/// The configuration file name looked up in the project directory.
pub const FILE_NAME: &str = "forge.yaml";

/// A project's `forge.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Project name: the last path component of release references.
    pub project: String,
    /// Release repository, e.g. `company/monorepo`.
    pub repository: String,
    /// Default release store: a registry host (with optional path prefix) or `oci:<dir>`.
    #[serde(default)]
    pub registry: Option<String>,
    /// Template directory, relative to the project directory.
    #[serde(default = "default_templates")]
    pub templates: PathBuf,
    /// Jsonnet library paths (`-J`), relative to the project directory.
    #[serde(default)]
    pub library_paths: Vec<PathBuf>,
    /// How git tags become aliases.
    #[serde(default)]
    pub tag_strategy: TagStrategy,
    /// Source repository URL recorded in releases (default: the git remote `origin`).
    #[serde(default)]
    pub source_url: Option<String>,
    /// When pushes make releases.
    #[serde(default)]
    pub release: ReleaseRules,
}

/// `release:` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRules {
    /// Whether pushes release at all (`enabled: false` turns releases off).
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Triggers that make a release; empty means every push does (pull requests only when
    /// listed).
    #[serde(default)]
    pub on: Vec<ReleaseOn>,
}

impl Default for ReleaseRules {
    fn default() -> Self {
        ReleaseRules { enabled: true, on: Vec::new() }
    }
}

fn enabled() -> bool {
    true
}

/// One `release.on` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum ReleaseOn {
    /// Pushes to branches whose whole name matches this regular expression.
    Branch(String),
    /// Pushed git tags.
    Tag(bool),
    /// Pull (merge) request builds.
    PullRequest(bool),
}

/// Whether `branch` matches `pattern`, a regular expression over the whole name (`main` is
/// not `maintenance`). Patterns are checked when forge.yaml is loaded.
pub fn branch_matches(pattern: &str, branch: &str) -> bool {
    check_branch_pattern(pattern).is_ok()
        && regex_lite::Regex::new(&format!("^(?:{pattern})$")).is_ok_and(|re| re.is_match(branch))
}

/// Why `pattern` cannot be a `release.on` branch pattern: not a regular expression, or one
/// that is surely a glob (a `*` after something other than `.`, `)` or `]`), which would
/// match what its writer did not mean.
fn check_branch_pattern(pattern: &str) -> Result<(), String> {
    // Alone first: `main)|(.*` is no expression, but wrapped in `^(?:…)$` it is one that
    // escapes the anchors and matches every branch.
    regex_lite::Regex::new(pattern)
        .and_then(|_| regex_lite::Regex::new(&format!("^(?:{pattern})$")))
        .map_err(|e| {
            format!("release.on branch pattern `{pattern}` is not a valid regular expression: {e}")
        })?;
    let bytes = pattern.as_bytes();
    let glob_star = bytes
        .iter()
        .enumerate()
        .any(|(i, b)| *b == b'*' && (i == 0 || !b".)]".contains(&bytes[i - 1])));
    if glob_star {
        let regex = pattern.replace(".*", "\u{0}").replace(['*', '\u{0}'], ".*");
        return Err(format!(
            "release.on branch pattern `{pattern}` looks like a glob, but release.on takes regular expressions matched against the whole branch name: write `{regex}` (policy.yaml's allowed_branches are globs)"
        ));
    }
    Ok(())
}

fn default_templates() -> PathBuf {
    PathBuf::from("templates")
}

/// A repository path component as the distribution spec writes it:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`. Nothing that climbs (`..`) or escapes a URL.
pub fn is_path_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut separator = String::new();
    for &b in bytes {
        if alnum(b) {
            if !matches!(separator.as_str(), "" | "." | "_" | "__")
                && !separator.bytes().all(|s| s == b'-')
            {
                return false;
            }
            separator.clear();
        } else if b"._-".contains(&b) {
            separator.push(b as char);
        } else {
            return false;
        }
    }
    true
}

impl ProjectConfig {
    /// Loads and validates `<dir>/forge.yaml`.
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let path = dir.join(FILE_NAME);
        let text = std::fs::read_to_string(&path)
            .map_err(|source| ConfigError::Read { path: path.clone(), source })?;
        let config: ProjectConfig =
            forge_release::yaml::from_str(&text).map_err(|e| ConfigError::Syntax {
                path: path.clone(),
                summary: forge_release::yaml::error_summary(&e),
            })?;
        config.validate().map_err(|reason| ConfigError::Invalid { path, reason })?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if !is_path_component(&self.project) {
            return Err(format!(
                "project `{}` must be lowercase letters, digits, `.`, `_` or `-`, starting and ending alphanumeric",
                self.project
            ));
        }
        if !self.repository.split('/').all(is_path_component) {
            return Err(format!(
                "repository `{}` must be `/`-separated lowercase path components, e.g. `company/monorepo`",
                self.repository
            ));
        }
        for rule in &self.release.on {
            if let ReleaseOn::Branch(pattern) = rule {
                check_branch_pattern(pattern)?;
            }
        }
        if let Some(registry) = &self.registry {
            forge_release::reference::StoreRoot::parse(registry)
                .map_err(|e| format!("registry: {e}"))?;
        }
        Ok(())
    }

    /// The template directory, resolved against the project directory.
    pub fn templates_dir(&self, project_dir: &Path) -> PathBuf {
        project_dir.join(&self.templates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ProjectConfig, String> {
        let config: ProjectConfig =
            forge_release::yaml::from_str(text).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    /// Every key the parser accepts is in the shipped JSON Schema, and nothing more.
    #[test]
    fn the_json_schema_lists_exactly_the_accepted_keys() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/forge.schema.json");
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).expect("json");
        let mut keys: Vec<&str> = schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "library_paths",
                "project",
                "registry",
                "release",
                "repository",
                "source_url",
                "tag_strategy",
                "templates"
            ]
        );
        let full = "project: a\nrepository: b/c\nregistry: r.example.com\ntemplates: t\nlibrary_paths: [l]\n\
                    tag_strategy: monorepo\nsource_url: https://x\nrelease: {enabled: true, on: [{branch: main}, {tag: true}, {pull_request: false}]}\n";
        parse(full).expect("every schema key parses");
    }

    #[test]
    fn full_configuration_parses() {
        let config = parse(
            "project: auth-service\nrepository: company/monorepo\nregistry: registry.example.com\n\
             templates: deploy\nlibrary_paths: [lib]\ntag_strategy: tag-all\n\
             release:\n  on:\n    - branch: ^main$\n    - tag: true\n",
        )
        .expect("valid config");
        assert_eq!(config.project, "auth-service");
        assert_eq!(config.tag_strategy, TagStrategy::TagAll);
        assert_eq!(config.release.on.len(), 2);
    }

    #[test]
    fn unknown_keys_wrong_types_and_bad_names_are_errors() {
        let unknown = parse("project: a\nrepository: b/c\ntemplate: x\n").expect_err("unknown key");
        assert!(unknown.contains("template"), "{unknown}");
        assert!(parse("project: [a]\nrepository: b\n").is_err());
        let bad = parse("project: Auth\nrepository: b\n").expect_err("uppercase");
        assert!(bad.contains("project `Auth`"), "{bad}");
        let bad = parse("project: a\nrepository: b\nrelease: {on: [{branch: '('}]}\n")
            .expect_err("regex");
        assert!(bad.contains("not a valid regular expression"), "{bad}");
        let glob = parse("project: a\nrepository: b\nrelease: {on: [{branch: 'release/*'}]}\n")
            .expect_err("glob");
        assert!(glob.contains("looks like a glob") && glob.contains("`release/.*`"), "{glob}");
    }

    #[test]
    fn branch_patterns_match_whole_names() {
        assert!(branch_matches("main", "main"));
        assert!(!branch_matches("main", "maintenance-hack"));
        assert!(!branch_matches("main", "feature/main"));
        assert!(branch_matches("release/.*", "release/1.2"));
        assert!(!branch_matches("release/.*", "my-release/1.2"));
        assert!(branch_matches("main|release/.*", "release/x"));
        // A pattern that would close the anchoring group is refused, not matched.
        assert!(!branch_matches("main)|(.*", "feature/evil"));
        let refused =
            parse("project: a\nrepository: b\nrelease: {on: [{branch: \"main)|(.*\"}]}\n")
                .expect_err("escapes the anchors");
        assert!(refused.to_string().contains("is not a valid regular expression"), "{refused}");
    }

    #[test]
    fn releases_can_be_turned_off_and_pull_requests_listed() {
        let off = parse("project: a\nrepository: b\nrelease: {enabled: false}\n").expect("off");
        assert!(!off.release.enabled);
        let on = parse("project: a\nrepository: b\n").expect("default");
        assert!(on.release.enabled);
        let pr = parse("project: a\nrepository: b\nrelease: {on: [{pull_request: true}]}\n")
            .expect("pull requests");
        assert!(matches!(pr.release.on[0], ReleaseOn::PullRequest(true)));
    }
}
