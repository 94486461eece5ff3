//! forge-pack: render a project's Kubernetes templates, package them as an immutable release,
//! and inspect, list and pull releases.

pub mod access;
pub mod approvals;
pub mod artifacts;
pub mod attestation;
pub mod cli;
pub mod commands;
pub mod config;
pub mod context;
pub mod deploy;
pub mod error;
pub mod exit;
pub mod fsutil;
pub mod git;
pub mod gitops;
pub mod images;
pub mod output;
pub mod policy;
pub mod render;
pub mod signing;
