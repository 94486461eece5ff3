//! Integration tests of the release stores: layout directories, real registries, publishing.

mod hostile_registry;
mod layout;
mod publish;
mod registry;
mod registry_faults;
mod skopeo;
