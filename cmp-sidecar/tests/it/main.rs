//! forge-cmp run the way Argo CD's cmp-server runs it: a fresh copy of the repository, the app
//! directory as working directory, Argo's environment, stdin closed, stdout parsed as Argo
//! parses it.

mod airgap;
mod argo;
mod generate;
mod hostile;
mod install;
mod mirrors;
mod plain_yaml;
mod plugin_files;
mod registry;
mod signatures;
mod trust;
