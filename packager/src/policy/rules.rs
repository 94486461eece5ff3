//! The rules of one environment, and every one a candidate release breaks.

use std::collections::BTreeSet;

use forge_release::metadata::TriggerKind;
use globset::GlobMatcher;

use crate::approvals::Found;

/// The rules of one environment. An absent list means no restriction; an empty one allows
/// nothing.
#[derive(Debug, Default)]
pub struct EnvironmentPolicy {
    /// Key files (in the GitOps repository) one of which must have signed the release and its
    /// provenance; the provenance's facts are then what the other rules check.
    pub signed_by: Vec<String>,
    pub(super) allowed_triggers: Option<Vec<TriggerKind>>,
    pub(super) allowed_branches: Option<Vec<(String, GlobMatcher)>>,
    /// Signed approvals the release needs, if any.
    pub approval: Option<ApprovalRule>,
    /// Environments the release must have been deployed to first.
    pub requires: Vec<String>,
    /// Whether the branch must be verified, not only claimed (the default where branches
    /// are restricted).
    pub(super) verified_branch: bool,
    /// Whether `deploy --auto` deploys here.
    pub auto_deploy: bool,
}

/// How many signed approvals, by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRule {
    /// Who may approve (the allowed-signers principals); `None`: anyone the allowed-signers
    /// file lists.
    pub approvers: Option<Vec<String>>,
    /// How many different approvers must.
    pub count: usize,
}

/// What the release's signatures say, checked against an environment's `signed_by:` keys.
#[derive(Debug, Clone, Default)]
pub struct SignedFacts {
    /// Whether one of the keys signed the release.
    pub signed: bool,
    /// The build provenance those keys signed.
    pub attested: Vec<crate::attestation::Attested>,
}

/// What a release brings to the policy check.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// `release 42 (v1.2.3)`, for messages.
    pub description: &'a str,
    /// Every event that released it: what made it, and `tag` once a git tag names it.
    pub triggers: &'a [TriggerKind],
    /// The branch it was built from, if recorded.
    pub branch: Option<&'a str>,
    /// Whether that branch was verified to contain the commit.
    pub branch_verified: bool,
    /// The approvals found for it in this environment, each checked (see
    /// [`crate::approvals::found`]).
    pub approvals: &'a [Found],
    /// Who deploys it (the actor, and git's name and email for them): none of them may
    /// approve it, under any name [`same_person`] takes for theirs.
    pub deployers: &'a [&'a str],
    /// The keys the allowed-signers file lists for the deployer's names: an approval signed
    /// with one of them is the deployer's, whatever name it gives.
    pub deployer_keys: &'a [Vec<u8>],
    /// Whether the deployer proved their key (needed where approvals are: names alone are
    /// whatever the deployer's own git configuration says).
    pub deployer_signed: bool,
    /// The required environments this release is, or has been, deployed to.
    pub deployed_in: &'a BTreeSet<String>,
    /// What its signatures say, where the environment names keys (`signed_by:`).
    pub signed: Option<&'a SignedFacts>,
}

/// One rule a deploy broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule's key in the policy file.
    pub rule: &'static str,
    /// What the rule wants and what the release has.
    pub detail: String,
}

/// Whether two names of people may be one person's: equal ignoring case, or one an email
/// address whose local part is the other (or both emails with one local part). Deliberately
/// wide: a self-approval must not pass as someone else's for want of a matching spelling.
pub fn same_person(a: &str, b: &str) -> bool {
    let forms = |name: &str| {
        let name = name.trim().to_lowercase();
        let local = name.split_once('@').map(|(local, _)| local.to_owned());
        [Some(name), local]
    };
    let a = forms(a);
    forms(b).iter().flatten().any(|form| a.iter().flatten().any(|other| other == form))
}

