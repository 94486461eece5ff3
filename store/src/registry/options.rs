//! How to reach registries: credentials and the one host they belong to, TLS trust, plain
//! HTTP, timeouts, retries, and the bounds on what a registry may send.

use std::fmt;
use std::net::IpAddr;
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

/// Credentials given explicitly (flags or environment), and the one registry host they were
/// given for: no other host ever receives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCredentials {
    /// `host[:port]`, as in references.
    pub host: String,
    /// The credentials.
    pub credentials: Credentials,
    /// Where they came from, for messages: `--username`, `FORGE_REGISTRY_USERNAME`.
    pub origin: &'static str,
}

/// Bounded retries with exponential backoff and jitter for transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, including the first.
    pub attempts: u32,
    /// Delay before the first retry; doubled each time, with ±50 % jitter.
    pub base_delay: Duration,
    /// Longest single delay (a registry's `Retry-After` is honoured up to this too).
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

/// Which registries may be reached without TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PlainHttp {
    /// Loopback registries only (without a CA file, which says the registry speaks TLS).
    #[default]
    LoopbackOnly,
    /// Loopback, and these hosts (`host[:port]`).
    Hosts(Vec<String>),
    /// Any registry (`--insecure`).
    Any,
}

/// Everything about how to talk to registries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Explicit credentials and their host; every other host gets what the auth files say
    /// for it, or nothing.
    pub credentials: Option<HostCredentials>,
    /// Auth files to read instead of the default search (`REGISTRY_AUTH_FILE`, podman's
    /// `auth.json`, the docker config); empty means the default search.
    pub auth_files: Vec<PathBuf>,
    /// Extra CA certificates (PEM files) to trust.
    pub ca_files: Vec<PathBuf>,
    /// Which registries may be reached without TLS.
    pub plain_http: PlainHttp,
    /// Retry behaviour.
    pub retry: RetryPolicy,
    /// Connect timeout per connection.
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response (a registry that accepts and never
    /// answers fails after this, not never).
    pub read_timeout: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            credentials: None,
            auth_files: Vec::new(),
            ca_files: Vec::new(),
            plain_http: PlainHttp::default(),
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
        }
    }
}

impl RegistryOptions {
    /// Whether `host` is reached over plain HTTP: allowed for it, and no CA file given (a CA
    /// file says the registry speaks TLS).
    pub fn plain_http_for(&self, host: &str) -> bool {
        match &self.plain_http {
            PlainHttp::Any => true,
            _ if !self.ca_files.is_empty() => false,
            PlainHttp::LoopbackOnly => is_loopback(host),
            PlainHttp::Hosts(hosts) => {
                is_loopback(host) || hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
            }
        }
    }
}

/// The most a registry may send where the format sets no bound of its own.
pub mod limits {
    /// A manifest (containerd's bound too).
    pub const MANIFEST_BYTES: u64 = 4 << 20;
    /// One page of a tag listing.
    pub const TAG_PAGE_BYTES: u64 = 16 << 20;
    /// Pages of a tag listing.
    pub const TAG_PAGES: usize = 10_000;
    /// Tags in all.
    pub const TAGS: usize = 1_000_000;
    /// Bytes of tags in all (each at most 128, by the tag grammar).
    pub const TAG_BYTES: usize = 64 << 20;
    /// A token service's answer.
    pub const TOKEN_BYTES: u64 = 1 << 20;
    /// The part of an error response read to find the registry's error code.
    pub const ERROR_BYTES: u64 = 64 << 10;
    /// Redirects followed for one request.
    pub const REDIRECTS: usize = 10;
}

/// Whether `host` (`host[:port]`) is on the loopback interface, where plain HTTP is fine.
pub fn is_loopback(host: &str) -> bool {
    let name = host_name(host);
    name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The name or address of `host[:port]` (brackets of an IPv6 address removed).
pub fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) { name } else { host }
    })
}

/// Addresses no registry request may reach, whatever a pointer, a redirect or DNS says:
/// link-local addresses, where clouds serve instance metadata and credentials
/// (169.254.169.254, fd00:ec2::254), the metadata addresses of clouds outside that range
/// (Alibaba's 100.100.100.200, Oracle's 192.0.0.192), and any of these embedded in an IPv6
/// address (IPv4-mapped, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`).
pub fn is_forbidden_address(ip: IpAddr) -> bool {
    let forbidden_v4 = |v4: std::net::Ipv4Addr| {
        v4.is_link_local() || [[100, 100, 100, 200], [192, 0, 0, 192]].contains(&v4.octets())
    };
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            let embedded = |high: u16, low: u16| {
                std::net::Ipv4Addr::from((u32::from(high) << 16) | u32::from(low))
            };
            let carried = if let Some(v4) = v6.to_ipv4_mapped() {
                Some(v4)
            } else if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                Some(embedded(segments[6], segments[7]))
            } else if segments[0] == 0x2002 {
                Some(embedded(segments[1], segments[2]))
            } else {
                None
            };
            // fe80::/10, and AWS's IPv6 metadata endpoint.
            carried.is_some_and(forbidden_v4)
                || (segments[0] & 0xffc0) == 0xfe80
                || segments == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254]
        }
    }
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
    fn metadata_and_link_local_addresses_are_forbidden() {
        for ip in [
            "169.254.169.254",
            "169.254.0.1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::",
            "100.100.100.200",
            "192.0.0.192",
        ] {
            assert!(is_forbidden_address(ip.parse().expect("ip")), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "::1",
            "fd00:ec2::253",
            "2001:db8::1",
            "64:ff9b::a00:1",
            "100.100.100.201",
        ] {
            assert!(!is_forbidden_address(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[test]
    fn plain_http_is_for_loopback_or_listed_hosts_unless_a_ca_is_given() {
        let listed = RegistryOptions {
            plain_http: PlainHttp::Hosts(vec!["registry.internal:5000".into()]),
            ..RegistryOptions::default()
        };
        assert!(listed.plain_http_for("registry.internal:5000"));
        assert!(listed.plain_http_for("127.0.0.1:5000"));
        assert!(!listed.plain_http_for("registry.internal:5001"));
        let with_ca =
            RegistryOptions { ca_files: vec!["ca.pem".into()], ..RegistryOptions::default() };
        assert!(!with_ca.plain_http_for("127.0.0.1:5000"));
    }

    #[test]
    fn secrets_never_print() {
        let credentials =
            Credentials { username: "alice".into(), password: Secret::new("hunter2") };
        assert!(!format!("{credentials:?}").contains("hunter2"));
        assert_eq!(credentials.password.to_string(), "****");
    }
}
