//! What CI systems say about the build: GitHub Actions, GitLab CI, Jenkins and Buildkite.
//! Pull and merge requests are their own trigger: a fork's branch may be called `main`.

/// What CI variables say, if running in a known CI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CiContext {
    /// Which CI.
    pub name: &'static str,
    /// Commit SHA.
    pub commit: Option<String>,
    /// Branch: the pushed branch, or a pull request's head branch.
    pub branch: Option<String>,
    /// Tag, for tag pipelines.
    pub tag: Option<String>,
    /// Whether the pipeline was started by hand.
    pub manual: bool,
    /// Whether it builds a pull (merge) request rather than a push.
    pub pull_request: bool,
    /// Repository URL.
    pub url: Option<String>,
    /// Who started it.
    pub actor: Option<String>,
    /// The run's page.
    pub run_url: Option<String>,
}

/// Reads the variables of a known CI through `var`; `None` outside CI.
pub fn ci_context(var: impl Fn(&str) -> Option<String>) -> Option<CiContext> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    if set("GITHUB_ACTIONS").as_deref() == Some("true") {
        let event = set("GITHUB_EVENT_NAME");
        let pull_request = matches!(event.as_deref(), Some("pull_request" | "pull_request_target"));
        // Other events (workflow_run, issue_comment, repository_dispatch…) run on the default
        // branch's ref whatever code the job checks out: they say nothing of a branch or tag.
        let says_ref = pull_request
            || matches!(
                event.as_deref(),
                Some(
                    "push"
                        | "workflow_dispatch"
                        | "schedule"
                        | "merge_group"
                        | "release"
                        | "create"
                )
            );
        let is_tag = set("GITHUB_REF_TYPE").as_deref() == Some("tag");
        let ref_name = set("GITHUB_REF_NAME");
        let url = match (set("GITHUB_SERVER_URL"), set("GITHUB_REPOSITORY")) {
            (Some(server), Some(repo)) => Some(format!("{server}/{repo}")),
            _ => None,
        };
        let run_url = match (&url, set("GITHUB_RUN_ID")) {
            (Some(url), Some(run)) => Some(format!("{url}/actions/runs/{run}")),
            _ => None,
        };
        let branch = match (pull_request, is_tag) {
            _ if !says_ref => None,
            // A pull request builds a merge ref; its head branch is the meaningful one.
            (true, _) => set("GITHUB_HEAD_REF"),
            (false, true) => None,
            (false, false) => ref_name.clone(),
        };
        return Some(CiContext {
            name: "GitHub Actions",
            commit: set("GITHUB_SHA"),
            branch,
            tag: if is_tag && !pull_request && says_ref { ref_name } else { None },
            manual: event.as_deref() == Some("workflow_dispatch"),
            pull_request,
            url,
            actor: set("GITHUB_ACTOR"),
            run_url,
        });
    }
    if set("GITLAB_CI").as_deref() == Some("true") {
        let source = set("CI_PIPELINE_SOURCE");
        // A child or downstream pipeline of a merge request pipeline has another source but
        // still builds the merge request: its variables say so.
        let pull_request = matches!(
            source.as_deref(),
            Some("merge_request_event" | "external_pull_request_event")
        ) || [
            "CI_MERGE_REQUEST_IID",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME",
            "CI_EXTERNAL_PULL_REQUEST_IID",
        ]
        .iter()
        .any(|name| set(name).is_some());
        return Some(CiContext {
            name: "GitLab CI",
            commit: set("CI_COMMIT_SHA"),
            branch: if pull_request {
                set("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME")
                    .or_else(|| set("CI_EXTERNAL_PULL_REQUEST_SOURCE_BRANCH_NAME"))
            } else {
                set("CI_COMMIT_BRANCH")
            },
            tag: set("CI_COMMIT_TAG"),
            manual: matches!(source.as_deref(), Some("web" | "api" | "trigger")),
            pull_request,
            url: set("CI_PROJECT_URL"),
            actor: set("GITLAB_USER_LOGIN"),
            run_url: set("CI_PIPELINE_URL"),
        });
    }
    if set("BUILDKITE").as_deref() == Some("true") {
        let pull_request = set("BUILDKITE_PULL_REQUEST").is_some_and(|p| p != "false");
        return Some(CiContext {
            name: "Buildkite",
            commit: set("BUILDKITE_COMMIT"),
            branch: set("BUILDKITE_BRANCH"),
            tag: set("BUILDKITE_TAG"),
            manual: set("BUILDKITE_SOURCE").as_deref() == Some("ui"),
            pull_request,
            url: set("BUILDKITE_REPO"),
            actor: set("BUILDKITE_BUILD_CREATOR").or_else(|| set("BUILDKITE_BUILD_AUTHOR")),
            run_url: set("BUILDKITE_BUILD_URL"),
        });
    }
    if set("JENKINS_URL").is_some() {
        // Multibranch pipelines set BRANCH_NAME (CHANGE_* for pull requests); plain jobs
        // with the git plugin set GIT_BRANCH as `origin/<branch>`.
        let pull_request = set("CHANGE_ID").is_some();
        let branch = if pull_request {
            set("CHANGE_BRANCH")
        } else {
            set("BRANCH_NAME").or_else(|| {
                set("GIT_BRANCH").map(|b| {
                    let b = b.trim_start_matches("refs/heads/");
                    b.split_once('/')
                        .filter(|_| b.starts_with("origin/"))
                        .map_or(b, |(_, r)| r)
                        .to_owned()
                })
            })
        };
        let tag = set("TAG_NAME");
        return Some(CiContext {
            name: "Jenkins",
            commit: set("GIT_COMMIT"),
            branch: if tag.is_some() { None } else { branch },
            tag,
            manual: false,
            pull_request,
            url: set("GIT_URL"),
            actor: set("BUILD_USER_ID"),
            run_url: set("BUILD_URL"),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    pub(crate) fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn github_tag_branch_and_pull_request_pipelines() {
        let tag = ci_context(env(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_SHA", "abc"),
            ("GITHUB_REF_TYPE", "tag"),
            ("GITHUB_REF_NAME", "auth/v1.2.3"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "company/monorepo"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_ACTOR", "ada"),
        ]))
        .expect("github");
        assert_eq!(tag.tag.as_deref(), Some("auth/v1.2.3"));
        assert_eq!(tag.branch, None);
        assert_eq!(tag.url.as_deref(), Some("https://github.com/company/monorepo"));
        assert_eq!(
            tag.run_url.as_deref(),
            Some("https://github.com/company/monorepo/actions/runs/42")
        );
        assert_eq!(tag.actor.as_deref(), Some("ada"));
        let manual = ci_context(env(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REF_TYPE", "branch"),
            ("GITHUB_REF_NAME", "main"),
            ("GITHUB_EVENT_NAME", "workflow_dispatch"),
        ]))
        .expect("github");
        assert!(manual.manual && !manual.pull_request);
        assert_eq!(manual.branch.as_deref(), Some("main"));
        for event in ["pull_request", "pull_request_target"] {
            let pr = ci_context(env(&[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_EVENT_NAME", event),
                ("GITHUB_REF_NAME", "17/merge"),
                ("GITHUB_HEAD_REF", "main"),
            ]))
            .expect("github");
            assert!(pr.pull_request, "{event}");
            assert_eq!(pr.branch.as_deref(), Some("main"));
        }
        // A release event is a tag pipeline.
        let release = ci_context(env(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "release"),
            ("GITHUB_REF_TYPE", "tag"),
            ("GITHUB_REF_NAME", "v1.0.0"),
        ]))
        .expect("github");
        assert_eq!(release.tag.as_deref(), Some("v1.0.0"));
        // workflow_run and friends run on the default branch's ref, whatever they build.
        for event in ["workflow_run", "issue_comment", "repository_dispatch"] {
            let other = ci_context(env(&[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_EVENT_NAME", event),
                ("GITHUB_REF_TYPE", "branch"),
                ("GITHUB_REF_NAME", "main"),
            ]))
            .expect("github");
            assert_eq!((other.branch, other.tag), (None, None), "{event}");
        }
    }

    #[test]
    fn gitlab_jenkins_buildkite_and_no_ci() {
        let ci = ci_context(env(&[
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_BRANCH", "release/2"),
            ("CI_PIPELINE_SOURCE", "push"),
        ]))
        .expect("gitlab");
        assert_eq!(
            (ci.branch.as_deref(), ci.manual, ci.pull_request),
            (Some("release/2"), false, false)
        );
        let mr = ci_context(env(&[
            ("GITLAB_CI", "true"),
            ("CI_PIPELINE_SOURCE", "merge_request_event"),
            ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "main"),
        ]))
        .expect("gitlab");
        assert!(mr.pull_request);
        // A child pipeline of a merge request pipeline builds the merge request too.
        let child = ci_context(env(&[
            ("GITLAB_CI", "true"),
            ("CI_PIPELINE_SOURCE", "parent_pipeline"),
            ("CI_COMMIT_BRANCH", "main"),
            ("CI_MERGE_REQUEST_IID", "12"),
            ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "main"),
        ]))
        .expect("gitlab");
        assert!(child.pull_request);
        let jenkins = ci_context(env(&[
            ("JENKINS_URL", "https://ci.example.com/"),
            ("GIT_BRANCH", "origin/release/3"),
            ("GIT_COMMIT", "abc"),
        ]))
        .expect("jenkins");
        assert_eq!((jenkins.name, jenkins.branch.as_deref()), ("Jenkins", Some("release/3")));
        let pr = ci_context(env(&[
            ("JENKINS_URL", "https://ci.example.com/"),
            ("CHANGE_ID", "9"),
            ("CHANGE_BRANCH", "main"),
        ]))
        .expect("jenkins");
        assert!(pr.pull_request);
        let buildkite = ci_context(env(&[
            ("BUILDKITE", "true"),
            ("BUILDKITE_BRANCH", "main"),
            ("BUILDKITE_PULL_REQUEST", "false"),
        ]))
        .expect("buildkite");
        assert_eq!((buildkite.branch.as_deref(), buildkite.pull_request), (Some("main"), false));
        assert_eq!(ci_context(env(&[])), None);
    }
}
