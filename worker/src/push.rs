//! Putting jobs in the collection (inside the caller's transaction or on
//! their own), the collection's indexes, and reading a job back.

use std::collections::HashSet;
use std::time::Duration;

use bson::doc;
use chrono::{DateTime, Utc};
use mongodb::options::{IndexOptions, InsertOneModel};
use mongodb::{ClientSession, Collection, Database, IndexModel};
use serde::Serialize;

use crate::config::JobsConfig;
use crate::document::{JobDocument, JobId, JobStatus, field};
use crate::error::{JobError, is_duplicate_key};

/// How a job is pushed. The default runs it as soon as a worker is free,
/// with the configured number of attempts and no idempotency key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushOptions {
    /// At most one job per queue carries this key: a second push with the
    /// same key is [`Pushed::Duplicate`] and stores nothing. The key stays
    /// taken for as long as the job document exists (until the TTL index
    /// removes a done job, forever for a dead one by default).
    pub idempotency_key: Option<String>,
    /// Not run before this instant (now when `None`).
    pub run_at: Option<DateTime<Utc>>,
    /// Attempts before the job is `dead` (`JobsConfig::default_max_attempts`
    /// when `None`; at least 1).
    pub max_attempts: Option<u32>,
}

impl PushOptions {
    /// Options with an idempotency key.
    pub fn idempotency_key(key: impl Into<String>) -> PushOptions {
        PushOptions {
            idempotency_key: Some(key.into()),
            ..PushOptions::default()
        }
    }
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Pushed {
    /// A new job, with its id.
    Queued(JobId),
    /// A job with the same queue and idempotency key already exists;
    /// nothing was written.
    Duplicate,
}

/// The jobs collection, typed.
pub fn collection(db: &Database, config: &JobsConfig) -> Collection<JobDocument> {
    db.collection(&config.collection)
}

/// Enqueues `job` on `queue` inside the caller's transaction: the job is
/// committed or rolled back with the business write that goes with it.
///
/// `session` must be in a transaction the caller started and will commit
/// (or abort). With an idempotency key, an existing job with the same queue
/// and key is looked for first, in the session, and found means
/// [`Pushed::Duplicate`]: a duplicate-key error must not happen inside a
/// transaction, because the server aborts the whole transaction on it.
///
/// If a concurrent transaction inserts the same key between that look-up
/// and the insert, the unique index rejects the insert and the server
/// aborts the caller's transaction. That surfaces either as a driver error
/// labelled `TransientTransactionError` (a write conflict: what MongoDB
/// reports while the other transaction is uncommitted) or as
/// [`JobError::IdempotencyRace`]; [`JobError::is_transient`] is true for
/// both. The caller's retry loop should abort and run the transaction
/// again; the second run finds the committed job and returns
/// [`Pushed::Duplicate`].
pub async fn push_in<T>(
    db: &Database,
    session: &mut ClientSession,
    config: &JobsConfig,
    queue: &str,
    job: &T,
    options: PushOptions,
) -> Result<Pushed, JobError>
where
    T: Serialize + ?Sized,
{
    let mut pushed = push_many_in(db, session, config, queue, [(job, options)]).await?;
    Ok(pushed.pop().unwrap_or(Pushed::Duplicate))
}

/// [`push_in`] for many jobs in two round trips, whatever their number:
/// one look-up of the idempotency keys, one insert. Answers one
/// [`Pushed`] per job, in order; a key given twice in `jobs` queues the
/// first and is a duplicate for the second.
pub async fn push_many_in<T>(
    db: &Database,
    session: &mut ClientSession,
    config: &JobsConfig,
    queue: &str,
    jobs: impl IntoIterator<Item = (T, PushOptions)>,
) -> Result<Vec<Pushed>, JobError>
where
    T: Serialize,
{
    let jobs: Vec<(T, PushOptions)> = jobs.into_iter().collect();
    let collection = collection(db, config);
    let keys: Vec<&str> = jobs
        .iter()
        .filter_map(|(_, options)| options.idempotency_key.as_deref())
        .collect();
    let mut taken = HashSet::new();
    if !keys.is_empty() {
        let mut existing = collection
            .clone_with_type::<bson::Document>()
            .find(doc! { field::QUEUE: queue, field::IDEMPOTENCY_KEY: { "$in": &keys } })
            .projection(doc! { field::IDEMPOTENCY_KEY: 1 })
            .session(&mut *session)
            .await?;
        while let Some(found) = existing.next(&mut *session).await.transpose()? {
            if let Ok(key) = found.get_str(field::IDEMPOTENCY_KEY) {
                taken.insert(key.to_owned());
            }
        }
    }
    insert_jobs(&collection, session, config, queue, &jobs, taken).await
}

/// [`push_many_in`] for jobs whose idempotency keys cannot exist yet,
/// because they name something the same transaction creates (a new
/// invitation's first mail): one round trip, the insert, without looking
/// the keys up. Should a key exist after all, the unique index refuses the
/// insert, as in a race.
pub async fn push_many_new_in<T>(
    db: &Database,
    session: &mut ClientSession,
    config: &JobsConfig,
    queue: &str,
    jobs: impl IntoIterator<Item = (T, PushOptions)>,
) -> Result<Vec<Pushed>, JobError>
where
    T: Serialize,
{
    let jobs: Vec<(T, PushOptions)> = jobs.into_iter().collect();
    let collection = collection(db, config);
    insert_jobs(&collection, session, config, queue, &jobs, HashSet::new()).await
}

/// The insert of a new job whose idempotency key cannot exist yet (as
/// for [`push_many_new_in`]), for a caller that makes it together with its
/// other inserts in one round trip (MongoDB's `bulkWrite`) inside its
/// transaction.
pub fn new_job_insert<T>(
    db: &Database,
    config: &JobsConfig,
    queue: &str,
    job: &T,
    options: &PushOptions,
) -> Result<InsertOneModel, JobError>
where
    T: Serialize,
{
    let document = new_job(config, queue, job, options)?;
    Ok(collection(db, config).insert_one_model(&document)?)
}

/// Inserts the jobs whose keys are not `taken` (a key given twice counts
/// once), in one round trip.
async fn insert_jobs<T>(
    collection: &Collection<JobDocument>,
    session: &mut ClientSession,
    config: &JobsConfig,
    queue: &str,
    jobs: &[(T, PushOptions)],
    mut taken: HashSet<String>,
) -> Result<Vec<Pushed>, JobError>
where
    T: Serialize,
{
    let keys: Vec<&str> = jobs
        .iter()
        .filter_map(|(_, options)| options.idempotency_key.as_deref())
        .collect();
    let mut pushed = Vec::with_capacity(jobs.len());
    let mut documents = Vec::with_capacity(jobs.len());
    for (job, options) in jobs {
        if let Some(key) = &options.idempotency_key
            && !taken.insert(key.clone())
        {
            pushed.push(Pushed::Duplicate);
            continue;
        }
        let document = new_job(config, queue, job, options)?;
        pushed.push(Pushed::Queued(document.id.clone()));
        documents.push(document);
    }
    if documents.is_empty() {
        return Ok(pushed);
    }
    match collection
        .insert_many(&documents)
        .session(&mut *session)
        .await
    {
        Ok(_) => {
            tracing::debug!(
                queue,
                jobs = documents.len(),
                "jobs pushed in a transaction"
            );
            Ok(pushed)
        }
        Err(err) if is_duplicate_key(&err) => Err(JobError::IdempotencyRace {
            queue: queue.to_owned(),
            key: if keys.len() == 1 {
                keys[0].to_owned()
            } else {
                format!("one of {} keys", keys.len())
            },
        }),
        Err(err) => Err(err.into()),
    }
}

/// Enqueues `job` on `queue` on its own, outside any transaction. A second
/// push with the same queue and idempotency key is [`Pushed::Duplicate`].
pub async fn push<T>(
    db: &Database,
    config: &JobsConfig,
    queue: &str,
    job: &T,
    options: PushOptions,
) -> Result<Pushed, JobError>
where
    T: Serialize + ?Sized,
{
    let document = new_job(config, queue, job, &options)?;
    let id = document.id.clone();
    match collection(db, config).insert_one(&document).await {
        Ok(_) => {
            tracing::debug!(job_id = %id, queue, "job pushed");
            Ok(Pushed::Queued(id))
        }
        Err(err) if is_duplicate_key(&err) => Ok(Pushed::Duplicate),
        Err(err) => Err(err.into()),
    }
}

/// Reads one job back, whatever its status.
pub async fn get_job(
    db: &Database,
    config: &JobsConfig,
    id: &JobId,
) -> Result<Option<JobDocument>, JobError> {
    Ok(collection(db, config)
        .find_one(doc! { field::ID: id.as_str() })
        .await?)
}

/// Creates the jobs collection's indexes. Idempotent: the application
/// calls it from its migrate step, at every start.
///
/// - unique `{queue, idempotency_key}`, partial on a string key: the
///   idempotency guarantee;
/// - `{idempotency_key, queue}`, plain: the look-up `push_in` does before
///   inserting (some servers do not use partial indexes for equality);
/// - `{queue, status, run_at}`: claiming the next due job;
/// - `{queue, status, lease_until}`: sweeping expired leases;
/// - TTL on `expire_at`: removing done jobs once their retention is over.
pub async fn create_indexes(db: &Database, config: &JobsConfig) -> Result<(), JobError> {
    let named = |name: &str| IndexOptions::builder().name(name.to_owned());
    let indexes = vec![
        IndexModel::builder()
            .keys(doc! { field::QUEUE: 1, field::IDEMPOTENCY_KEY: 1 })
            .options(
                named("queue_idempotency_key_unique")
                    .unique(true)
                    .partial_filter_expression(
                        doc! { field::IDEMPOTENCY_KEY: { "$type": "string" } },
                    )
                    .build(),
            )
            .build(),
        IndexModel::builder()
            .keys(doc! { field::IDEMPOTENCY_KEY: 1, field::QUEUE: 1 })
            .options(named("idempotency_key_queue").build())
            .build(),
        IndexModel::builder()
            .keys(doc! { field::QUEUE: 1, field::STATUS: 1, field::RUN_AT: 1 })
            .options(named("queue_status_run_at").build())
            .build(),
        IndexModel::builder()
            .keys(doc! { field::QUEUE: 1, field::STATUS: 1, field::LEASE_UNTIL: 1 })
            .options(named("queue_status_lease_until").build())
            .build(),
        IndexModel::builder()
            .keys(doc! { field::EXPIRE_AT: 1 })
            .options(named("expire_at_ttl").expire_after(Duration::ZERO).build())
            .build(),
    ];
    collection(db, config).create_indexes(indexes).await?;
    Ok(())
}

fn new_job<T>(
    config: &JobsConfig,
    queue: &str,
    job: &T,
    options: &PushOptions,
) -> Result<JobDocument, JobError>
where
    T: Serialize + ?Sized,
{
    Ok(job_document(config, queue, bson::to_bson(job)?, options))
}

/// A new pending job, as `push` and the apalis sink insert it.
pub(crate) fn job_document(
    config: &JobsConfig,
    queue: &str,
    payload: bson::Bson,
    options: &PushOptions,
) -> JobDocument {
    let now = Utc::now();
    JobDocument {
        id: JobId::new(),
        queue: queue.to_owned(),
        payload,
        status: JobStatus::Pending,
        attempts: 0,
        max_attempts: options
            .max_attempts
            .unwrap_or(config.default_max_attempts)
            .max(1),
        run_at: options.run_at.unwrap_or(now),
        lease_until: None,
        worker_id: None,
        last_error: None,
        idempotency_key: options.idempotency_key.clone(),
        created_at: now,
        done_at: None,
        expire_at: None,
    }
}
