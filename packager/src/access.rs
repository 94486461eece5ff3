//! Registry access settings (credentials, trust, the default store) and resolving release
//! references to the store and digest they name.

use std::io::BufRead;
use std::sync::OnceLock;

use forge_release::Digest;
use forge_release::aliases;
use forge_release::reference::{ProjectLocation, ReleaseRef, ReleaseSelector, StoreRoot};
use forge_store::Store;
use forge_store::registry::{Credentials, HostCredentials, PlainHttp, RegistryOptions, Secret};

use crate::cli::GlobalArgs;
use forge_release::aliases::ResolveError;
use forge_release::reference::ReferenceError;
use forge_store::StoreError;

use crate::exit;

/// A release, project or object that is not where it was looked for.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// `--username`/`--password-stdin` used wrongly.
    #[error("{message}")]
    Credentials {
        /// What is wrong.
        message: String,
        /// How to say it.
        hint: Option<String>,
    },
    /// A reference that cannot be parsed.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// A release id that names no release, or several.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Neither `XDG_DATA_HOME` nor `HOME` is set, so there is no embedded store.
    #[error("cannot find the default release store: neither XDG_DATA_HOME nor HOME is set")]
    NoDefaultStore,
    /// A command that needs a release was given a project.
    #[error("`{0}` names a project, not a release")]
    NamesAProject(String),
    /// A command that needs a project was given a release.
    #[error("`{0}` names a release; list takes a project")]
    NamesARelease(String),
    /// The project's stream has no releases.
    #[error("no releases in {0}")]
    NoReleases(String),
    /// A tag vanished between listing and resolving.
    #[error("tag {tag} disappeared from {location} while resolving")]
    TagVanished {
        /// The tag.
        tag: String,
        /// The project's stream.
        location: String,
    },
    /// `--show` is not `<kind>/<name>` or `<namespace>/<kind>/<name>`.
    #[error("`{0}` is not `<kind>/<name>` or `<namespace>/<kind>/<name>`")]
    ObjectSelector(String),
    /// No object matches `--show`.
    #[error("no object {selector} in release {digest}")]
    NoObject {
        /// What was asked for.
        selector: String,
        /// The release.
        digest: String,
    },
    /// The release is not whole: its push stopped before its commit tag, or it met another
    /// release on its number or commit.
    #[error("release {number} in {location} is {what}")]
    NotWhole {
        /// The project's stream.
        location: String,
        /// Its number.
        number: u64,
        /// Its commit.
        commit: String,
        /// What is wrong.
        what: String,
    },
    /// The store has lost a blob of the release (its manifest and tags are there).
    #[error("release {number} in {location} is missing its {what}")]
    MissingBlob {
        /// The project's stream.
        location: String,
        /// Its number.
        number: u64,
        /// Which blob, and its digest.
        what: String,
    },
    /// Several objects match `--show`.
    #[error("`{selector}` matches {} objects: {}", paths.len(), paths.join(", "))]
    SeveralObjects {
        /// What was asked for.
        selector: String,
        /// The matching files.
        paths: Vec<String>,
    },
}

impl LookupError {
    /// The exit code.
    pub fn code(&self) -> u8 {
        match self {
            LookupError::Store(e) => exit::of_store(e),
            LookupError::Resolve(_) => exit::NOT_FOUND,
            LookupError::NoReleases(_)
            | LookupError::TagVanished { .. }
            | LookupError::NoObject { .. }
            | LookupError::NotWhole { .. }
            | LookupError::MissingBlob { .. } => exit::NOT_FOUND,
            _ => exit::INPUT,
        }
    }

    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            LookupError::Credentials { hint, .. } => return hint.clone(),
            LookupError::Store(e) => return exit::store_hint(e),
            LookupError::Resolve(ResolveError::NotFound { .. }) => {
                "`forge-pack list <repository>/<project>` shows the releases there".into()
            }
            LookupError::Resolve(ResolveError::Ambiguous { .. }) => {
                "give more characters of the commit SHA".into()
            }
            LookupError::NoDefaultStore => "pass --registry oci:<dir> or a registry host".into(),
            LookupError::NamesAProject(text) => {
                format!("add a release id, e.g. `{text}:1`, or run `forge-pack list {text}`")
            }
            LookupError::NamesARelease(_) => "drop the `:<id>` part".into(),
            LookupError::NoReleases(_) => {
                "build or push a release first, or check --registry".into()
            }
            LookupError::NoObject { .. } => {
                "`forge-pack inspect <ref> --resources` lists the objects".into()
            }
            LookupError::NotWhole { commit, .. } => format!(
                "push commit {commit} again to complete it, or choose another release (`forge-pack list` shows each one's state)"
            ),
            LookupError::MissingBlob { .. } => "copy the release in again from a store that holds it whole (`forge-pack copy`), or choose another release".into(),
            LookupError::SeveralObjects { .. } => {
                "add the namespace: <namespace>/<kind>/<name>".into()
            }
            _ => return None,
        })
    }
}

