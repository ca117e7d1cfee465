//! Invitations, whichever face acts: an admin invites, resends and revokes
//! (API); a person accepts (API and the `/invite/{token}` page); an
//! identity provider's new user gets an activation invitation (SCIM, from
//! `members::provision`); the worker's sweep expires them. The rules are
//! in `domain::invitation`; each operation here writes in one transaction
//! with its audit event and, when a mail is due, its mail job.

use std::collections::HashSet;
use std::future::Future;

use chrono::{DateTime, Duration, Utc};
use mongodb::ClientSession;
use mongodb::options::InsertOneModel;
use serde_json::{Value, json};

use super::Acting;
use super::jobs::{enqueue_new_invitations, enqueue_send_invitation, new_invitation_job_inserts};
use super::members::ensure_projects_exist;
use super::mfa::{MfaProof, Proven};
use crate::auth::mfa_key::MfaKey;
use crate::auth::password::{PasswordError, PasswordHashString, hash_password, verify_password};
use crate::auth::token::{TokenHash, generate_invitation_secret, is_well_formed_invitation};
use crate::domain::account::display_name;
use crate::domain::invitation::{
    self, AcceptError, Delivery, Invitation, InvitationKind, InvitationStatus, InviteOutcome,
};
use crate::domain::member::ProjectGrant;
use crate::domain::mfa::MfaError;
use crate::domain::{
    Account, AccountId, Actor, AuditEvent, Email, InvitationId, Member, MemberId, MemberStatus,
    OrgId, Organization, Permission, PersonName, RequestOrigin, Role, Target,
};
use crate::error::AppError;
use crate::in_transaction;
use crate::protocol::user::UserProfile;
use crate::state::AppState;
use crate::store::{self, Inserted, Store};

/// A hash no one holds the secret of: what an invitation carries until the
/// mail job gives it a link (only the mail ever holds a link's secret).
fn fresh_token_hash() -> TokenHash {
    generate_invitation_secret().1
}

fn not_found() -> AppError {
    AppError::NotFound("invitation")
}

fn not_pending(invitation: &Invitation, now: DateTime<Utc>) -> AppError {
    AppError::Conflict {
        problem: "invitation-not-pending",
        detail: format!(
            "the invitation is {}, not pending",
            invitation.effective_status(now)
        ),
    }
}

pub(super) fn concurrent_invitation() -> AppError {
    // Inside a transaction the server has aborted it already: retry.
    AppError::Conflict {
        problem: "concurrent-invitation",
        detail: "another request invited the same address at the same time; \
                 send the request again"
            .into(),
    }
}

/// What the audit log keeps of an invitation an admin changes.
pub fn snapshot(invitation: &Invitation) -> Value {
    json!({
        "email": invitation.email.as_str(),
        "role": invitation.role,
        "project_rights": invitation.project_rights,
        "status": invitation.status,
        "expires_at": invitation.expires_at,
        "sends": invitation.delivery.sends,
    })
}

/// The organization, read in the operation's transaction: its settings
/// (domains, TTL) are the ones in force when the invitation is written.
async fn org_in(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
) -> Result<Organization, AppError> {
    store::orgs::get(store, Some(session), org_id)
        .await?
        .ok_or(AppError::NotFound("organization"))
}

/// The account an invitation names as its inviter: a person, through a
/// session or one of their tokens; an identity provider is none.
fn inviter(actor: &Actor) -> Option<AccountId> {
    match actor {
        Actor::Account(id) | Actor::ApiToken { account_id: id, .. } => Some(id.clone()),
        Actor::ScimToken(_) | Actor::System => None,
    }
}

/// A bulk invitation, as a face parsed it.
#[derive(Debug, Clone)]
pub struct InviteInput {
    /// The addresses as sent, one per entry (a face splits pasted text).
    pub addresses: Vec<String>,
    pub role: Role,
    pub project_rights: Vec<ProjectGrant>,
    /// A note for the invitees, as typed.
    pub message: Option<String>,
}

/// What became of one address.
#[derive(Debug, Clone)]
pub struct InviteResult {
    /// The address as sent (normalized when valid).
    pub email: String,
    pub outcome: InviteOutcome,
    /// The new invitation, when `Invited`.
    pub invitation_id: Option<InvitationId>,
}

