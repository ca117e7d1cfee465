//! The jobs a use case queues, inside its own transaction: what a job
//! carries and how it is pushed live here, below the faces, so that a use
//! case writes its mail job with the change that needs it. The worker
//! (`jobs/`) is the face that runs them.

use chrono::{DateTime, Utc};
use mongodb::ClientSession;
use mongodb::options::InsertOneModel;
use muster_worker::{
    JobError, JobsConfig, PushOptions, new_job_insert, push_many_in, push_many_new_in,
};
use serde::{Deserialize, Serialize};

use crate::domain::InvitationId;
use crate::domain::invitation::Invitation;
use crate::error::AppError;
use crate::store::Store;

/// The queue of invitation mails.
pub const SEND_INVITATION_QUEUE: &str = "send_invitation";

/// Every queue Muster's jobs use.
pub const QUEUES: [&str; 1] = [SEND_INVITATION_QUEUE];

/// Each queue's jobs by state as of `now`, read from the collection (so
/// whichever process asks tells the truth about all workers).
pub async fn queue_stats(
    store: &Store,
    now: DateTime<Utc>,
) -> Result<Vec<(&'static str, muster_worker::QueueStats)>, JobError> {
    let mut stats = Vec::with_capacity(QUEUES.len());
    for queue in QUEUES {
        let config = JobsConfig::default();
        stats.push((
            queue,
            muster_worker::queue_stats(store.database(), &config, queue, now).await?,
        ));
    }
    Ok(stats)
}

/// The invitation mail job: which invitation, and which of its sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendInvitation {
    pub invitation_id: String,
    /// Which send of the invitation this is (1, then one per resend).
    pub send: u32,
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

/// The mail job of an invitation's latest send, keyed by invitation and
/// send number, so a retried transaction never queues a mail twice.
fn mail_job(
    invitation: &Invitation,
    run_at: Option<DateTime<Utc>>,
) -> (SendInvitation, PushOptions) {
    let job = SendInvitation {
        invitation_id: invitation.id.to_string(),
        send: invitation.delivery.sends,
    };
    let key = format!("invitation:{}:send:{}", job.invitation_id, job.send);
    let options = PushOptions {
        run_at,
        ..PushOptions::idempotency_key(key)
    };
    (job, options)
}

async fn push(
    store: &Store,
    session: &mut ClientSession,
    jobs: impl IntoIterator<Item = (SendInvitation, PushOptions)>,
) -> Result<(), AppError> {
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

/// Queues the first mail of each invitation the caller's transaction has
/// just created, not before `run_at` if given (a SCIM activation over the
/// hourly cap): their keys name invitations that did not exist before it,
/// so none can be queued already and no look-up is needed.
pub async fn enqueue_new_invitations(
    store: &Store,
    session: &mut ClientSession,
    invitations: &[Invitation],
    run_at: Option<DateTime<Utc>>,
) -> Result<(), AppError> {
    let _ = push_many_new_in(
        store.database(),
        session,
        &JobsConfig::default(),
        SEND_INVITATION_QUEUE,
        invitations
            .iter()
            .map(|invitation| mail_job(invitation, run_at)),
    )
    .await?;
    Ok(())
}

/// [`enqueue_new_invitations`] as inserts to make with the other inserts
/// of the caller's transaction (`store::insert_all`).
pub fn new_invitation_job_inserts(
    store: &Store,
    invitations: &[Invitation],
    run_at: Option<DateTime<Utc>>,
) -> Result<Vec<InsertOneModel>, AppError> {
    invitations
        .iter()
        .map(|invitation| {
            let (job, options) = mail_job(invitation, run_at);
            new_job_insert(
                store.database(),
                &JobsConfig::default(),
                SEND_INVITATION_QUEUE,
                &job,
                &options,
            )
            .map_err(AppError::from)
        })
        .collect()
}

/// Queues the mail of an invitation's latest send (a resend), inside the
/// caller's transaction: the invitation and its mail commit or vanish
/// together.
pub async fn enqueue_send_invitation(
    store: &Store,
    session: &mut ClientSession,
    invitation: &Invitation,
) -> Result<(), AppError> {
    push(store, session, [mail_job(invitation, None)]).await
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
