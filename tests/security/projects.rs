//! Per-project rights.
