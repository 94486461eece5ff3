//! Running the binary in a clean, controlled environment.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The fixed source facts used for reproducible builds outside git.
pub const COMMIT: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
pub const COMMIT_TIME: &str = "2024-05-01T12:00:00Z";

pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

/// A temporary home for one test: its own store and working copies.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox {
            dir: tempfile::Builder::new().prefix("forge-pack-it-").tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The store every command of this sandbox uses.
    pub fn store(&self) -> String {
        format!("oci:{}", self.path().join("store").display())
    }

    /// Copies a testdata project into the sandbox (outside any git checkout).
    pub fn project(&self, name: &str) -> PathBuf {
        let target = self.path().join(name);
        copy_tree(&testdata().join("projects").join(name), &target, false);
        target
    }

    /// `forge-pack <args>` with a clean environment: no CI variables, the sandbox store.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run forge-pack")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_forge-pack"));
        command.args(args);
        self.environment(command)
    }

    /// Any program (`script` wrapping forge-pack, say) in the sandbox's clean environment.
    pub fn environment(&self, mut command: Command) -> Command {
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("FORGE_REGISTRY", self.store())
            .env("TZ", "UTC")
            .current_dir(self.path());
        command
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "forge-pack {args:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8 stdout")
    }

    /// Runs and expects failure with `code`; returns stderr with the sandbox path hidden.
    pub fn fails(&self, code: i32, args: &[&str]) -> String {
        let output = self.run(args);
        assert_eq!(
            output.status.code(),
            Some(code),
            "forge-pack {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.stdout.is_empty(), "a failed command printed to stdout");
        self.hide_paths(&String::from_utf8_lossy(&output.stderr))
    }

    pub fn hide_paths(&self, text: &str) -> String {
        text.replace(&self.path().display().to_string(), "[SANDBOX]")
    }
}

/// The flags that pin a build's source facts.
pub fn pinned() -> Vec<&'static str> {
    vec![
        "--commit",
        COMMIT,
        "--commit-time",
        COMMIT_TIME,
        "--author",
        "Ada Lovelace <ada@example.com>",
        "--message",
        "Add auth-service",
        "--branch",
        "main",
        "--source-url",
        "https://git.example.com/company/monorepo",
    ]
}

/// `push -C <project>` with the pinned source facts, for `commit`.
pub fn push_args<'a>(project: &'a str, commit: &'a str) -> Vec<&'a str> {
    let mut args = vec!["push", "-C", project];
    args.extend(pinned());
    args[4] = commit;
    args
}

/// Copies a directory tree; `reverse` creates entries in reverse order so directory listing
/// order differs from the original.
pub fn copy_tree(from: &Path, to: &Path, reverse: bool) {
    std::fs::create_dir_all(to).expect("mkdir");
    let mut entries: Vec<_> =
        std::fs::read_dir(from).expect("read_dir").map(|e| e.expect("entry").path()).collect();
    entries.sort();
    if reverse {
        entries.reverse();
    }
    for path in entries {
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_tree(&path, &target, reverse);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

/// Runs git in `dir` with a fixed identity and dates.
pub fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Grace Hopper")
        .env("GIT_AUTHOR_EMAIL", "grace@example.com")
        .env("GIT_COMMITTER_NAME", "Grace Hopper")
        .env("GIT_COMMITTER_EMAIL", "grace@example.com")
        .env("GIT_AUTHOR_DATE", "2024-05-01T12:00:00Z")
        .env("GIT_COMMITTER_DATE", "2024-05-01T12:00:00Z")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .status()
        .expect("git is required for these tests");
    assert!(status.success(), "git {args:?} failed");
}
