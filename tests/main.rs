//! Muster's integration tests, in one binary: each test file used to be
//! its own binary that linked the whole service and its dependencies,
//! eleven times over, which cost CI minutes of linking and gigabytes of
//! disk.

mod common;

mod account_deletion;
mod api;
mod audit;
mod audit_coverage;
mod audit_export;
mod audit_seal;
mod auth;
mod browser;
mod cli;
mod console;
mod docker;
mod fuzz_regressions;
mod http_shell;
mod invitations;
mod layers;
mod lifecycle;
mod logs;
mod mail;
mod metrics;
mod mfa;
mod scim;
mod security;
mod sessions;
mod store;
mod token_cache;
mod worker_processes;
