//! Background jobs, on apalis with `muster-worker`'s MongoDB backend:
//! sending invitation mails; and on apalis-cron, the minutely expiry of
//! invitations, the minutely sealing of audit events and the hourly purge
//! of audit events past retention.
//! `muster serve` runs them in the server process; `muster worker` runs
//! them alone; any number of processes may run them together (jobs are
//! claimed with leases, the sweep updates conditionally).

mod group_commit;
mod send_invitation;
mod sweep;

use std::sync::Arc;
use std::time::Duration;

use apalis::layers::WorkerBuilderExt;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_cron::CronScheduler;
use muster_worker::{JobsConfig, MongoBackend, MongoPersistence};

// What the jobs carry and how use cases queue them live in `app::jobs`;
// re-exported for the callers that name them here.
pub use crate::app::jobs::{SEND_INVITATION_QUEUE, SendInvitation, cancel_send_invitations};
use crate::config::JobSettings;
use crate::mail::Mailer;
use crate::measure;
use crate::state::AppState;

pub use sweep::{expire_due, purge_audit};

/// The backend's settings: the library's defaults, with the lease,
/// polling and concurrency of the `jobs` configuration (a worker claims
/// as many announced jobs at once as it runs). Pushes and indexes use the
/// plain defaults: the collection, attempts and retention they read are
/// not configurable.
pub fn jobs_config(settings: &JobSettings) -> JobsConfig {
    let lease = Duration::from_secs(settings.lease_seconds);
    JobsConfig {
        lease,
        heartbeat_interval: lease / 3,
        poll_interval: Duration::from_secs(settings.poll_interval_seconds),
        claim_batch: settings.concurrency as usize,
        ..JobsConfig::default()
    }
}

/// What every job handler gets.
#[derive(Clone)]
pub struct JobContext {
    pub state: AppState,
    pub mailer: Arc<Mailer>,
    pub names: Arc<send_invitation::NameCache>,
    pub writes: Arc<send_invitation::MailWrites>,
}

/// Runs the workers until `shutdown` resolves.
pub async fn run(
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let config = jobs_config(&state.settings().jobs);
    run_with(state, config, shutdown).await
}

/// `run` with other backend settings (tests shorten backoff and polling).
pub async fn run_with(
    state: AppState,
    config: JobsConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mailer = Arc::new(Mailer::from_settings(&state.settings().smtp)?);
    let context = JobContext {
        state: state.clone(),
        mailer,
        names: Arc::default(),
        writes: Arc::default(),
    };
    // Counted by the worker that records each outcome; a queue's depth is
    // read from the database at scrape time instead (`metrics_export`).
    measure::register_queue(SEND_INVITATION_QUEUE);
    let persistence =
        MongoPersistence::new(state.store().database(), SEND_INVITATION_QUEUE, config)?
            .on_settled(measure::job);
    let backend = MongoBackend::<SendInvitation>::from_persistence(persistence);
    let worker = WorkerBuilder::new("muster-send-invitation")
        .backend(backend)
        .data(context.clone())
        .concurrency(state.settings().jobs.concurrency as usize)
        .build(send_invitation::handle);
    for job in [sweep::EXPIRY_JOB, sweep::PURGE_JOB, sweep::SEAL_JOB] {
        measure::register_scheduled_job(job);
    }
    let expiry = WorkerBuilder::new("muster-expire-invitations")
        .backend(CronScheduler::new(sweep::schedule(sweep::EXPIRY_SCHEDULE)?))
        .data(context.clone())
        .build(sweep::expire_tick);
    let purge = WorkerBuilder::new("muster-purge-audit")
        .backend(CronScheduler::new(sweep::schedule(sweep::PURGE_SCHEDULE)?))
        .data(context.clone())
        .build(sweep::purge_tick);
    let seal = WorkerBuilder::new("muster-seal-audit")
        .backend(CronScheduler::new(sweep::schedule(sweep::SEAL_SCHEDULE)?))
        .data(context.clone())
        .build(sweep::seal_tick);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let until = |mut stop: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|stop| *stop).await;
        Ok::<(), std::io::Error>(())
    };
    let scheduled = tokio::spawn(async move {
        futures::future::join3(
            expiry.run_until(until(stop_rx.clone())),
            purge.run_until(until(stop_rx.clone())),
            seal.run_until(until(stop_rx)),
        )
        .await
    });
    let result = worker
        .run_until(async move {
            shutdown.await;
            Ok::<(), std::io::Error>(())
        })
        .await;
    let _ = stop_tx.send(true);
    if let Ok((expiry, purge, seal)) = scheduled.await {
        for outcome in [expiry, purge, seal] {
            if let Err(err) = outcome {
                tracing::warn!(error = %err, "a scheduled job stopped with an error");
            }
        }
    }
    result.map_err(|err| anyhow::anyhow!("the job worker stopped: {err}"))
}
