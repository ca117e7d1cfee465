//! Muster: a multi-tenant user-provisioning service. SCIM 2.0 for identity
//! providers, a management API for administrators, MongoDB for state.

// A panic drops the connection without an answer (and, in /Bulk, after
// earlier operations committed): code that serves requests returns errors
// instead. Tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
pub mod app;
pub mod auth;
pub mod bootstrap;
pub mod client_ip;
pub mod config;
pub mod console;
pub mod domain;
pub mod error;
pub mod http;
pub mod invite_page;
pub mod jobs;
pub mod mail;
pub mod measure;
pub mod metrics_export;
pub mod protocol;
pub mod scim;
pub mod security_headers;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod token_cli;