/// Invites many addresses at once: each gets its own outcome, one bad
/// address never fails the others. Each invitation, its audit event and
/// its mail job are written in one transaction. Past `hourly_cap`
/// invitations in the organization within the hour, the request is
/// refused whole (429) and nothing is written.
pub async fn invite(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    input: &InviteInput,
    hourly_cap: u32,
) -> Result<Vec<InviteResult>, AppError> {
    acting.require(Permission::ManageInvitations)?;
    let message = invitation::message(input.message.as_deref())
        .map_err(|err| AppError::invalid("message", err))?;
    invitation::ensure_address_count(input.addresses.len())
        .map_err(|err| AppError::invalid("emails", err))?;
    let allowed_owner = invitation::ensure_may_invite(acting.role, input.role).is_ok();
    let org_id = &acting.org_id;
    let invited_by = inviter(&acting.actor);
    in_transaction!(store, |session| -> Result<Vec<InviteResult>, AppError> {
        let org = org_in(store, session, org_id).await?;
        ensure_projects_exist(store, session, org_id, &input.project_rights).await?;
        // Screened first; the store then tells pending and members apart.
        let screened: Vec<(&str, Result<Email, InviteOutcome>)> = input
            .addresses
            .iter()
            .map(|raw| {
                let outcome = if allowed_owner {
                    invitation::screen_address(raw, &org.settings.allowed_email_domains)
                } else {
                    Err(InviteOutcome::NotAllowed)
                };
                (raw.as_str(), outcome)
            })
            .collect();
        let valid: Vec<&str> = screened
            .iter()
            .filter_map(|(_, outcome)| outcome.as_ref().ok().map(Email::as_str))
            .collect();
        let pending = store::invitations::pending_emails(store, session, org_id, &valid).await?;
        let members = store::members::existing_emails(store, session, org_id, &valid).await?;
        let mut results = Vec::with_capacity(screened.len());
        let mut invited = HashSet::new();
        let mut invitations = Vec::new();
        for (raw, outcome) in &screened {
            let email = match outcome {
                Err(outcome) => {
                    results.push(InviteResult {
                        email: raw.trim().to_owned(),
                        outcome: *outcome,
                        invitation_id: None,
                    });
                    continue;
                }
                Ok(email) => email,
            };
            let outcome = if members.contains(email.as_str()) {
                InviteOutcome::AlreadyMember
            } else if pending.contains(email.as_str()) || !invited.insert(email.clone()) {
                InviteOutcome::AlreadyPending
            } else {
                InviteOutcome::Invited
            };
            let mut result = InviteResult {
                email: email.to_string(),
                outcome,
                invitation_id: None,
            };
            if outcome == InviteOutcome::Invited {
                let invitation = Invitation {
                    id: InvitationId::new(),
                    org_id: org_id.clone(),
                    email: email.clone(),
                    role: input.role,
                    project_rights: input.project_rights.clone(),
                    message: message.clone(),
                    kind: InvitationKind::Invite,
                    invited_by: invited_by.clone(),
                    member_id: None,
                    status: InvitationStatus::Pending,
                    created_at: now,
                    expires_at: invitation::expiry(now, org.settings.invitation_ttl_days),
                    updated_at: now,
                    accepted_at: None,
                    delivery: Delivery {
                        sends: 1,
                        ..Delivery::default()
                    },
                };
                result.invitation_id = Some(invitation.id.clone());
                invitations.push(invitation);
            }
            results.push(result);
        }
        // The invitations (each with a placeholder link: the mail job sets
        // the real one), their mails and their events: three round trips
        // however many addresses there are.
        let with_links = invitations.iter().map(|i| (i, fresh_token_hash()));
        if store::invitations::insert_many(store, session, with_links).await?
            == Inserted::AlreadyExists
        {
            return Err(concurrent_invitation());
        }
        enqueue_new_invitations(store, session, &invitations, None).await?;
        let events: Vec<_> = invitations
            .iter()
            .map(|invitation| {
                acting.event(
                    now,
                    "invitation.created",
                    ("invitation", invitation.id.as_str()),
                    None,
                    Some(snapshot(invitation)),
                )
            })
            .collect();
        store::audit::record_many(store, session, &events).await?;
        ensure_within_hourly_cap(store, session, org_id, now, hourly_cap).await?;
        Ok(results)
    })
}