/// Registry access settings shared by every command, from the global flags.
///
/// Explicit credentials (`--username` with `--password-stdin`, or `FORGE_REGISTRY_USERNAME`
/// and `FORGE_REGISTRY_PASSWORD`) belong to one registry host: the release registry of the
/// command — `--registry`/`FORGE_REGISTRY` when it names a registry, else the first release
/// stream the command opens (the project's `registry:` for `push`, the reference's host for
/// `inspect`, `list`, `pull`, `diff`, `deploy` with a reference). No other host ever receives
/// them: image registries (`--resolve-digests`), a second reference's host, a redirect's
/// target, a host named by a pointer in the GitOps repository (`deploy <name>`, `rollback`).
#[derive(Debug)]
pub struct Access {
    /// How to reach registries (without the explicit credentials, which go by host).
    options: RegistryOptions,
    explicit: Option<(Credentials, &'static str)>,
    bound: OnceLock<String>,
    flag: Option<String>,
}

impl Access {
    /// Builds the settings; `--password-stdin` reads the password here, once.
    pub fn from_args(global: &GlobalArgs) -> Result<Self, LookupError> {
        let access = &global.access;
        let flagged = match (&access.username, access.password_stdin) {
            (Some(username), true) => {
                let mut password = String::new();
                std::io::stdin().lock().read_line(&mut password).map_err(|e| {
                    credentials(format!("cannot read the password from stdin: {e}"), None)
                })?;
                let password = password.trim_end_matches(['\n', '\r']).to_owned();
                if password.is_empty() {
                    let message = "--password-stdin was given but stdin held no password";
                    return Err(credentials(message.into(), None));
                }
                let credentials =
                    Credentials { username: username.clone(), password: Secret::new(password) };
                Some((credentials, "--username"))
            }
            (Some(_), false) => {
                return Err(credentials(
                    "--username needs --password-stdin".into(),
                    Some(
                        "pipe the password: `echo \"$TOKEN\" | forge-pack ... --username ci --password-stdin`",
                    ),
                ));
            }
            (None, true) => {
                return Err(credentials("--password-stdin needs --username".into(), None));
            }
            (None, false) => None,
        };
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let explicit = flagged.or_else(|| {
            let (user, password) =
                (env("FORGE_REGISTRY_USERNAME")?, env("FORGE_REGISTRY_PASSWORD")?);
            let credentials = Credentials { username: user, password: Secret::new(password) };
            Some((credentials, "FORGE_REGISTRY_USERNAME"))
        });
        if access.insecure && !global.quiet {
            eprintln!(
                "warning: --insecure (FORGE_INSECURE_REGISTRY) is now --plain-http (FORGE_PLAIN_HTTP): it allows plain HTTP, it never skipped TLS verification"
            );
        }
        let plain_http = if access.plain_http || access.insecure {
            PlainHttp::Any
        } else {
            PlainHttp::LoopbackOnly
        };
        let options = RegistryOptions {
            ca_files: access.ca_file.clone(),
            plain_http,
            ..RegistryOptions::default()
        };
        let access =
            Access { options, explicit, bound: OnceLock::new(), flag: global.registry.clone() };
        if let Some(text) = &access.flag
            && let Ok(StoreRoot::Registry(registry)) = StoreRoot::parse(text)
        {
            access.bind(&registry);
        }
        Ok(access)
    }

    /// The store a `login` to `host` checks its credentials against: the explicit
    /// credentials, for that host alone.
    pub fn login_store(
        &self,
        host: &str,
    ) -> Result<Option<forge_store::registry::RegistryStore>, LookupError> {
        let Some((credentials, origin)) = &self.explicit else { return Ok(None) };
        let mut options = self.options.clone();
        options.credentials = Some(HostCredentials {
            host: host.to_owned(),
            credentials: credentials.clone(),
            origin,
        });
        // The check needs a repository name for its token scope; none is read.
        let store = forge_store::registry::RegistryStore::new(host, "forge-pack/login", &options)
            .map_err(LookupError::from)?;
        Ok(Some(store))
    }

