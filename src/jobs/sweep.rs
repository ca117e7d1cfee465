//! Scheduled jobs on apalis-cron: every minute, pending invitations past
//! their expiry become `expired` (`app::invitations::expire`, one
//! transaction each, as the system); every minute, each organization's
//! settled audit events are sealed (`app::audit_seals`); every hour, audit
//! events older than their organization's retention are purged, whole
//! sealed batches at a time (`app::retention`, audited as `audit.purged`).
//! Conditional writes (and, for seals, a unique sequence number) make it
//! harmless for several workers to run them at once.

use std::str::FromStr;

use apalis_core::error::BoxDynError;
use apalis_core::task::data::Data;
use apalis_cron::Tick;
use chrono::Duration;

use super::JobContext;
use crate::app::{Acting, audit_seals, invitations, retention};
use crate::error::AppError;
use crate::measure;
use crate::state::AppState;
use crate::store;

/// At second 0 of every minute.
pub const EXPIRY_SCHEDULE: &str = "0 * * * * *";
/// At minute 17 of every hour (off the hour, when others run theirs).
pub const PURGE_SCHEDULE: &str = "0 17 * * * *";
/// At second 30 of every minute, away from the expiry sweep.
pub const SEAL_SCHEDULE: &str = "30 * * * * *";

const BATCH: i64 = 500;

pub fn schedule(expression: &str) -> Result<cron::Schedule, cron::error::Error> {
    cron::Schedule::from_str(expression)
}

/// The `job` labels of `muster_scheduled_jobs_total`.
pub const EXPIRY_JOB: &str = "expire_invitations";
pub const PURGE_JOB: &str = "purge_audit";
pub const SEAL_JOB: &str = "seal_audit";

/// Counts a run by its outcome: a failing schedule only logs otherwise,
/// and a seal or purge that keeps failing is worth an alert.
fn counted<T, E>(job: &'static str, result: Result<T, E>) -> Result<T, E> {
    measure::scheduled_job(job, result.is_ok());
    result
}

pub async fn expire_tick(_tick: Tick, context: Data<JobContext>) -> Result<(), BoxDynError> {
    let expired = counted(EXPIRY_JOB, expire_due(&context.state).await)?;
    if expired > 0 {
        tracing::info!(expired, "invitations expired");
    }
    Ok(())
}

pub async fn purge_tick(_tick: Tick, context: Data<JobContext>) -> Result<(), BoxDynError> {
    let purged = counted(PURGE_JOB, purge_audit(&context.state).await)?;
    if purged > 0 {
        tracing::info!(purged, "audit events past retention purged");
    }
    Ok(())
}

pub async fn seal_tick(_tick: Tick, context: Data<JobContext>) -> Result<(), BoxDynError> {
    let state = &context.state;
    let sealed = counted(
        SEAL_JOB,
        audit_seals::seal_all(state.store(), state.clock().now()).await,
    )?;
    if sealed.seals > 0 {
        tracing::info!(
            seals = sealed.seals,
            events = sealed.events,
            "audit events sealed"
        );
    }
    Ok(())
}

/// Marks every pending invitation whose expiry has passed; returns how
/// many.
pub async fn expire_due(state: &AppState) -> Result<usize, AppError> {
    let store = state.store();
    let mut expired = 0;
    loop {
        let now = state.clock().now();
        let due = store::invitations::due_for_expiry(store, now, BATCH).await?;
        let batch = due.len();
        for invitation in due {
            let acting = Acting::system(invitation.org_id.clone());
            let done = invitations::expire(store, now, &acting, &invitation.id).await?;
            expired += usize::from(done);
        }
        if batch < BATCH as usize {
            return Ok(expired);
        }
    }
}

/// Deletes each organization's audit events older than its
/// `audit_retention_days`, whole sealed batches at a time so that the seal
/// chain stays verifiable (`app::audit_seals::purge`); returns how many.
pub async fn purge_audit(state: &AppState) -> Result<u64, AppError> {
    let store = state.store();
    let now = state.clock().now();
    let mut purged = 0;
    for (org_id, retention_days) in store::orgs::audit_retentions(store).await? {
        let before = now - Duration::days(i64::from(retention_days));
        purged += retention::purge_org(store, now, &Acting::system(org_id), before).await?;
    }
    // Accounts' own events (sign-ins, profile changes) belong to no
    // organization: they keep the default retention. Their purge is not
    // audited: an event about no organization and no account would be
    // shown to nobody.
    let default_days = crate::domain::OrgSettings::default().audit_retention_days;
    let before = now - Duration::days(i64::from(default_days));
    purged += store::audit::purge_before(store, None, None, before).await?;
    Ok(purged)
}
