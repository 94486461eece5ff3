//! The pure part of moving a pointer: given the facts (the release, the pointer there now,
//! the environment's rules, where the release has run, who acts), what should happen.

use std::collections::BTreeSet;

use forge_release::pointer::ReleasePointer;

use super::{Action, Chosen};
use crate::approvals::Found;
use crate::policy::{Candidate, EnvironmentPolicy, PolicyError, Violation};

/// Everything the decision depends on, gathered from the checkout and the registry.
#[derive(Debug)]
pub struct Facts<'a> {
    /// `deploy` or `rollback`.
    pub action: Action,
    /// The environment.
    pub env: &'a str,
    /// The pointer's path in the checkout.
    pub rel: &'a str,
    /// The release to deploy.
    pub chosen: &'a Chosen,
    /// The pointer there now, if any.
    pub current: Option<&'a ReleasePointer>,
    /// The environment's rules.
    pub rules: &'a EnvironmentPolicy,
    /// The environments in `rules.requires` where the release runs or ran.
    pub deployed_in: &'a BTreeSet<String>,
    /// The signed approvals found for the release in this environment, each checked.
    pub approvals: &'a [Found],
    /// Who acts.
    pub actor: &'a str,
    /// Every name the deployer goes by (the actor, git's user name and email): none of them
    /// may approve.
    pub deployers: &'a [&'a str],
    /// The keys the allowed-signers file lists for them.
    pub deployer_keys: &'a [Vec<u8>],
    /// Whether the deployer proved their key.
    pub deployer_signed: bool,
    /// What the release's signatures say, where the environment names keys.
    pub signed: Option<&'a crate::policy::SignedFacts>,
}

/// What should happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The environment already runs the release.
    Unchanged,
    /// Write `pointer` and commit it with `message`.
    Change {
        /// The pointer's new content.
        pointer: Box<ReleasePointer>,
        /// The commit message.
        message: String,
    },
}

/// Decides: nothing to do, a change to commit, or a denial naming every broken rule.
pub fn plan(facts: &Facts<'_>) -> Result<Plan, PolicyError> {
    let next = facts.chosen.pointer();
    if let Some(current) = facts.current
        && current.same_release_as(&next)
        && current.spec.image == next.spec.image
    {
        return Ok(Plan::Unchanged);
    }
    let metadata = &facts.chosen.metadata;
    let short = format!("release {}", metadata.release.number);
    let trigger = &metadata.release.trigger;
    let branch = trigger.branch.as_deref().or(metadata.source.branch.as_deref());
    let candidate = Candidate {
        description: &short,
        triggers: &facts.chosen.triggers,
        branch,
        branch_verified: trigger.branch_verified,
        approvals: facts.approvals,
        deployers: facts.deployers,
        deployer_keys: facts.deployer_keys,
        deployer_signed: facts.deployer_signed,
        signed: facts.signed,
        deployed_in: facts.deployed_in,
    };
    let violations = facts.rules.violations(&candidate);
    if !violations.is_empty() {
        let missing: Vec<&String> =
            facts.rules.requires.iter().filter(|r| !facts.deployed_in.contains(*r)).collect();
        return Err(denial(facts, &violations, &missing));
    }
    let approvals = facts.rules.valid_approvals(&candidate);
    Ok(Plan::Change { message: commit_message(facts, &approvals), pointer: Box::new(next) })
}

/// The error for a denied deploy: every broken rule, and how to satisfy the ones a person can.
fn denial(
    facts: &Facts<'_>,
    violations: &[Violation],
    missing_environments: &[&String],
) -> PolicyError {
    let verb = match facts.action {
        Action::Deploy => "deploying",
        Action::Rollback => "rolling back to",
    };
    let (project, description) = (facts.chosen.project(), facts.chosen.describe());
    let mut hints = Vec::new();
    if violations.iter().any(|v| v.detail.starts_with("the deployer must sign")) {
        hints.push("pass --key <your SSH private key> (or set git's user.signingkey); the allowed-signers file must list its public key for you".into());
    } else if violations.iter().any(|v| v.rule == "requires_approval") {
        hints.push(format!(
            "an approver (not the deployer) signs an approval of this release: forge-pack approve {} {project} {} --justification \"...\" --key <ssh key>",
            facts.env, facts.chosen.metadata.release.number
        ));
    }
    for required in missing_environments {
        hints.push(format!(
            "deploy it to {required} first: forge-pack deploy {required} {project} {}",
            facts.chosen.metadata.release.number
        ));
    }
    PolicyError::Denied {
        env: facts.env.to_owned(),
        what: format!("{verb} {project} {description}"),
        pointer: facts.rel.to_owned(),
        violations: violations.to_vec(),
        hints,
    }
}

