//! The apalis backend: [`Persisted`] around [`MongoPersistence`], with
//! typed jobs and a wake-up on new jobs (change stream, else polling).

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use apalis_core::backend::codec::Codec;
use apalis_core::backend::finalize::Ephemeral;
use apalis_core::backend::future::BoxSyncFuture;
use apalis_core::backend::persistence::{Persisted, State, TaskPersistLayer};
use apalis_core::backend::{Backend, BackendConfig};
use apalis_core::task::Task;
use apalis_core::worker::context::WorkerContext;
use futures::{FutureExt, Sink};
use mongodb::Database;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use crate::config::JobsConfig;
use crate::document::JobId;
use crate::error::JobError;
use crate::persistence::MongoPersistence;

/// Room for this many finished-task events between two flushes.
const EVENT_BATCH: usize = 64;

/// An apalis backend serving the jobs of one queue, typed as `T`.
///
/// ```no_run
/// # use apalis_core::worker::builder::WorkerBuilder;
/// # use apalis_core::error::BoxDynError;
/// # use muster_worker::{JobsConfig, MongoBackend};
/// # #[derive(serde::Serialize, serde::Deserialize)] struct SendEmail { to: String }
/// async fn send_email(job: SendEmail) -> Result<(), BoxDynError> {
///     // deliver, idempotently
///     Ok(())
/// }
/// # async fn run(db: mongodb::Database) -> Result<(), BoxDynError> {
/// let backend = MongoBackend::<SendEmail>::new(&db, "email", JobsConfig::default())?;
/// WorkerBuilder::new("email-worker")
///     .backend(backend)
///     .build(send_email)
///     .run()
///     .await?;
/// # Ok(()) }
/// ```
///
/// A worker claims as many jobs as its service accepts: bound it with
/// apalis' `concurrency(n)` layer. Each clone is a separate worker
/// identity (its own leases, its own change stream).
pub struct MongoBackend<T> {
    persisted: Persisted<MongoPersistence>,
    heartbeat_interval: Duration,
    poll_interval: Duration,
    wake: Arc<Notify>,
    /// While idle: resolves on a change-stream event or after
    /// `poll_interval`, to look for work again.
    idle: Option<BoxSyncFuture<()>>,
    /// Marking a job with an undecodable payload dead.
    burying: Option<BoxSyncFuture<()>>,
    _job: PhantomData<fn() -> T>,
}

impl<T> MongoBackend<T> {
    /// The backend for `queue` in the configured collection of `db`. Fails
    /// on a configuration that does not [`validate`](JobsConfig::validate).
    pub fn new(
        db: &Database,
        queue: impl Into<String>,
        config: JobsConfig,
    ) -> Result<MongoBackend<T>, JobError> {
        Ok(MongoBackend::from_persistence(MongoPersistence::new(
            db, queue, config,
        )?))
    }

    /// A backend driving `persistence`.
    pub fn from_persistence(persistence: MongoPersistence) -> MongoBackend<T> {
        MongoBackend {
            heartbeat_interval: persistence.config().heartbeat_interval,
            poll_interval: persistence.config().poll_interval,
            wake: persistence.wake_signal(),
            persisted: Persisted::new(persistence),
            idle: None,
            burying: None,
            _job: PhantomData,
        }
    }

    /// The persistence underneath: claiming, leases, sweeps.
    pub fn persistence(&self) -> &MongoPersistence {
        &self.persisted
    }

    /// The queue this backend serves.
    pub fn queue(&self) -> &str {
        self.persisted.queue()
    }

    fn idle_future(&self) -> BoxSyncFuture<()> {
        let wake = self.wake.clone();
        let poll_interval = self.poll_interval;
        BoxSyncFuture::new(
            async move {
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(poll_interval) => {}
                }
            }
            .boxed(),
        )
    }
}

impl<T> Clone for MongoBackend<T> {
    /// Another worker on the same queue, with an identity of its own.
    fn clone(&self) -> Self {
        MongoBackend::from_persistence(self.persisted.fresh())
    }
}

impl<T> fmt::Debug for MongoBackend<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoBackend")
            .field("job", &std::any::type_name::<T>())
            .field("persistence", &*self.persisted)
            .field("state", self.persisted.state())
            .finish_non_exhaustive()
    }
}

