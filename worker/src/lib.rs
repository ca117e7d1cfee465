//! `muster-worker`: a MongoDB job backend for apalis (leases, retries with
//! backoff, crash recovery, idempotency keys, dead letters). It knows
//! nothing of Muster's domain. The backend itself lands with the
//! invitations issue; this crate reserves its place in the workspace and
//! holds the collection name the backend will own.

/// The collection jobs live in, unless the caller names another.
pub const DEFAULT_JOBS_COLLECTION: &str = "jobs";
