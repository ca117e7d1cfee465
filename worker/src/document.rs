//! The shape of a job as stored.

use std::fmt;

use bson::Bson;
use bson::serde_helpers::{
    chrono_datetime_as_bson_datetime, chrono_datetime_as_bson_datetime_optional,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A job's identifier: a UUIDv7 string, so ids sort by creation time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// A fresh UUIDv7 id.
    pub fn new() -> JobId {
        JobId(uuid::Uuid::now_v7().to_string())
    }

    /// An id as read from the collection (or from an apalis `TaskId`).
    pub fn from_stored(id: impl Into<String>) -> JobId {
        JobId(id.into())
    }

    /// The id as stored in `_id`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for JobId {
    fn default() -> Self {
        JobId::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> String {
        id.0
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting for `run_at` and a free worker.
    Pending,
    /// Claimed by `worker_id` until `lease_until`.
    Running,
    /// Succeeded; removed by the TTL index at `expire_at`.
    Done,
    /// Failed on its last attempt (or was aborted); kept with `last_error`.
    Dead,
}

impl JobStatus {
    /// The value stored in `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Dead => "dead",
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<JobStatus> for Bson {
    fn from(status: JobStatus) -> Bson {
        Bson::String(status.as_str().to_owned())
    }
}

/// A job document, as stored in the jobs collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobDocument {
    /// UUIDv7 string.
    #[serde(rename = "_id")]
    pub id: JobId,
    /// Which workers take it: several job types share the collection.
    pub queue: String,
    /// The job itself, as BSON.
    pub payload: Bson,
    /// `pending`, `running`, `done` or `dead`.
    pub status: JobStatus,
    /// Attempts started so far (a claim counts one).
    pub attempts: u32,
    /// Attempts allowed before the job is `dead`.
    pub max_attempts: u32,
    /// Not claimed before this instant.
    #[serde(with = "chrono_datetime_as_bson_datetime")]
    pub run_at: DateTime<Utc>,
    /// While `running`: the claim's end unless a heartbeat renews it.
    #[serde(default, with = "chrono_datetime_as_bson_datetime_optional")]
    pub lease_until: Option<DateTime<Utc>>,
    /// The worker that claimed it last.
    #[serde(default)]
    pub worker_id: Option<String>,
    /// The error of the last failed attempt.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Unique per queue when set.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// When it was pushed.
    #[serde(with = "chrono_datetime_as_bson_datetime")]
    pub created_at: DateTime<Utc>,
    /// When it became `done` or `dead`.
    #[serde(default, with = "chrono_datetime_as_bson_datetime_optional")]
    pub done_at: Option<DateTime<Utc>>,
    /// When the TTL index removes it; set on `done` jobs (and on `dead`
    /// ones only if `dead_retention` is configured).
    #[serde(default, with = "chrono_datetime_as_bson_datetime_optional")]
    pub expire_at: Option<DateTime<Utc>>,
}

/// Field names, so that queries and the struct cannot drift apart.
pub(crate) mod field {
    pub const ID: &str = "_id";
    pub const QUEUE: &str = "queue";
    pub const STATUS: &str = "status";
    pub const ATTEMPTS: &str = "attempts";
    pub const MAX_ATTEMPTS: &str = "max_attempts";
    pub const RUN_AT: &str = "run_at";
    pub const LEASE_UNTIL: &str = "lease_until";
    pub const WORKER_ID: &str = "worker_id";
    pub const LAST_ERROR: &str = "last_error";
    pub const IDEMPOTENCY_KEY: &str = "idempotency_key";
    pub const DONE_AT: &str = "done_at";
    pub const EXPIRE_AT: &str = "expire_at";
}

/// A chrono instant as a BSON datetime (millisecond precision).
pub(crate) fn bson_time(at: DateTime<Utc>) -> bson::DateTime {
    bson::DateTime::from_chrono(at)
}

/// `at + duration`, saturating instead of overflowing.
pub(crate) fn after(at: DateTime<Utc>, duration: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
