//! Real peers the tests run against that `go install` puts in `$HOME/go/bin` (cosign, crane,
//! oras, kustomize; see scripts/install-deps.sh). A missing one fails the test, saying how to
//! install it.

use std::path::PathBuf;

/// The path of the Go tool `name`: `$GOBIN`, then `$HOME/go/bin`, then `PATH`.
pub fn go_tool(name: &str) -> PathBuf {
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join("go/bin"));
    let gobin = std::env::var_os("GOBIN").map(PathBuf::from);
    let path = std::env::var_os("PATH").unwrap_or_default();
    gobin
        .into_iter()
        .chain(home)
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is required for this test: run `make deps` (scripts/install-deps.sh installs it with go install)")
        })
}

/// `crane copy --insecure from to` (tags and digests as crane takes them), failing the test
/// with crane's message.
pub fn crane_copy(from: &str, to: &str) {
    let copied = std::process::Command::new(go_tool("crane"))
        .args(["copy", "--insecure", from, to])
        .output()
        .expect("crane");
    assert!(
        copied.status.success(),
        "crane copy {from} {to}: {}",
        String::from_utf8_lossy(&copied.stderr)
    );
}

/// An ECDSA P-256 key pair made by openssl in `dir`: (`<name>.key`, PKCS#8 PEM;
/// `<name>.pub`, PEM public key).
pub fn ecdsa_key_pair(dir: &std::path::Path, name: &str) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let made = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out '{0}' && openssl ec -in '{0}' -pubout -out '{1}' 2>/dev/null",
            private.display(),
            public.display()
        ))
        .status()
        .expect("openssl is required for this test (make deps installs it)");
    assert!(made.success(), "openssl could not make a key pair");
    (private, public)
}
