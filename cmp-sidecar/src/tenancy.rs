//! The operator's rules for a sidecar that serves every team: which release images the
//! Applications of each Argo CD project may name, with which credentials, whether releases
//! may come from the sidecar's own disk (`oci:` layouts), and which registries speak plain
//! HTTP.
//!
//! From a file (`FORGE_CMP_CONFIG`, a ConfigMap in the shipped install), or for a sidecar with
//! one set of rules for every project, `FORGE_CMP_ALLOWED_IMAGES`. Without either, nothing is
//! allowed: a sidecar that would fetch any image with its own credentials is the gap this
//! closes.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use forge_release::reference::{ProjectLocation, StoreRoot};
use serde::Deserialize;

use crate::error::CmpError;
use crate::trust::SignatureRule;

/// The config file's `kind`.
pub const KIND: &str = "SidecarConfig";
/// The project rule that applies to projects the file does not name.
pub const ANY_PROJECT: &str = "*";

/// The sidecar's configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SidecarConfig {
    /// `forge.dev/v1alpha1`.
    #[serde(default)]
    pub api_version: Option<String>,
    /// [`KIND`].
    #[serde(default)]
    pub kind: Option<String>,
    /// Argo CD project name (or `*`) → its rule.
    #[serde(default)]
    pub projects: BTreeMap<String, ProjectRule>,
    /// Whether pointers may name `oci:` layouts on the sidecar's filesystem.
    #[serde(default)]
    pub local_layouts: bool,
    /// Registries reached without TLS (`host[:port]`; loopback always may).
    #[serde(default)]
    pub plain_http: Vec<String>,
}

/// What one Argo CD project's Applications may name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProjectRule {
    /// Image prefixes: `registry.example.com/team-a/` (everything under it),
    /// `registry.example.com/team-a/app` (that release stream), `*` (anything).
    #[serde(default)]
    pub images: Vec<String>,
    /// The auth file (docker `config.json` shape) for these images, instead of the sidecar's.
    #[serde(default)]
    pub auth_file: Option<PathBuf>,
    /// The signatures these images' releases must carry, if any.
    #[serde(default)]
    pub signatures: Option<SignatureRule>,
}

impl SidecarConfig {
    /// Reads the config file.
    pub fn load(path: &Path) -> Result<Self, CmpError> {
        let invalid = |reason: String| CmpError::Config { path: path.to_owned(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
        let mut config: SidecarConfig = forge_release::yaml::from_str(&text)
            .map_err(|e| invalid(forge_release::yaml::error_summary(&e)))?;
        for rule in config.projects.values_mut() {
            if let Some(signatures) = &mut rule.signatures {
                signatures.load(path)?;
            }
        }
        if config.kind.as_deref().is_some_and(|kind| kind != KIND) {
            return Err(invalid(format!(
                "kind is `{}`, expected `{KIND}`",
                config.kind.unwrap_or_default()
            )));
        }
        Ok(config)
    }

    /// One rule for every project.
    pub fn for_every_project(images: Vec<String>) -> Self {
        let mut projects = BTreeMap::new();
        projects.insert(
            ANY_PROJECT.to_owned(),
            ProjectRule { images, auth_file: None, signatures: None },
        );
        SidecarConfig { projects, ..SidecarConfig::default() }
    }

    /// The rule of `project` (Argo CD's `ARGOCD_APP_PROJECT_NAME`), falling back to `*`.
    pub fn rule(&self, project: Option<&str>) -> Option<(&str, &ProjectRule)> {
        project
            .and_then(|p| self.projects.get_key_value(p))
            .or_else(|| self.projects.get_key_value(ANY_PROJECT))
            .map(|(name, rule)| (name.as_str(), rule))
    }

    /// Whether an Application of `project` may deploy releases from `location`; the refusal
    /// names the project, the image and the rule. Decided before any network or disk access.
    pub fn admit<'a>(
        &'a self,
        project: Option<&str>,
        location: &ProjectLocation,
    ) -> Result<&'a ProjectRule, String> {
        let image = image_name(location);
        let shown = project.unwrap_or("(no ARGOCD_APP_PROJECT_NAME)");
        if self.projects.is_empty() {
            return Err(format!(
                "`{image}` is not allowed: the sidecar has no image allowlist; its operator sets \
                 FORGE_CMP_CONFIG (a SidecarConfig file) or FORGE_CMP_ALLOWED_IMAGES"
            ));
        }
        let Some((rule_name, rule)) = self.rule(project) else {
            return Err(format!(
                "Argo CD project `{shown}` may name no release images: the sidecar's configuration has no rule for it (nor for `*`)"
            ));
        };
        let layout = match location {
            ProjectLocation::LayoutDir(dir) => Some(dir.clone()),
            ProjectLocation::InRoot { root: StoreRoot::Layouts(root), path } => {
                Some(root.join(path))
            }
            ProjectLocation::InRoot { root: StoreRoot::Registry(_), .. } => None,
        };
        if let Some(dir) = layout {
            if !self.local_layouts {
                return Err(format!(
                    "`{image}` is a layout on the sidecar's disk, and the sidecar's configuration does not enable `localLayouts`"
                ));
            }
            // Rules are prefixes: `oci:/srv/team-a/../team-b` must not pass as team-a's.
            let plain = dir.is_absolute()
                && dir.components().all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
            if !plain {
                return Err(format!(
                    "`{image}`: a layout is named by an absolute path without `.` or `..`"
                ));
            }
        }
        if rule.images.iter().any(|prefix| matches(prefix, &image)) {
            return Ok(rule);
        }
        Err(format!(
            "Argo CD project `{shown}` may not deploy `{image}`: the rule for `{rule_name}` allows {}",
            if rule.images.is_empty() { "no images".to_owned() } else { rule.images.join(", ") }
        ))
    }
}

