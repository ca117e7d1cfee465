//! apalis-core's [`Persistence`] over the jobs collection: claiming with a
//! lease, heartbeats that renew it, settling finished jobs (done, retried
//! with backoff, or dead), and the sweep that returns jobs of crashed
//! workers to the queue.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use apalis_core::backend::persistence::{Persistence, TaskEvent};
use apalis_core::task::Task;
use apalis_core::task::builder::TaskBuilder;
use apalis_core::task::status::Status;
use apalis_core::task::task_id::TaskId;
use apalis_core::worker::context::WorkerContext;
use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::options::ReturnDocument;
use mongodb::{Collection, Database};
use tokio::sync::Notify;

use crate::config::JobsConfig;
use crate::document::{JobDocument, JobStatus, after, bson_time, field};
use crate::error::{JobError, is_duplicate_key};
use crate::push::{PushOptions, collection, job_document};

/// How many times a worker tries to record a job's outcome before giving
/// up (the job's lease then lapses and the job runs again).
const SETTLE_TRIES: u32 = 3;
/// The most expired leases one sweep handles; the next sweep takes the
/// rest.
const SWEEP_BATCH: i64 = 500;
/// The most jobs announced by the change stream that an instance keeps
/// to claim by id; beyond it, announcements are dropped and the jobs are
/// claimed by the query like any other.
const MAX_ANNOUNCED: usize = 4_096;
/// How often a worker claims the oldest due job by the query even while
/// announced jobs wait. Rare on purpose: the query is a worker's most
/// expensive operation (on the development database it reads every
/// pending job), and each run held back the announced claims enough to
/// cost the mail benchmark a third of its speed when it ran every 5 s.
const OLDEST_FIRST_EVERY: Duration = Duration::from_secs(60);
/// The longest pause between two attempts to (re)open the change stream.
const CHANGE_STREAM_RETRY_CAP: Duration = Duration::from_secs(60);

/// The jobs of one queue in a MongoDB collection, as apalis-core's
/// [`Persistence`]. [`MongoBackend`](crate::MongoBackend) wraps it in
/// [`Persisted`](apalis_core::backend::persistence::Persisted), which
/// drives it: registering, heartbeats, fetching, settling, shutdown.
///
/// Clones share one identity: the same in-flight jobs, the same worker id
/// suffix, the same change stream. `Persisted` clones it for every call it
/// makes; to run another worker, build another `MongoPersistence` (or clone
/// the [`MongoBackend`](crate::MongoBackend), which does).
#[derive(Clone, Debug)]
pub struct MongoPersistence {
    jobs: Collection<Document>,
    config: Arc<JobsConfig>,
    queue: Arc<str>,
    shared: Arc<Shared>,
    observer: Option<Observer>,
}

/// How an attempt of a job ended, as this worker recorded it: what an
/// observer ([`MongoPersistence::on_settled`]) is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Settled {
    /// The handler succeeded: the job is `done`.
    Succeeded,
    /// The handler failed with attempts left: `pending` again after a
    /// backoff.
    Retried,
    /// The worker running it stopped heartbeating (it crashed, or hung)
    /// and a sweep found its lease expired, with attempts left: `pending`
    /// again.
    LeaseExpired,
    /// No attempt left, aborted, or undecodable: `dead`.
    Dead,
}

impl Settled {
    pub fn as_str(self) -> &'static str {
        match self {
            Settled::Succeeded => "succeeded",
            Settled::Retried => "retried",
            Settled::LeaseExpired => "lease_expired",
            Settled::Dead => "dead",
        }
    }
}

/// Told of each outcome once it is recorded in the collection, with the
/// queue's name; an outcome that could not be recorded (the lease was lost
/// meanwhile) is not told, since the job's next run will be.
#[derive(Clone)]
struct Observer(Arc<ObserverFn>);

type ObserverFn = dyn Fn(&str, Settled) + Send + Sync;

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

#[derive(Debug)]
struct Shared {
    /// Tells workers of the same name in different processes apart, so
    /// that one never renews the leases of another.
    instance: String,
    /// Jobs this instance has claimed and not yet settled: the ones its
    /// heartbeat renews.
    in_flight: Mutex<HashMap<String, Claimed>>,
    /// Woken by the change stream when a job is inserted on the queue.
    wake: Arc<Notify>,
    /// Jobs the change stream announced: claimed by id before the queue is
    /// queried (see `MongoPersistence::claim`).
    announced: Arc<Announced>,
    /// When this instance last claimed the oldest due job with the query.
    oldest_claimed_at: Mutex<Option<Instant>>,
    watcher: Mutex<Option<AbortOnDrop>>,
}

