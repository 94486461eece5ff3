//! The allowed-signers file (git's `gpg.ssh.allowedSignersFile` format) as HEAD of the GitOps
//! repository has it, and what an approval needs of it beyond ssh-keygen's verdict: the key
//! that signed, listed for the approver by name. ssh-keygen accepts a line whose principal is
//! a pattern (`*@example.com`) or several names (`bob,bob@example.com`); an approval counts
//! only under a name the line spells out, and once per key, whatever names it is listed under.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::fsutil::LocalError;
use crate::gitops::{GitopsError, GitopsRepo};

/// A committed allowed-signers file, copied where ssh-keygen can read it.
#[derive(Debug)]
pub struct AllowedSigners {
    /// Keeps the copy alive.
    _dir: tempfile::TempDir,
    path: PathBuf,
    entries: Vec<Entry>,
}

/// One line: its principals and its public key (the SSH wire form).
#[derive(Debug)]
struct Entry {
    principals: Vec<String>,
    key: Vec<u8>,
}

impl AllowedSigners {
    /// The file at `rel` as HEAD has it; `None` when HEAD has none.
    pub fn committed(repo: &GitopsRepo, rel: &str) -> Result<Option<Self>, GitopsError> {
        let Some(bytes) = repo.committed_file(rel)? else {
            return Ok(None);
        };
        let dir = tempfile::tempdir().map_err(|e| LocalError::io(std::env::temp_dir(), e))?;
        let path = dir.path().join("allowed_signers");
        std::fs::write(&path, &bytes).map_err(|e| LocalError::io(&path, e))?;
        let entries = String::from_utf8_lossy(&bytes).lines().filter_map(parse_line).collect();
        Ok(Some(AllowedSigners { _dir: dir, path, entries }))
    }

    /// Where ssh-keygen reads it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether some line lists `key` for `principal` by that very name.
    pub fn names(&self, principal: &str, key: &[u8]) -> bool {
        self.entries.iter().any(|e| e.key == key && e.principals.iter().any(|p| p == principal))
    }

    /// The principals some line lists `key` for, by name.
    pub fn principals_of(&self, key: &[u8]) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| e.key == key)
            .flat_map(|e| e.principals.iter().filter(|p| is_principal_name(p)).cloned())
            .collect()
    }

    /// The keys listed for any principal `is_them` says is them.
    pub fn keys_of(&self, is_them: impl Fn(&str) -> bool) -> Vec<Vec<u8>> {
        self.entries
            .iter()
            .filter(|e| e.principals.iter().any(|p| is_them(p)))
            .map(|e| e.key.clone())
            .collect()
    }
}

/// A line's principals and key; `None` for blank lines, comments and lines it cannot read
/// (which then list nobody).
fn parse_line(line: &str) -> Option<Entry> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let tokens = tokens(line);
    let principals = tokens.first()?.trim_matches('"').split(',').map(str::to_owned).collect();
    // Options (quoted values may hold spaces) come before the key type and the key.
    // The first token is always the principals, whatever it looks like.
    let at = tokens.iter().skip(1).position(|t| is_key_type(t))? + 1;
    let key = STANDARD.decode(tokens.get(at + 1)?).ok()?;
    Some(Entry { principals, key })
}

/// Whitespace-separated tokens, double quotes keeping spaces inside one.
fn tokens(line: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

fn is_key_type(token: &str) -> bool {
    ["ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-"].iter().any(|p| token.starts_with(p))
}

/// The public key (SSH wire form) inside an armored SSH signature (`-Y sign`'s `.sig`).
pub fn signature_key(armored: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(armored).ok()?;
    let body: String = text
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "-----BEGIN SSH SIGNATURE-----")
        .skip(1)
        .take_while(|l| *l != "-----END SSH SIGNATURE-----")
        .collect();
    let blob = STANDARD.decode(body).ok()?;
    // "SSHSIG", a u32 version, then the public key as an SSH string (u32 length, bytes).
    let rest = blob.strip_prefix(b"SSHSIG")?.get(4..)?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    rest.get(4..4 + len).map(<[u8]>::to_vec)
}

/// Whether `name` can be an approver's principal: one plain name, nothing a pattern or a
/// commit message could read differently.
pub fn is_principal_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && !name.chars().any(|c| c.is_whitespace() || c.is_control() || "*?!,\"".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_give_their_principals_and_key_options_and_all() {
        let key = STANDARD.encode(b"key bytes");
        let plain = parse_line(&format!("bob@example.com,bob ssh-ed25519 {key} bob's laptop"))
            .expect("parses");
        assert_eq!(plain.principals, ["bob@example.com", "bob"]);
        assert_eq!(plain.key, b"key bytes");
        let options = parse_line(&format!(
            "carol namespaces=\"git,forge-pack-approval\" valid-after=\"20240101\" ssh-ed25519 {key}"
        ))
        .expect("parses");
        assert_eq!(options.principals, ["carol"]);
        assert!(parse_line("# a comment").is_none());
        let odd = parse_line(&format!("ssh-admin ssh-ed25519 {key}")).expect("parses");
        assert_eq!(odd.principals, ["ssh-admin"]);
        assert!(parse_line("dave not-a-key").is_none());
    }

    #[test]
    fn principal_names_are_plain() {
        assert!(is_principal_name("bob@example.com"));
        for bad in ["", "*@example.com", "bob,carol", "bob\nApproved by: eve", "a b", "!bob"] {
            assert!(!is_principal_name(bad), "{bad:?}");
        }
    }
}
