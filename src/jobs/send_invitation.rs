//! The invitation mail. At least once from the queue, at most once to the
//! invitee per send: the job gives the invitation a fresh link (only the
//! mail ever holds its secret), sends, and records the send; a send that
//! is recorded, superseded by a resend, or no longer pending is skipped.
//! The one window left is a crash between the mail server's acceptance
//! and the record: the retry then mails again, with a new link that
//! replaces the first.

use apalis_core::error::BoxDynError;
use apalis_core::task::data::Data;
use serde::{Deserialize, Serialize};

use super::JobContext;
use crate::auth::token::generate_invitation_secret;
use crate::domain::InvitationId;
use crate::domain::invitation::InvitationStatus;
use crate::mail::{InvitationMail, render_invitation};
use crate::store;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendInvitation {
    pub invitation_id: String,
    /// Which send of the invitation this is (1, then one per resend).
    pub send: u32,
}

/// A failure worth retrying, or one that is final (the job is then done,
/// with the error recorded on the invitation).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Transient(String);

pub async fn handle(job: SendInvitation, context: Data<JobContext>) -> Result<(), BoxDynError> {
    let state = &context.state;
    let store = state.store();
    let Ok(id) = InvitationId::parse(&job.invitation_id) else {
        tracing::warn!(invitation_id = %job.invitation_id, "a mail job names no invitation id");
        return Ok(());
    };
    let Some(invitation) = store::invitations::get_any(store, &id).await? else {
        return Ok(());
    };
    let now = state.clock().now();
    let superseded = invitation.delivery.sends != job.send;
    let already_sent = invitation.delivery.sent_send >= job.send;
    if invitation.effective_status(now) != InvitationStatus::Pending || superseded || already_sent {
        tracing::debug!(invitation_id = %id, send = job.send, "invitation mail not needed");
        return Ok(());
    }
    let Some(org) = store::orgs::get(store, None, &invitation.org_id).await? else {
        return Ok(());
    };
    let inviter = match &invitation.invited_by {
        Some(account_id) => store::accounts::get(store, account_id).await?,
        None => None,
    };
    let (secret, hash) = generate_invitation_secret();
    if !store::invitations::set_link(store, &id, job.send, &hash).await? {
        // Resent, revoked or accepted meanwhile.
        return Ok(());
    }
    let settings = state.settings();
    let mail = InvitationMail {
        org_name: org.name.clone(),
        inviter_name: inviter
            .as_ref()
            .and_then(|a| a.display_name.clone())
            .unwrap_or_else(|| match &inviter {
                Some(a) => a.email.to_string(),
                None => format!("{} (through its identity provider)", org.name),
            }),
        inviter_email: inviter
            .as_ref()
            .map(|a| a.email.to_string())
            .unwrap_or_default(),
        role: invitation.role.to_string(),
        expires_at: invitation.expires_at,
        accept_url: format!("{}/invite/{}", settings.public_url(), secret.expose()),
        message: invitation.message.clone(),
        recipient_email: invitation.email.to_string(),
    };
    let rendered = render_invitation(&mail)?;
    match context
        .mailer
        .send(invitation.email.as_str(), &rendered)
        .await
    {
        Ok(_) => {
            store::invitations::record_delivery(store, &id, job.send, Ok(state.clock().now()))
                .await?;
            tracing::info!(invitation_id = %id, send = job.send, "invitation mail sent");
            Ok(())
        }
        Err(err) => {
            store::invitations::record_delivery(store, &id, job.send, Err(err.to_string())).await?;
            if err.is_transient() {
                tracing::warn!(invitation_id = %id, error = %err, "invitation mail failed; retrying");
                Err(Box::new(Transient(err.to_string())))
            } else {
                tracing::warn!(invitation_id = %id, error = %err, "invitation mail refused for good");
                Ok(())
            }
        }
    }
}
