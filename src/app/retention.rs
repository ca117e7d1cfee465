//! Audit retention: events older than their organization's
//! `audit_retention_days` are deleted by the hourly purge job.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::Acting;
use crate::error::AppError;
use crate::in_transaction;
use crate::store::{self, Store};

/// Deletes the organization's events from before `before`, recording how
/// many as `audit.purged` (by the system) in the same transaction, so the
/// log says what it no longer holds. A purge that deletes nothing writes
/// nothing: an hourly event saying so would be noise. Returns how many.
pub async fn purge_org(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    before: DateTime<Utc>,
) -> Result<u64, AppError> {
    in_transaction!(store, |session| -> Result<u64, AppError> {
        let purged =
            store::audit::purge_before(store, Some(&mut *session), Some(&acting.org_id), before)
                .await?;
        if purged > 0 {
            let event = acting.event(
                now,
                "audit.purged",
                ("organization", acting.org_id.as_str()),
                None,
                Some(json!({ "count": purged, "before": before })),
            );
            store::audit::record(store, session, &event).await?;
        }
        Ok(purged)
    })
}
