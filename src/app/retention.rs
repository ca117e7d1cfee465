//! Audit retention: events older than their organization's
//! `audit_retention_days` are deleted by the hourly purge job.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::Acting;
use crate::error::AppError;
use crate::in_transaction;
use crate::store::{self, Store};

/// Deletes the organization's events from before `before`, recording how
/// many as `audit.purged` (by the system) once they are gone, so the log
/// says what it no longer holds. A purge that deletes nothing writes
/// nothing: an hourly event saying so would be noise. Returns how many.
pub async fn purge_org(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    before: DateTime<Utc>,
) -> Result<u64, AppError> {
    // Whole sealed batches, each in a transaction of its own, so that the
    // chain still verifies (`app::audit_seals::purge`); the count is
    // recorded once the batches are gone.
    let purged = super::audit_seals::purge(store, &acting.org_id, before, now).await?;
    if purged > 0 {
        in_transaction!(store, |session| -> Result<(), AppError> {
            let event = acting.event(
                now,
                "audit.purged",
                ("organization", acting.org_id.as_str()),
                None,
                Some(json!({ "count": purged, "before": before })),
            );
            store::audit::record(store, session, &event).await?;
            Ok(())
        })?;
    }
    Ok(purged)
}
