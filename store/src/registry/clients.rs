//! The HTTP client a registry store talks through, and which certificate authorities it
//! trusts.
//!
//! Loading the system's certificate authorities costs a few milliseconds (a few hundred
//! certificates read and parsed), which a registry reached over plain HTTP never needs. Such a
//! store's client trusts no authority at all: TLS fails closed. (oci-client 0.18 still loads
//! them once per client, for a default HTTP client it builds and drops.) Should
//! the registry send it to HTTPS anyway (a token service or blob storage on another host), the
//! first certificate failure swaps in a client that trusts the system's authorities and the
//! request is made again, once.

use std::sync::{Arc, Mutex, PoisonError};

use oci_client::Client;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;

use super::options::{RegistryOptions, is_loopback};
use crate::error::StoreError;

/// A certificate authority nobody holds the key of: trusting only it trusts nothing.
const NO_AUTHORITY: &[u8] = include_bytes!("no-authority.pem");

/// Builds the client that trusts the system's authorities.
type Upgrade = Box<dyn FnOnce() -> Result<Client, StoreError> + Send>;

/// The client of one store.
pub(super) struct Clients {
    current: Mutex<Arc<Client>>,
    /// Until the swap, for a plain-HTTP store.
    upgrade: Mutex<Option<Upgrade>>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients").finish_non_exhaustive()
    }
}

impl Clients {
    /// The client for `host`: TLS with the system's authorities (and `--ca-file`s), or plain
    /// HTTP for a loopback or explicitly insecure registry.
    pub(super) fn new(host: &str, options: &RegistryOptions) -> Result<Self, StoreError> {
        let ca_files = read_ca_files(options)?;
        if !speaks_plain_http(host, options) {
            let client = build(host, options, Trust::System, &ca_files)?;
            return Ok(Clients {
                current: Mutex::new(Arc::new(client)),
                upgrade: Mutex::default(),
            });
        }
        let client = build(host, options, Trust::Only, &ca_files)?;
        let (host, options) = (host.to_owned(), options.clone());
        let upgrade = Box::new(move || build(&host, &options, Trust::System, &ca_files));
        Ok(Clients { current: Mutex::new(Arc::new(client)), upgrade: Mutex::new(Some(upgrade)) })
    }

    /// The client to use now.
    pub(super) fn get(&self) -> Arc<Client> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// After `error`: whether a client that trusts the system's authorities has been swapped in
    /// because of it (so the request is worth making again).
    pub(super) fn upgrade_after(&self, error: &OciDistributionError) -> Result<bool, StoreError> {
        if !untrusted_certificate(error) {
            return Ok(false);
        }
        let Some(upgrade) = self.upgrade.lock().unwrap_or_else(PoisonError::into_inner).take()
        else {
            return Ok(false);
        };
        let client = upgrade()?;
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(client);
        Ok(true)
    }
}

/// TLS unless the registry is explicitly insecure, or on loopback without a CA given for it
/// (a CA file says the registry speaks TLS).
pub(super) fn speaks_plain_http(host: &str, options: &RegistryOptions) -> bool {
    options.insecure || (is_loopback(host) && options.ca_files.is_empty())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// The system's authorities and the `--ca-file`s.
    System,
    /// The `--ca-file`s only.
    Only,
}

fn build(
    host: &str,
    options: &RegistryOptions,
    trust: Trust,
    ca_files: &[Certificate],
) -> Result<Client, StoreError> {
    let protocol = if speaks_plain_http(host, options) {
        ClientProtocol::HttpsExcept(vec![host.to_owned()])
    } else {
        ClientProtocol::Https
    };
    let mut config = ClientConfig {
        protocol,
        use_monolithic_push: true,
        connect_timeout: options.connect_timeout,
        read_timeout: options.read_timeout,
        user_agent: concat!("forge-pack/", env!("CARGO_PKG_VERSION")),
        ..ClientConfig::default()
    };
    match trust {
        Trust::System => config.extra_root_certificates = ca_files.to_vec(),
        Trust::Only => {
            config.tls_certs_only = ca_files.to_vec();
            config.tls_certs_only.push(pem(NO_AUTHORITY.to_vec()));
        }
    }
    // oci-client builds a default HTTP client as a side effect (and `Client::new` falls back
    // to one), which panics when the system has no CA certificates at all: that panic is
    // caught here and reported as the error it is. (Its message still reaches stderr: the
    // panic hook is process-wide, and swapping it would race with other threads.)
    let built =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || Client::try_from(config)));
    let reason = match built {
        Ok(Ok(client)) => return Ok(client),
        Ok(Err(e)) => e.to_string(),
        Err(panic) => panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default(),
    };
    Err(StoreError::Config {
        reason: format!(
            "cannot set up TLS for {host}: {reason} (a system without CA certificates needs \
             the ca-certificates package)"
        ),
    })
}

fn pem(data: Vec<u8>) -> Certificate {
    Certificate { encoding: CertificateEncoding::Pem, data }
}

fn read_ca_files(options: &RegistryOptions) -> Result<Vec<Certificate>, StoreError> {
    let mut certificates = Vec::new();
    for path in &options.ca_files {
        let data =
            std::fs::read(path).map_err(|source| StoreError::Io { path: path.clone(), source })?;
        // oci-client silently ignores a certificate it cannot parse; refuse it here instead.
        if !String::from_utf8_lossy(&data).contains("-----BEGIN CERTIFICATE-----") {
            return Err(StoreError::Config {
                reason: format!(
                    "{} is not a PEM certificate (expected -----BEGIN CERTIFICATE-----)",
                    path.display()
                ),
            });
        }
        certificates.push(pem(data));
    }
    Ok(certificates)
}

/// Whether a request failed because a server's certificate chains to no trusted authority.
fn untrusted_certificate(error: &OciDistributionError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if let Some(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)) =
            tls_error(error)
        {
            return true;
        }
        source = error.source();
    }
    false
}

/// The TLS error `error` is, or carries inside (nested) I/O errors.
fn tls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = error.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    tls_error(error.downcast_ref::<std::io::Error>()?.get_ref()?)
}
