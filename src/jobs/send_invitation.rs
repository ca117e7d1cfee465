//! The invitation mail. At least once from the queue, at most once to the
//! invitee per send: the job takes the send, giving the invitation a fresh
//! link (only the mail ever holds its secret), sends, and records the
//! send; a send that is recorded, superseded by a resend, or no longer
//! pending is skipped.
//! The one window left is a crash between the mail server's acceptance
//! and the record: the retry then mails again, with a new link that
//! replaces the first.
//! Each recorded attempt is audited by the system with the record
//! (`invitation.mailed`, `invitation.delivery_failed`).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use apalis_core::error::BoxDynError;
use apalis_core::task::data::Data;
use chrono::{DateTime, TimeDelta, Utc};
use mongodb::error::Error as MongoError;

use super::JobContext;
use crate::app::Acting;
use crate::app::invitations::{self, MailOutcome};
use crate::app::jobs::SendInvitation;
use crate::auth::token::generate_invitation_secret;
use crate::domain::invitation::Invitation;
use crate::domain::{AccountId, InvitationId, OrgId};
use crate::mail::{InvitationMail, render_invitation};
use crate::store::{self, Store};

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
    let (secret, hash) = generate_invitation_secret();
    let now = state.clock().now();
    let Some(invitation) = store::invitations::take_send(store, &id, job.send, now, &hash).await?
    else {
        tracing::debug!(invitation_id = %id, send = job.send, "invitation mail not needed");
        return Ok(());
    };
    let Some(names) = context.names.of(store, &invitation, now).await? else {
        // The organization was deleted meanwhile.
        return Ok(());
    };
    let settings = state.settings();
    let mail = InvitationMail {
        org_name: names.org_name,
        inviter_name: names.inviter_name,
        inviter_email: names.inviter_email,
        role: invitation.role.to_string(),
        expires_at: invitation.expires_at,
        accept_url: format!("{}/invite/{}", settings.public_url(), secret.expose()),
        message: invitation.message.clone(),
        recipient_email: invitation.email.to_string(),
    };
    let rendered = render_invitation(&mail)?;
    let sent = context
        .mailer
        .send(invitation.email.as_str(), &rendered)
        .await;
    let acting = Acting::system(invitation.org_id.clone());
    let now = state.clock().now();
    match sent {
        Ok(_) => {
            invitations::record_delivery(store, now, &acting, &id, job.send, MailOutcome::Mailed)
                .await?;
            tracing::info!(invitation_id = %id, send = job.send, "invitation mail sent");
            Ok(())
        }
        Err(err) => {
            let retrying = err.is_transient();
            let failed = MailOutcome::Failed {
                error: err.to_string(),
                retrying,
            };
            invitations::record_delivery(store, now, &acting, &id, job.send, failed).await?;
            if retrying {
                tracing::warn!(invitation_id = %id, error = %err, "invitation mail failed; retrying");
                Err(Box::new(Transient(err.to_string())))
            } else {
                tracing::warn!(invitation_id = %id, error = %err, "invitation mail refused for good");
                Ok(())
            }
        }
    }
}

/// What a mail says of its organization and inviter.
#[derive(Debug, Clone)]
pub struct MailNames {
    org_name: String,
    inviter_name: String,
    inviter_email: String,
}

/// Names read at most once a minute per organization and inviter: a bulk
/// invite queues hundreds of mails from one inviter of one organization,
/// and reading both for every mail doubled the worker's round trips. A
/// name changed within the last minute may show its old value.
#[derive(Default)]
pub struct NameCache {
    entries: Mutex<NameEntries>,
}

/// Names by organization and inviter, with when they were read.
type NameEntries = HashMap<(OrgId, Option<AccountId>), (DateTime<Utc>, MailNames)>;

const NAMES_FRESH_FOR: TimeDelta = TimeDelta::seconds(60);
/// Beyond this many entries the cache starts over: a bound, not a policy.
const NAMES_MAX_ENTRIES: usize = 10_000;

impl NameCache {
    /// The names for `invitation`'s mail; `None` when its organization no
    /// longer exists.
    pub async fn of(
        &self,
        store: &Store,
        invitation: &Invitation,
        now: DateTime<Utc>,
    ) -> Result<Option<MailNames>, MongoError> {
        let key = (invitation.org_id.clone(), invitation.invited_by.clone());
        if let Some((read_at, names)) = self.entries().get(&key)
            && now - *read_at < NAMES_FRESH_FOR
        {
            return Ok(Some(names.clone()));
        }
        let Some(org) = store::orgs::get(store, None, &invitation.org_id).await? else {
            return Ok(None);
        };
        let inviter = match &invitation.invited_by {
            Some(account_id) => store::accounts::get(store, account_id).await?,
            None => None,
        };
        let names = MailNames {
            inviter_name: match &inviter {
                Some(account) => account
                    .display_name
                    .clone()
                    .unwrap_or_else(|| account.email.to_string()),
                None => format!("{} (through its identity provider)", org.name),
            },
            inviter_email: inviter
                .map(|account| account.email.to_string())
                .unwrap_or_default(),
            org_name: org.name,
        };
        let mut entries = self.entries();
        if entries.len() >= NAMES_MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (now, names.clone()));
        Ok(Some(names))
    }

    fn entries(&self) -> MutexGuard<'_, NameEntries> {
        // A panic while holding the lock leaves a usable map behind.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