    /// The explicit credentials, if any.
    pub fn explicit_credentials(&self) -> Option<&Credentials> {
        self.explicit.as_ref().map(|(credentials, _)| credentials)
    }

    /// Gives the explicit credentials to `registry`'s host, unless they belong to a host
    /// already.
    fn bind(&self, registry: &str) {
        let host = registry.split('/').next().unwrap_or(registry);
        let _ = self.bound.set(host.to_owned());
    }

    /// From here on, the explicit credentials bind to no host they are not bound to already:
    /// the release streams the command opens next are named by repository content (a
    /// pointer's `spec.image`), which whoever can write the GitOps repository controls, not by
    /// the command line. `--registry`/`FORGE_REGISTRY` still binds them.
    pub fn bind_no_further(&self) {
        let _ = self.bound.set(String::new());
    }

    /// The store for references without a registry host: `--registry`/`FORGE_REGISTRY`, else
    /// the project's `registry:`, else the embedded store.
    pub fn default_root(&self, project_registry: Option<&str>) -> Result<StoreRoot, LookupError> {
        match self.flag.as_deref().or(project_registry) {
            Some(text) => Ok(StoreRoot::parse(text)?),
            None => forge_store::root::embedded().ok_or(LookupError::NoDefaultStore),
        }
    }

    /// Opens a store the command does not release to (an image's registry, say): the explicit
    /// credentials go with it only if they belong to its host.
    pub fn open(&self, location: &ProjectLocation) -> Result<Store, LookupError> {
        let mut options = self.options.clone();
        if let (Some((credentials, origin)), Some(host)) = (&self.explicit, self.bound.get())
            && !host.is_empty()
            && let ProjectLocation::InRoot { root: StoreRoot::Registry(registry), .. } = location
        {
            let registry_host = registry.split('/').next().unwrap_or(registry);
            if registry_host == host {
                options.credentials = Some(HostCredentials {
                    host: host.clone(),
                    credentials: credentials.clone(),
                    origin,
                });
            }
        }
        Ok(Store::open(location, &options)?)
    }

    /// Opens one of the command's release streams: the first one a command opens binds the
    /// explicit credentials to its host, if nothing has.
    pub fn open_release(&self, location: &ProjectLocation) -> Result<Store, LookupError> {
        if let ProjectLocation::InRoot { root: StoreRoot::Registry(registry), .. } = location {
            self.bind(registry);
        }
        self.open(location)
    }

    /// Parses and resolves a release reference; a reference without a release id is an error.
    pub async fn resolve(&self, text: &str) -> Result<Resolved, LookupError> {
        let reference = ReleaseRef::parse(text, &self.default_root(None)?)?;
        let selector =
            reference.release.ok_or_else(|| LookupError::NamesAProject(text.to_owned()))?;
        self.resolve_in(&reference.project, selector).await
    }

    /// Resolves a release id or digest within one project's release stream.
    pub async fn resolve_in(
        &self,
        project: &ProjectLocation,
        selector: ReleaseSelector,
    ) -> Result<Resolved, LookupError> {
        let store = self.open_release(project)?;
        let location = project.to_string();
        match selector {
            ReleaseSelector::Digest(digest) => Ok(Resolved { store, digest, tag: None, location }),
            ReleaseSelector::Id(id) => {
                let tags = store.list_tags().await?;
                if tags.is_empty() {
                    return Err(LookupError::NoReleases(location));
                }
                let tag = aliases::resolve(&id, &tags, &location)?;
                let digest = store.resolve_tag(&tag).await?.ok_or_else(|| {
                    LookupError::TagVanished { tag: tag.clone(), location: location.clone() }
                })?;
                Ok(Resolved { store, digest, tag: Some(tag), location })
            }
        }
    }
}

fn credentials(message: String, hint: Option<&str>) -> LookupError {
    LookupError::Credentials { message, hint: hint.map(str::to_owned) }
}

/// A release found in a store.
#[derive(Debug)]
pub struct Resolved {
    /// The store.
    pub store: Store,
    /// The manifest digest.
    pub digest: Digest,
    /// The tag it was found under, if resolved by id.
    pub tag: Option<String>,
    /// The project location, for messages.
    pub location: String,
}