/// The image a pointer names, as the rules are written: `host/path`, or `oci:<dir>`.
pub fn image_name(location: &ProjectLocation) -> String {
    match location {
        ProjectLocation::InRoot { root: StoreRoot::Registry(registry), path } => {
            format!("{registry}/{path}")
        }
        other => other.to_string(),
    }
}

/// `*`, a prefix ending in `/`, or a name that matches itself and what lies under it.
fn matches(prefix: &str, image: &str) -> bool {
    prefix == "*"
        || (prefix.ends_with('/') && image.starts_with(prefix))
        || image == prefix
        || image.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(image: &str) -> ProjectLocation {
        let (host, path) = image.split_once('/').expect("host/path");
        ProjectLocation::InRoot { root: StoreRoot::Registry(host.into()), path: path.into() }
    }

    fn config() -> SidecarConfig {
        forge_release::yaml::from_str(
            "apiVersion: forge.dev/v1alpha1\nkind: SidecarConfig\nprojects:\n  team-a:\n    images: [registry.example.com/team-a/, registry.example.com/shared/base]\n  '*':\n    images: []\n",
        )
        .expect("config")
    }

    #[test]
    fn each_project_may_name_its_own_images_only() {
        let c = config();
        assert!(c.admit(Some("team-a"), &registry("registry.example.com/team-a/app")).is_ok());
        assert!(c.admit(Some("team-a"), &registry("registry.example.com/shared/base")).is_ok());
        assert!(c.admit(Some("team-a"), &registry("registry.example.com/shared/base/sub")).is_ok());
        let refused = c
            .admit(Some("team-a"), &registry("registry.example.com/shared/baseline"))
            .expect_err("not a component boundary");
        assert!(
            refused.contains("may not deploy `registry.example.com/shared/baseline`"),
            "{refused}"
        );
        let refused = c
            .admit(Some("team-b"), &registry("registry.example.com/team-a/app"))
            .expect_err("another team's");
        assert!(
            refused.contains("project `team-b`") && refused.contains("allows no images"),
            "{refused}"
        );
        let refused =
            c.admit(None, &registry("registry.example.com/team-a/app")).expect_err("no project");
        assert!(refused.contains("no ARGOCD_APP_PROJECT_NAME"), "{refused}");
    }

    #[test]
    fn layouts_need_to_be_enabled_and_allowed() {
        let layout = ProjectLocation::LayoutDir("/srv/releases/app".into());
        let mut c = SidecarConfig::for_every_project(vec!["*".into()]);
        assert!(c.admit(Some("x"), &layout).expect_err("off").contains("localLayouts"));
        c.local_layouts = true;
        assert!(c.admit(Some("x"), &layout).is_ok());
        let rule = ProjectRule {
            images: vec!["oci:/srv/releases/team-a/".into()],
            ..ProjectRule::default()
        };
        c.projects.insert("*".into(), rule);
        let escape = ProjectLocation::LayoutDir("/srv/releases/team-a/../team-b/app".into());
        assert!(c.admit(Some("x"), &escape).expect_err("..").contains("without `.` or `..`"));
        let relative = ProjectLocation::LayoutDir("srv/releases/team-a/app".into());
        assert!(c.admit(Some("x"), &relative).is_err());
        let own = ProjectLocation::LayoutDir("/srv/releases/team-a/app".into());
        assert!(c.admit(Some("x"), &own).is_ok());
    }
}
