//! Environment policies: which releases may be deployed where (`policy.yaml` at the root of
//! the GitOps repository): the file and its checks here, the rules in [`rules`]. Pure; the
//! caller gathers the facts.

mod rules;

pub use rules::{ApprovalRule, Candidate, EnvironmentPolicy, SignedFacts, Violation, same_person};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use forge_release::metadata::TriggerKind;
use globset::{Glob, GlobMatcher};
use serde::Deserialize;

use crate::exit;

/// Why the policy does not admit a deploy, or cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// There is no policy file.
    #[error("no environment policy at {}", .0.display())]
    Missing(PathBuf),
    /// The policy file is there but HEAD does not have it.
    #[error("{} is not committed: deploys follow the policy HEAD has", .0.display())]
    NotCommitted(PathBuf),
    /// The policy file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The policy file is malformed.
    #[error("invalid policy {}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The environment is not in the policy.
    #[error("environment `{env}` is not in the policy (it lists {})", listed.join(", "))]
    Unlisted {
        /// The environment.
        env: String,
        /// The environments the policy lists.
        listed: Vec<String>,
    },
    /// The policy denies this deploy: every rule that failed.
    #[error("the {env} policy denies {what} ({pointer}):{}",
        violations.iter().map(|v| format!("\n  {}: {}", v.rule, v.detail)).collect::<String>())]
    Denied {
        /// The environment.
        env: String,
        /// `deploying auth-service release 2 (v1.2.3)`, say.
        what: String,
        /// The pointer file.
        pointer: String,
        /// Each broken rule.
        violations: Vec<Violation>,
        /// What a person can do about the rules that allow it.
        hints: Vec<String>,
    },
}

impl PolicyError {
    /// Denials are 7; a policy that cannot be used is an input error.
    pub fn code(&self) -> u8 {
        match self {
            PolicyError::Unlisted { .. } | PolicyError::Denied { .. } => exit::DENIED,
            PolicyError::Unreadable { .. } => exit::LOCAL,
            PolicyError::Missing(_)
            | PolicyError::NotCommitted(_)
            | PolicyError::Invalid { .. } => exit::INPUT,
        }
    }

    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        match self {
            PolicyError::Missing(_) => Some(format!(
                "every deploy is checked against a policy; create {FILE_NAME} at the root of the GitOps repository (see plugin/policy.example.yaml)"
            )),
            PolicyError::NotCommitted(path) => Some(format!(
                "commit it (reviewed like any change to who may deploy where): git -C {} add {FILE_NAME} && git -C {} commit",
                path.parent().unwrap_or(path).display(),
                path.parent().unwrap_or(path).display()
            )),
            PolicyError::Unlisted { env, .. } => Some(format!(
                "check the environment name, or add `{env}` to {FILE_NAME} (or set `unlisted_environments: allow`)"
            )),
            PolicyError::Denied { hints, .. } if !hints.is_empty() => Some(hints.join("\n")),
            _ => None,
        }
    }
}