/// The hourly cap on an organization's invitation mails: first mails
/// (invitations created, or deferred activations due, in the last hour)
/// and resends. Counted after the request's own writes, in its
/// transaction, so concurrent requests cannot pass the cap together
/// unnoticed; over it, the whole request is refused and nothing is kept.
async fn ensure_within_hourly_cap(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
    now: DateTime<Utc>,
    hourly_cap: u32,
) -> Result<(), AppError> {
    let since = now - Duration::hours(1);
    let first_mails =
        store::invitations::count_created_since(store, session, org_id, since).await?;
    let resends =
        store::audit::count_action_since(store, session, org_id, "invitation.resent", since)
            .await?;
    if first_mails + resends > u64::from(hourly_cap) {
        return Err(AppError::TooManyRequests {
            retry_after_secs: 3600,
        });
    }
    Ok(())
}

/// A pending invitation of the acting organization, read in `session`,
/// that the actor may manage (only owners manage invitations to become
/// owner).
async fn managed(
    store: &Store,
    session: &mut ClientSession,
    acting: &Acting,
    id: &InvitationId,
    now: DateTime<Utc>,
) -> Result<Invitation, AppError> {
    let current = store::invitations::get(store, Some(session), &acting.org_id, id)
        .await?
        .ok_or_else(not_found)?;
    invitation::ensure_may_invite(acting.role, current.role).map_err(|err| acting.refused(err))?;
    if current.effective_status(now) != InvitationStatus::Pending {
        return Err(not_pending(&current, now));
    }
    Ok(current)
}

/// A new link (the old one stops working at once), a new expiry, and the
/// mail again.
pub async fn resend(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    id: &InvitationId,
    hourly_cap: u32,
) -> Result<Invitation, AppError> {
    acting.require(Permission::ManageInvitations)?;
    in_transaction!(store, |session| -> Result<Invitation, AppError> {
        let current = managed(store, session, acting, id, now).await?;
        let org = org_in(store, session, &acting.org_id).await?;
        let mut invitation = current.clone();
        invitation.expires_at = invitation::expiry(now, org.settings.invitation_ttl_days);
        invitation.updated_at = now;
        invitation.delivery.sends += 1;
        if !store::invitations::rotate(store, session, &invitation, &fresh_token_hash()).await? {
            return Err(not_pending(&current, now));
        }
        enqueue_send_invitation(store, session, &invitation).await?;
        let event = acting.event(
            now,
            "invitation.resent",
            ("invitation", id.as_str()),
            Some(snapshot(&current)),
            Some(snapshot(&invitation)),
        );
        store::audit::record(store, session, &event).await?;
        ensure_within_hourly_cap(store, session, &acting.org_id, now, hourly_cap).await?;
        Ok(invitation)
    })
}

/// The invitation's link stops working at once.
pub async fn revoke(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    id: &InvitationId,
) -> Result<(), AppError> {
    acting.require(Permission::ManageInvitations)?;
    in_transaction!(store, |session| -> Result<(), AppError> {
        let current = managed(store, session, acting, id, now).await?;
        if !store::invitations::finish(store, session, id, InvitationStatus::Revoked, now).await? {
            return Err(not_pending(&current, now));
        }
        let mut after = current.clone();
        after.status = InvitationStatus::Revoked;
        let event = acting.event(
            now,
            "invitation.revoked",
            ("invitation", id.as_str()),
            Some(snapshot(&current)),
            Some(snapshot(&after)),
        );
        store::audit::record(store, session, &event).await?;
        Ok(())
    })
}

/// A pending invitation past its expiry becomes `expired` (the sweep, as
/// [`Acting::system`]); `false` when it is not one (any more).
pub async fn expire(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    id: &InvitationId,
) -> Result<bool, AppError> {
    in_transaction!(store, |session| -> Result<bool, AppError> {
        let Some(current) =
            store::invitations::get(store, Some(&mut *session), &acting.org_id, id).await?
        else {
            return Ok(false);
        };
        if current.effective_status(now) != InvitationStatus::Expired
            || !store::invitations::finish(store, session, id, InvitationStatus::Expired, now)
                .await?
        {
            return Ok(false);
        }
        let event = acting.event(
            now,
            "invitation.expired",
            ("invitation", id.as_str()),
            Some(json!({ "status": "pending" })),
            Some(json!({ "status": "expired" })),
        );
        store::audit::record(store, session, &event).await?;
        Ok(true)
    })
}

