//! Release references as users write them.
//!
//! - `oci:<dir>[:<id>]` — one project's OCI image layout directory (skopeo's syntax);
//! - `<host>/<repository>/<project>[:<id>]` — a registry (the first component has a `.` or
//!   `:` or is `localhost`, as docker decides);
//! - `<repository>/<project>[:<id>]` — the default store: the configured registry, else the
//!   embedded layout store.
//!
//! `<id>` is any release id (alias, number, SHA or SHA prefix) or `@sha256:<hex>`.

use std::fmt;
use std::path::PathBuf;

use crate::digest::Digest;

/// Where a store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreRoot {
    /// A directory holding one layout per project at `<root>/<repository>/<project>`.
    Layouts(PathBuf),
    /// An OCI registry host (with optional path prefix).
    Registry(String),
}

impl StoreRoot {
    /// Parses `oci:<dir>` or a registry host such as `registry.example.com[/prefix]`.
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        if let Some(registry) = text.strip_prefix("oci://").filter(|r| !r.starts_with('/')) {
            return Self::parse(registry).map_err(|e| ReferenceError::new(text, &e.reason));
        }
        if let Some(dir) = text.strip_prefix("oci:") {
            if dir.is_empty() {
                return Err(ReferenceError::new(
                    text,
                    "`oci:` needs a directory, e.g. `oci:./releases`",
                ));
            }
            return Ok(StoreRoot::Layouts(PathBuf::from(dir)));
        }
        let host = text.split('/').next().unwrap_or_default();
        if host.is_empty() || text.ends_with('/') || text.contains("://") {
            return Err(ReferenceError::new(
                text,
                "expected a registry host like `registry.example.com` or `oci:<dir>`",
            ));
        }
        Ok(StoreRoot::Registry(text.to_owned()))
    }
}

impl fmt::Display for StoreRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreRoot::Layouts(dir) => write!(f, "oci:{}", dir.display()),
            StoreRoot::Registry(host) => f.write_str(host),
        }
    }
}

/// One project's release stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectLocation {
    /// A single layout directory given as `oci:<dir>`.
    LayoutDir(PathBuf),
    /// `<repository>/<project>` inside a store root.
    InRoot {
        /// The store.
        root: StoreRoot,
        /// `<repository>/<project>`.
        path: String,
    },
}

impl fmt::Display for ProjectLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProjectLocation::LayoutDir(dir) => write!(f, "oci:{}", dir.display()),
            ProjectLocation::InRoot { root: StoreRoot::Layouts(dir), path } => {
                write!(f, "oci:{}", dir.join(path).display())
            }
            ProjectLocation::InRoot { root: StoreRoot::Registry(host), path } => {
                write!(f, "{host}/{path}")
            }
        }
    }
}

/// Which release of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseSelector {
    /// A release id to resolve (alias, number, SHA, SHA prefix).
    Id(String),
    /// An exact manifest digest.
    Digest(Digest),
}

impl fmt::Display for ReleaseSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseSelector::Id(id) => f.write_str(id),
            ReleaseSelector::Digest(d) => write!(f, "@{d}"),
        }
    }
}

/// A parsed reference: a project and optionally which release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRef {
    /// The project's release stream.
    pub project: ProjectLocation,
    /// The release, when given.
    pub release: Option<ReleaseSelector>,
}

/// A reference that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference `{text}`: {reason}")]
pub struct ReferenceError {
    /// The text given.
    pub text: String,
    /// What is wrong, with the expected form.
    pub reason: String,
}

impl ReferenceError {
    fn new(text: &str, reason: &str) -> Self {
        ReferenceError { text: text.to_owned(), reason: reason.to_owned() }
    }
}