impl<T> Backend for MongoBackend<T>
where
    T: DeserializeOwned + Send + 'static,
{
    type Task = Task<T>;
    type Error = JobError;

    fn poll_ready(
        &mut self,
        cx: &mut Context<'_>,
        worker: &WorkerContext,
    ) -> Poll<Result<(), JobError>> {
        self.persisted
            .poll_ready(cx, worker, self.heartbeat_interval)
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        worker: &WorkerContext,
    ) -> Poll<Option<Result<Task<T>, JobError>>> {
        loop {
            if let Some(burying) = self.burying.as_mut() {
                match burying.poll_unpin(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) => self.burying = None,
                }
            }
            match self.persisted.poll_next(cx, worker) {
                Poll::Ready(Some(Ok(task))) => {
                    let id = task.task_id().map(ToString::to_string).unwrap_or_default();
                    match task.try_map_args(bson::from_bson::<T>) {
                        Ok(task) => return Poll::Ready(Some(Ok(task))),
                        Err(err) => {
                            let persistence = MongoPersistence::clone(&self.persisted);
                            let worker_id = persistence.worker_id(worker);
                            let reason = format!(
                                "the payload does not decode as {}: {err}",
                                std::any::type_name::<T>()
                            );
                            self.burying = Some(BoxSyncFuture::new(
                                async move { persistence.bury(&worker_id, &id, reason).await }
                                    .boxed(),
                            ));
                        }
                    }
                }
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(err))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => {
                    // Only an empty fetch leaves the state `Ready`; any
                    // other state has a database call in flight that
                    // will wake the worker.
                    if !matches!(self.persisted.state(), State::Ready) {
                        return Poll::Pending;
                    }
                    let idle = match self.idle.as_mut() {
                        Some(idle) => idle,
                        None => self.idle.insert(self.idle_future()),
                    };
                    match idle.poll_unpin(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(()) => self.idle = None,
                    }
                }
            }
        }
    }

    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        worker: &WorkerContext,
    ) -> Poll<Result<(), JobError>> {
        self.persisted.poll_close(cx, worker)
    }
}

impl<T> BackendConfig for MongoBackend<T> {
    type Args = T;
    type Id = JobId;
    type Kind = Ephemeral;
    type Config = JobsConfig;
    type Layer = TaskPersistLayer<DiscardResult, ()>;

    fn config(&self) -> &JobsConfig {
        self.persisted.config()
    }

    /// Reports every finished attempt to the persistence, which records
    /// it (done, retry, dead).
    fn middleware(&mut self, _worker: &mut WorkerContext) -> Self::Layer {
        self.persisted
            .layer(DiscardResult, EVENT_BATCH)
            .persist_results(true)
    }
}

/// Jobs pushed through apalis' `TaskSink` (`backend.push(job)`) land on
/// this backend's queue, outside any transaction. Prefer
/// [`push_in`](crate::push_in) next to a business write.
impl<T> Sink<Task<T>> for MongoBackend<T>
where
    T: Serialize,
{
    type Error = JobError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), JobError>> {
        Sink::poll_ready(Pin::new(&mut self.get_mut().persisted), cx)
    }

    fn start_send(self: Pin<&mut Self>, task: Task<T>) -> Result<(), JobError> {
        let task = task.try_map_args(|job| bson::to_bson(&job))?;
        Sink::start_send(Pin::new(&mut self.get_mut().persisted), task)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), JobError>> {
        Sink::poll_flush(Pin::new(&mut self.get_mut().persisted), cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), JobError>> {
        Sink::poll_close(Pin::new(&mut self.get_mut().persisted), cx)
    }
}

/// The codec for handler results: results are not stored, only whether
/// the attempt succeeded (and its error). Any handler output type fits.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscardResult;

/// [`DiscardResult`] cannot give back a result it never stored.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("job results are not stored")]
pub struct ResultNotStored;

impl<R> Codec<R> for DiscardResult {
    type Error = ResultNotStored;
    type Compact = ();

    fn encode(&self, _result: &R) -> Result<(), ResultNotStored> {
        Ok(())
    }

    fn decode(&self, _stored: &()) -> Result<R, ResultNotStored> {
        Err(ResultNotStored)
    }
}
