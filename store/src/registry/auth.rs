//! Finding credentials for a registry: flags, environment, docker config, anonymous.

use std::path::PathBuf;

use oci_client::secrets::RegistryAuth;

use super::options::{Credentials, Secret};

/// Where a registry's credentials came from (for messages; never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `--username`/`--password-stdin`.
    Explicit,
    /// `FORGE_REGISTRY_USERNAME`/`FORGE_REGISTRY_PASSWORD`.
    Environment,
    /// The docker config file or a credential helper.
    DockerConfig(PathBuf),
    /// None found.
    Anonymous,
}

/// Resolves the credentials for `host` in order: explicit, environment, docker config
/// (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, with credential helpers),
/// anonymous.
pub fn resolve(host: &str, explicit: Option<&Credentials>) -> (RegistryAuth, CredentialSource) {
    if let Some(c) = explicit {
        return (
            RegistryAuth::Basic(c.username.clone(), c.password.expose().to_owned()),
            CredentialSource::Explicit,
        );
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let (Some(user), Some(password)) =
        (env("FORGE_REGISTRY_USERNAME"), env("FORGE_REGISTRY_PASSWORD"))
    {
        let password = Secret::new(password);
        return (
            RegistryAuth::Basic(user, password.expose().to_owned()),
            CredentialSource::Environment,
        );
    }
    if let Some(path) = docker_config_path().filter(|p| p.is_file()) {
        match docker_credential::get_credential(host) {
            Ok(docker_credential::DockerCredential::UsernamePassword(user, password)) => {
                return (RegistryAuth::Basic(user, password), CredentialSource::DockerConfig(path));
            }
            Ok(docker_credential::DockerCredential::IdentityToken(_)) => {
                tracing::warn!(
                    "{}: the entry for {host} is an identity (refresh) token, which forge-pack cannot use; \
                     continuing anonymously (use a username and password or access token)",
                    path.display()
                );
            }
            Err(docker_credential::CredentialRetrievalError::NoCredentialConfigured) => {}
            Err(e) => tracing::warn!(
                "{}: cannot read credentials for {host}: {e:?}; continuing anonymously",
                path.display()
            ),
        }
    }
    (RegistryAuth::Anonymous, CredentialSource::Anonymous)
}

fn docker_config_path() -> Option<PathBuf> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")))?;
    Some(dir.join("config.json"))
}
