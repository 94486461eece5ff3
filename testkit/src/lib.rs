//! Test support shared by the workspace's integration tests: a real CNCF distribution
//! registry on a free loopback port (plain, htpasswd, token or TLS), a fault-injecting proxy,
//! a hostile registry that misbehaves on demand, a YAML 1.1 reader, a fixed release, and the Go tools the tests run against.

pub mod fixtures;
mod hostile;
mod proxy;
mod registry;
mod tools;
mod yaml;

pub use hostile::{HostileRegistry, Received, Reply, run_measuring_memory};
pub use proxy::{Fault, FaultProxy};
pub use registry::{PASSWORD as REGISTRY_PASSWORD, Registry, RegistryKind, USER as REGISTRY_USER};
pub use tools::{crane_copy, ecdsa_key_pair, go_tool};
pub use yaml::yaml_1_1_reading;