/// The policy file's name at the root of the GitOps repository.
pub const FILE_NAME: &str = "policy.yaml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    environments: BTreeMap<String, EnvironmentFile>,
    #[serde(default)]
    unlisted_environments: Unlisted,
    /// The allowed-signers file approvals are verified against, relative to the root.
    allowed_signers: Option<String>,
    /// Read by the checkout itself ([`crate::gitops::PointerLayout::of_checkout`]); listed
    /// here so that the policy accepts it.
    #[serde(default)]
    #[allow(dead_code)]
    pointers: crate::gitops::PointerLayout,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Unlisted {
    #[default]
    Deny,
    Allow,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvironmentFile {
    allowed_triggers: Option<Vec<TriggerKind>>,
    allowed_branches: Option<Vec<String>>,
    #[serde(default)]
    requires_approval: bool,
    approvers: Option<Vec<String>>,
    approvals: Option<usize>,
    #[serde(default)]
    requires: Vec<String>,
    verified_branch: Option<bool>,
    /// Public keys (PEM files in the GitOps repository) one of which must have signed the
    /// release and its build provenance; the provenance's facts are then what the other
    /// rules check.
    signed_by: Option<Vec<String>>,
    /// `deploy --auto` deploys here whatever the rules admit.
    #[serde(default)]
    auto_deploy: bool,
}

/// A policy branch pattern: a glob over the whole name (`*` crosses `/`). A pattern that is
/// surely a regular expression (`.*`, `^`, `$`, `\`, `+`, `(`, `|`) is refused, since it would
/// match nothing its writer meant: release.on in forge.yaml takes regular expressions, this
/// file globs.
fn branch_glob(pattern: &str) -> Result<(String, GlobMatcher), String> {
    let regex_like = pattern.contains(".*")
        || pattern.chars().any(|c| matches!(c, '^' | '$' | '\\' | '+' | '(' | ')' | '|'));
    if regex_like {
        return Err(format!(
            "`{pattern}` looks like a regular expression, but policy branch patterns are globs matched against the whole name: write `{}`",
            pattern.replace(".*", "*").trim_start_matches('^').trim_end_matches('$')
        ));
    }
    Glob::new(pattern)
        .map(|g| (pattern.to_owned(), g.compile_matcher()))
        .map_err(|e| format!("`{pattern}`: {e}"))
}

/// Moves each environment's `promotion_policy:` rules up beside its other keys (the seed's
/// form of the same rules); a rule given both ways is an error.
fn hoist_promotion_policies(value: &mut serde_json::Value) -> Result<(), String> {
    let Some(environments) = value.get_mut("environments").and_then(|e| e.as_object_mut()) else {
        return Ok(());
    };
    for (name, env) in environments.iter_mut() {
        let Some(env) = env.as_object_mut() else { continue };
        let Some(rules) = env.remove("promotion_policy") else { continue };
        let serde_json::Value::Object(rules) = rules else {
            return Err(format!("environments.{name}.promotion_policy is not a mapping"));
        };
        for (key, rule) in rules {
            if env.contains_key(&key) {
                return Err(format!(
                    "environments.{name} sets `{key}` both directly and in promotion_policy"
                ));
            }
            env.insert(key, rule);
        }
    }
    Ok(())
}

/// The approval rule of an environment: signed approvals are needed where it says
/// `requires_approval: true`, names `approvers:`, or asks for a number of `approvals:`.
fn approval_rule(name: &str, env: &EnvironmentFile) -> Result<Option<ApprovalRule>, String> {
    if !env.requires_approval && env.approvers.is_none() && env.approvals.is_none() {
        return Ok(None);
    }
    let count = env.approvals.unwrap_or(1);
    if count == 0 {
        return Err(format!("environments.{name}.approvals must be at least 1"));
    }
    if let Some(approvers) = &env.approvers
        && approvers.len() < count
    {
        return Err(format!(
            "environments.{name} needs {count} approvals but lists {} approvers",
            approvers.len()
        ));
    }
    Ok(Some(ApprovalRule { approvers: env.approvers.clone(), count }))
}

/// A loaded, checked policy.
#[derive(Debug)]
pub struct Policy {
    environments: BTreeMap<String, EnvironmentPolicy>,
    allow_unlisted: bool,
    allowed_signers: String,
}

impl Policy {
    /// Reads and checks the policy file; a missing or malformed file is an error.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(PolicyError::Missing(path.to_owned()));
            }
            Err(source) => return Err(PolicyError::Unreadable { path: path.to_owned(), source }),
        };
        Self::parse(&text).map_err(|reason| PolicyError::Invalid { path: path.to_owned(), reason })
    }

    /// The policy as HEAD of the GitOps checkout has it: an edit nobody committed (and so
    /// nobody reviewed) changes nothing. A policy written but not yet committed is refused
    /// with a hint to commit it.
    pub fn load_committed(repo: &crate::gitops::GitopsRepo) -> Result<Self, crate::error::Error> {
        let path = repo.root().join(FILE_NAME);
        let Some(bytes) = repo.committed_file(FILE_NAME)? else {
            return Err(if path.exists() {
                PolicyError::NotCommitted(path)
            } else {
                PolicyError::Missing(path)
            }
            .into());
        };
        let text = String::from_utf8(bytes)
            .map_err(|_| PolicyError::Invalid { path: path.clone(), reason: "not UTF-8".into() })?;
        Ok(Self::parse(&text).map_err(|reason| PolicyError::Invalid { path, reason })?)
    }

    /// Parses and checks policy text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let summary = |e: serde_saphyr::Error| forge_release::yaml::error_summary(&e);
        let file: PolicyFile = if text.contains("promotion_policy") {
            // The seed's form: each environment's rules under `promotion_policy:`.
            let mut value: serde_json::Value =
                forge_release::yaml::from_str(text).map_err(summary)?;
            hoist_promotion_policies(&mut value)?;
            serde_json::from_value(value).map_err(|e| e.to_string())?
        } else {
            forge_release::yaml::from_str(text).map_err(summary)?
        };
        let names: BTreeSet<&String> = file.environments.keys().collect();
        let mut environments = BTreeMap::new();
        for (name, env) in &file.environments {
            for required in &env.requires {
                if !names.contains(required) {
                    return Err(format!(
                        "environments.{name}.requires names `{required}`, which is not an environment in this policy"
                    ));
                }
                if required == name {
                    return Err(format!("environments.{name}.requires names itself"));
                }
            }
            let branches = match &env.allowed_branches {
                None => None,
                Some(patterns) => Some(
                    patterns
                        .iter()
                        .map(|p| {
                            branch_glob(p)
                                .map_err(|e| format!("environments.{name}.allowed_branches: {e}"))
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            let signed_by = env.signed_by.clone().unwrap_or_default();
            if let Some(bad) =
                signed_by.iter().find(|p| p.starts_with('/') || p.split('/').any(|s| s == ".."))
            {
                return Err(format!(
                    "environments.{name}.signed_by: `{bad}` must be a path inside the GitOps repository"
                ));
            }
            if env.signed_by.as_ref().is_some_and(Vec::is_empty) {
                return Err(format!("environments.{name}.signed_by lists no keys"));
            }
            environments.insert(
                name.clone(),
                EnvironmentPolicy {
                    signed_by,
                    allowed_triggers: env.allowed_triggers.clone(),
                    allowed_branches: branches,
                    approval: approval_rule(name, env)?,
                    requires: env.requires.clone(),
                    // `["*"]` restricts nothing: nothing to verify either.
                    auto_deploy: env.auto_deploy,
                    verified_branch: env.verified_branch.unwrap_or(
                        env.allowed_branches.as_ref().is_some_and(|p| !p.iter().any(|p| p == "*")),
                    ),
                },
            );
        }
        let allowed_signers = file
            .allowed_signers
            .unwrap_or_else(|| crate::approvals::DEFAULT_ALLOWED_SIGNERS.to_owned());
        if allowed_signers.starts_with('/') || allowed_signers.split('/').any(|s| s == "..") {
            return Err(format!(
                "allowed_signers `{allowed_signers}` must be a path inside the GitOps repository"
            ));
        }
        Ok(Policy {
            environments,
            allow_unlisted: file.unlisted_environments == Unlisted::Allow,
            allowed_signers,
        })
    }

    /// The environments `deploy --auto` deploys to (`auto_deploy: true`), in name order.
    pub fn auto_environments(&self) -> Vec<&str> {
        self.environments.iter().filter(|(_, e)| e.auto_deploy).map(|(n, _)| n.as_str()).collect()
    }

    /// The allowed-signers file approvals are verified against, relative to the repository.
    pub fn allowed_signers(&self) -> &str {
        &self.allowed_signers
    }

    /// The rules for `env`; an environment the policy does not list is denied unless the
    /// policy says `unlisted_environments: allow`.
    pub fn environment(&self, env: &str) -> Result<&EnvironmentPolicy, PolicyError> {
        static UNRESTRICTED: EnvironmentPolicy = EnvironmentPolicy {
            signed_by: Vec::new(),
            allowed_triggers: None,
            allowed_branches: None,
            approval: None,
            requires: Vec::new(),
            verified_branch: false,
            auto_deploy: false,
        };
        match self.environments.get(env) {
            Some(rules) => Ok(rules),
            None if self.allow_unlisted => Ok(&UNRESTRICTED),
            None => Err(PolicyError::Unlisted {
                env: env.to_owned(),
                listed: self.environments.keys().cloned().collect(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../plugin/policy.example.yaml");

    #[test]
    fn unlisted_environments_are_denied_unless_allowed() {
        let policy = Policy::parse(EXAMPLE).expect("example policy");
        let error = policy.environment("qa").expect_err("unlisted");
        assert_eq!(error.code(), exit::DENIED);
        assert_eq!(
            error.to_string(),
            "environment `qa` is not in the policy (it lists dev, production, staging)"
        );
        let open = Policy::parse("environments: {}\nunlisted_environments: allow\n").expect("ok");
        assert!(open.environment("qa").is_ok());
    }

    /// The shipped JSON Schema lists exactly the keys and triggers the parser accepts.
    #[test]
    fn the_json_schema_matches_the_parser() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../../plugin/policy.schema.json")).expect("json");
        let keys = |v: &serde_json::Value| -> Vec<String> {
            v.as_object().expect("object").keys().cloned().collect()
        };
        assert_eq!(
            keys(&schema["properties"]),
            ["environments", "unlisted_environments", "allowed_signers", "pointers"]
        );
        let env = &schema["$defs"]["environment"]["properties"];
        assert_eq!(
            keys(env),
            [
                "allowed_triggers",
                "allowed_branches",
                "requires_approval",
                "approvers",
                "approvals",
                "requires",
                "auto_deploy",
                "promotion_policy",
                "verified_branch",
                "signed_by"
            ]
        );
        let triggers: Vec<TriggerKind> =
            serde_json::from_value(env["allowed_triggers"]["items"]["enum"].clone())
                .expect("every trigger in the schema parses");
        assert_eq!(triggers.len(), 4);
        let full = "environments:\n  a: {allowed_triggers: [branch_push, tag, manual], \
                    allowed_branches: [main], requires_approval: true, approvers: [x], approvals: 1, \
                    requires: [b], verified_branch: true}\n  b: {}\n\
                    unlisted_environments: allow\nallowed_signers: signers\npointers: by-repository\n";
        Policy::parse(full).expect("every schema key parses");
    }

    /// Issue 16: the seed's form parses unchanged: rules under `promotion_policy:`, and
    /// `auto_deploy`.
    #[test]
    fn the_seeds_promotion_policy_form_parses() {
        let policy = Policy::parse(
            "environments:\n  dev:\n    auto_deploy: true\n    promotion_policy:\n      allowed_triggers: [branch_push]\n  production:\n    auto_deploy: false\n    promotion_policy:\n      requires_approval: true\n      requires: [dev]\n",
        )
        .expect("the seed's form");
        assert_eq!(policy.auto_environments(), ["dev"]);
        let production = policy.environment("production").expect("listed");
        assert!(production.approval.is_some());
        assert_eq!(production.requires, ["dev"]);
        let both = Policy::parse(
            "environments:\n  dev:\n    requires: []\n    promotion_policy: {requires: []}\n",
        )
        .expect_err("a rule given twice");
        assert!(both.contains("sets `requires` both directly and in promotion_policy"), "{both}");
    }

    #[test]
    fn malformed_policies_are_rejected_with_the_reason() {
        let cases = [
            ("environments:\n  prod: {requires: [stage]}\n", "requires names `stage`"),
            ("environments:\n  prod: {allowed_triggers: [nightly]}\n", "nightly"),
            ("environments:\n  prod: {allowed_branch: [main]}\n", "allowed_branch"),
            ("environments:\n  prod: {allowed_branches: [\"ma[in\"]}\n", "`ma[in`"),
            ("environment: {}\n", "environment"),
            ("environments: {}\nunlisted_environments: maybe\n", "maybe"),
        ];
        for (text, expected) in cases {
            let reason = Policy::parse(text).expect_err(text);
            assert!(reason.contains(expected), "{text}: {reason}");
        }
    }

    /// Issue 17: `signed_by:` names files inside the GitOps repository, read as committed.
    #[test]
    fn signed_by_keys_stay_inside_the_repository() {
        for bad in ["/etc/ci.pub", "../keys/ci.pub", "keys/../../ci.pub"] {
            let text = format!("environments:\n  prod: {{signed_by: [\"{bad}\"]}}\n");
            let refused = Policy::parse(&text).expect_err(bad);
            assert!(refused.contains("must be a path inside the GitOps repository"), "{refused}");
        }
        let empty = Policy::parse("environments:\n  prod: {signed_by: []}\n").expect_err("empty");
        assert!(empty.contains("lists no keys"), "{empty}");
        assert!(Policy::parse("environments:\n  prod: {signed_by: [keys/ci.pub]}\n").is_ok());
    }
}
