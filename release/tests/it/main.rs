//! Integration tests of the release format and the layout store.

mod fixtures;
mod golden;
mod hostile;
mod layout;
mod publish;
mod skopeo;
mod verify;
