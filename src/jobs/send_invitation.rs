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
//! The mails that run at the same time take their sends in one write and
//! record their deliveries in one transaction (`MailWrites`).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use apalis_core::error::BoxDynError;
use apalis_core::task::data::Data;
use chrono::{DateTime, TimeDelta, Utc};
use mongodb::error::Error as MongoError;

use super::JobContext;
use super::group_commit::{Abandoned, GroupCommit};
use crate::app::Acting;
use crate::app::invitations::{self, Mailed};
use crate::app::jobs::SendInvitation;
use crate::auth::token::generate_invitation_secret;
use crate::domain::invitation::Invitation;
use crate::domain::{AccountId, InvitationId, OrgId};
use crate::mail::{InvitationMail, render_invitation};
use crate::store::invitations::SendToTake;
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
    let (secret, token_hash) = generate_invitation_secret();
    let now = state.clock().now();
    let take = SendToTake {
        id: id.clone(),
        send: job.send,
        token_hash,
    };
    let Some(invitation) = context.writes.take(store, now, take).await? else {
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
    let now = state.clock().now();
    match sent {
        Ok(_) => {
            let mailed = Mailed {
                org_id: invitation.org_id,
                id: id.clone(),
                send: job.send,
            };
            context.writes.record(store, now, mailed).await?;
            tracing::info!(invitation_id = %id, send = job.send, "invitation mail sent");
            Ok(())
        }
        Err(err) => {
            let retrying = err.is_transient();
            let error = err.to_string();
            let acting = Acting::system(invitation.org_id);
            invitations::record_failed(store, now, &acting, &id, job.send, &error, retrying)
                .await?;
            if retrying {
                tracing::warn!(invitation_id = %id, error = %err, "invitation mail failed; retrying");
                Err(Box::new(Transient(error)))
            } else {
                tracing::warn!(invitation_id = %id, error = %err, "invitation mail refused for good");
                Ok(())
            }
        }
    }
}

/// The two writes of every mail, made together for the mails that run at
/// the same time (`group_commit`): taking the sends, and recording the
/// mails that went out.
#[derive(Default)]
pub struct MailWrites {
    takes: GroupCommit<SendToTake, Result<Option<Invitation>, String>>,
    records: GroupCommit<Mailed, Result<bool, String>>,
}

impl MailWrites {
    /// `store::invitations::take_send`, with the sends taken meanwhile.
    async fn take(
        &self,
        store: &Store,
        now: DateTime<Utc>,
        take: SendToTake,
    ) -> Result<Option<Invitation>, Transient> {
        let taken = self
            .takes
            .submit(take, |takes| async move {
                match store::invitations::take_sends(store, now, &takes).await {
                    Ok(taken) => taken.into_iter().map(Ok).collect(),
                    Err(err) => vec![Err(err.to_string()); takes.len()],
                }
            })
            .await;
        flatten(taken)
    }

    /// `invitations::record_mailed`, with the mails recorded meanwhile.
    /// A send a resend superseded is recorded as nothing.
    async fn record(
        &self,
        store: &Store,
        now: DateTime<Utc>,
        mailed: Mailed,
    ) -> Result<bool, Transient> {
        let recorded = self
            .records
            .submit(mailed, |mailed| async move {
                match invitations::record_mailed(store, now, &mailed).await {
                    Ok(recorded) => recorded.into_iter().map(Ok).collect(),
                    Err(err) => vec![Err(err.to_string()); mailed.len()],
                }
            })
            .await;
        flatten(recorded)
    }
}

fn flatten<T>(answer: Result<Result<T, String>, Abandoned>) -> Result<T, Transient> {
    match answer {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Transient(error)),
        Err(abandoned) => Err(Transient(abandoned.to_string())),
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