/// A send of an invitation's mail that went out: its organization (whose
/// log the event goes to), the invitation and which of its sends.
#[derive(Debug, Clone)]
pub struct Mailed {
    pub org_id: OrgId,
    pub id: InvitationId,
    pub send: u32,
}

/// Records that these sends were mailed, each with its `invitation.mailed`
/// event by the system, in one transaction; per send, `false` when a
/// resend superseded it, and nothing is written for it. The worker records
/// the mails that went out together in one call.
pub async fn record_mailed(
    store: &Store,
    now: DateTime<Utc>,
    mailed: &[Mailed],
) -> Result<Vec<bool>, AppError> {
    let sends: Vec<(InvitationId, u32)> = mailed
        .iter()
        .map(|mailed| (mailed.id.clone(), mailed.send))
        .collect();
    in_transaction!(store, |session| -> Result<Vec<bool>, AppError> {
        let recorded = store::invitations::record_mailed(store, session, now, &sends).await?;
        let events: Vec<AuditEvent> = mailed
            .iter()
            .zip(&recorded)
            .filter(|(_, recorded)| **recorded)
            .map(|(mailed, _)| {
                Acting::system(mailed.org_id.clone()).event(
                    now,
                    "invitation.mailed",
                    ("invitation", mailed.id.as_str()),
                    None,
                    Some(json!({ "send": mailed.send })),
                )
            })
            .collect();
        store::audit::record_many(store, session, &events).await?;
        Ok(recorded)
    })
}

/// Records a failed attempt at send `send` of an invitation's mail, with
/// its `invitation.delivery_failed` event; `false` when a resend
/// superseded it, and nothing is written.
pub async fn record_failed(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    id: &InvitationId,
    send: u32,
    error: &str,
    retrying: bool,
) -> Result<bool, AppError> {
    in_transaction!(store, |session| -> Result<bool, AppError> {
        if !store::invitations::record_failed(store, session, id, send, error).await? {
            return Ok(false);
        }
        let event = acting.event(
            now,
            "invitation.delivery_failed",
            ("invitation", id.as_str()),
            None,
            Some(json!({ "send": send, "error": error, "retrying": retrying })),
        );
        store::audit::record(store, session, &event).await?;
        Ok(true)
    })
}

/// Password work for accepting an invitation (and, signed in, for turning
/// on a second factor or deleting the account): argon2 takes tens of
/// milliseconds, so it runs off the async threads, and before the
/// transaction. A face says where it runs it (and may count failures, as
/// sign-in does).
pub trait Passwords: Sync {
    /// Whether `password`, tried from `origin`, is the password of
    /// `email`'s account, whose stored hash is `hash`.
    fn verify(
        &self,
        email: &Email,
        origin: &RequestOrigin,
        hash: PasswordHashString,
        password: String,
    ) -> impl Future<Output = Result<bool, AppError>> + Send;

    /// The hash of a new password, or why the password is refused.
    fn hash(
        &self,
        password: String,
    ) -> impl Future<Output = Result<Result<PasswordHashString, PasswordError>, AppError>> + Send;

    /// The key second factors are checked with, if the server has one.
    fn mfa_key(&self) -> Option<&MfaKey>;
}

/// Accepting is a sign-in by another door: the same argon2 permits and
/// the same failure limits as `POST /auth/login`.
impl Passwords for AppState {
    async fn verify(
        &self,
        email: &Email,
        origin: &RequestOrigin,
        hash: PasswordHashString,
        password: String,
    ) -> Result<bool, AppError> {
        let throttle = self.sign_in_throttle();
        let ip = origin.ip.as_deref().and_then(|ip| ip.parse().ok());
        throttle.check(email.as_str(), ip, self.clock().now())?;
        let ok = self
            .hashing()
            .run(move || verify_password(Some(&hash), &password))
            .await?;
        if ok {
            throttle.succeeded(email.as_str());
        } else {
            throttle.failed(email.as_str(), ip, self.clock().now());
        }
        Ok(ok)
    }

