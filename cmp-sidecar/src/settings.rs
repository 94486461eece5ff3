//! Settings from the environment Argo CD gives the plugin.
//!
//! Per-application settings come from the Application's `plugin.env` (`ARGOCD_ENV_<NAME>`) or
//! `plugin.parameters` (`PARAM_<NAME>`); sidecar-wide ones from the container's environment.

use std::path::PathBuf;
use std::time::Duration;

use forge_release::reference::StoreRoot;
use forge_store::registry::{Credentials, HostCredentials, PlainHttp, RegistryOptions, Secret};

use crate::error::CmpError;
use crate::seal::{KeySource, SealKey};
use crate::tenancy::SidecarConfig;
use crate::trust::SignatureRule;

/// Default time budget: below Argo CD's 60 s repo-server deadline, which also covers cloning.
const DEFAULT_TIMEOUT_SECONDS: u64 = 45;
/// Default cache size limit: 1 GiB (the sidecar patch gives the cache a 2 GiB emptyDir).
const DEFAULT_CACHE_MAX_BYTES: u64 = 1 << 30;

/// Everything `generate` needs to know besides the app directory.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Read only this pointer file (relative to the app directory).
    pub pointer_file: Option<PathBuf>,
    /// Add release traceability annotations to every object.
    pub annotate: bool,
    /// Content-addressed cache directory.
    pub cache_dir: PathBuf,
    /// Largest cache size before least recently used entries are evicted.
    pub cache_max_bytes: u64,
    /// The key that seals rendered outputs in the cache (`FORGE_CMP_CACHE_KEY_FILE`, else the
    /// sidecar's own, made on first use); none when the default one cannot be used.
    pub cache_key: Option<SealKey>,
    /// Store for images without a registry host.
    pub default_root: StoreRoot,
    /// Time budget for fetching.
    pub timeout: Duration,
    /// How to reach registries (credentials come from the environment or a mounted docker
    /// config, as for forge-pack).
    pub registry: RegistryOptions,
    /// The operator's rules: which images each Argo CD project may name.
    pub tenancy: SidecarConfig,
    /// The Application's Argo CD project (`ARGOCD_APP_PROJECT_NAME`).
    pub project: Option<String>,
}

