//! Integration tests of the release stores: layout directories, real registries, publishing.

mod layout;
mod publish;
mod registry;
mod registry_faults;
mod skopeo;