    async fn hash(
        &self,
        password: String,
    ) -> Result<Result<PasswordHashString, PasswordError>, AppError> {
        Ok(self.hashing().run(move || hash_password(&password)).await?)
    }

    fn mfa_key(&self) -> Option<&MfaKey> {
        AppState::mfa_key(self)
    }
}

#[derive(Debug, Clone, Default)]
pub struct AcceptInput {
    pub token: String,
    /// A display name as one string (the API's older field); split into
    /// given and family names when it has two words or more.
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// Whether a new person must give given and family names (the page
    /// asks for them; the API keeps them optional for older clients).
    pub names_required: bool,
    pub password: Option<String>,
    /// An existing account's second factor, when it has one on.
    pub mfa_proof: Option<MfaProof>,
    /// The account the accept page knows to be signed in (its session
    /// cookie): that account needs no password to accept an invitation
    /// for its own address.
    pub signed_in: Option<AccountId>,
}

#[derive(Debug, Clone)]
pub struct Accepted {
    pub org_id: OrgId,
    pub member_id: MemberId,
    pub account_id: AccountId,
    pub account_created: bool,
}

/// The invitation a link's secret opens, if it can still be accepted.
pub async fn open(store: &Store, now: DateTime<Utc>, token: &str) -> Result<Invitation, AppError> {
    if !is_well_formed_invitation(token) {
        return Err(not_found());
    }
    let invitation = store::invitations::find_by_token(store, None, &TokenHash::of(token))
        .await?
        .ok_or_else(not_found)?;
    invitation::ensure_acceptable(&invitation, now)?;
    ensure_org_exists(store, None, &invitation).await?;
    Ok(invitation)
}

/// An invitation into an organization that was deleted is gone (410),
/// whatever its own status says: organizations deleted before their
/// invitations were revoked with them left pending ones behind.
async fn ensure_org_exists(
    store: &Store,
    session: Option<&mut ClientSession>,
    invitation: &Invitation,
) -> Result<(), AppError> {
    match store::orgs::get(store, session, &invitation.org_id).await? {
        Some(_) => Ok(()),
        None => Err(AcceptError::OrganizationDeleted.into()),
    }
}

/// What the person proved or chose about their login.
enum Login {
    /// A new account, with this password and name.
    New {
        hash: PasswordHashString,
        name: Option<String>,
    },
    /// An account that exists and proved it: its password was given
    /// (and its second factor, to spend in the transaction), or it is
    /// signed in on the page.
    Existing(AccountId, Option<Proven>),
    /// An account that exists without a password: the emailed link proves
    /// the email, and this becomes its password.
    ExistingSetsPassword(AccountId, PasswordHashString),
}

/// The given and family names sent, if any: both fields, or a `name` of
/// two words or more. One of the two fields alone is refused, naming the
/// missing one.
fn person_name(input: &AcceptInput) -> Result<Option<PersonName>, AppError> {
    let given = input.given_name.as_deref().filter(|g| !g.trim().is_empty());
    let family = input
        .family_name
        .as_deref()
        .filter(|f| !f.trim().is_empty());
    match (given, family) {
        (Some(given), Some(family)) => PersonName::new(given, family)
            .map(Some)
            .map_err(|err| AppError::invalid("given_name", err)),
        (Some(_), None) => Err(AppError::invalid(
            "family_name",
            "enter your family name too",
        )),
        (None, Some(_)) => Err(AppError::invalid("given_name", "enter your given name too")),
        (None, None) => Ok(input
            .name
            .as_deref()
            .and_then(|name| PersonName::from_full(name).ok())),
    }
}

async fn hash_new_password(
    passwords: &impl Passwords,
    password: Option<String>,
) -> Result<PasswordHashString, AppError> {
    let password = password.ok_or_else(|| {
        AppError::invalid("password", "choose a password of at least 10 characters")
    })?;
    passwords
        .hash(password)
        .await?
        .map_err(|err| AppError::invalid("password", err))
}

