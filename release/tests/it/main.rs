//! Integration tests of the release format.

mod golden;
mod hostile;
mod verify;
