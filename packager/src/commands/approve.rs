//! `forge-pack approve`: a signed approval of one release (by digest) for one environment,
//! committed to the GitOps repository.

use forge_release::reference::ReleaseSelector;
use serde::Serialize;

use crate::access::Access;
use crate::approvals::{self, Approval, ApprovalError};
use crate::cli::{ApproveArgs, GlobalArgs};
use crate::commands::deploy::{is_bare_name, project_location};
use crate::deploy::{Chosen, check_segment};
use crate::error::{Error, exit};
use crate::gitops::{GitopsError, GitopsRepo, PushOutcome};
use crate::output::{Output, table};
use crate::policy::Policy;

/// How many times a push is tried when others keep pushing first.
const PUSH_ATTEMPTS: usize = 5;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ApprovalReport {
    environment: String,
    project: String,
    release: u64,
    digest: String,
    approver: String,
    justification: String,
    record: String,
    git_commit: String,
    pushed_to: Option<String>,
}

/// Now, RFC 3339 UTC.
fn now() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    forge_release::timefmt::rfc3339(seconds).unwrap_or_default()
}

/// Runs `approve`.
pub async fn run(args: &ApproveArgs, global: &GlobalArgs, output: &Output) -> Result<u8, Error> {
    let repo = GitopsRepo::open(&args.dir.gitops)?;
    let env = &args.environment;
    check_segment("environment", env)?;
    let access = Access::from_args(global)?;
    let (location, image) = project_location(&repo, &args.project, &access)?;
    let chosen =
        Chosen::fetch(&access, &location, image, ReleaseSelector::Id(args.release.clone())).await?;
    if is_bare_name(&args.project) && chosen.project() != args.project {
        return Err(GitopsError::WrongProject {
            location: location.to_string(),
            holds: chosen.project().to_owned(),
            wanted: args.project.clone(),
        }
        .into());
    }
    let policy = Policy::load_committed(&repo)?;
    let rules = policy.environment(env)?;
    let user = repo.git_user()?;
    let approver = args.approver.clone().or(user.email.clone()).ok_or_else(|| {
        ApprovalError::Missing(
            "who approves? pass --approver <principal> (as the allowed-signers file names you), or set git's user.email".into(),
        )
    })?;
    if let Some(listed) = rules.approval.as_ref().and_then(|r| r.approvers.as_ref())
        && !listed.contains(&approver)
    {
        return Err(ApprovalError::NotAnApprover {
            approver,
            env: env.clone(),
            listed: listed.clone(),
        }
        .into());
    }
    let key = match &args.key {
        Some(key) => key.clone(),
        None => repo.git_config("user.signingkey")?.map(Into::into).ok_or_else(|| {
            ApprovalError::Missing(
                "no key to sign with: pass --key <ssh private key> (or set git's user.signingkey)"
                    .into(),
            )
        })?,
    };
    let metadata = &chosen.metadata;
    let record = Approval {
        api_version: "forge.dev/v1alpha1".into(),
        kind: "Approval".into(),
        environment: env.clone(),
        repository: metadata.release.repository.clone(),
        project: metadata.release.project.clone(),
        release: metadata.release.number,
        digest: chosen.digest.clone(),
        commit: metadata.source.commit.clone(),
        approver: approver.clone(),
        justification: args.justification.clone(),
        approved_at: now(),
    };
    let _lock = repo.lock()?;
    let rel = record.path();
    let sig = format!("{rel}.sig");
    let previous = (repo.read_file(&rel)?, repo.read_file(&sig)?);
    let text = record.to_yaml();
    repo.write_file(&rel, text.as_bytes())?;
    let signers_path = repo.root().join(policy.allowed_signers());
    let signers = approvals::AllowedSigners::committed(&repo, policy.allowed_signers())?;
    let signed = approvals::sign(&repo.root().join(&rel), &key).and_then(|()| {
        let signature = repo.read_file(&sig).map_err(ApprovalError::from)?.unwrap_or_default();
        let checked = match &signers {
            Some(signers) => approvals::check(text.as_bytes(), &signature, &approver, signers),
            None => Err("HEAD has no allowed-signers file".to_owned()),
        };
        checked.map(drop).map_err(|stderr| ApprovalError::NotAllowed {
            key: key.clone(),
            approver: approver.clone(),
            signers: signers_path.clone(),
            stderr,
        })
    });
    if let Err(error) = signed {
        repo.restore_files(&[(&rel, previous.0.as_deref()), (&sig, previous.1.as_deref())]);
        return Err(error.into());
    }
    let message = format!(
        "Approve {} {} for {env}\n\nApproved by: {approver}\nJustification: {}\n\nDigest: {}\n",
        chosen.project(),
        chosen.describe(),
        args.justification,
        chosen.digest
    );
    let sha = repo.commit_files(
        &[(&rel, previous.0.as_deref()), (&sig, previous.1.as_deref())],
        &message,
        &user,
        &approver,
    )?;
    let mut report = ApprovalReport {
        environment: env.clone(),
        project: chosen.project().to_owned(),
        release: metadata.release.number,
        digest: chosen.digest.to_string(),
        approver,
        justification: args.justification.clone(),
        record: rel,
        git_commit: sha.clone(),
        pushed_to: None,
    };
    if args.push {
        match repo.push_catching_up(PUSH_ATTEMPTS)? {
            PushOutcome::Pushed { target } => report.pushed_to = Some(target),
            PushOutcome::Rejected { target } => {
                return Err(GitopsError::PushRejected {
                    what: format!("the approval of {} {}", chosen.project(), chosen.describe()),
                    sha,
                    target,
                    root: repo.root().to_owned(),
                }
                .into());
            }
        }
    }
    if output.json() {
        output.print_json(&report)?;
    } else {
        let mut rows = vec![
            vec!["record".to_owned(), report.record.clone()],
            vec!["digest".to_owned(), report.digest.clone()],
            vec!["git commit".to_owned(), report.git_commit.clone()],
        ];
        if let Some(target) = &report.pushed_to {
            rows.push(vec!["pushed to".into(), target.clone()]);
        }
        let body: String = table(&rows).lines().map(|l| format!("  {l}\n")).collect();
        output.print(&format!(
            "{} approved {} {} for {env}\n{body}",
            report.approver,
            report.project,
            chosen.describe()
        ))?;
    }
    Ok(exit::OK)
}
