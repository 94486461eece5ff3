//! How to reach a registry: credentials, TLS trust, plain HTTP, retries.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A password or token. Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// A user name and password (or token) for a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: Secret,
}

/// Bounded retries with exponential backoff and jitter for transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, including the first.
    pub attempts: u32,
    /// Delay before the first retry; doubled each time, with ±50 % jitter.
    pub base_delay: Duration,
    /// Longest single delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// Everything about how to talk to registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Explicit credentials; otherwise `FORGE_REGISTRY_USERNAME`/`FORGE_REGISTRY_PASSWORD`,
    /// then the docker config (and its credential helpers), then anonymous.
    pub credentials: Option<Credentials>,
    /// Extra CA certificates (PEM files) to trust.
    pub ca_files: Vec<PathBuf>,
    /// Allow plain HTTP to a non-loopback registry.
    pub insecure: bool,
    /// Retry behaviour.
    pub retry: RetryPolicy,
    /// Connect timeout per request.
    pub connect_timeout: Option<Duration>,
    /// Read timeout per request.
    pub read_timeout: Option<Duration>,
}

/// Whether `host` (`host[:port]`) is on the loopback interface, where plain HTTP is fine.
pub fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) { name } else { host }
        })
    };
    name == "localhost"
        || name == "::1"
        || name.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in ["localhost", "localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in
            ["registry.example.com", "10.0.0.1:5000", "127.0.0.1.nip.io", "localhost.example.com"]
        {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn secrets_never_print() {
        let credentials =
            Credentials { username: "alice".into(), password: Secret::new("hunter2") };
        assert!(!format!("{credentials:?}").contains("hunter2"));
        assert_eq!(credentials.password.to_string(), "****");
    }
}
