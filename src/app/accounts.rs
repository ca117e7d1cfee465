//! An account acting for itself, outside any organization's roles: it
//! changes its own name and password, creates organizations and revokes
//! its own personal tokens.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::mfa::MfaProof;
use crate::auth::password::{MAX_PASSWORD_BYTES, check_policy};
use crate::domain::account::AccountDeletionError;
use crate::domain::mfa::MfaError;
use crate::domain::{AccountId, Actor, AuditEvent, OrgId, RequestOrigin, Target, TokenId};
use crate::error::AppError;
use crate::in_transaction;
use crate::store::accounts::SelfUpdate;
use crate::store::{self, Store};

/// An account acting for itself. Faces build it only from a session: the
/// account's name shows in every organization's mails and a personal
/// token acts inside one organization, so neither may do this.
#[derive(Debug, Clone)]
pub struct AccountActing {
    pub account_id: AccountId,
    /// Who, for the audit log.
    pub actor: Actor,
    pub origin: RequestOrigin,
}

impl AccountActing {
    /// The audit event of something the account did in an organization
    /// it needs no role in for it (founding one, revoking its own token).
    pub fn event_in(
        &self,
        org_id: &OrgId,
        at: DateTime<Utc>,
        action: &'static str,
        (kind, id): (&'static str, &str),
        before: Option<Value>,
        after: Option<Value>,
    ) -> AuditEvent {
        AuditEvent {
            org_id: Some(org_id.clone()),
            at,
            actor: self.actor.clone(),
            actor_label: None,
            action,
            target: Target {
                kind,
                id: id.to_owned(),
            },
            before,
            after,
            origin: self.origin.clone(),
        }
    }
}

pub fn gone() -> AppError {
    AppError::Unauthorized("the account no longer exists".into())
}

/// A new password, with the current one as proof.
pub struct PasswordChange {
    pub current: String,
    pub new: String,
}

/// What `PATCH /me` changes; `None` leaves a field as it is.
#[derive(Default)]
pub struct AccountChange {
    /// A checked display name; `Some(None)` clears it.
    pub display_name: Option<Option<String>>,
    pub password: Option<PasswordChange>,
}

/// Changes the account's display name or password. A password change
/// needs the current one and ends the account's other sessions (all but
/// `keep`, the caller's), so whoever learnt the old password is out.
pub async fn update(
    store: &Store,
    passwords: &impl super::invitations::Passwords,
    now: DateTime<Utc>,
    caller: &AccountActing,
    keep: &TokenId,
    change: AccountChange,
) -> Result<(), AppError> {
    let AccountChange {
        display_name,
        password,
    } = change;
    // Every value is checked before any work.
    if let Some(change) = &password {
        check_policy(&change.new).map_err(|err| AppError::invalid("password.new", err))?;
        if change.current.len() > MAX_PASSWORD_BYTES {
            return Err(AppError::invalid(
                "password.current",
                format!("a password is at most {MAX_PASSWORD_BYTES} bytes"),
            ));
        }
    }
    let account_id = &caller.account_id;
    let credentials = store::accounts::get_credentials(store, None, account_id)
        .await?
        .ok_or_else(gone)?;
    let new_password = match password {
        None => None,
        Some(PasswordChange { current, new }) => {
            let Some(stored) = credentials.password_hash.clone() else {
                return Err(AppError::Conflict {
                    problem: "no-password",
                    detail: "this account has no password to change yet; set one by \
                             accepting an invitation"
                        .into(),
                });
            };
            // Checked as a sign-in is: a wrong current password counts
            // against the email's and the address's failure limits, so a
            // stolen session cannot guess the password here either.
            let verified = passwords
                .verify(&credentials.account.email, &caller.origin, stored, current)
                .await?;
            if !verified {
                return Err(AppError::Forbidden(
                    "the current password is wrong; the password was not changed".into(),
                ));
            }
            Some(
                passwords
                    .hash(new)
                    .await?
                    .map_err(|err| AppError::invalid("password.new", err))?,
            )
        }
    };
    let replaced = credentials.password_hash;
    let update = SelfUpdate {
        display_name: display_name.as_ref().map(Option::as_deref),
        password: new_password.as_ref().zip(replaced.as_ref()),
    };
    if update.display_name.is_none() && update.password.is_none() {
        return Ok(());
    }
    in_transaction!(store, |session| -> Result<(), AppError> {
        if !store::accounts::update_self(store, session, account_id, &update, now).await? {
            return Err(AppError::Conflict {
                problem: "concurrent-change",
                detail: "the account changed while this request ran (its password, \
                         perhaps); try again"
                    .into(),
            });
        }
        let sessions_ended = if update.password.is_some() {
            store::tokens::delete_sessions_except(store, session, account_id, Some(keep)).await?
        } else {
            0
        };
        // Names of what changed, never the password or its hash.
        let event = AuditEvent::of_account(
            caller.actor.clone(),
            account_id,
            now,
            "account.updated",
            Some(json!({
                "display_name": update.display_name,
                "password_changed": update.password.is_some(),
                // The sessions the change signed out are part of it, so
                // the same event says how many.
                "sessions_ended": sessions_ended,
            })),
            caller.origin.clone(),
        );
        store::audit::record(store, session, &event).await?;
        Ok(())
    })
}

/// What deleting an account takes: its password, and its second factor
/// when it has one on.
pub struct DeletionProof {
    pub password: String,
    pub mfa: Option<MfaProof>,
}

/// Deletes the caller's account, refused while it is the last active
/// owner of any organization (naming them). In one transaction: its
/// memberships (each organization's log gets its `member.left`), personal
/// tokens, sessions, pending sign-in challenges, second factor and the
/// account itself. The audit trail keeps its events under the account's
/// id alone: the email its own events were labelled with is dropped, and
/// readers see "deleted account".
pub async fn delete(
    store: &Store,
    passwords: &impl super::invitations::Passwords,
    now: DateTime<Utc>,
    caller: &AccountActing,
    proof: DeletionProof,
) -> Result<(), AppError> {
    let account_id = &caller.account_id;
    let credentials = store::accounts::get_credentials(store, None, account_id)
        .await?
        .ok_or_else(gone)?;
    super::mfa::ensure_password(
        passwords,
        &credentials.account,
        &caller.origin,
        credentials.password_hash.clone(),
        proof.password,
    )
    .await?;
    let proven = match credentials.enabled_mfa() {
        Some(mfa) => Some(
            super::mfa::check(
                store,
                passwords.mfa_key(),
                now,
                &credentials.account,
                mfa,
                proof.mfa,
                &caller.origin,
            )
            .await?
            .ok_or(MfaError::WrongCode)?,
        ),
        None => None,
    };
    in_transaction!(store, |session| -> Result<(), AppError> {
        if let Some(proven) = &proven
            && !super::mfa::spend(store, session, account_id, proven).await?
        {
            return Err(MfaError::WrongCode.into());
        }
        let memberships_left = match super::members::leave_everywhere(store, session, caller, now)
            .await?
        {
            Ok(left) => left,
            Err(org_ids) => {
                let mut names = Vec::with_capacity(org_ids.len());
                for org_id in &org_ids {
                    if let Some(org) = store::orgs::get(store, Some(&mut *session), org_id).await? {
                        names.push(org.name);
                    }
                }
                return Err(AccountDeletionError::LastOwnerOf(names).into());
            }
        };
        let sessions_ended =
            store::tokens::delete_sessions_except(store, session, account_id, None).await?;
        store::mfa_challenges::delete_for_account(store, session, account_id).await?;
        let events_pseudonymised =
            store::audit::forget_account_labels(store, session, account_id).await?;
        if !store::accounts::delete(store, session, account_id).await? {
            return Err(gone());
        }
        let event = AuditEvent::of_account(
            caller.actor.clone(),
            account_id,
            now,
            "account.deleted",
            Some(json!({
                "memberships_left": memberships_left,
                "sessions_ended": sessions_ended,
                "events_pseudonymised": events_pseudonymised,
            })),
            caller.origin.clone(),
        );
        store::audit::record(store, session, &event).await?;
        Ok(())
    })
}
