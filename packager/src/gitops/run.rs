//! Running `git` in the GitOps checkout.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::error::{Error, exit};

/// `git -C <dir> …`.
#[derive(Debug)]
pub(super) struct Git {
    pub(super) dir: PathBuf,
}

impl Git {
    pub(super) fn new(dir: PathBuf) -> Self {
        Git { dir }
    }

    pub(super) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("git");
        command.arg("-C").arg(&self.dir).args(args).stdin(Stdio::null());
        command
    }

    /// Runs git and returns what it did, whatever the exit status.
    pub(super) fn raw(&self, args: &[&str]) -> Result<Output, Error> {
        self.command(args).output().map_err(|e| {
            Error::input(format!("cannot run git: {e}"))
                .with_hint("install git; deploys are git commits")
        })
    }

    /// stdout when git succeeds, `None` when it fails (for questions such as "is this set").
    pub(super) fn output(&self, args: &[&str]) -> Result<Option<String>, Error> {
        let output = self.raw(args)?;
        Ok(output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned()))
    }

    /// stdout; a failure is an error carrying git's message.
    pub(super) fn checked(&self, args: &[&str]) -> Result<String, Error> {
        let output = self.raw(args)?;
        if !output.status.success() {
            let verb = args.iter().find(|a| !a.starts_with('-') && !a.contains('=')).unwrap_or(&"");
            return Err(Error::new(
                exit::STORE,
                format!(
                    "git {verb} in {} failed: {}",
                    self.dir.display(),
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}
