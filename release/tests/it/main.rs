//! Integration tests of the release format and the layout store.

mod fixtures;
mod golden;
mod hostile;
mod layout;
mod publish;
mod registry;
mod registry_faults;
mod skopeo;
mod verify;
