//! The audit trail: what a pointer file said in each commit, and who changed it last.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::Stdio;

use forge_release::pointer::ReleasePointer;

use super::GitopsError;
use super::{GitopsRepo, parse_pointer};
use crate::git::GitError;

/// A pointer as one commit left it.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    /// The GitOps commit.
    pub git_commit: String,
    /// The pointer in that commit.
    pub pointer: ReleasePointer,
}

/// The latest commit that touched a pointer file.
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// The GitOps commit.
    pub git_commit: String,
    /// Committer time, ISO 8601.
    pub time: String,
    /// Who deployed: the `Deployed by:` / `Rolled back by:` line, else the commit author.
    pub actor: String,
    /// The `Approved by:` lines: each approver, with the justification.
    pub approvals: Vec<String>,
}

impl GitopsRepo {
    /// The pointer at `rel` in every commit of HEAD's history that changed it, newest first.
    /// Commits that deleted the file or left it unreadable are skipped: they deployed nothing.
    pub fn pointer_history(&self, rel: &str) -> Result<Vec<HistoryEntry>, GitopsError> {
        let Some(log) = self.git.output(&["log", "--format=%H", "--", rel])? else {
            return Ok(Vec::new()); // no commits yet
        };
        let commits: Vec<String> = log.lines().map(str::to_owned).collect();
        if commits.is_empty() {
            return Ok(Vec::new());
        }
        let requests: String = commits.iter().map(|c| format!("{c}:{rel}\n")).collect();
        let contents = self.cat_files(requests)?;
        Ok(commits
            .into_iter()
            .zip(contents)
            .filter_map(|(git_commit, content)| {
                let pointer = parse_pointer(&String::from_utf8_lossy(&content?)).ok()?;
                Some(HistoryEntry { git_commit, pointer })
            })
            .collect())
    }

    /// The last change to every file under `dir` in HEAD's history, by relative path.
    pub fn last_changes(&self, dir: &str) -> Result<BTreeMap<String, Change>, GitopsError> {
        let format = "--format=%x1e%H%x1f%cI%x1f%an%x1f%B%x1f";
        let Some(log) = self.git.output(&["log", format, "--name-only", "--", dir])? else {
            return Ok(BTreeMap::new());
        };
        let mut changes = BTreeMap::new();
        for record in log.split('\x1e').filter(|r| !r.trim().is_empty()) {
            let fields: Vec<&str> = record.splitn(5, '\x1f').collect();
            let [git_commit, time, author, message, names] = fields.as_slice() else {
                continue;
            };
            let actor = message
                .lines()
                .find_map(|l| {
                    l.strip_prefix("Deployed by: ").or_else(|| l.strip_prefix("Rolled back by: "))
                })
                .unwrap_or(author);
            let approvals: Vec<String> = message
                .lines()
                .filter_map(|l| l.strip_prefix("Approved by: "))
                .map(|a| a.trim().to_owned())
                .collect();
            for name in names.lines().map(str::trim).filter(|n| !n.is_empty()) {
                changes.entry(name.to_owned()).or_insert_with(|| Change {
                    git_commit: git_commit.to_string(),
                    time: time.to_string(),
                    actor: actor.trim().to_owned(),
                    approvals: approvals.clone(),
                });
            }
        }
        Ok(changes)
    }

    /// The file at `path` as HEAD has it; `None` when HEAD has no such file (or no commit).
    /// Policies and the allowed-signers file are read this way: an edit nobody committed (and
    /// so nobody reviewed) changes nothing.
    pub fn committed_file(&self, path: &str) -> Result<Option<Vec<u8>>, GitopsError> {
        if path.contains(['\n', '\r']) {
            return Ok(None);
        }
        if self.git.output(&["rev-parse", "--verify", "--quiet", "HEAD"])?.is_none() {
            return Ok(None); // no commits yet
        }
        Ok(self.cat_files(format!("HEAD:{path}\n"))?.pop().flatten())
    }

    /// Every file under `dir` as HEAD has it (committed, whatever the working tree says),
    /// with its bytes.
    pub fn committed_files(&self, dir: &str) -> Result<Vec<(String, Vec<u8>)>, GitopsError> {
        let Some(listed) = self.git.output(&["ls-tree", "-r", "--name-only", "HEAD", "--", dir])?
        else {
            return Ok(Vec::new()); // no commits yet
        };
        let paths: Vec<String> = listed.lines().map(str::to_owned).collect();
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let requests: String = paths.iter().map(|p| format!("HEAD:{p}\n")).collect();
        let contents = self.cat_files(requests)?;
        Ok(paths.into_iter().zip(contents).filter_map(|(p, c)| Some((p, c?))).collect())
    }

    /// `git cat-file --batch` for many `<commit>:<path>` requests in one process; `None` for
    /// objects that do not exist.
    fn cat_files(&self, requests: String) -> Result<Vec<Option<Vec<u8>>>, GitopsError> {
        let count = requests.lines().count();
        let mut child = self
            .git
            .command(&["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(GitError::Unavailable)?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        // Written from another thread so a large answer cannot fill the pipe and deadlock.
        let writer = std::thread::spawn(move || stdin.write_all(requests.as_bytes()));
        let mut out = Vec::new();
        child.stdout.take().expect("piped stdout").read_to_end(&mut out).map_err(git_io)?;
        let _ = writer.join();
        let status = child.wait().map_err(git_io)?;
        if !status.success() {
            return Err(GitError::Failed {
                verb: "cat-file".into(),
                dir: self.git.dir.clone(),
                stderr: status.to_string(),
            }
            .into());
        }
        parse_batch(&out, count).ok_or_else(|| {
            GitError::Unexpected { verb: "cat-file".into(), dir: self.git.dir.clone() }.into()
        })
    }
}

fn git_io(e: std::io::Error) -> GitopsError {
    GitError::Unavailable(e).into()
}

/// Splits `git cat-file --batch` output: `<oid> <type> <size>\n<bytes>\n` per object, or
/// `<request> missing\n`.
/// `None` when the output is not what was asked for.
fn parse_batch(mut out: &[u8], count: usize) -> Option<Vec<Option<Vec<u8>>>> {
    let mut results = Vec::with_capacity(count);
    for _ in 0..count {
        let end = out.iter().position(|b| *b == b'\n')?;
        let header = std::str::from_utf8(&out[..end]).ok()?;
        out = &out[end + 1..];
        if header.ends_with(" missing") || header.ends_with(" ambiguous") {
            results.push(None);
            continue;
        }
        let size: usize = header.rsplit(' ').next().and_then(|s| s.parse().ok())?;
        if out.len() < size + 1 {
            return None;
        }
        results.push(Some(out[..size].to_vec()));
        out = &out[size + 1..];
    }
    Some(results)
}

#[cfg(test)]
mod tests {
    #[test]
    fn batch_output_is_split_into_objects_and_gaps() {
        let out = b"abc blob 3\nx\ny\nHEAD:gone missing\ndef blob 0\n\n";
        let parsed = super::parse_batch(out, 3).expect("parse");
        assert_eq!(parsed, vec![Some(b"x\ny".to_vec()), None, Some(Vec::new())]);
        assert!(super::parse_batch(b"abc blob 9\nshort\n", 1).is_none());
    }
}
