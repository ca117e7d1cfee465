//! Muster's integration tests, in one binary: each test file used to be
//! its own binary that linked the whole service and its dependencies,
//! eleven times over, which cost CI minutes of linking and gigabytes of
//! disk.

mod common;

mod api;
mod audit;
mod audit_coverage;
mod audit_export;
mod audit_seal;
mod auth;
mod browser;
mod cli;
mod docker;
mod fuzz_regressions;
mod http_shell;
mod invitations;
mod layers;
mod lifecycle;
mod mail;
mod scim;
mod security;
mod store;
mod worker_processes;