#[derive(Debug, Clone, Copy)]
struct Claimed {
    attempts: u32,
    max_attempts: u32,
}

/// What one sweep of expired leases did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Jobs returned to `pending`, to run again.
    pub requeued: u64,
    /// Jobs whose expired lease was their last attempt, now `dead`.
    pub dead: u64,
}

/// How a job's attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// Retried if attempts remain.
    Failed(String),
    /// Must not be retried (apalis `AbortError`, undecodable payload).
    Abort(String),
}

impl MongoPersistence {
    /// The jobs of `queue` in the configured collection of `db`. Fails on a
    /// configuration that does not [`validate`](JobsConfig::validate).
    pub fn new(
        db: &Database,
        queue: impl Into<String>,
        config: JobsConfig,
    ) -> Result<MongoPersistence, JobError> {
        config.validate()?;
        let queue: String = queue.into();
        if queue.is_empty() {
            return Err(JobError::InvalidConfig(
                "the queue name is empty".to_owned(),
            ));
        }
        Ok(MongoPersistence {
            jobs: collection(db, &config).clone_with_type(),
            config: Arc::new(config),
            queue: queue.into(),
            shared: Arc::new(Shared::new()),
            observer: None,
        })
    }

    /// Calls `observer` with the queue and the outcome of every attempt
    /// this worker records, and of every expired lease its sweeps settle:
    /// how an application counts its jobs without this crate knowing of
    /// its metrics. Every identity made from this one (each clone of the
    /// backend, another worker) keeps it.
    pub fn on_settled(
        mut self,
        observer: impl Fn(&str, Settled) + Send + Sync + 'static,
    ) -> MongoPersistence {
        self.observer = Some(Observer(Arc::new(observer)));
        self
    }

    fn tell(&self, settled: Settled, times: u64) {
        if let Some(Observer(observer)) = &self.observer {
            for _ in 0..times {
                observer(&self.queue, settled);
            }
        }
    }

    /// The same collection and queue under a new identity: another worker.
    pub(crate) fn fresh(&self) -> MongoPersistence {
        MongoPersistence {
            jobs: self.jobs.clone(),
            config: self.config.clone(),
            queue: self.queue.clone(),
            shared: Arc::new(Shared::new()),
            observer: self.observer.clone(),
        }
    }