impl EnvironmentPolicy {
    /// The approvals that count, and a note on each found (why it does not count).
    fn judge_approvals<'c>(
        &self,
        rule: &ApprovalRule,
        candidate: &'c Candidate<'_>,
    ) -> (Vec<&'c Found>, Vec<String>) {
        let mut valid: Vec<&Found> = Vec::new();
        let mut notes = Vec::new();
        for approval in candidate.approvals {
            let who = &approval.approver;
            let problem = if let Some(problem) = &approval.problem {
                Some(problem.clone())
            } else if rule.approvers.as_ref().is_some_and(|listed| !listed.contains(who)) {
                Some("not an approver of this environment".to_owned())
            } else if candidate.deployers.iter().any(|d| same_person(d, who))
                || candidate.deployer_keys.contains(&approval.key)
            {
                Some("a self-approval (they deploy it)".to_owned())
            } else if let Some(earlier) = valid.iter().find(|v| v.key == approval.key) {
                Some(format!("approved already with the same key (as {})", earlier.approver))
            } else {
                // One person listed under two names with two keys approves once.
                valid.iter().find(|v| same_person(&v.approver, who)).map(|earlier| {
                    format!("approved already under another name ({})", earlier.approver)
                })
            };
            match problem {
                Some(problem) => notes.push(format!("{who}: {problem}")),
                None => {
                    notes.push(format!("{who}: valid"));
                    valid.push(approval);
                }
            }
        }
        (valid, notes)
    }

    /// The approvals of the candidate that count for this environment.
    pub fn valid_approvals<'c>(&self, candidate: &'c Candidate<'_>) -> Vec<&'c Found> {
        match &self.approval {
            Some(rule) => self.judge_approvals(rule, candidate).0,
            None => Vec::new(),
        }
    }

    /// Every rule the candidate breaks, in the order the policy file lists them. Where the
    /// environment names keys (`signed_by:`), the release must carry their signature and
    /// signed provenance, and the provenance's trigger and branch are what the rules check.
    pub fn violations(&self, candidate: &Candidate<'_>) -> Vec<Violation> {
        if self.signed_by.is_empty() {
            return self.rule_violations(candidate, Vec::new());
        }
        let what = candidate.description;
        let keys = self.signed_by.join(", ");
        let violation = |detail: String| Violation { rule: "signed_by", detail };
        match candidate.signed {
            Some(facts) if facts.signed && !facts.attested.is_empty() => {
                // Each signed statement is one build's facts: the release is admitted if one
                // of them is, never on a trigger from one and a branch from another.
                let judged = facts.attested.iter().map(|attested| {
                    let triggers = [attested.trigger];
                    let one = Candidate {
                        triggers: &triggers,
                        branch: attested.branch.as_deref(),
                        branch_verified: attested.branch_verified,
                        ..*candidate
                    };
                    self.rule_violations(&one, Vec::new())
                });
                judged.min_by_key(Vec::len).unwrap_or_default()
            }
            Some(facts) if facts.signed => self.rule_violations(
                candidate,
                vec![violation(format!(
                    "needs build provenance signed by one of [{keys}]; {what} is signed but carries none by them"
                ))],
            ),
            _ => self.rule_violations(
                candidate,
                vec![violation(format!(
                    "needs a signature by one of [{keys}]; {what} has none by them"
                ))],
            ),
        }
    }

    fn rule_violations(
        &self,
        candidate: &Candidate<'_>,
        mut broken: Vec<Violation>,
    ) -> Vec<Violation> {
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
        if let Some(rule) = &self.approval {
            let (valid, notes) = self.judge_approvals(rule, candidate);
            if !candidate.deployer_signed {
                broken.push(Violation {
                    rule: "requires_approval",
                    detail: "the deployer must sign the deploy with their key (--key, listed in the allowed-signers file), so that their own approval cannot count".into(),
                });
            } else if valid.len() < rule.count {
                let by = match &rule.approvers {
                    Some(listed) => format!(" by [{}]", listed.join(", ")),
                    None => String::new(),
                };
                let plural = if rule.count == 1 { "" } else { "s" };
                let found = if notes.is_empty() { "none".to_owned() } else { notes.join("; ") };
                broken.push(Violation {
                    rule: "requires_approval",
                    detail: format!(
                        "needs {} signed approval{plural} of {what}{by}, other than the deployer's; found {found}",
                        rule.count
                    ),
                });
            }
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
    use crate::policy::Policy;

    fn approved(by: &str) -> [Found; 1] {
        [Found {
            approver: by.into(),
            justification: "reviewed".into(),
            problem: None,
            key: by.as_bytes().to_vec(),
        }]
    }

    const EXAMPLE: &str = include_str!("../../../plugin/policy.example.yaml");

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
        approvals: &'a [Found],
        deployed_in: &'a BTreeSet<String>,
    ) -> Candidate<'a> {
        Candidate {
            description: "release 7",
            triggers,
            branch,
            branch_verified: true,
            approvals,
            deployers: &["alice"],
            deployer_keys: &[],
            deployer_signed: true,
            deployed_in,
            signed: None,
        }
    }

    #[test]
    fn each_rule_allows_and_denies() {
        let bob = approved("bob");
        let none = BTreeSet::new();
        let staged: BTreeSet<String> = ["staging".to_owned()].into();
        let push = &[TriggerKind::BranchPush][..];
        assert!(check("dev", &candidate(push, Some("feature/x"), &[], &none)).is_empty());
        assert!(check("staging", &candidate(push, Some("release/1.2"), &[], &none)).is_empty());
        assert_eq!(
            check("staging", &candidate(push, Some("feature/x"), &[], &none)),
            ["allowed_branches"]
        );
        assert_eq!(check("staging", &candidate(push, None, &[], &none)), ["allowed_branches"]);
        let tag = &[TriggerKind::Tag][..];
        assert!(check("production", &candidate(tag, Some("main"), &bob, &staged)).is_empty());
        assert_eq!(
            check("production", &candidate(push, Some("main"), &[], &none)),
            ["allowed_triggers", "requires_approval", "requires"]
        );
        assert_eq!(
            check("production", &candidate(tag, Some("main"), &[], &staged)),
            ["requires_approval"]
        );
    }

    /// Issue 16: merge, then tag, then promote: a release made by a branch push and tagged
    /// later counts as tagged.
    #[test]
    fn a_release_tagged_after_its_push_meets_a_tag_rule() {
        let bob = approved("bob");
        let staged: BTreeSet<String> = ["staging".to_owned()].into();
        let pushed_then_tagged = &[TriggerKind::BranchPush, TriggerKind::Tag][..];
        assert!(
            check("production", &candidate(pushed_then_tagged, Some("main"), &bob, &staged))
                .is_empty()
        );
    }

    /// Issue 16: pull request builds pass no environment that does not list them, and a
    /// claimed branch is not a verified one where branches are restricted.
    #[test]
    fn pull_requests_and_unverified_branches_are_denied_unless_allowed() {
        let none = BTreeSet::new();
        let pr = &[TriggerKind::PullRequest][..];
        assert_eq!(check("dev", &candidate(pr, Some("main"), &[], &none)), ["allowed_triggers"]);
        let open = Policy::parse(
            "environments:\n  preview: {}\n  listed: {allowed_triggers: [pull_request]}\n",
        )
        .expect("policy");
        let rules = |env: &str| {
            open.environment(env).expect("listed").violations(&candidate(pr, Some("x"), &[], &none))
        };
        assert_eq!(rules("preview").len(), 1);
        assert!(rules("listed").is_empty());

        let push = &[TriggerKind::BranchPush][..];
        let claimed =
            Candidate { branch_verified: false, ..candidate(push, Some("main"), &[], &none) };
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
        assert!(rules.violations(&candidate(push, Some("release/1/2"), &[], &none)).is_empty());
        assert!(!rules.violations(&candidate(push, Some("maintenance"), &[], &none)).is_empty());
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
            &[],
            &none,
        ));
        let details: Vec<&str> = found.iter().map(|v| v.detail.as_str()).collect();
        assert_eq!(
            details,
            [
                "allows [tag, manual]; release 7 was released by [branch_push]",
                "allows [main]; release 7 was built from branch `dev`",
                "needs 1 signed approval of release 7, other than the deployer's; found none",
                "release 7 has never been deployed to `staging`",
            ]
        );
    }

    /// Issue 16: approvals count only when valid, by a listed approver, not the deployer,
    /// and as many different approvers as the policy asks.
    #[test]
    fn approvals_must_be_valid_listed_others_and_enough() {
        let policy = Policy::parse(
            "environments:\n  prod: {approvers: [bob, carol, alice], approvals: 2}\n",
        )
        .expect("policy");
        let rules = policy.environment("prod").expect("listed");
        let none = BTreeSet::new();
        let tag = &[TriggerKind::Tag][..];
        let found = |who: &str, problem: Option<&str>| Found {
            approver: who.into(),
            justification: "ok".into(),
            problem: problem.map(str::to_owned),
            key: who.as_bytes().to_vec(),
        };
        let two = [found("bob", None), found("carol", None)];
        assert!(rules.violations(&candidate(tag, None, &two, &none)).is_empty());
        for (set, note) in [
            (
                [found("bob", None), found("bob", None)],
                "bob: approved already with the same key (as bob)",
            ),
            ([found("bob", None), found("alice", None)], "alice: a self-approval (they deploy it)"),
            (
                [found("bob", None), found("mallory", None)],
                "mallory: not an approver of this environment",
            ),
            (
                [found("bob", None), found("carol", Some("it approves for staging"))],
                "carol: it approves for staging",
            ),
        ] {
            let broken = rules.violations(&candidate(tag, None, &set, &none));
            assert_eq!(broken.len(), 1, "{note}");
            assert!(
                broken[0]
                    .detail
                    .contains("needs 2 signed approvals of release 7 by [bob, carol, alice]"),
                "{}",
                broken[0].detail
            );
            assert!(broken[0].detail.contains(note), "{}", broken[0].detail);
        }
        let refused = Policy::parse("environments:\n  p: {approvers: [bob], approvals: 2}\n")
            .expect_err("more approvals than approvers");
        assert!(refused.contains("needs 2 approvals but lists 1 approvers"), "{refused}");
    }

    /// One person under another spelling, or signing with a key listed for the deployer, is
    /// still the deployer; one key approves once, whatever names it is listed under.
    #[test]
    fn a_deployer_is_known_by_every_name_and_key() {
        assert!(same_person("alice", "Alice@Example.com"));
        assert!(same_person("alice@corp.example", "alice@example.com"));
        assert!(!same_person("alice", "alicia@example.com"));
        let policy = Policy::parse("environments:\n  prod: {approvals: 2}\n").expect("policy");
        let rules = policy.environment("prod").expect("listed");
        let none = BTreeSet::new();
        let tag = &[TriggerKind::Tag][..];
        let signed = |who: &str, key: &str| Found {
            approver: who.into(),
            justification: "ok".into(),
            problem: None,
            key: key.as_bytes().to_vec(),
        };
        let approvals =
            [signed("al", "alice-key"), signed("bob", "bob-key"), signed("b", "bob-key")];
        let alice_keys = [b"alice-key".to_vec()];
        let alices =
            Candidate { deployer_keys: &alice_keys, ..candidate(tag, None, &approvals, &none) };
        let broken = rules.violations(&alices);
        assert_eq!(broken.len(), 1);
        let detail = &broken[0].detail;
        assert!(detail.contains("al: a self-approval (they deploy it)"), "{detail}");
        assert!(detail.contains("b: approved already with the same key (as bob)"), "{detail}");
        let twice = [signed("bob@example.com", "k1"), signed("bob@corp.example", "k2")];
        let broken = rules.violations(&candidate(tag, None, &twice, &none));
        assert!(
            broken[0].detail.contains("bob@corp.example: approved already under another name"),
            "{}",
            broken[0].detail
        );
    }

    /// Issue 17: facts from two signed builds never combine: a trigger one build attested
    /// and a branch another did admit nothing, in either order.
    #[test]
    fn signed_facts_are_judged_one_build_at_a_time() {
        use crate::attestation::Attested;
        let policy = Policy::parse(
            "environments:\n  prod: {signed_by: [ci.pub], allowed_triggers: [branch_push], allowed_branches: [main]}\n",
        )
        .expect("policy");
        let rules = policy.environment("prod").expect("listed");
        let none = BTreeSet::new();
        let built = |trigger, branch: &str| Attested {
            trigger,
            branch: Some(branch.into()),
            branch_verified: true,
            tag: None,
        };
        let feature = built(TriggerKind::BranchPush, "feature/x");
        let manual = built(TriggerKind::Manual, "main");
        for attested in [vec![feature.clone(), manual.clone()], vec![manual, feature]] {
            let facts = SignedFacts { signed: true, attested };
            let signed = Candidate { signed: Some(&facts), ..candidate(&[], None, &[], &none) };
            assert!(!rules.violations(&signed).is_empty());
        }
        let main =
            SignedFacts { signed: true, attested: vec![built(TriggerKind::BranchPush, "main")] };
        let signed = Candidate { signed: Some(&main), ..candidate(&[], None, &[], &none) };
        assert!(rules.violations(&signed).is_empty());
    }
}
