//! Approvals that mean something: a record of who approved which release (by digest) for
//! which environment, and why, signed with the approver's SSH key the way git signs commits
//! (`ssh-keygen -Y sign`, namespace [`NAMESPACE`]) and verified against an allowed-signers
//! file kept in the GitOps repository (git's `gpg.ssh.allowedSignersFile` format). Records
//! live at `approvals/<env>/<repository>/<project>/<digest hex>/<approver>.yaml`, each with
//! its `.sig`; only committed ones count, so the repository's history is the audit trail.

mod signers;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use forge_release::Digest;
use serde::{Deserialize, Serialize};

use crate::gitops::{GitopsError, GitopsRepo};

pub use signers::{AllowedSigners, is_principal_name};

/// The signature namespace: a signature made for anything else never verifies as an approval.
pub const NAMESPACE: &str = "forge-pack-approval";

/// Where approval records live in the GitOps repository.
pub const DIR: &str = "approvals";

/// The allowed-signers file, relative to the GitOps repository's root, unless the policy says.
pub const DEFAULT_ALLOWED_SIGNERS: &str = "allowed_signers";

/// Why an approval cannot be made or read.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// ssh-keygen is missing or failed to run.
    #[error("cannot run ssh-keygen: {0}")]
    Unavailable(std::io::Error),
    /// Signing failed.
    #[error("ssh-keygen could not sign with {}: {stderr}", key.display())]
    Sign {
        /// The key.
        key: PathBuf,
        /// What it said.
        stderr: String,
    },
    /// The new approval does not verify against the allowed signers.
    #[error("the approval signed with {} does not verify as {approver} against {}: {stderr}", key.display(), signers.display())]
    NotAllowed {
        /// The key.
        key: PathBuf,
        /// The approver.
        approver: String,
        /// The allowed-signers file.
        signers: PathBuf,
        /// What ssh-keygen said.
        stderr: String,
    },
    /// Nobody to record as the approver, or no key to sign with.
    #[error("{0}")]
    Missing(String),
    /// The approver is not one of the environment's approvers.
    #[error("{approver} may not approve for {env}: its policy lists approvers {}", listed.join(", "))]
    NotAnApprover {
        /// The approver.
        approver: String,
        /// The environment.
        env: String,
        /// Who may.
        listed: Vec<String>,
    },
    /// The checkout failed.
    #[error(transparent)]
    Gitops(#[from] GitopsError),
}

impl ApprovalError {
    /// The exit code: refusals of the policy are 7, missing input 2, tools and files 9.
    pub fn code(&self) -> u8 {
        match self {
            ApprovalError::Gitops(e) => e.code(),
            ApprovalError::NotAnApprover { .. } | ApprovalError::NotAllowed { .. } => {
                crate::exit::DENIED
            }
            ApprovalError::Missing(_) => crate::exit::INPUT,
            ApprovalError::Unavailable(_) | ApprovalError::Sign { .. } => crate::exit::LOCAL,
        }
    }

    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        match self {
            ApprovalError::Gitops(e) => e.hint(),
            ApprovalError::NotAllowed { approver, signers, key, .. } => Some(format!(
                "add `{approver} <the public key of {}>` to {} (git's allowed-signers format), reviewed like any change to the policy",
                key.display(),
                signers.display()
            )),
            ApprovalError::Unavailable(_) => {
                Some("install OpenSSH's ssh-keygen (Debian: openssh-client)".into())
            }
            _ => None,
        }
    }
}

/// What an approver signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Approval {
    /// `forge.dev/v1alpha1`.
    pub api_version: String,
    /// `Approval`.
    pub kind: String,
    /// The environment approved for.
    pub environment: String,
    /// The release's repository.
    pub repository: String,
    /// The release's project.
    pub project: String,
    /// The release's number, for people.
    pub release: u64,
    /// The release, exactly: its manifest digest.
    pub digest: Digest,
    /// Its commit.
    pub commit: String,
    /// Who approves: the principal of the allowed-signers file.
    pub approver: String,
    /// Why.
    pub justification: String,
    /// When, RFC 3339.
    pub approved_at: String,
}

impl Approval {
    /// The record's path in the repository.
    pub fn path(&self) -> String {
        record_path(
            &self.environment,
            &self.repository,
            &self.project,
            &self.digest,
            &self.approver,
        )
    }

