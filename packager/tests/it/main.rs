//! End-to-end tests of the `forge-pack` binary, run as users run it.

mod approvals;
mod argocd_oci;
mod artifacts;
mod build;
mod ci_templates;
mod credentials;
mod deploy;
mod errors;
mod harness;
mod hostile;
mod inspect;
mod jsonnet;
mod list_index;
mod promotion;
mod races;
mod registry;
mod render;
mod signing;
mod triggers;