/// A person accepts an invitation with its link's secret: a new account
/// (or an existing one that proves itself) becomes an active member, and
/// the email counts as verified. The accepting account is the actor; no
/// one is signed in before, so `origin` is all a face passes of the
/// request.
pub async fn accept(
    store: &Store,
    now: DateTime<Utc>,
    origin: RequestOrigin,
    passwords: &impl Passwords,
    input: AcceptInput,
) -> Result<Accepted, AppError> {
    let invitation = open(store, now, &input.token).await?;
    let name = input
        .name
        .as_deref()
        .map(display_name)
        .transpose()
        .map_err(|err| AppError::invalid("name", err))?;
    let person = person_name(&input)?;
    // Password work before the transaction.
    let login = match store::accounts::find_by_email(store, None, &invitation.email).await? {
        Some(existing) if input.signed_in.as_ref() == Some(&existing.account.id) => {
            Login::Existing(existing.account.id, None)
        }
        Some(existing) => match existing.password_hash.clone() {
            Some(hash) => {
                let password = input.password.unwrap_or_default();
                if !passwords
                    .verify(&invitation.email, &origin, hash, password)
                    .await?
                {
                    // The answer names the account already, so unlike
                    // `/auth/login` the write can be awaited.
                    let after = json!({ "invitation_id": invitation.id.as_str() });
                    super::sessions::sign_in_failed(
                        store,
                        now,
                        &existing.account,
                        Some(after),
                        origin.clone(),
                    )
                    .await?;
                    return Err(AppError::Forbidden(format!(
                        "{} already has an account: enter that account's password",
                        invitation.email
                    )));
                }
                // Asked only once the password is right, as at sign-in.
                let proven = match existing.enabled_mfa() {
                    Some(mfa) => Some(
                        super::mfa::check(
                            store,
                            passwords.mfa_key(),
                            now,
                            &existing.account,
                            mfa,
                            input.mfa_proof.clone(),
                            &origin,
                        )
                        .await?
                        .ok_or(MfaError::WrongCode)?,
                    ),
                    None => None,
                };
                Login::Existing(existing.account.id, proven)
            }
            None => Login::ExistingSetsPassword(
                existing.account.id,
                hash_new_password(passwords, input.password).await?,
            ),
        },
        None => {
            if person.is_none() && input.names_required && invitation.kind == InvitationKind::Invite
            {
                return Err(AppError::invalid(
                    "given_name",
                    "enter your given name and your family name",
                ));
            }
            Login::New {
                hash: hash_new_password(passwords, input.password).await?,
                name: person.as_ref().map(PersonName::formatted).or(name),
            }
        }
    };
    let token_hash = TokenHash::of(&input.token);
    in_transaction!(store, |session| -> Result<Accepted, AppError> {
        // Again inside the transaction: a resend or revoke may have come
        // between.
        let current = store::invitations::find_by_token(store, Some(&mut *session), &token_hash)
            .await?
            .ok_or_else(not_found)?;
        invitation::ensure_acceptable(&current, now)?;
        // Read in the transaction: a deletion committed meanwhile aborts it.
        ensure_org_exists(store, Some(&mut *session), &current).await?;
        let (account_id, account_created) = match &login {
            Login::New { hash, name } => {
                let account = Account {
                    id: AccountId::new(),
                    email: current.email.clone(),
                    display_name: name.clone(),
                    created_at: now,
                    updated_at: now,
                };
                if store::accounts::insert(store, session, &account, Some(hash)).await?
                    == Inserted::AlreadyExists
                {
                    return Err(AppError::Conflict {
                        problem: "account-exists",
                        detail: "an account with this email was created meanwhile; \
                                 open the link again and sign in with it"
                            .into(),
                    });
                }
                (account.id, true)
            }
            Login::Existing(id, proven) => {
                if let Some(proven) = proven
                    && !super::mfa::spend(store, session, id, proven).await?
                {
                    return Err(MfaError::WrongCode.into());
                }
                (id.clone(), false)
            }
            Login::ExistingSetsPassword(id, hash) => {
                if !store::accounts::set_password_hash(store, session, id, hash, now).await? {
                    return Err(AppError::Conflict {
                        problem: "password-set-meanwhile",
                        detail: "the account got a password meanwhile; enter that password".into(),
                    });
                }
                (id.clone(), false)
            }
        };
        store::accounts::mark_email_verified(store, session, &account_id, now).await?;
        let member_id = join(store, session, &current, &account_id, person.as_ref(), now).await?;
        if !store::invitations::finish(store, session, &current.id, InvitationStatus::Accepted, now)
            .await?
        {
            return Err(AcceptError::InvitationUsed.into());
        }
        // The accepting account acts, in the organization it just joined.
        // Named by its id alone: readers resolve the name, and an email
        // stored here would outlive the account under the log's seal.
        let event = AuditEvent {
            org_id: Some(current.org_id.clone()),
            at: now,
            actor: Actor::Account(account_id.clone()),
            actor_label: None,
            action: "invitation.accepted",
            target: Target {
                kind: "invitation",
                id: current.id.to_string(),
            },
            before: Some(json!({ "status": "pending" })),
            after: Some(json!({
                "status": "accepted",
                "member_id": member_id.as_str(),
                "account_id": account_id.as_str(),
                "account_created": account_created,
                "role": current.role,
            })),
            origin: origin.clone(),
        };
        store::audit::record(store, session, &event).await?;
        Ok(Accepted {
            org_id: current.org_id.clone(),
            member_id,
            account_id,
            account_created,
        })
    })
}