impl Settings {
    /// Reads settings through `var` (the process environment in production).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, CmpError> {
        let get = |names: &[&str]| {
            names.iter().find_map(|n| var(n).filter(|v| !v.is_empty()).map(|v| (n.to_string(), v)))
        };
        let pointer_file =
            get(&["PARAM_POINTER", "ARGOCD_ENV_FORGE_POINTER"]).map(|(_, v)| PathBuf::from(v));
        let annotate = match get(&["PARAM_ANNOTATE", "ARGOCD_ENV_FORGE_ANNOTATE"]) {
            None => false,
            Some((name, value)) => parse_bool(&name, &value)?,
        };
        let cache_dir = match get(&["FORGE_CMP_CACHE_DIR"]) {
            Some((_, dir)) => PathBuf::from(dir),
            None => std::env::temp_dir().join("forge-cmp-cache"),
        };
        let key_source = match get(&["FORGE_CMP_CACHE_KEY_FILE"]) {
            Some((_, path)) => KeySource::File(PathBuf::from(path)),
            None => KeySource::default_in(&std::env::temp_dir()),
        };
        let cache_key = SealKey::load(&key_source, &cache_dir)?;
        let default_root = match get(&["FORGE_REGISTRY"]) {
            Some((name, value)) => StoreRoot::parse(&value).map_err(|e| CmpError::Setting {
                name,
                value,
                reason: e.reason,
            })?,
            None => forge_store::root::embedded()
                .unwrap_or_else(|| StoreRoot::Layouts(std::env::temp_dir().join("forge-releases"))),
        };
        let timeout = match get(&["FORGE_CMP_TIMEOUT_SECONDS"]) {
            None => Duration::from_secs(DEFAULT_TIMEOUT_SECONDS),
            Some((name, value)) => match value.parse::<u64>() {
                Ok(seconds) if seconds > 0 => Duration::from_secs(seconds),
                _ => {
                    return Err(CmpError::Setting {
                        name,
                        value,
                        reason: "expected a positive number of seconds".into(),
                    });
                }
            },
        };
        let cache_max_bytes = match get(&["FORGE_CMP_CACHE_MAX_BYTES"]) {
            None => DEFAULT_CACHE_MAX_BYTES,
            Some((name, value)) => value.parse::<u64>().map_err(|_| CmpError::Setting {
                name,
                value,
                reason: "expected a number of bytes".into(),
            })?,
        };
        if let Some((name, value)) = get(&["FORGE_INSECURE_REGISTRY"]) {
            return Err(CmpError::Setting {
                name,
                value,
                reason: "forge-cmp reaches a registry without TLS only if it is on loopback or \
                         listed in FORGE_CMP_PLAIN_HTTP_HOSTS (host[:port], comma-separated)"
                    .into(),
            });
        }
        let tenancy = match (get(&["FORGE_CMP_CONFIG"]), get(&["FORGE_CMP_ALLOWED_IMAGES"])) {
            (Some((_, path)), _) => {
                if let Some((name, value)) = get(&["FORGE_CMP_TRUSTED_KEYS"]) {
                    return Err(CmpError::Setting {
                        name,
                        value,
                        reason: "with FORGE_CMP_CONFIG, trusted keys are set per project in the file (signatures:)".into(),
                    });
                }
                SidecarConfig::load(std::path::Path::new(&path))?
            }
            (None, Some((_, images))) => {
                let mut config = SidecarConfig::for_every_project(words(&images));
                if let Some((name, value)) = get(&["FORGE_CMP_LOCAL_LAYOUTS"]) {
                    config.local_layouts = parse_bool(&name, &value)?;
                }
                if let Some((name, keys)) = get(&["FORGE_CMP_TRUSTED_KEYS"]) {
                    let mut rule = SignatureRule::required_by(
                        words(&keys).into_iter().map(PathBuf::from).collect(),
                    );
                    rule.load(std::path::Path::new(&name))?;
                    for project in config.projects.values_mut() {
                        project.signatures = Some(rule.clone());
                    }
                }
                config
            }
            // Nothing allowed: every pointer is refused, saying how to configure the sidecar.
            (None, None) => SidecarConfig::default(),
        };
        let mut plain_hosts = tenancy.plain_http.clone();
        plain_hosts.extend(
            get(&["FORGE_CMP_PLAIN_HTTP_HOSTS"]).map(|(_, v)| words(&v)).unwrap_or_default(),
        );
        let credentials = explicit_credentials(&get, &default_root)?;
        let registry = RegistryOptions {
            credentials,
            ca_files: get(&["FORGE_CA_FILE"])
                .map(|(_, v)| v.split(':').map(PathBuf::from).collect())
                .unwrap_or_default(),
            plain_http: PlainHttp::Hosts(plain_hosts),
            // Requests must end well inside the overall budget.
            connect_timeout: Duration::from_secs(10),
            read_timeout: timeout.min(Duration::from_secs(30)),
            ..RegistryOptions::default()
        };
        let project = get(&["ARGOCD_APP_PROJECT_NAME"]).map(|(_, v)| v);
        Ok(Settings {
            pointer_file,
            annotate,
            cache_dir,
            cache_max_bytes,
            cache_key,
            default_root,
            timeout,
            registry,
            tenancy,
            project,
        })
    }
}

/// Values separated by commas or white space.
fn words(text: &str) -> Vec<String> {
    text.split([',', ' ', '\n', '\t']).filter(|w| !w.is_empty()).map(str::to_owned).collect()
}

/// `FORGE_REGISTRY_USERNAME`/`FORGE_REGISTRY_PASSWORD`, for one host only:
/// `FORGE_REGISTRY_CREDENTIALS_HOST`, else `FORGE_REGISTRY`'s host. Credentials with no host
/// to belong to are refused: the sidecar would otherwise hand them to whatever host a pointer
/// names.
fn explicit_credentials(
    get: &impl Fn(&[&str]) -> Option<(String, String)>,
    default_root: &StoreRoot,
) -> Result<Option<HostCredentials>, CmpError> {
    let (Some((_, username)), Some((_, password))) =
        (get(&["FORGE_REGISTRY_USERNAME"]), get(&["FORGE_REGISTRY_PASSWORD"]))
    else {
        return Ok(None);
    };
    let host = match (get(&["FORGE_REGISTRY_CREDENTIALS_HOST"]), default_root) {
        (Some((_, host)), _) => host,
        (None, StoreRoot::Registry(registry)) => {
            registry.split('/').next().unwrap_or(registry).to_owned()
        }
        (None, StoreRoot::Layouts(_)) => {
            return Err(CmpError::Setting {
                name: "FORGE_REGISTRY_USERNAME".into(),
                value: username,
                reason: "credentials need the one registry host they are for: set \
                         FORGE_REGISTRY_CREDENTIALS_HOST (or FORGE_REGISTRY to that registry)"
                    .into(),
            });
        }
    };
    let credentials = Credentials { username, password: Secret::new(password) };
    Ok(Some(HostCredentials { host, credentials, origin: "FORGE_REGISTRY_USERNAME" }))
}

fn parse_bool(name: &str, value: &str) -> Result<bool, CmpError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(CmpError::Setting {
            name: name.into(),
            value: value.into(),
            reason: "expected true or false".into(),
        }),
    }
}
