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
