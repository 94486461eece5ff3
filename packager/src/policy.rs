//! Environment policies: which releases may be deployed where (`policy.yaml` at the root of
//! the GitOps repository). Pure rules; the caller gathers the facts.

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
            PolicyError::Missing(_) | PolicyError::Invalid { .. } => exit::INPUT,
        }
    }

    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        match self {
            PolicyError::Missing(_) => Some(format!(
                "every deploy is checked against a policy; create {FILE_NAME} at the root of the GitOps repository (see plugin/policy.example.yaml)"
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
    #[serde(default)]
    requires: Vec<String>,
    verified_branch: Option<bool>,
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

/// A loaded, checked policy.
#[derive(Debug)]
pub struct Policy {
    environments: BTreeMap<String, EnvironmentPolicy>,
    allow_unlisted: bool,
}

/// The rules of one environment. An absent list means no restriction; an empty one allows
/// nothing.
#[derive(Debug, Default)]
pub struct EnvironmentPolicy {
    allowed_triggers: Option<Vec<TriggerKind>>,
    allowed_branches: Option<Vec<(String, GlobMatcher)>>,
    requires_approval: bool,
    /// Environments the release must have been deployed to first.
    pub requires: Vec<String>,
    /// Whether the branch must be verified, not only claimed (the default where branches
    /// are restricted).
    verified_branch: bool,
}

/// What a release brings to the policy check.
#[derive(Debug)]
pub struct Candidate<'a> {
    /// `release 42 (v1.2.3)`, for messages.
    pub description: &'a str,
    /// Every event that released it: what made it, and `tag` once a git tag names it.
    pub triggers: &'a [TriggerKind],
    /// The branch it was built from, if recorded.
    pub branch: Option<&'a str>,
    /// Whether that branch was verified to contain the commit.
    pub branch_verified: bool,
    /// Who approved this deploy.
    pub approved_by: Option<&'a str>,
    /// The required environments this release is, or has been, deployed to.
    pub deployed_in: &'a BTreeSet<String>,
}

/// One rule a deploy broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule's key in the policy file.
    pub rule: &'static str,
    /// What the rule wants and what the release has.
    pub detail: String,
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

    /// Parses and checks policy text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: PolicyFile = forge_release::yaml::from_str(text)
            .map_err(|e| forge_release::yaml::error_summary(&e))?;
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
            environments.insert(
                name.clone(),
                EnvironmentPolicy {
                    allowed_triggers: env.allowed_triggers.clone(),
                    allowed_branches: branches,
                    requires_approval: env.requires_approval,
                    requires: env.requires.clone(),
                    // `["*"]` restricts nothing: nothing to verify either.
                    verified_branch: env.verified_branch.unwrap_or(
                        env.allowed_branches.as_ref().is_some_and(|p| !p.iter().any(|p| p == "*")),
                    ),
                },
            );
        }
        Ok(Policy { environments, allow_unlisted: file.unlisted_environments == Unlisted::Allow })
    }

    /// The rules for `env`; an environment the policy does not list is denied unless the
    /// policy says `unlisted_environments: allow`.
    pub fn environment(&self, env: &str) -> Result<&EnvironmentPolicy, PolicyError> {
        static UNRESTRICTED: EnvironmentPolicy = EnvironmentPolicy {
            allowed_triggers: None,
            allowed_branches: None,
            requires_approval: false,
            requires: Vec::new(),
            verified_branch: false,
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

impl EnvironmentPolicy {
    /// Every rule the candidate breaks, in the order the policy file lists them.
    pub fn violations(&self, candidate: &Candidate<'_>) -> Vec<Violation> {
        let mut broken = Vec::new();
        let what = candidate.description;
        let triggers: Vec<&str> = candidate.triggers.iter().map(|t| t.as_str()).collect();
        match &self.allowed_triggers {
            Some(allowed) if !candidate.triggers.iter().any(|t| allowed.contains(t)) => {
                let allowed: Vec<&str> = allowed.iter().map(|t| t.as_str()).collect();
                broken.push(Violation {
                    rule: "allowed_triggers",
                    detail: format!(
                        "allows [{}]; {what} was released by [{}]",
                        allowed.join(", "),
                        triggers.join(", ")
                    ),
                });
            }
            // Pull request builds come from anyone's branch: only where listed.
            None if candidate.triggers.iter().all(|t| *t == TriggerKind::PullRequest) => {
                broken.push(Violation {
                    rule: "allowed_triggers",
                    detail: format!(
                        "admits pull_request releases only when it lists them; {what} was built for a pull request"
                    ),
                });
            }
            _ => {}
        }
        if let Some(patterns) = &self.allowed_branches {
            let shown: Vec<&str> = patterns.iter().map(|(p, _)| p.as_str()).collect();
            let allows = format!("allows [{}]", shown.join(", "));
            match candidate.branch {
                Some(branch) if patterns.iter().any(|(_, m)| m.is_match(branch)) => {
                    if self.verified_branch && !candidate.branch_verified {
                        broken.push(Violation {
                            rule: "verified_branch",
                            detail: format!(
                                "needs the branch verified; {what} claims `{branch}` but nothing showed the commit is in it (built outside CI, or with --branch, from a checkout without that branch)"
                            ),
                        });
                    }
                }
                Some(branch) => broken.push(Violation {
                    rule: "allowed_branches",
                    detail: format!("{allows}; {what} was built from branch `{branch}`"),
                }),
                None => broken.push(Violation {
                    rule: "allowed_branches",
                    detail: format!("{allows}; {what} records no branch"),
                }),
            }
        }
        if self.requires_approval && candidate.approved_by.is_none_or(str::is_empty) {
            broken.push(Violation {
                rule: "requires_approval",
                detail: "needs an approver and none was given".into(),
            });
        }
        for required in &self.requires {
            if !candidate.deployed_in.contains(required) {
                broken.push(Violation {
                    rule: "requires",
                    detail: format!("{what} has never been deployed to `{required}`"),
                });
            }
        }
        broken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../plugin/policy.example.yaml");

    fn check(env: &str, candidate: &Candidate<'_>) -> Vec<&'static str> {
        let policy = Policy::parse(EXAMPLE).expect("example policy");
        policy
            .environment(env)
            .expect("listed")
            .violations(candidate)
            .iter()
            .map(|v| v.rule)
            .collect()
    }

    /// A candidate whose branch, if any, was verified.
    fn candidate<'a>(
        triggers: &'a [TriggerKind],
        branch: Option<&'a str>,
        approved_by: Option<&'a str>,
        deployed_in: &'a BTreeSet<String>,
    ) -> Candidate<'a> {
        Candidate {
            description: "release 7",
            triggers,
            branch,
            branch_verified: true,
            approved_by,
            deployed_in,
        }
    }

    #[test]
    fn each_rule_allows_and_denies() {
        let none = BTreeSet::new();
        let staged: BTreeSet<String> = ["staging".to_owned()].into();
        let push = &[TriggerKind::BranchPush][..];
        assert!(check("dev", &candidate(push, Some("feature/x"), None, &none)).is_empty());
        assert!(check("staging", &candidate(push, Some("release/1.2"), None, &none)).is_empty());
        assert_eq!(
            check("staging", &candidate(push, Some("feature/x"), None, &none)),
            ["allowed_branches"]
        );
        assert_eq!(check("staging", &candidate(push, None, None, &none)), ["allowed_branches"]);
        let tag = &[TriggerKind::Tag][..];
        assert!(
            check("production", &candidate(tag, Some("main"), Some("bob"), &staged)).is_empty()
        );
        assert_eq!(
            check("production", &candidate(push, Some("main"), None, &none)),
            ["allowed_triggers", "requires_approval", "requires"]
        );
        assert_eq!(
            check("production", &candidate(tag, Some("main"), Some(""), &staged)),
            ["requires_approval"]
        );
    }

    /// Issue 16: merge, then tag, then promote: a release made by a branch push and tagged
    /// later counts as tagged.
    #[test]
    fn a_release_tagged_after_its_push_meets_a_tag_rule() {
        let staged: BTreeSet<String> = ["staging".to_owned()].into();
        let pushed_then_tagged = &[TriggerKind::BranchPush, TriggerKind::Tag][..];
        assert!(
            check("production", &candidate(pushed_then_tagged, Some("main"), Some("bob"), &staged))
                .is_empty()
        );
    }

    /// Issue 16: pull request builds pass no environment that does not list them, and a
    /// claimed branch is not a verified one where branches are restricted.
    #[test]
    fn pull_requests_and_unverified_branches_are_denied_unless_allowed() {
        let none = BTreeSet::new();
        let pr = &[TriggerKind::PullRequest][..];
        assert_eq!(check("dev", &candidate(pr, Some("main"), None, &none)), ["allowed_triggers"]);
        let open = Policy::parse(
            "environments:\n  preview: {}\n  listed: {allowed_triggers: [pull_request]}\n",
        )
        .expect("policy");
        let rules = |env: &str| {
            open.environment(env).expect("listed").violations(&candidate(
                pr,
                Some("x"),
                None,
                &none,
            ))
        };
        assert_eq!(rules("preview").len(), 1);
        assert!(rules("listed").is_empty());

        let push = &[TriggerKind::BranchPush][..];
        let claimed =
            Candidate { branch_verified: false, ..candidate(push, Some("main"), None, &none) };
        assert_eq!(check("staging", &claimed), ["verified_branch"]);
        assert!(check("dev", &claimed).is_empty(), "dev allows every branch: a claim will do");
        let relaxed = Policy::parse(
            "environments:\n  s: {allowed_branches: [main], verified_branch: false}\n",
        )
        .expect("policy");
        assert!(relaxed.environment("s").expect("listed").violations(&claimed).is_empty());
    }

    #[test]
    fn branch_patterns_are_whole_name_globs_and_regular_expressions_are_refused() {
        let policy =
            Policy::parse("environments:\n  s: {allowed_branches: [main, \"release/*\"]}\n")
                .expect("globs");
        let none = BTreeSet::new();
        let push = &[TriggerKind::BranchPush][..];
        let rules = policy.environment("s").expect("listed");
        assert!(rules.violations(&candidate(push, Some("release/1/2"), None, &none)).is_empty());
        assert!(!rules.violations(&candidate(push, Some("maintenance"), None, &none)).is_empty());
        let refused = Policy::parse("environments:\n  s: {allowed_branches: [\"release/.*\"]}\n")
            .expect_err("a regular expression");
        assert!(
            refused.contains("looks like a regular expression") && refused.contains("`release/*`"),
            "{refused}"
        );
    }

    #[test]
    fn violations_say_what_the_rule_wants_and_what_the_release_has() {
        let policy = Policy::parse(EXAMPLE).expect("example policy");
        let none = BTreeSet::new();
        let found = policy.environment("production").expect("listed").violations(&candidate(
            &[TriggerKind::BranchPush],
            Some("dev"),
            None,
            &none,
        ));
        let details: Vec<&str> = found.iter().map(|v| v.detail.as_str()).collect();
        assert_eq!(
            details,
            [
                "allows [tag, manual]; release 7 was released by [branch_push]",
                "allows [main]; release 7 was built from branch `dev`",
                "needs an approver and none was given",
                "release 7 has never been deployed to `staging`",
            ]
        );
    }

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
            serde_json::from_str(include_str!("../../plugin/policy.schema.json")).expect("json");
        let keys = |v: &serde_json::Value| -> Vec<String> {
            v.as_object().expect("object").keys().cloned().collect()
        };
        assert_eq!(
            keys(&schema["properties"]),
            ["environments", "unlisted_environments", "pointers"]
        );
        let env = &schema["$defs"]["environment"]["properties"];
        assert_eq!(
            keys(env),
            [
                "allowed_triggers",
                "allowed_branches",
                "requires_approval",
                "requires",
                "verified_branch"
            ]
        );
        let triggers: Vec<TriggerKind> =
            serde_json::from_value(env["allowed_triggers"]["items"]["enum"].clone())
                .expect("every trigger in the schema parses");
        assert_eq!(triggers.len(), 4);
        let full = "environments:\n  a: {allowed_triggers: [branch_push, tag, manual], \
                    allowed_branches: [main], requires_approval: true, requires: [b], \
                    verified_branch: true}\n  b: {}\n\
                    unlisted_environments: allow\npointers: by-repository\n";
        Policy::parse(full).expect("every schema key parses");
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
}