    /// The bytes signed and committed.
    pub fn to_yaml(&self) -> String {
        forge_release::yaml::to_string(self).expect("an approval serialises")
    }
}

/// `approvals/<env>/<repository>/<project>/<digest hex>/`.
pub fn release_dir(env: &str, repository: &str, project: &str, digest: &Digest) -> String {
    format!("{DIR}/{env}/{repository}/{project}/{}", digest.hex())
}

fn record_path(
    env: &str,
    repository: &str,
    project: &str,
    digest: &Digest,
    approver: &str,
) -> String {
    // A principal is often an email address: kept readable, anything else replaced.
    let file: String = approver
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._@+-".contains(c) { c } else { '_' })
        .collect();
    let file = file.trim_start_matches('.');
    format!("{}/{file}.yaml", release_dir(env, repository, project, digest))
}

/// Signs `message` (the file at `path`) with `key`, leaving `<path>.sig` beside it.
pub fn sign(path: &Path, key: &Path) -> Result<(), ApprovalError> {
    // ssh-keygen leaves an existing signature file as it is: an approval made again (or over
    // someone's forgery) would keep the old signature.
    let mut sig = path.as_os_str().to_owned();
    sig.push(".sig");
    match std::fs::remove_file(&sig) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(ApprovalError::Sign { key: key.to_owned(), stderr: e.to_string() });
        }
        _ => {}
    }
    let output = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", NAMESPACE, "-f"])
        .arg(key)
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(ApprovalError::Unavailable)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(ApprovalError::Sign {
            key: key.to_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Whether `signature` is `principal`'s signature of `message` under [`NAMESPACE`], by a key
/// the allowed-signers file gives that principal; `Err` with ssh-keygen's reason when not.
pub fn verify(
    message: &[u8],
    signature: &[u8],
    principal: &str,
    signers: &Path,
) -> Result<(), String> {
    verify_in(message, signature, principal, signers, NAMESPACE)
}

fn verify_in(
    message: &[u8],
    signature: &[u8],
    principal: &str,
    signers: &Path,
    namespace: &str,
) -> Result<(), String> {
    use std::io::Write;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sig = dir.path().join("approval.sig");
    std::fs::write(&sig, signature).map_err(|e| e.to_string())?;
    let mut child = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-n", namespace, "-f"])
        .arg(signers)
        .arg("-I")
        .arg(principal)
        .arg("-s")
        .arg(&sig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ssh-keygen: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped");
    let message = message.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&message));
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    let _ = writer.join();
    if output.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr);
    let said = said.lines().next().unwrap_or("the signature does not verify").trim();
    Err(said.to_owned())
}

/// The namespace of a deployer's proof of their key: never valid as an approval.
pub const DEPLOYER_NAMESPACE: &str = "forge-pack-deployer";

/// Who a deployer is, proven by their key: the key (SSH wire form) and the principals the
/// allowed-signers file lists it for.
#[derive(Debug, Clone)]
pub struct Deployer {
    /// The key.
    pub key: Vec<u8>,
    /// Its principals.
    pub principals: Vec<String>,
}

/// Signs `message` with `key` (namespace [`DEPLOYER_NAMESPACE`]) and checks the signature
/// against the allowed signers: the deployer, or why they cannot be told.
pub fn identify(key: &Path, message: &[u8], signers: &AllowedSigners) -> Result<Deployer, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("deploy");
    std::fs::write(&path, message).map_err(|e| e.to_string())?;
    let output = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", DEPLOYER_NAMESPACE, "-f"])
        .arg(key)
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ssh-keygen: {e}"))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr);
        return Err(format!("ssh-keygen could not sign with {}: {}", key.display(), said.trim()));
    }
    let signature = std::fs::read(dir.path().join("deploy.sig")).map_err(|e| e.to_string())?;
    let signed_by = signers::signature_key(&signature)
        .ok_or_else(|| "the signature holds no readable key".to_owned())?;
    let principals = signers.principals_of(&signed_by);
    let Some(first) = principals.first() else {
        return Err(format!(
            "the key {} is not listed (by name) in the allowed-signers file",
            key.display()
        ));
    };
    verify_in(message, &signature, first, signers.path(), DEPLOYER_NAMESPACE)?;
    Ok(Deployer { key: signed_by, principals })
}