fn commit_message(facts: &Facts<'_>, approvals: &[&Found]) -> String {
    let (env, chosen, action, previous, actor) =
        (facts.env, facts.chosen, facts.action, facts.current, facts.actor);
    let project = chosen.project();
    let description = chosen.describe();
    let (subject, by) = match action {
        Action::Deploy => (format!("Deploy {project} {description} to {env}"), "Deployed by"),
        Action::Rollback => {
            (format!("Rollback {project} in {env} to {description}"), "Rolled back by")
        }
    };
    let previous = previous.map_or_else(|| "none".to_owned(), ReleasePointer::describe);
    let trigger = &chosen.metadata.release.trigger;
    let mut trigger_text = trigger.kind.as_str().to_owned();
    if let Some(detail) = trigger.tag.as_deref().or(trigger.branch.as_deref()) {
        trigger_text.push_str(&format!(" ({detail})"));
    }
    let mut lines = vec![subject, String::new(), format!("Previous release: {previous}")];
    lines.push(format!("{by}: {actor}"));
    for approval in approvals {
        let why = approval.justification.lines().next().unwrap_or_default();
        lines.push(format!("Approved by: {} ({why})", approval.approver));
    }
    lines.extend([
        String::new(),
        format!("Project: {project}"),
        format!("Environment: {env}"),
        format!("Release id: {}", chosen.metadata.release.id),
        format!("Commit: {}", chosen.metadata.source.commit),
        format!("Digest: {}", chosen.digest),
        format!("Image: {}", chosen.image),
        format!("Trigger: {trigger_text}"),
    ]);
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use forge_release::metadata::ReleaseMetadata;
    use forge_testkit::fixtures;

    use super::*;
    use crate::policy::Policy;

    fn chosen() -> Chosen {
        let image = fixtures::image();
        let mut metadata = ReleaseMetadata::parse(&image.metadata).expect("metadata");
        // Released on main by its CI.
        metadata.release.trigger.branch_verified = true;
        let triggers = vec![metadata.release.trigger.kind];
        Chosen {
            image: "registry.example.com/company/monorepo/auth-service".into(),
            digest: image.digest.clone(),
            metadata,
            triggers,
            store: forge_store::Store::Layout(forge_store::LayoutStore::new(std::path::Path::new(
                "/nonexistent",
            ))),
            verification: None,
        }
    }

    fn policy() -> Policy {
        Policy::parse(include_str!("../../../plugin/policy.example.yaml")).expect("policy")
    }

    fn facts<'a>(
        env: &'a str,
        chosen: &'a Chosen,
        current: Option<&'a ReleasePointer>,
        rules: &'a EnvironmentPolicy,
        deployed_in: &'a BTreeSet<String>,
        approvals: &'a [Found],
    ) -> Facts<'a> {
        Facts {
            action: Action::Deploy,
            env,
            rel: "envs/x/auth-service/release.yaml",
            chosen,
            current,
            rules,
            deployed_in,
            approvals,
            actor: "alice",
            deployers: &["alice", "alice@example.com"],
            deployer_keys: &[],
            deployer_signed: true,
            signed: None,
        }
    }

    fn approval(approver: &str, problem: Option<&str>) -> Found {
        Found {
            approver: approver.into(),
            justification: "Change CHG-42 reviewed".into(),
            problem: problem.map(str::to_owned),
            key: approver.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_deploy_the_policy_admits_plans_the_pointer_and_the_message() {
        let (chosen, policy, none) = (chosen(), policy(), BTreeSet::new());
        let rules = policy.environment("staging").expect("staging");
        let Plan::Change { pointer, message } =
            plan(&facts("staging", &chosen, None, rules, &none, &[])).expect("admitted")
        else {
            panic!("expected a change");
        };
        assert_eq!(*pointer, chosen.pointer());
        assert_eq!(pointer.spec.digest.as_ref(), Some(&chosen.digest));
        let lines: Vec<&str> = message.lines().collect();
        assert_eq!(lines[0], "Deploy auth-service release 7 (v1.2.3, main-7) to staging");
        assert!(lines.contains(&"Previous release: none"), "{message}");
        assert!(lines.contains(&"Deployed by: alice"), "{message}");
        assert!(lines.contains(&"Trigger: tag (auth-service/v1.2.3)"), "{message}");
    }

    #[test]
    fn the_same_release_is_unchanged_and_a_denial_names_every_rule() {
        let (chosen, policy, none) = (chosen(), policy(), BTreeSet::new());
        let staging = policy.environment("staging").expect("staging");
        let current = chosen.pointer();
        let same = facts("staging", &chosen, Some(&current), staging, &none, &[]);
        assert_eq!(plan(&same).expect("unchanged"), Plan::Unchanged);

        let production = policy.environment("production").expect("production");
        let denied = plan(&facts("production", &chosen, None, production, &none, &[]))
            .expect_err("needs approval and staging");
        assert_eq!(denied.code(), crate::error::exit::DENIED);
        let message = denied.to_string();
        assert!(
            message.contains("requires_approval: needs 1 signed approval of release 7, other than the deployer's; found none"),
            "{message}"
        );
        assert!(
            message.contains("requires: release 7 has never been deployed to `staging`"),
            "{message}"
        );
        let staged: BTreeSet<String> = ["staging".to_owned()].into();
        let found = [
            approval("alice@example.com", None),
            approval("mallory", Some("its signature does not verify: forged")),
            approval("bob", None),
        ];
        let approved = facts("production", &chosen, None, production, &staged, &found);
        let Plan::Change { message, .. } = plan(&approved).expect("admitted") else {
            panic!("expected a change");
        };
        assert!(message.contains("\nApproved by: bob (Change CHG-42 reviewed)\n"), "{message}");
        assert!(!message.contains("alice@example.com (") && !message.contains("mallory ("));

        // The deployer's own approval and a forged one count for nothing.
        let only_bad = [found[0].clone(), found[1].clone()];
        let denied = plan(&facts("production", &chosen, None, production, &staged, &only_bad))
            .expect_err("no valid approval");
        let message = denied.to_string();
        assert!(
            message.contains("alice@example.com: a self-approval (they deploy it)"),
            "{message}"
        );
        assert!(message.contains("mallory: its signature does not verify: forged"), "{message}");
    }
}
