//! The ways in that attackers found (issue 10), one test each, written to
//! fail on the code that let them through.

mod edge;
mod headers;
mod members;
mod projects;
mod proxies;
mod scope;