    /// The queue this persistence serves.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &JobsConfig {
        &self.config
    }

    /// The `worker_id` written on the jobs `worker` claims: its name and
    /// this instance's random suffix.
    pub fn worker_id(&self, worker: &WorkerContext) -> String {
        format!("{}#{}", worker.name(), self.shared.instance)
    }

    /// How many jobs the change stream announced that this instance has
    /// neither claimed nor found taken yet.
    pub fn announced(&self) -> usize {
        self.shared.announced.jobs().len()
    }

    /// How many claimed jobs this instance has not settled yet.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight().len()
    }

    pub(crate) fn wake_signal(&self) -> Arc<Notify> {
        self.shared.wake.clone()
    }

    /// Claims a due pending job of the queue for `worker_id`: `running`,
    /// leased for `JobsConfig::lease`, one more attempt. `None` when no job
    /// is due.
    ///
    /// Jobs the change stream announced are claimed first, by id, with an
    /// update conditional on the job being as announced (pending, no
    /// attempt since): the cheapest claim there is, whatever the size of
    /// the queue, and one that hands back the job without reading it.
    /// Without announcements (none left, no change stream, retries and
    /// delayed jobs), the oldest due job is claimed with
    /// `find_one_and_update`; and so it is first once a minute
    /// (`OLDEST_FIRST_EVERY`), so that a steady stream of new jobs cannot
    /// starve retries, delayed jobs and jobs no one announced.
    pub async fn claim(&self, worker_id: &str) -> Result<Option<JobDocument>, JobError> {
        Ok(self.claim_many(worker_id, 1).await?.pop())
    }

    /// [`claim`](Self::claim), for up to `max` jobs at once: announced
    /// jobs are claimed together with one `update_many` (and, when other
    /// workers took some of them, one read of which are ours), so a worker
    /// that takes several jobs at a time makes one claim for all of them.
    /// The query for the oldest due job still claims one.
    pub async fn claim_many(
        &self,
        worker_id: &str,
        max: usize,
    ) -> Result<Vec<JobDocument>, JobError> {
        if self.shared.oldest_claim_due(OLDEST_FIRST_EVERY) {
            // Announced jobs are due too: none means nothing is.
            return Ok(self.claim_oldest(worker_id).await?.into_iter().collect());
        }
        loop {
            let announced = self.shared.announced.pop_due(max.max(1), Utc::now());
            if announced.is_empty() {
                break;
            }
            let claimed = self.claim_announced(worker_id, announced).await?;
            if !claimed.is_empty() {
                return Ok(claimed);
            }
        }
        Ok(self.claim_oldest(worker_id).await?.into_iter().collect())
    }

    /// Claims jobs as the change stream announced them (due, with the same
    /// attempts), those that are still so: one conditional update for all.
    async fn claim_announced(
        &self,
        worker_id: &str,
        mut jobs: Vec<JobDocument>,
    ) -> Result<Vec<JobDocument>, JobError> {
        let Some(attempts) = jobs.first().map(|job| job.attempts) else {
            return Ok(jobs);
        };
        let ids: Vec<&str> = jobs.iter().map(|job| job.id.as_str()).collect();
        let now = Utc::now();
        let lease_until = after(now, self.config.lease);
        let matched = self
            .jobs
            .update_many(
                doc! {
                    field::ID: { "$in": &ids },
                    field::STATUS: JobStatus::Pending,
                    field::ATTEMPTS: i64::from(attempts),
                    field::RUN_AT: { "$lte": bson_time(now) },
                },
                doc! {
                    "$set": {
                        field::STATUS: JobStatus::Running,
                        field::LEASE_UNTIL: bson_time(lease_until),
                        field::WORKER_ID: worker_id,
                    },
                    "$inc": { field::ATTEMPTS: 1 },
                },
            )
            .await?
            .matched_count;
        if matched < ids.len() as u64 {
            // Claimed elsewhere, or changed since announced: ours are
            // those now running under this worker at this attempt, less
            // any it already ran (taken by the query meanwhile).
            let ours: Vec<String> = if matched == 0 {
                Vec::new()
            } else {
                self.jobs
                    .find(doc! {
                        field::ID: { "$in": &ids },
                        field::STATUS: JobStatus::Running,
                        field::WORKER_ID: worker_id,
                        field::ATTEMPTS: i64::from(attempts) + 1,
                    })
                    .projection(doc! { field::ID: 1 })
                    .await?
                    .try_filter_map(|found| async move {
                        Ok(found.get_str(field::ID).ok().map(str::to_owned))
                    })
                    .try_collect()
                    .await?
            };
            let running = self.shared.in_flight();
            jobs.retain(|job| {
                ours.iter().any(|id| id == job.id.as_str())
                    && !running.contains_key(job.id.as_str())
            });
        }
        for job in &mut jobs {
            job.status = JobStatus::Running;
            job.attempts += 1;
            job.lease_until = Some(lease_until);
            job.worker_id = Some(worker_id.to_owned());
            self.claimed(job);
            tracing::debug!(job_id = %job.id, queue = %self.queue, worker_id, attempt = job.attempts, "announced job claimed");
        }
        Ok(jobs)
    }

    fn claimed(&self, job: &JobDocument) {
        self.shared.in_flight().insert(
            job.id.as_str().to_owned(),
            Claimed {
                attempts: job.attempts,
                max_attempts: job.max_attempts,
            },
        );
    }

    /// Claims the oldest due pending job with `find_one_and_update`.
    async fn claim_oldest(&self, worker_id: &str) -> Result<Option<JobDocument>, JobError> {
        self.shared.oldest_claimed_now();
        let now = Utc::now();
        let claimed = self
            .jobs
            .find_one_and_update(
                doc! {
                    field::QUEUE: &*self.queue,
                    field::STATUS: JobStatus::Pending,
                    field::RUN_AT: { "$lte": bson_time(now) },
                },
                doc! {
                    "$set": {
                        field::STATUS: JobStatus::Running,
                        field::LEASE_UNTIL: bson_time(after(now, self.config.lease)),
                        field::WORKER_ID: worker_id,
                    },
                    "$inc": { field::ATTEMPTS: 1 },
                },
            )
            .sort(doc! { field::RUN_AT: 1, field::ID: 1 })
            .return_document(ReturnDocument::After)
            .await?;
        let Some(document) = claimed else {
            return Ok(None);
        };
        let id = document.get(field::ID).cloned().unwrap_or(Bson::Null);
        match bson::from_document::<JobDocument>(document) {
            Ok(job) => {
                self.claimed(&job);
                tracing::debug!(job_id = %job.id, queue = %self.queue, worker_id, attempt = job.attempts, "job claimed");
                Ok(Some(job))
            }
            Err(err) => {
                // Claimed but unreadable: bury it rather than let it come
                // back after every lease.
                let reason = format!("cannot decode the stored job: {err}");
                tracing::error!(job_id = %id, queue = %self.queue, "{reason}");
                let buried = self
                    .jobs
                    .update_one(
                        doc! { field::ID: id, field::WORKER_ID: worker_id },
                        self.dead_update(Utc::now(), &reason),
                    )
                    .await?;
                self.tell(Settled::Dead, buried.matched_count);
                Err(err.into())
            }
        }
    }

    /// Renews the leases of the jobs this instance runs. Returns how many
    /// leases were renewed; fewer than [`in_flight`](Self::in_flight) means
    /// some expired before the heartbeat came (they may run twice).
    pub async fn renew_leases(&self, worker_id: &str) -> Result<u64, JobError> {
        let ids: Vec<String> = self.shared.in_flight().keys().cloned().collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let lease_until = bson_time(after(Utc::now(), self.config.lease));
        let renewed = self
            .jobs
            .update_many(
                doc! {
                    field::ID: { "$in": &ids },
                    field::STATUS: JobStatus::Running,
                    field::WORKER_ID: worker_id,
                },
                doc! { "$set": { field::LEASE_UNTIL: lease_until } },
            )
            .await?
            .matched_count;
        if renewed < ids.len() as u64 {
            tracing::warn!(
                queue = %self.queue,
                worker_id,
                running = ids.len(),
                renewed,
                "some running jobs had lost their lease; they may run twice"
            );
        }
        Ok(renewed)
    }

    /// Returns this queue's running jobs whose lease has expired to
    /// `pending` (or `dead`, when that was their last attempt).
    pub async fn recover_expired(&self) -> Result<Recovered, JobError> {
        let recovered = recover(&self.jobs, &self.config, Some(&self.queue)).await?;
        self.tell(Settled::LeaseExpired, recovered.requeued);
        self.tell(Settled::Dead, recovered.dead);
        Ok(recovered)
    }

    /// Records that the attempts of jobs `ids`, claimed by `worker_id`,
    /// succeeded: one update for all the attempts that finished since the
    /// last record.
    async fn settle_done(&self, worker_id: &str, ids: &[String]) -> Result<(), JobError> {
        {
            // No longer renewed: if the record fails for good, the leases
            // run out and the jobs run again.
            let mut running = self.shared.in_flight();
            for id in ids {
                running.remove(id);
            }
        }
        let now = Utc::now();
        let matched = self
            .jobs
            .update_many(
                doc! {
                    field::ID: { "$in": ids },
                    field::STATUS: JobStatus::Running,
                    field::WORKER_ID: worker_id,
                },
                doc! { "$set": {
                    field::STATUS: JobStatus::Done,
                    field::DONE_AT: bson_time(now),
                    field::EXPIRE_AT: bson_time(after(now, self.config.done_retention)),
                    field::LEASE_UNTIL: Bson::Null,
                } },
            )
            .await?
            .matched_count;
        self.tell(Settled::Succeeded, matched);
        if matched < ids.len() as u64 {
            tracing::warn!(
                queue = %self.queue,
                worker_id,
                done = ids.len(),
                recorded = matched,
                "some jobs' leases had expired and other workers took them; their outcomes are dropped"
            );
        }
        tracing::debug!(queue = %self.queue, jobs = ids.len(), "jobs done");
        Ok(())
    }

    /// Records a failed attempt of job `id`, claimed by `worker_id`:
    /// pending again after a backoff, or dead.
    async fn settle_failed(
        &self,
        worker_id: &str,
        id: &str,
        failure: Failure,
    ) -> Result<(), JobError> {
        let claimed = self.shared.in_flight().remove(id);
        let claimed = match claimed {
            Some(claimed) => claimed,
            None => self.read_attempts(id).await?,
        };
        let now = Utc::now();
        let (update, status, settled, error) = match failure {
            Failure::Failed(error) if claimed.attempts < claimed.max_attempts => {
                let delay = self.config.backoff(claimed.attempts);
                (
                    doc! { "$set": {
                        field::STATUS: JobStatus::Pending,
                        field::RUN_AT: bson_time(after(now, delay)),
                        field::LAST_ERROR: &error,
                        field::LEASE_UNTIL: Bson::Null,
                    } },
                    JobStatus::Pending,
                    Settled::Retried,
                    error,
                )
            }
            Failure::Failed(error) | Failure::Abort(error) => (
                self.dead_update(now, &error),
                JobStatus::Dead,
                Settled::Dead,
                error,
            ),
        };
        let filter = doc! {
            field::ID: id,
            field::STATUS: JobStatus::Running,
            field::WORKER_ID: worker_id,
        };
        let matched = self.jobs.update_one(filter, update).await?.matched_count;
        if matched == 0 {
            tracing::warn!(
                job_id = id,
                queue = %self.queue,
                worker_id,
                "the job's lease had expired and another worker took it; this outcome is dropped"
            );
        } else {
            self.tell(settled, 1);
            tracing::warn!(
                job_id = id,
                queue = %self.queue,
                attempt = claimed.attempts,
                max_attempts = claimed.max_attempts,
                %status,
                error = %error,
                "job failed"
            );
        }
        Ok(())
    }

    /// Marks a job this worker claimed but did not run as dead: used when
    /// its payload does not decode into the worker's job type.
    pub(crate) async fn bury(&self, worker_id: &str, id: &str, reason: String) {
        tracing::error!(job_id = id, queue = %self.queue, reason, "job cannot run; marking it dead");
        let jobs = [id.to_owned()];
        with_retries(&jobs, || {
            self.settle_failed(worker_id, id, Failure::Abort(reason.clone()))
        })
        .await;
    }

    fn dead_update(&self, now: DateTime<Utc>, error: &str) -> Document {
        let expire_at = match self.config.dead_retention {
            Some(retention) => Bson::DateTime(bson_time(after(now, retention))),
            None => Bson::Null,
        };
        doc! { "$set": {
            field::STATUS: JobStatus::Dead,
            field::LAST_ERROR: error,
            field::DONE_AT: bson_time(now),
            field::EXPIRE_AT: expire_at,
            field::LEASE_UNTIL: Bson::Null,
        } }
    }

    async fn read_attempts(&self, id: &str) -> Result<Claimed, JobError> {
        let stored = self
            .jobs
            .find_one(doc! { field::ID: id })
            .projection(doc! { field::ATTEMPTS: 1, field::MAX_ATTEMPTS: 1 })
            .await?;
        let stored = stored.unwrap_or_default();
        Ok(Claimed {
            attempts: get_u32(&stored, field::ATTEMPTS).unwrap_or(0),
            max_attempts: get_u32(&stored, field::MAX_ATTEMPTS).unwrap_or(1),
        })
    }

    /// Returns claimed jobs that never started to `pending`, without
    /// counting the attempt: one update for all (a stopping worker may
    /// hold a batch of them).
    async fn release(&self, worker_id: &str, ids: Vec<String>) -> Result<u64, JobError> {
        if ids.is_empty() {
            return Ok(0);
        }
        {
            let mut running = self.shared.in_flight();
            for id in &ids {
                running.remove(id);
            }
        }
        let released = self
            .jobs
            .update_many(
                doc! {
                    field::ID: { "$in": &ids },
                    field::STATUS: JobStatus::Running,
                    field::WORKER_ID: worker_id,
                },
                doc! {
                    "$set": { field::STATUS: JobStatus::Pending, field::LEASE_UNTIL: Bson::Null },
                    "$inc": { field::ATTEMPTS: -1 },
                },
            )
            .await?
            .modified_count;
        Ok(released)
    }

    /// Starts the change stream that wakes idle workers of this instance,
    /// once. The stream is opened before this returns (when the server
    /// allows), so a job inserted afterwards is noticed.
    async fn start_watcher(&self) {
        if !self.config.change_stream || self.shared.watcher_running() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no Tokio runtime: idle workers will poll instead of watching");
            return;
        };
        let pipeline = [doc! { "$match": {
            "operationType": "insert",
            "fullDocument.queue": &*self.queue,
        } }];
        let opened = self.jobs.watch().pipeline(pipeline.clone()).await;
        if let Err(err) = &opened {
            tracing::info!(
                queue = %self.queue,
                error = %err,
                poll_interval = ?self.config.poll_interval,
                "no change stream on the jobs collection; idle workers poll"
            );
        }
        let jobs = self.jobs.clone();
        // Not `shared`: the task must not keep alive what aborts it.
        let wake = self.shared.wake.clone();
        let announced = self.shared.announced.clone();
        let queue = self.queue.clone();
        let handle = runtime.spawn(async move {
            let mut stream = opened.ok();
            let mut pause = Duration::from_secs(1);
            loop {
                if let Some(mut events) = stream.take() {
                    pause = Duration::from_secs(1);
                    loop {
                        match crate::next_change(&mut events).await {
                            Ok(Some(event)) => {
                                let job = event
                                    .full_document
                                    .and_then(|inserted| bson::from_document(inserted).ok());
                                if let Some(job) = job {
                                    announced.push(job);
                                }
                                wake.notify_one();
                            }
                            Ok(None) => break,
                            Err(err) => {
                                tracing::debug!(queue = %queue, error = %err, "the jobs change stream ended");
                                break;
                            }
                        }
                    }
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(CHANGE_STREAM_RETRY_CAP);
                if let Ok(events) = jobs.watch().pipeline(pipeline.clone()).await {
                    // Inserts may have happened while the stream was down.
                    wake.notify_one();
                    stream = Some(events);
                }
            }
        });
        self.shared.set_watcher(AbortOnDrop(handle));
    }
}

