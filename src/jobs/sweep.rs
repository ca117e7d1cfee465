//! Every minute: pending invitations past their expiry become `expired`,
//! each with its audit event, one transaction each. Conditional writes make
//! it safe for several processes to sweep at once.

use std::time::Duration;

use tokio::sync::watch;

use crate::domain::invitation::InvitationStatus;
use crate::domain::{Actor, AuditEvent, RequestOrigin, Target};
use crate::error::AppError;
use crate::in_transaction;
use crate::state::AppState;
use crate::store;

const EVERY: Duration = Duration::from_secs(60);
const BATCH: i64 = 500;

pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(err) = expire_due(&state).await {
            tracing::warn!(error = %err, "invitation expiry sweep failed; next in a minute");
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
    }
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
            let done = in_transaction!(store, |session| -> Result<bool, AppError> {
                if !store::invitations::finish(
                    store,
                    session,
                    &invitation.id,
                    InvitationStatus::Expired,
                    now,
                )
                .await?
                {
                    return Ok(false);
                }
                let event = AuditEvent {
                    org_id: invitation.org_id.clone(),
                    at: now,
                    actor: Actor::System,
                    action: "invitation.expired",
                    target: Target {
                        kind: "invitation",
                        id: invitation.id.to_string(),
                    },
                    before: Some(serde_json::json!({ "status": "pending" })),
                    after: Some(serde_json::json!({ "status": "expired" })),
                    origin: RequestOrigin::default(),
                };
                store::audit::record(store, session, &event).await?;
                Ok(true)
            })?;
            expired += usize::from(done);
        }
        if batch < BATCH as usize {
            return Ok(expired);
        }
    }
}