/// Makes the account an active member: a new membership for an invitation,
/// the pending SCIM member for an activation.
async fn join(
    store: &Store,
    session: &mut ClientSession,
    invitation: &Invitation,
    account_id: &AccountId,
    person: Option<&PersonName>,
    now: DateTime<Utc>,
) -> Result<MemberId, AppError> {
    let already_member = || AppError::Conflict {
        problem: "already-member",
        detail: "this account is already a member of the organization".into(),
    };
    if store::members::find_by_account(store, Some(&mut *session), &invitation.org_id, account_id)
        .await?
        .is_some()
    {
        return Err(already_member());
    }
    match (invitation.kind, &invitation.member_id) {
        (InvitationKind::ScimActivation, Some(member_id)) => {
            if !store::members::link_account(
                store,
                session,
                &invitation.org_id,
                member_id,
                account_id,
                now,
            )
            .await?
            {
                return Err(AppError::Gone {
                    problem: "invitation-revoked",
                    detail: "the membership this invitation activates no longer waits for it"
                        .into(),
                });
            }
            Ok(member_id.clone())
        }
        _ => {
            let member = Member {
                id: MemberId::new(),
                org_id: invitation.org_id.clone(),
                account_id: Some(account_id.clone()),
                role: invitation.role,
                status: MemberStatus::Active,
                suspended_until: None,
                project_rights: invitation.project_rights.clone(),
                created_at: now,
                updated_at: now,
                last_sign_in_at: None,
            };
            // Named like a member an identity provider created, so that
            // IdPs that require names (Okta) can import this one.
            let mut profile = UserProfile::for_email(&invitation.email);
            if let Some(person) = person {
                profile = profile.with_name(person);
            }
            if store::members::insert(store, session, &member, &profile).await?
                == Inserted::AlreadyExists
            {
                return Err(already_member());
            }
            Ok(member.id)
        }
    }
}

/// What became of the activation of a member an identity provider created.
#[derive(Debug, Clone, PartialEq)]
pub enum ScimActivation {
    /// An invitation whose mail goes out as soon as a worker is free.
    Invited(Invitation),
    /// An invitation whose mail waits until `mail_at`: the organization
    /// reached its hourly cap (`invitations.max_per_org_per_hour`).
    Deferred {
        invitation: Invitation,
        mail_at: DateTime<Utc>,
    },
    /// No invitation: the address's domain is not one the organization
    /// allows.
    DomainNotAllowed(Email),
    /// None due: activation mails are off, the member already has a login
    /// or is not pending, or the address has a pending invitation already.
    NotDue,
}

impl ScimActivation {
    pub fn invitation(&self) -> Option<&Invitation> {
        match self {
            ScimActivation::Invited(invitation) | ScimActivation::Deferred { invitation, .. } => {
                Some(invitation)
            }
            _ => None,
        }
    }

