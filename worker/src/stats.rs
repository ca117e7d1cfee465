//! What a queue holds at one moment, for monitoring: one aggregation over
//! the `{queue, status, run_at}` index, so any process can ask and every
//! process gets the same answer, however many workers run.

use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::Database;

use crate::config::JobsConfig;
use crate::document::{JobStatus, bson_time, field};
use crate::error::JobError;
use crate::push::collection;

/// A queue's jobs by state. Done jobs are not counted: they wait only for
/// the TTL index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Pending jobs whose `run_at` has passed: waiting for a free worker.
    pub due: u64,
    /// Pending jobs not due yet: delayed pushes, and retries waiting out
    /// their backoff.
    pub scheduled: u64,
    /// Claimed by a worker (or by one that died, until its lease expires
    /// and a sweep returns the job).
    pub running: u64,
    /// Jobs that used up their attempts (or were aborted), kept until
    /// deleted.
    pub dead: u64,
    /// The `run_at` of the oldest due job, if any: how long the head of
    /// the queue has been waiting for a worker.
    pub oldest_due: Option<DateTime<Utc>>,
}

/// The jobs of `queue` by state, as of `now`. Its cost grows with the
/// jobs that are not done (it reads their index keys, not the documents).
pub async fn queue_stats(
    db: &Database,
    config: &JobsConfig,
    queue: &str,
    now: DateTime<Utc>,
) -> Result<QueueStats, JobError> {
    let statuses = [JobStatus::Pending, JobStatus::Running, JobStatus::Dead].map(JobStatus::as_str);
    let run_at = format!("${}", field::RUN_AT);
    let pipeline = [
        doc! { "$match": { field::QUEUE: queue, field::STATUS: { "$in": statuses.to_vec() } } },
        doc! { "$group": {
            "_id": {
                "status": format!("${}", field::STATUS),
                "due": { "$lte": [run_at.as_str(), bson_time(now)] },
            },
            "count": { "$sum": 1 },
            "oldest": { "$min": run_at.as_str() },
        } },
    ];
    let mut groups = collection(db, config)
        .clone_with_type::<Document>()
        .aggregate(pipeline)
        .await?;
    let mut stats = QueueStats::default();
    while let Some(group) = groups.try_next().await? {
        let key = group.get_document("_id").ok();
        let status = key.and_then(|key| key.get_str("status").ok());
        let due = key
            .and_then(|key| key.get_bool("due").ok())
            .unwrap_or(false);
        let count = match group.get("count") {
            Some(Bson::Int32(n)) => u64::try_from(*n).unwrap_or(0),
            Some(Bson::Int64(n)) => u64::try_from(*n).unwrap_or(0),
            Some(Bson::Double(n)) if n.is_finite() && *n >= 0.0 => *n as u64,
            _ => 0,
        };
        match (status, due) {
            (Some("pending"), true) => {
                stats.due += count;
                stats.oldest_due = group
                    .get_datetime("oldest")
                    .ok()
                    .map(|oldest| oldest.to_chrono());
            }
            (Some("pending"), false) => stats.scheduled += count,
            (Some("running"), _) => stats.running += count,
            (Some("dead"), _) => stats.dead += count,
            _ => {}
        }
    }
    Ok(stats)
}