impl ReleaseRef {
    /// Parses `text`; references without a store use `default_root`.
    pub fn parse(text: &str, default_root: &StoreRoot) -> Result<Self, ReferenceError> {
        // `oci://host/repo:tag`, as Argo CD, Flux and Helm write it, is a registry reference;
        // `oci:<dir>` (no `//`) a layout directory.
        if let Some(rest) = text.strip_prefix("oci://")
            && !rest.starts_with('/')
        {
            let parsed = Self::parse(rest, default_root)
                .map_err(|e| ReferenceError::new(text, &e.reason))?;
            if !matches!(
                &parsed.project,
                ProjectLocation::InRoot { root: StoreRoot::Registry(_), .. }
            ) || split_registry_host(rest).is_none()
            {
                return Err(ReferenceError::new(
                    text,
                    "`oci://` needs a registry host, e.g. `oci://registry.example.com/company/app:42`",
                ));
            }
            return Ok(parsed);
        }
        let (name, release) = split_release(text)?;
        if let Some(dir) = name.strip_prefix("oci:") {
            if dir.is_empty() {
                return Err(ReferenceError::new(
                    text,
                    "`oci:` needs a layout directory, e.g. `oci:./store/app:1`",
                ));
            }
            return Ok(ReleaseRef {
                project: ProjectLocation::LayoutDir(PathBuf::from(dir)),
                release,
            });
        }
        let (root, path) = match split_registry_host(name) {
            Some((host, rest)) => (StoreRoot::Registry(host.to_owned()), rest),
            None => (default_root.clone(), name),
        };
        check_path(text, path)?;
        Ok(ReleaseRef { project: ProjectLocation::InRoot { root, path: path.to_owned() }, release })
    }
}

/// Splits `host/path` when the first component names a registry host, as docker decides:
/// it contains a `.` or a `:`, or is `localhost`.
pub fn split_registry_host(name: &str) -> Option<(&str, &str)> {
    let (first, rest) = name.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then_some((first, rest))
}

fn split_release(text: &str) -> Result<(&str, Option<ReleaseSelector>), ReferenceError> {
    if let Some((name, digest)) = text.split_once('@') {
        let digest = digest.parse().map_err(|_| {
            ReferenceError::new(text, "the part after `@` must be `sha256:<64 hex>`")
        })?;
        // `repo:tag@sha256:…` (as crane and docker take it): the tag is for people, the
        // digest decides.
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let name = match name[last_slash..].rfind(':') {
            Some(i) if !(last_slash == 0 && name.starts_with("oci:") && i == 3) => {
                &name[..last_slash + i]
            }
            _ => name,
        };
        return Ok((name, Some(ReleaseSelector::Digest(digest))));
    }
    let last_slash = text.rfind('/').map_or(0, |i| i + 1);
    // `oci:dir` has its colon before any slash-free tail; only a colon in the last path
    // component separates a release id.
    match text[last_slash..].rfind(':') {
        Some(i) if !(last_slash == 0 && text.starts_with("oci:") && i == 3) => {
            let at = last_slash + i;
            let id = &text[at + 1..];
            if id.is_empty() {
                return Err(ReferenceError::new(text, "empty release id after `:`"));
            }
            Ok((&text[..at], Some(ReleaseSelector::Id(id.to_owned()))))
        }
        // The canonical release id `<repository>/<project>/<commit-sha>` (what build and push
        // print): the commit is the release. A layout directory is a path, not an id.
        _ if !text.starts_with("oci:")
            && last_slash > 0
            && crate::aliases::is_commit_sha(&text[last_slash..])
            && text[..last_slash - 1].contains('/') =>
        {
            let commit = text[last_slash..].to_owned();
            Ok((&text[..last_slash - 1], Some(ReleaseSelector::Id(commit))))
        }
        _ => Ok((text, None)),
    }
}