    /// The audit event's action, target and `after` that say what
    /// happened, if anything did.
    pub fn audit(
        &self,
        member_id: &MemberId,
    ) -> Option<(&'static str, (&'static str, String), Value)> {
        let created = |invitation: &Invitation, mail_at: Option<DateTime<Utc>>| {
            let mut after = json!({
                "kind": "scim_activation",
                "email": invitation.email.as_str(),
                "member_id": member_id.as_str(),
            });
            if let Some(mail_at) = mail_at {
                after["mail_at"] = json!(mail_at);
                after["reason"] = "hourly_cap".into();
            }
            (
                "invitation.created",
                ("invitation", invitation.id.to_string()),
                after,
            )
        };
        match self {
            ScimActivation::Invited(invitation) => Some(created(invitation, None)),
            ScimActivation::Deferred {
                invitation,
                mail_at,
            } => Some(created(invitation, Some(*mail_at))),
            ScimActivation::DomainNotAllowed(email) => Some((
                "member.activation_withheld",
                ("member", member_id.to_string()),
                json!({
                    "email": email.as_str(),
                    "reason": "domain_not_allowed",
                }),
            )),
            ScimActivation::NotDue => None,
        }
    }
}

/// For a member an identity provider created without a login: the
/// activation invitation (same mail, link and page), to be written in the
/// creation's transaction with its mail job, when the organization asks
/// for activation mails and allows the address's domain. Over the hourly
/// cap the member is still created: the mail is scheduled for when the
/// cap allows it, and its link is valid for the organization's TTL from
/// then. Reads only: the caller makes the inserts it answers (the
/// invitation and its job) together with its own, where a unique index's
/// refusal of the invitation is `concurrent_invitation`, and
/// records the audit event ([`ScimActivation::audit`]).
pub async fn scim_activation(
    store: &Store,
    session: &mut ClientSession,
    member: &Member,
    email: &Email,
    now: DateTime<Utc>,
    hourly_cap: u32,
) -> Result<(ScimActivation, Vec<InsertOneModel>), AppError> {
    let not_due = Ok((ScimActivation::NotDue, Vec::new()));
    if member.account_id.is_some() || member.status != MemberStatus::Pending {
        return not_due;
    }
    let Some(context) = store::invitations::activation_context(
        store,
        session,
        &member.org_id,
        email,
        now - Duration::hours(1),
        hourly_cap,
    )
    .await?
    else {
        return not_due;
    };
    let org = context.org;
    if !org.settings.scim_activation_emails {
        return not_due;
    }
    if !invitation::domain_allowed(email, &org.settings.allowed_email_domains) {
        return Ok((ScimActivation::DomainNotAllowed(email.clone()), Vec::new()));
    }
    if context.email_pending {
        return not_due;
    }
    let cap_th_latest = context.cap_th_latest;
    let mail_at = invitation::next_mail_at(now, cap_th_latest);
    let invitation = Invitation {
        id: InvitationId::new(),
        org_id: member.org_id.clone(),
        email: email.clone(),
        role: member.role,
        project_rights: member.project_rights.clone(),
        message: None,
        kind: InvitationKind::ScimActivation,
        invited_by: None,
        member_id: Some(member.id.clone()),
        status: InvitationStatus::Pending,
        created_at: now,
        expires_at: invitation::expiry(mail_at, org.settings.invitation_ttl_days),
        updated_at: now,
        accepted_at: None,
        delivery: Delivery {
            sends: 1,
            ..Delivery::default()
        },
    };
    let deferred = mail_at > now;
    let mut inserts = vec![store::invitations::insert_mailed_at_model(
        store,
        &invitation,
        &fresh_token_hash(),
        mail_at,
    )?];
    inserts.extend(new_invitation_job_inserts(
        store,
        std::slice::from_ref(&invitation),
        deferred.then_some(mail_at),
    )?);
    let activation = if deferred {
        ScimActivation::Deferred {
            invitation,
            mail_at,
        }
    } else {
        ScimActivation::Invited(invitation)
    };
    Ok((activation, inserts))
}

/// Revokes the pending activation invitation of a member the identity
/// provider deactivated or deleted; returns it for the audit event.
pub async fn revoke_scim_activation(
    store: &Store,
    session: &mut ClientSession,
    member_id: &MemberId,
    now: DateTime<Utc>,
) -> Result<Option<Invitation>, AppError> {
    let Some(invitation) =
        store::invitations::pending_for_member(store, session, member_id).await?
    else {
        return Ok(None);
    };
    let revoked = store::invitations::finish(
        store,
        session,
        &invitation.id,
        InvitationStatus::Revoked,
        now,
    )
    .await?;
    Ok(revoked.then_some(invitation))
}
