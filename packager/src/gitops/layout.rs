//! Where pointers live: `envs/<env>/<project>/release.yaml`, or, when one GitOps repository
//! serves several source repositories whose projects may share names,
//! `envs/<env>/<repository>/<project>/release.yaml` (`pointers: by-repository` in
//! policy.yaml).

use std::path::Path;

use serde::Deserialize;

use super::{ENVS_DIR, GitopsError, GitopsRepo, POINTER_FILE, sorted_dirs};

/// How pointer files are laid out under `envs/<env>/`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PointerLayout {
    /// `envs/<env>/<project>/release.yaml`.
    #[default]
    ByProject,
    /// `envs/<env>/<repository>/<project>/release.yaml`.
    ByRepository,
}

impl PointerLayout {
    /// The layout policy.yaml at `root` asks for (the default when it says nothing, or when
    /// there is no policy yet: the policy itself is checked where it is used).
    pub fn of_checkout(root: &Path) -> Self {
        #[derive(Deserialize)]
        struct Pointers {
            #[serde(default)]
            pointers: PointerLayout,
        }
        std::fs::read_to_string(root.join(crate::policy::FILE_NAME))
            .ok()
            .and_then(|text| forge_release::yaml::from_str::<Pointers>(&text).ok())
            .map(|p| p.pointers)
            .unwrap_or_default()
    }
}

/// One pointer file of the checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointerEntry {
    /// The environment.
    pub env: String,
    /// The source repository (`company/monorepo`), in the by-repository layout.
    pub repository: Option<String>,
    /// The project.
    pub project: String,
    /// The file, relative to the checkout.
    pub rel: String,
}

impl PointerEntry {
    /// `company/monorepo/auth-service` in the by-repository layout, else `auth-service`.
    pub fn name(&self) -> String {
        match &self.repository {
            Some(repository) => format!("{repository}/{}", self.project),
            None => self.project.clone(),
        }
    }
}

impl GitopsRepo {
    /// How this checkout lays out its pointers.
    pub fn layout(&self) -> PointerLayout {
        self.layout.get()
    }

    /// The pointer file of `project` (of `repository`) in `env`, relative to the root.
    pub fn pointer_path(&self, env: &str, repository: &str, project: &str) -> String {
        match self.layout.get() {
            PointerLayout::ByProject => format!("{ENVS_DIR}/{env}/{project}/{POINTER_FILE}"),
            PointerLayout::ByRepository => {
                format!("{ENVS_DIR}/{env}/{repository}/{project}/{POINTER_FILE}")
            }
        }
    }

    /// Every pointer file in the working tree, sorted.
    pub fn pointer_files(&self) -> Result<Vec<PointerEntry>, GitopsError> {
        let envs = self.root().join(ENVS_DIR);
        let mut found = Vec::new();
        for env in sorted_dirs(&envs)? {
            let mut names = Vec::new();
            match self.layout.get() {
                PointerLayout::ByProject => {
                    names.extend(sorted_dirs(&envs.join(&env))?.into_iter().map(|p| vec![p]));
                }
                PointerLayout::ByRepository => {
                    collect_nested(&envs.join(&env), &mut Vec::new(), &mut names)?
                }
            }
            for mut segments in names {
                let rel = format!("{ENVS_DIR}/{env}/{}/{POINTER_FILE}", segments.join("/"));
                if !self.root().join(&rel).is_file() {
                    continue;
                }
                let project = segments.pop().unwrap_or_default();
                let repository = (!segments.is_empty()).then(|| segments.join("/"));
                found.push(PointerEntry { env: env.clone(), repository, project, rel });
            }
        }
        Ok(found)
    }

    /// The pointer file a user means by `name` in `env`: the project (or, in the
    /// by-repository layout, `<repository>/<project>`, or the project alone when only one
    /// repository has it there).
    pub fn find_pointer(&self, env: &str, name: &str) -> Result<PointerEntry, GitopsError> {
        let matching: Vec<PointerEntry> = self
            .pointer_files()?
            .into_iter()
            .filter(|e| e.env == env && (e.name() == name || e.project == name))
            .collect();
        match matching.as_slice() {
            [one] => Ok(one.clone()),
            [] => {
                let (repository, project) = name.rsplit_once('/').unwrap_or(("", name));
                Err(GitopsError::NotDeployed {
                    project: project.to_owned(),
                    env: env.to_owned(),
                    rel: Some(self.pointer_path(env, repository, project)),
                })
            }
            many => Err(GitopsError::SeveralImages {
                project: name.to_owned(),
                images: many.iter().map(|e| e.rel.clone()).collect(),
            }),
        }
    }
}

/// Every directory path below `dir` (as segments) that holds a pointer file and lies at least
/// two levels down: `<repository...>/<project>`.
fn collect_nested(
    dir: &Path,
    prefix: &mut Vec<String>,
    found: &mut Vec<Vec<String>>,
) -> Result<(), GitopsError> {
    for name in sorted_dirs(dir)? {
        prefix.push(name.clone());
        let child = dir.join(&name);
        if prefix.len() >= 2 && child.join(POINTER_FILE).is_file() {
            found.push(prefix.clone());
        }
        // Repositories nest a few levels at most (`group/subgroup/repo`).
        if prefix.len() < 8 {
            collect_nested(&child, prefix, found)?;
        }
        prefix.pop();
    }
    Ok(())
}