fn check_path(text: &str, path: &str) -> Result<(), ReferenceError> {
    let valid_component = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && c.as_bytes()[0].is_ascii_alphanumeric()
    };
    if !path.contains('/') || !path.split('/').all(valid_component) {
        return Err(ReferenceError::new(
            text,
            "expected `<repository>/<project>` in lowercase letters, digits, `.`, `_`, `-` (e.g. `company/app/api:42`)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> StoreRoot {
        StoreRoot::Layouts("/store".into())
    }

    #[test]
    fn parses_default_registry_and_layout_forms() {
        let r = ReleaseRef::parse("company/mono/auth:42", &root()).expect("valid");
        assert_eq!(
            r.project,
            ProjectLocation::InRoot { root: root(), path: "company/mono/auth".into() }
        );
        assert_eq!(r.release, Some(ReleaseSelector::Id("42".into())));

        let r = ReleaseRef::parse("127.0.0.1:5000/company/auth:v1.2", &root()).expect("valid");
        assert_eq!(r.project.to_string(), "127.0.0.1:5000/company/auth");
        assert_eq!(r.release, Some(ReleaseSelector::Id("v1.2".into())));

        let r = ReleaseRef::parse("oci:./out/auth:main-3", &root()).expect("valid");
        assert_eq!(r.project, ProjectLocation::LayoutDir("./out/auth".into()));
        let r = ReleaseRef::parse("oci:out", &root()).expect("valid");
        assert_eq!((r.project, r.release), (ProjectLocation::LayoutDir("out".into()), None));

        let digest = format!("sha256:{}", "ab".repeat(32));
        let r = ReleaseRef::parse(&format!("company/auth@{digest}"), &root()).expect("valid");
        assert_eq!(r.release, Some(ReleaseSelector::Digest(digest.parse().expect("digest"))));

        // The canonical release id build and push print.
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let r = ReleaseRef::parse(&format!("company/mono/auth/{sha}"), &root()).expect("valid");
        assert_eq!(r.project.to_string(), "oci:/store/company/mono/auth");
        assert_eq!(r.release, Some(ReleaseSelector::Id(sha.into())));
        let r = ReleaseRef::parse(&format!("registry.example.com/company/auth/{sha}"), &root())
            .expect("valid");
        assert_eq!(r.project.to_string(), "registry.example.com/company/auth");
        assert_eq!(r.release, Some(ReleaseSelector::Id(sha.into())));
    }

    /// Issue 18: the forms Argo CD, Flux, Helm, crane and docker write.
    #[test]
    fn oci_urls_and_tags_with_digests_are_registry_references() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let url = ReleaseRef::parse("oci://registry.example.com/company/auth:v1.2.3", &root())
            .expect("oci://");
        assert_eq!(url.project.to_string(), "registry.example.com/company/auth");
        assert_eq!(url.release, Some(ReleaseSelector::Id("v1.2.3".into())));
        let pinned =
            ReleaseRef::parse(&format!("registry.example.com/company/auth:v1@{digest}"), &root())
                .expect("tag@digest");
        assert_eq!(pinned.project.to_string(), "registry.example.com/company/auth");
        assert_eq!(pinned.release, Some(ReleaseSelector::Digest(digest.parse().expect("digest"))));
        let both =
            ReleaseRef::parse(&format!("oci://localhost:5000/company/auth:9@{digest}"), &root())
                .expect("both");
        assert_eq!(both.project.to_string(), "localhost:5000/company/auth");
        // `oci:///abs/dir` stays a layout directory (`oci:` + an absolute path).
        let layout = ReleaseRef::parse("oci:///srv/releases/auth:1", &root()).expect("layout");
        assert_eq!(layout.project, ProjectLocation::LayoutDir("//srv/releases/auth".into()));
        let refused = ReleaseRef::parse("oci://company/auth:1", &root()).expect_err("no host");
        assert!(refused.reason.contains("needs a registry host"), "{refused}");
        assert_eq!(
            StoreRoot::parse("oci://registry.example.com/prefix").expect("root"),
            StoreRoot::Registry("registry.example.com/prefix".into())
        );
    }

    #[test]
    fn rejects_malformed_references_with_the_expected_form() {
        for bad in
            ["auth", "Company/Auth:1", "company/auth:", "oci:", "a//b", "company/auth@sha256:zz"]
        {
            let err = ReleaseRef::parse(bad, &root()).expect_err(bad);
            assert_eq!(err.text, bad);
        }
    }
}