impl Persistence for MongoPersistence {
    type Compact = Bson;
    type Response = ();
    type Error = JobError;

    /// Opens the change stream and sweeps expired leases. Never fails the
    /// worker: without a change stream it polls, and the sweep runs again
    /// at every heartbeat.
    async fn register(&mut self, worker: &WorkerContext) -> Result<(), JobError> {
        tracing::info!(queue = %self.queue, worker_id = %self.worker_id(worker), "job worker registered");
        self.start_watcher().await;
        if let Err(err) = self.recover_expired().await {
            tracing::warn!(queue = %self.queue, error = %err, "cannot sweep expired job leases");
        }
        Ok(())
    }

    /// Renews the leases of this worker's running jobs and sweeps the
    /// queue's expired leases. Database errors are logged, not returned:
    /// they would stop the worker, and a missed heartbeat costs at worst a
    /// second run of a job.
    async fn heartbeat(&mut self, worker: &WorkerContext) -> Result<(), JobError> {
        let worker_id = self.worker_id(worker);
        if let Err(err) = self.renew_leases(&worker_id).await {
            tracing::warn!(queue = %self.queue, worker_id, error = %err, "cannot renew job leases");
        }
        match self.recover_expired().await {
            Ok(recovered) if recovered != Recovered::default() => tracing::info!(
                queue = %self.queue,
                requeued = recovered.requeued,
                dead = recovered.dead,
                "recovered jobs whose lease had expired"
            ),
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(queue = %self.queue, error = %err, "cannot sweep expired job leases")
            }
        }
        Ok(())
    }

    /// Claims up to `claim_batch` jobs (apalis hands them to the handler
    /// one by one as it has room). A database error is logged and reported
    /// as "nothing to do": the worker tries again at the next wake-up.
    async fn fetch_next(&mut self, worker: &WorkerContext) -> Result<Vec<Task<Bson>>, JobError> {
        if worker.is_shutting_down() {
            return Ok(Vec::new());
        }
        let worker_id = self.worker_id(worker);
        match self.claim_many(&worker_id, self.config.claim_batch).await {
            Ok(jobs) => Ok(jobs
                .into_iter()
                .map(|job| job_task(job, worker_id.clone()))
                .collect()),
            Err(err) => {
                tracing::warn!(queue = %self.queue, error = %err, "cannot claim a job");
                Ok(Vec::new())
            }
        }
    }

    /// Claimed jobs the worker never started (it is shutting down) go back
    /// to `pending`, their attempt not counted.
    async fn reenqueue_abandoned(
        &mut self,
        tasks: Vec<Task<Bson>>,
        worker: &WorkerContext,
    ) -> Result<u64, JobError> {
        let worker_id = self.worker_id(worker);
        let ids = tasks
            .iter()
            .filter_map(|task| task.task_id().map(|id| id.to_string()))
            .collect();
        self.release(&worker_id, ids).await
    }

    /// Records finished attempts: done (all those of the batch in one
    /// update), retried with backoff, or dead.
    async fn handle_events(
        &mut self,
        events: Vec<TaskEvent<()>>,
        worker: &WorkerContext,
    ) -> Result<(), JobError> {
        let worker_id = self.worker_id(worker);
        let mut done = Vec::new();
        for event in events {
            match event {
                TaskEvent::Complete(result) => {
                    let id = result.task_id.to_string();
                    let failure = match result.result {
                        Ok(()) => {
                            done.push(id);
                            continue;
                        }
                        Err(error) if result.status == Status::Killed => Failure::Abort(error),
                        Err(error) => Failure::Failed(error),
                    };
                    let jobs = [id];
                    with_retries(&jobs, || {
                        self.settle_failed(&worker_id, &jobs[0], failure.clone())
                    })
                    .await;
                }
                TaskEvent::Release { task_id } => {
                    if let Err(err) = self.release(&worker_id, vec![task_id.to_string()]).await {
                        tracing::warn!(job_id = %task_id, error = %err, "cannot release a job");
                    }
                }
                _ => {}
            }
        }
        if !done.is_empty() {
            with_retries(&done, || self.settle_done(&worker_id, &done)).await;
        }
        Ok(())
    }

    /// Inserts jobs pushed through apalis' `TaskSink` on this queue, with
    /// the task's idempotency key, `run_at` and `max_attempts`. A duplicate
    /// idempotency key is skipped.
    async fn push_tasks(&mut self, tasks: Vec<Task<Bson>>) -> Result<(), JobError> {
        for task in tasks {
            let (payload, ctx) = task.take();
            let options = PushOptions {
                idempotency_key: ctx.idempotency_key().map(str::to_owned),
                run_at: ctx
                    .run_at()
                    .and_then(|secs| i64::try_from(secs).ok())
                    .and_then(|secs| DateTime::from_timestamp(secs, 0)),
                max_attempts: ctx.max_attempts().and_then(|n| u32::try_from(n).ok()),
            };
            let job = job_document(&self.config, &self.queue, payload, &options);
            match self
                .jobs
                .clone_with_type::<JobDocument>()
                .insert_one(&job)
                .await
            {
                Ok(_) => tracing::debug!(job_id = %job.id, queue = %self.queue, "job pushed"),
                Err(err) if is_duplicate_key(&err) => {
                    tracing::debug!(queue = %self.queue, "duplicate idempotency key; job skipped")
                }
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }
}

/// Returns running jobs whose lease has expired to `pending`, or declares
/// them `dead` when the expired attempt was their last one: what keeps a
/// crashed worker from losing jobs. Every worker runs it for its queue at
/// each heartbeat; call it yourself (with `queue: None` for all queues) to
/// recover jobs of a queue no worker serves any more.
pub async fn recover_expired_leases(
    db: &Database,
    config: &JobsConfig,
    queue: Option<&str>,
) -> Result<Recovered, JobError> {
    recover(&collection(db, config).clone_with_type(), config, queue).await
}

async fn recover(
    jobs: &Collection<Document>,
    config: &JobsConfig,
    queue: Option<&str>,
) -> Result<Recovered, JobError> {
    let now = Utc::now();
    let expired = doc! {
        field::STATUS: JobStatus::Running,
        field::LEASE_UNTIL: { "$lt": bson_time(now) },
    };
    let mut filter = expired.clone();
    if let Some(queue) = queue {
        filter.insert(field::QUEUE, queue);
    }
    let mut cursor = jobs
        .find(filter)
        .projection(doc! { field::ATTEMPTS: 1, field::MAX_ATTEMPTS: 1, field::WORKER_ID: 1 })
        .limit(SWEEP_BATCH)
        .await?;
    let mut recovered = Recovered::default();
    while let Some(job) = cursor.try_next().await? {
        let Some(id) = job.get(field::ID).cloned() else {
            continue;
        };
        let attempts = get_u32(&job, field::ATTEMPTS).unwrap_or(0);
        let max_attempts = get_u32(&job, field::MAX_ATTEMPTS).unwrap_or(1);
        let worker = job.get_str(field::WORKER_ID).unwrap_or("an unknown worker");
        let error =
            format!("lease expired during attempt {attempts}: {worker} stopped heartbeating");
        let last_attempt = attempts >= max_attempts;
        let update = if last_attempt {
            let expire_at = match config.dead_retention {
                Some(retention) => Bson::DateTime(bson_time(after(now, retention))),
                None => Bson::Null,
            };
            doc! { "$set": {
                field::STATUS: JobStatus::Dead,
                field::LAST_ERROR: &error,
                field::DONE_AT: bson_time(now),
                field::EXPIRE_AT: expire_at,
                field::LEASE_UNTIL: Bson::Null,
            } }
        } else {
            doc! { "$set": {
                field::STATUS: JobStatus::Pending,
                field::RUN_AT: bson_time(now),
                field::LAST_ERROR: &error,
                field::LEASE_UNTIL: Bson::Null,
            } }
        };
        let mut guard = expired.clone();
        guard.insert(field::ID, id.clone());
        let modified = jobs.update_one(guard, update).await?.modified_count;
        if modified == 0 {
            continue; // renewed or recovered meanwhile
        }
        tracing::warn!(job_id = %id, attempts, max_attempts, dead = last_attempt, "{error}");
        if last_attempt {
            recovered.dead += 1;
        } else {
            recovered.requeued += 1;
        }
    }
    Ok(recovered)
}

/// A record of outcomes, tried a few times: a blip of the database
/// should not make finished jobs run again.
async fn with_retries<F, Fut>(jobs: &[String], mut record: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), JobError>>,
{
    for attempt in 1..=SETTLE_TRIES {
        match record().await {
            Ok(()) => return,
            Err(err) if attempt < SETTLE_TRIES => {
                tracing::warn!(?jobs, error = %err, "cannot record the outcome yet; retrying");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            Err(err) => {
                tracing::error!(
                    ?jobs,
                    error = %err,
                    "cannot record the outcome; the jobs will run again when their lease expires"
                );
            }
        }
    }
}

/// A claimed job as the apalis task the worker runs. Its attempt counter
/// starts one below the stored `attempts`: apalis counts the attempt when
/// it starts the task.
fn job_task(job: JobDocument, worker_id: String) -> Task<Bson> {
    let mut builder = TaskBuilder::new(job.payload)
        .task_id(TaskId::from_string(job.id.as_str()))
        .attempt(job.attempts.saturating_sub(1) as usize)
        .max_attempts(job.max_attempts as usize)
        .queue(job.queue.as_str().into())
        .lock_by(Some(worker_id))
        .lock_at(u64::try_from(Utc::now().timestamp()).ok())
        .run_at_timestamp(u64::try_from(job.run_at.timestamp()).unwrap_or(0));
    if let Some(key) = &job.idempotency_key {
        builder = builder.idempotency_key(key);
    }
    builder.build()
}

fn get_u32(document: &Document, key: &str) -> Option<u32> {
    match document.get(key)? {
        Bson::Int32(n) => u32::try_from(*n).ok(),
        Bson::Int64(n) => u32::try_from(*n).ok(),
        Bson::Double(n) if n.is_finite() && *n >= 0.0 => Some(*n as u32),
        _ => None,
    }
}

impl Shared {
    fn new() -> Shared {
        Shared {
            instance: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            in_flight: Mutex::new(HashMap::new()),
            wake: Arc::new(Notify::new()),
            announced: Arc::default(),
            oldest_claimed_at: Mutex::new(None),
            watcher: Mutex::new(None),
        }
    }

    fn oldest_claim_due(&self, every: Duration) -> bool {
        self.oldest_claimed_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_none_or(|at| at.elapsed() >= every)
    }

    fn oldest_claimed_now(&self) {
        *self
            .oldest_claimed_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now());
    }

    fn in_flight(&self) -> MutexGuard<'_, HashMap<String, Claimed>> {
        self.in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn watcher_running(&self) -> bool {
        self.watcher
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_some()
    }

    fn set_watcher(&self, watcher: AbortOnDrop) {
        *self
            .watcher
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(watcher);
    }
}

/// Jobs as the change stream announced their insertion, oldest first.
#[derive(Debug, Default)]
struct Announced(Mutex<VecDeque<JobDocument>>);

impl Announced {
    fn jobs(&self) -> MutexGuard<'_, VecDeque<JobDocument>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, job: JobDocument) {
        let mut jobs = self.jobs();
        if jobs.len() < MAX_ANNOUNCED {
            jobs.push_back(job);
        }
    }

    /// Up to `max` of the oldest announced jobs that are due and have the
    /// attempts of the first (so one update claims them all). Delayed ones
    /// are forgotten: the query finds them when they are due.
    fn pop_due(&self, max: usize, now: DateTime<Utc>) -> Vec<JobDocument> {
        let mut jobs = self.jobs();
        let mut due: Vec<JobDocument> = Vec::new();
        while due.len() < max {
            let Some(job) = jobs.front() else { break };
            if job.run_at > now {
                jobs.pop_front();
                continue;
            }
            if due.iter().any(|taken| taken.id == job.id) {
                // Announced twice (a resumed stream): claimed once.
                jobs.pop_front();
                continue;
            }
            if due
                .first()
                .is_some_and(|first| first.attempts != job.attempts)
            {
                break;
            }
            due.extend(jobs.pop_front());
        }
        due
    }
}

/// Stops the change-stream task with the last clone of its worker.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_counters_of_any_numeric_type() {
        let document = doc! { "a": 3_i32, "b": 4_i64, "c": 5.0, "d": -1_i32, "e": "x" };
        assert_eq!(get_u32(&document, "a"), Some(3));
        assert_eq!(get_u32(&document, "b"), Some(4));
        assert_eq!(get_u32(&document, "c"), Some(5));
        assert_eq!(get_u32(&document, "d"), None);
        assert_eq!(get_u32(&document, "e"), None);
        assert_eq!(get_u32(&document, "f"), None);
    }
}
