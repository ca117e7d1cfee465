//! Background jobs, on apalis with `muster-worker`'s MongoDB backend:
//! sending invitation mails; and on apalis-cron, the minutely expiry of
//! invitations and the hourly purge of audit events past retention.
//! `muster serve` runs them in the server process; `muster worker` runs
//! them alone; any number of processes may run them together (jobs are
//! claimed with leases, the sweep updates conditionally).

mod send_invitation;
mod sweep;

use std::sync::Arc;
use std::time::Duration;

use apalis::layers::WorkerBuilderExt;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_cron::CronScheduler;
use chrono::{DateTime, Utc};
use mongodb::ClientSession;
use muster_worker::{JobError, JobsConfig, MongoBackend, PushOptions, push_many_in};

use crate::config::JobSettings;
use crate::domain::InvitationId;
use crate::domain::invitation::Invitation;
use crate::error::AppError;
use crate::mail::Mailer;
use crate::state::AppState;
use crate::store::Store;

pub use send_invitation::SendInvitation;
pub use sweep::{expire_due, purge_audit};

/// The queue of invitation mails.
pub const SEND_INVITATION_QUEUE: &str = "send_invitation";

/// The backend's settings: the library's defaults, with the lease and
/// polling of the `jobs` configuration. Pushes and indexes use the plain
/// defaults: the collection, attempts and retention they read are not
/// configurable.
pub fn jobs_config(settings: &JobSettings) -> JobsConfig {
    let lease = Duration::from_secs(settings.lease_seconds);
    JobsConfig {
        lease,
        heartbeat_interval: lease / 3,
        poll_interval: Duration::from_secs(settings.poll_interval_seconds),
        ..JobsConfig::default()
    }
}

/// What every job handler gets.
#[derive(Clone)]
pub struct JobContext {
    pub state: AppState,
    pub mailer: Arc<Mailer>,
    pub names: Arc<send_invitation::NameCache>,
}

impl From<JobError> for AppError {
    fn from(err: JobError) -> Self {
        // A driver error stays one, so that a transaction retries what is
        // transient (a racing duplicate key included, see `push_in`).
        match err {
            JobError::Database(err) => AppError::Store(err),
            other if other.is_transient() => {
                AppError::Unavailable(format!("the job queue is busy: {other}"))
            }
            other => AppError::internal(other),
        }
    }
}

/// Queues the mail of each invitation's latest send, inside the caller's
/// transaction: the invitations and their mails commit or vanish
/// together. Keyed by invitation and send number, so a retried
/// transaction never queues a mail twice.
pub async fn enqueue_send_invitations(
    store: &Store,
    session: &mut ClientSession,
    invitations: &[Invitation],
) -> Result<(), AppError> {
    let jobs = invitations.iter().map(|invitation| {
        let job = SendInvitation {
            invitation_id: invitation.id.to_string(),
            send: invitation.delivery.sends,
        };
        let key = format!("invitation:{}:send:{}", job.invitation_id, job.send);
        (job, PushOptions::idempotency_key(key))
    });
    let _ = push_many_in(
        store.database(),
        session,
        &JobsConfig::default(),
        SEND_INVITATION_QUEUE,
        jobs,
    )
    .await?;
    Ok(())
}

/// [`enqueue_send_invitations`] for one invitation.
pub async fn enqueue_send_invitation(
    store: &Store,
    session: &mut ClientSession,
    invitation: &Invitation,
) -> Result<(), AppError> {
    enqueue_send_invitations(store, session, std::slice::from_ref(invitation)).await
}

/// [`enqueue_send_invitation`] for a mail not to be sent before `run_at`
/// (a SCIM activation over the hourly cap).
pub async fn enqueue_send_invitation_at(
    store: &Store,
    session: &mut ClientSession,
    invitation: &Invitation,
    run_at: DateTime<Utc>,
) -> Result<(), AppError> {
    let job = SendInvitation {
        invitation_id: invitation.id.to_string(),
        send: invitation.delivery.sends,
    };
    let options = PushOptions {
        run_at: Some(run_at),
        ..PushOptions::idempotency_key(format!(
            "invitation:{}:send:{}",
            job.invitation_id, job.send
        ))
    };
    let _ = push_many_in(
        store.database(),
        session,
        &JobsConfig::default(),
        SEND_INVITATION_QUEUE,
        [(job, options)],
    )
    .await?;
    Ok(())
}

/// Removes the mail jobs of invitations that will never be mailed (their
/// organization is being deleted), inside the caller's transaction. Only
/// jobs still waiting: one already running finds its invitation no longer
/// pending and mails nothing.
pub async fn cancel_send_invitations(
    store: &Store,
    session: &mut ClientSession,
    invitation_ids: &[InvitationId],
) -> Result<u64, AppError> {
    if invitation_ids.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = invitation_ids.iter().map(InvitationId::as_str).collect();
    let deleted = muster_worker::collection(store.database(), &JobsConfig::default())
        .delete_many(bson::doc! {
            "queue": SEND_INVITATION_QUEUE,
            "status": "pending",
            "payload.invitation_id": { "$in": ids },
        })
        .session(session)
        .await?;
    Ok(deleted.deleted_count)
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
    };
    let backend = MongoBackend::<SendInvitation>::new(
        state.store().database(),
        SEND_INVITATION_QUEUE,
        config,
    )?;
    let worker = WorkerBuilder::new("muster-send-invitation")
        .backend(backend)
        .data(context.clone())
        .concurrency(state.settings().jobs.concurrency as usize)
        .build(send_invitation::handle);
    let expiry = WorkerBuilder::new("muster-expire-invitations")
        .backend(CronScheduler::new(sweep::schedule(sweep::EXPIRY_SCHEDULE)?))
        .data(context.clone())
        .build(sweep::expire_tick);
    let purge = WorkerBuilder::new("muster-purge-audit")
        .backend(CronScheduler::new(sweep::schedule(sweep::PURGE_SCHEDULE)?))
        .data(context.clone())
        .build(sweep::purge_tick);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let until = |mut stop: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|stop| *stop).await;
        Ok::<(), std::io::Error>(())
    };
    let scheduled = tokio::spawn(async move {
        futures::future::join(
            expiry.run_until(until(stop_rx.clone())),
            purge.run_until(until(stop_rx)),
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
    if let Ok((expiry, purge)) = scheduled.await {
        for outcome in [expiry, purge] {
            if let Err(err) = outcome {
                tracing::warn!(error = %err, "a scheduled job stopped with an error");
            }
        }
    }
    result.map_err(|err| anyhow::anyhow!("the job worker stopped: {err}"))
}