/// An approval found for a release, checked against its signature and the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Who it says approved (the file's name when the record cannot be read).
    pub approver: String,
    /// Why.
    pub justification: String,
    /// What is wrong with it, if anything: it then counts for nothing.
    pub problem: Option<String>,
    /// The key that signed it (SSH wire form), when it verifies.
    pub key: Vec<u8>,
}

/// Checks `signature` of `message` as `principal`'s approval: ssh-keygen verifies it against
/// the allowed signers, and the key that made it is listed for `principal` by name (not only
/// for a pattern such as `*@example.com`); the key, or why it does not count.
pub fn check(
    message: &[u8],
    signature: &[u8],
    principal: &str,
    signers: &AllowedSigners,
) -> Result<Vec<u8>, String> {
    if !is_principal_name(principal) {
        return Err(format!("{principal:?} is not a plain principal name"));
    }
    verify(message, signature, principal, signers.path())
        .map_err(|why| format!("its signature does not verify: {why}"))?;
    let key = signers::signature_key(signature)
        .ok_or_else(|| "its signature holds no readable key".to_owned())?;
    if !signers.names(principal, &key) {
        return Err(format!(
            "its key is listed only for a pattern or other names, not for {principal} by name"
        ));
    }
    Ok(key)
}

/// Every committed approval record of the release `digest` for `env`, each checked: its
/// signature (by `approver`, against the committed `signers`, see [`check`]), and that it
/// approves exactly this release for exactly this environment. Whether the approver may approve, and is not the deployer,
/// is the policy's to say.
pub fn found(
    repo: &GitopsRepo,
    env: &str,
    repository: &str,
    project: &str,
    digest: &Digest,
    signers: Option<&AllowedSigners>,
) -> Result<Vec<Found>, GitopsError> {
    let dir = release_dir(env, repository, project, digest);
    let files = repo.committed_files(&dir)?;
    let records: Vec<&(String, Vec<u8>)> =
        files.iter().filter(|(path, _)| path.ends_with(".yaml")).collect();
    let mut found = Vec::new();
    for (path, bytes) in records {
        let name = path.rsplit('/').next().unwrap_or(path).trim_end_matches(".yaml").to_owned();
        let signature = files.iter().find(|(p, _)| *p == format!("{path}.sig")).map(|(_, b)| b);
        let record: Result<Approval, String> = std::str::from_utf8(bytes)
            .map_err(|_| "not UTF-8".to_owned())
            .and_then(|text| forge_release::yaml::from_str(text).map_err(|e| e.to_string()));
        let Ok(record) = record else {
            found.push(Found {
                approver: name,
                justification: String::new(),
                problem: Some(format!("{path} is not an approval record")),
                key: Vec::new(),
            });
            continue;
        };
        let mut key = Vec::new();
        let problem = if record.digest != *digest {
            Some(format!("it approves another release ({})", record.digest))
        } else if record.environment != env {
            Some(format!("it approves for {}", record.environment))
        } else if record.project != project || record.repository != repository {
            Some(format!("it approves {}/{}", record.repository, record.project))
        } else if *path != record.path() {
            Some(format!("it lies at {path}, not where its approver's record goes"))
        } else {
            match (signature, signers) {
                (None, _) => Some("it is not signed".to_owned()),
                (Some(_), None) => Some("HEAD has no allowed-signers file".to_owned()),
                (Some(signature), Some(signers)) => {
                    match check(bytes, signature, &record.approver, signers) {
                        Ok(signer) => {
                            key = signer;
                            None
                        }
                        Err(why) => Some(why),
                    }
                }
            }
        };
        found.push(Found {
            approver: record.approver,
            justification: record.justification,
            problem,
            key,
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_go_where_their_release_environment_and_approver_say() {
        let digest = Digest::of(b"release");
        let path =
            record_path("production", "company/monorepo", "auth", &digest, "bob@example.com");
        assert_eq!(
            path,
            format!(
                "approvals/production/company/monorepo/auth/{}/bob@example.com.yaml",
                digest.hex()
            )
        );
        let odd = record_path("p", "r", "x", &digest, "../../etc/passwd");
        assert!(!odd.contains("/../") && odd.ends_with("/_.._etc_passwd.yaml"), "{odd}");
    }
}
