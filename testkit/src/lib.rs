//! Test support shared by the workspace's integration tests: a real CNCF distribution
//! registry on a free loopback port (plain, htpasswd or TLS) and a fault-injecting proxy.

mod proxy;
mod registry;

pub use proxy::{Fault, FaultProxy};
pub use registry::{PASSWORD as REGISTRY_PASSWORD, Registry, RegistryKind, USER as REGISTRY_USER};
