//! Accepting an invitation: shared by `POST /api/v1/invitations/accept`
//! and the `/invite/{token}` page. The rules are in
//! `domain::invitation`; this is their use case, in one transaction.

use chrono::{DateTime, Utc};

use crate::auth::password::{PasswordHashString, hash_password, verify_password};
use crate::auth::token::{TokenHash, generate_invitation_secret, is_well_formed_invitation};
use crate::domain::invitation::{self, Invitation, InvitationKind, InvitationStatus};
use crate::domain::{
    Account, AccountId, Actor, AuditEvent, Member, MemberId, MemberStatus, OrgId, PersonName,
    RequestOrigin, Target,
};
use crate::error::AppError;
use crate::in_transaction;
use crate::protocol::user::UserProfile;
use crate::state::AppState;
use crate::store::{self, Inserted};

/// A hash no one holds the secret of: what an invitation carries until the
/// mail job gives it a link (only the mail ever holds a link's secret).
pub fn fresh_token_hash() -> TokenHash {
    generate_invitation_secret().1
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

fn unknown_link() -> AppError {
    AppError::NotFound("invitation")
}

/// The invitation a link's secret opens, if it can still be accepted.
pub async fn open(state: &AppState, token: &str) -> Result<Invitation, AppError> {
    if !is_well_formed_invitation(token) {
        return Err(unknown_link());
    }
    let invitation = store::invitations::find_by_token(state.store(), None, &TokenHash::of(token))
        .await?
        .ok_or_else(unknown_link)?;
    invitation::ensure_acceptable(&invitation, state.clock().now())?;
    ensure_org_exists(state.store(), None, &invitation).await?;
    Ok(invitation)
}

/// An invitation into an organization that was deleted is gone (410),
/// whatever its own status says: organizations deleted before their
/// invitations were revoked with them left pending ones behind.
async fn ensure_org_exists(
    store: &store::Store,
    session: Option<&mut mongodb::ClientSession>,
    invitation: &Invitation,
) -> Result<(), AppError> {
    match store::orgs::get(store, session, &invitation.org_id).await? {
        Some(_) => Ok(()),
        None => Err(invitation::AcceptError::OrganizationDeleted.into()),
    }
}

/// What the person proved or chose about their login.
enum Login {
    /// A new account, with this password and name.
    New {
        hash: PasswordHashString,
        name: Option<String>,
    },
    /// An account that exists and proved it: its password was given, or
    /// it is signed in on the page.
    Existing(AccountId),
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
    state: &AppState,
    password: Option<String>,
) -> Result<PasswordHashString, AppError> {
    let password = password.ok_or_else(|| {
        AppError::invalid("password", "choose a password of at least 10 characters")
    })?;
    state
        .hashing()
        .run(move || hash_password(&password))
        .await?
        .map_err(|err| AppError::invalid("password", err))
}

pub async fn accept(
    state: &AppState,
    origin: RequestOrigin,
    input: AcceptInput,
) -> Result<Accepted, AppError> {
    let invitation = open(state, &input.token).await?;
    let store = state.store();
    let name = input
        .name
        .as_deref()
        .map(|name| crate::api::me::checked_display_name("name", name))
        .transpose()?;
    let person = person_name(&input)?;
    // Password work (argon2, tens of milliseconds) before the transaction.
    let login = match store::accounts::find_by_email(store, None, &invitation.email).await? {
        Some(existing) if input.signed_in.as_ref() == Some(&existing.account.id) => {
            Login::Existing(existing.account.id)
        }
        Some(existing) => match existing.password_hash {
            Some(hash) => {
                // A sign-in by another door: the same failure limits.
                let throttle = state.sign_in_throttle();
                let email = invitation.email.as_str();
                let ip = origin.ip.as_deref().and_then(|ip| ip.parse().ok());
                throttle.check(email, ip, state.clock().now())?;
                let password = input.password.unwrap_or_default();
                let ok = state
                    .hashing()
                    .run(move || verify_password(Some(&hash), &password))
                    .await?;
                if !ok {
                    throttle.failed(email, ip, state.clock().now());
                    return Err(AppError::Forbidden(format!(
                        "{} already has an account: enter that account's password",
                        invitation.email
                    )));
                }
                throttle.succeeded(email);
                Login::Existing(existing.account.id)
            }
            None => Login::ExistingSetsPassword(
                existing.account.id,
                hash_new_password(state, input.password).await?,
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
                hash: hash_new_password(state, input.password).await?,
                name: person.as_ref().map(PersonName::formatted).or(name),
            }
        }
    };
    let now = state.clock().now();
    let token_hash = TokenHash::of(&input.token);
    in_transaction!(store, |session| -> Result<Accepted, AppError> {
        // Again inside the transaction: a resend or revoke may have come
        // between.
        let current = store::invitations::find_by_token(store, Some(&mut *session), &token_hash)
            .await?
            .ok_or_else(unknown_link)?;
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
            Login::Existing(id) => (id.clone(), false),
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
            return Err(invitation::AcceptError::InvitationUsed.into());
        }
        let event = AuditEvent {
            org_id: Some(current.org_id.clone()),
            at: now,
            actor: Actor::Account(account_id.clone()),
            action: "invitation.accepted",
            target: Target {
                kind: "invitation",
                id: current.id.to_string(),
            },
            before: Some(serde_json::json!({ "status": "pending" })),
            after: Some(serde_json::json!({
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
    store: &store::Store,
    session: &mut mongodb::ClientSession,
    invitation: &Invitation,
    account_id: &AccountId,
    person: Option<&PersonName>,
    now: chrono::DateTime<chrono::Utc>,
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
    DomainNotAllowed(crate::domain::Email),
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
    ) -> Option<(&'static str, (&'static str, String), serde_json::Value)> {
        let created = |invitation: &Invitation, mail_at: Option<DateTime<Utc>>| {
            let mut after = serde_json::json!({
                "kind": "scim_activation",
                "email": invitation.email.as_str(),
                "member_id": member_id.as_str(),
            });
            if let Some(mail_at) = mail_at {
                after["mail_at"] = serde_json::json!(mail_at);
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
                serde_json::json!({
                    "email": email.as_str(),
                    "reason": "domain_not_allowed",
                }),
            )),
            ScimActivation::NotDue => None,
        }
    }
}

/// For a member an identity provider created without a login: the
/// activation invitation (same mail, link and page), written in the
/// creation's transaction with its mail job, when the organization asks
/// for activation mails and allows the address's domain. Over the hourly
/// cap the member is still created: the mail is scheduled for when the
/// cap allows it, and its link is valid for the organization's TTL from
/// then. The caller records the audit event ([`ScimActivation::audit`]).
pub async fn create_scim_activation(
    store: &store::Store,
    session: &mut mongodb::ClientSession,
    member: &Member,
    email: &crate::domain::Email,
    now: DateTime<Utc>,
    hourly_cap: u32,
) -> Result<ScimActivation, AppError> {
    if member.account_id.is_some() || member.status != MemberStatus::Pending {
        return Ok(ScimActivation::NotDue);
    }
    let Some(org) = store::orgs::get(store, Some(&mut *session), &member.org_id).await? else {
        return Ok(ScimActivation::NotDue);
    };
    if !org.settings.scim_activation_emails {
        return Ok(ScimActivation::NotDue);
    }
    if !invitation::domain_allowed(email, &org.settings.allowed_email_domains) {
        return Ok(ScimActivation::DomainNotAllowed(email.clone()));
    }
    let pending =
        store::invitations::pending_emails(store, session, &member.org_id, &[email.as_str()])
            .await?;
    if !pending.is_empty() {
        return Ok(ScimActivation::NotDue);
    }
    let cap_th_latest = store::invitations::nth_latest_mail_since(
        store,
        session,
        &member.org_id,
        now - chrono::Duration::hours(1),
        hourly_cap,
    )
    .await?;
    let mail_at = invitation::next_mail_at(now, cap_th_latest);
    let invitation = Invitation {
        id: crate::domain::InvitationId::new(),
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
        delivery: invitation::Delivery {
            sends: 1,
            ..invitation::Delivery::default()
        },
    };
    if store::invitations::insert_mailed_at(
        store,
        session,
        &invitation,
        &fresh_token_hash(),
        mail_at,
    )
    .await?
        == Inserted::AlreadyExists
    {
        // Inside a transaction the server has aborted it already: retry.
        return Err(AppError::Conflict {
            problem: "concurrent-invitation",
            detail: "another request invited the same address at the same time; \
                     send the request again"
                .into(),
        });
    }
    if mail_at > now {
        crate::jobs::enqueue_send_invitation_at(store, session, &invitation, mail_at).await?;
        Ok(ScimActivation::Deferred {
            invitation,
            mail_at,
        })
    } else {
        crate::jobs::enqueue_send_invitation(store, session, &invitation).await?;
        Ok(ScimActivation::Invited(invitation))
    }
}

/// Revokes the pending activation invitation of a member the identity
/// provider deactivated or deleted; returns it for the audit event.
pub async fn revoke_scim_activation(
    store: &store::Store,
    session: &mut mongodb::ClientSession,
    member_id: &MemberId,
    now: chrono::DateTime<chrono::Utc>,
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
