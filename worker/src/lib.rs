//! `muster-worker`: a MongoDB job backend for [apalis](https://docs.rs/apalis)
//! 1.0. It knows nothing of Muster's domain.
//!
//! - [`push_in`] enqueues a job inside the caller's transaction, so the job
//!   commits or rolls back with the business write; [`push`] does it on its
//!   own. An idempotency key makes a second push a [`Pushed::Duplicate`].
//! - [`MongoBackend`] is the apalis backend a `WorkerBuilder` runs: it wraps
//!   [`MongoPersistence`] (apalis-core's `Persistence` over the collection)
//!   in apalis-core's `Persisted`, which drives polling, heartbeats and
//!   shutdown.
//! - Jobs are claimed with a lease that heartbeats renew; a crashed
//!   worker's jobs return to the queue when their lease expires. Failures
//!   are retried with exponential backoff, then the job is `dead` and kept.
//!   Done jobs are removed by a TTL index.
//! - [`create_indexes`] belongs in the application's migrate step.
//! - For monitoring, [`queue_stats`] counts a queue's jobs by state, and
//!   [`MongoPersistence::on_settled`] tells the application of each
//!   outcome a worker records.
//! - [`next_change`] reads a change stream without a round trip per write
//!   on servers that answer an empty `getMore` at once.
//!
//! Delivery is at least once: a handler must be idempotent for its effects
//! to happen exactly once. See the README for the document shape and the
//! guarantees.

// A panic drops the connection without an answer (and, in /Bulk, after
// earlier operations committed): code that serves requests returns errors
// instead. Tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod backend;
mod changes;
mod config;
mod document;
mod error;
mod persistence;
mod push;
mod stats;

pub use backend::{DiscardResult, MongoBackend, ResultNotStored};
pub use changes::{EMPTY_BATCH_PAUSE, next_change};
pub use config::JobsConfig;
pub use document::{JobDocument, JobId, JobStatus};
pub use error::{DUPLICATE_KEY, JobError, error_code, is_duplicate_key};
pub use persistence::{MongoPersistence, Recovered, Settled, recover_expired_leases};
pub use push::{
    PushOptions, Pushed, collection, create_indexes, get_job, new_job_insert, push, push_in,
    push_many_in, push_many_new_in,
};
pub use stats::{QueueStats, queue_stats};

/// The collection jobs live in, unless the caller names another.
pub const DEFAULT_JOBS_COLLECTION: &str = "jobs";
