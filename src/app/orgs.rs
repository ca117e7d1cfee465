//! Organizations: founding one (an account through the API, or `muster
//! bootstrap`), changing its name and settings, deleting it. Founding has
//! one code path, [`found`], whichever face asks.

use chrono::{DateTime, Utc};
use mongodb::ClientSession;
use mongodb::error::Error as MongoError;
use serde_json::{Value, json};

use super::Acting;
use super::accounts::{AccountActing, gone};
use crate::auth::password::PasswordHashString;
use crate::auth::token::{IssuedToken, TokenKind, TokenRecord};
use crate::domain::mfa::MfaError;
use crate::domain::org::allowed_email_domains;
use crate::domain::{
    Account, AccountId, Actor, AuditEvent, Email, Member, MemberId, MemberStatus, OrgId,
    OrgSettings, Organization, Permission, PersonName, RequestOrigin, Role, Target,
    org_name_and_slug,
};
use crate::error::AppError;
use crate::in_transaction;
use crate::protocol::user::UserProfile;
use crate::store::orgs::{OrgChange, Updated};
use crate::store::{self, Inserted, Store, TxError};

fn not_found() -> AppError {
    AppError::NotFound("organization")
}

/// What the audit log keeps of an organization.
pub fn snapshot(org: &Organization) -> Value {
    let s = &org.settings;
    json!({
        "name": org.name,
        "settings": {
            "invitation_ttl_days": s.invitation_ttl_days,
            "audit_retention_days": s.audit_retention_days,
            "allowed_email_domains": s.allowed_email_domains,
            "scim_activation_emails": s.scim_activation_emails,
            "require_mfa": s.mfa_required,
        },
    })
}

/// Why an organization could not be founded.
#[derive(Debug, thiserror::Error)]
pub enum FoundingError {
    #[error("an organization named {name:?} already exists")]
    NameTaken { name: String },
    /// An id of the new organization's owner, membership or tokens was
    /// taken meanwhile.
    #[error("the owner's account, membership or tokens were created concurrently")]
    Concurrent,
    #[error("database error: {0}")]
    Store(#[from] MongoError),
}

impl TxError for FoundingError {
    fn as_mongo(&self) -> Option<&MongoError> {
        match self {
            FoundingError::Store(err) => Some(err),
            _ => None,
        }
    }
}

/// An organization and its owner's active membership, as founding makes
/// them.
struct Founded {
    org: Organization,
    owner: Member,
}

impl Founded {
    fn new(name: String, slug: String, owner: AccountId, now: DateTime<Utc>) -> Founded {
        let org = Organization {
            id: OrgId::new(),
            name,
            slug,
            settings: OrgSettings::default(),
            created_at: now,
            updated_at: now,
        };
        let owner = Member {
            id: MemberId::new(),
            org_id: org.id.clone(),
            account_id: Some(owner),
            role: Role::Owner,
            status: MemberStatus::Active,
            suspended_until: None,
            project_rights: Vec::new(),
            created_at: now,
            updated_at: now,
            last_sign_in_at: None,
        };
        Founded { org, owner }
    }
}

/// Writes a new organization with its owner, in the caller's transaction.
/// Names are unique by slug (ignoring case and punctuation).
async fn found(
    store: &Store,
    session: &mut ClientSession,
    founded: &Founded,
    owner_profile: &UserProfile,
) -> Result<(), FoundingError> {
    let org = &founded.org;
    if store::orgs::insert(store, session, org).await? == Inserted::AlreadyExists {
        return Err(FoundingError::NameTaken {
            name: org.name.clone(),
        });
    }
    if store::members::insert(store, session, &founded.owner, owner_profile).await?
        == Inserted::AlreadyExists
    {
        return Err(FoundingError::Concurrent);
    }
    Ok(())
}

/// An account founds an organization named `name` and becomes its owner.
pub async fn create(
    store: &Store,
    now: DateTime<Utc>,
    caller: &AccountActing,
    name: &str,
) -> Result<Organization, AppError> {
    let (name, slug) = org_name_and_slug(name).map_err(|err| AppError::invalid("name", err))?;
    let account = store::accounts::get(store, &caller.account_id)
        .await?
        .ok_or_else(gone)?;
    let founded = Founded::new(name, slug, caller.account_id.clone(), now);
    let profile = UserProfile::for_email(&account.email);
    let org = &founded.org;
    in_transaction!(store, |session| -> Result<(), AppError> {
        found(store, session, &founded, &profile).await?;
        let event = caller.event_in(
            &org.id,
            now,
            "organization.created",
            ("organization", org.id.as_str()),
            None,
            Some(snapshot(org)),
        );
        store::audit::record(store, session, &event).await?;
        Ok(())
    })?;
    Ok(founded.org)
}

/// What `muster bootstrap` founds the organization for: the owner's
/// account, found by email or made with this name and password.
pub struct Founder {
    pub email: Email,
    pub name: Option<PersonName>,
    pub password_hash: Option<PasswordHashString>,
}

pub struct Bootstrapped {
    pub org: Organization,
    pub owner_account_id: AccountId,
    /// False when the email already had an account, which owns the
    /// organization as it is (its password unchanged).
    pub account_created: bool,
    /// A personal token of the owner in the organization.
    pub owner_token: IssuedToken,
    /// A SCIM token for the organization's identity provider.
    pub scim_token: IssuedToken,
}

/// A new installation's first organization: founded like any other, with
/// the owner's account when the email has none, a personal token for the
/// owner and a SCIM token, and one `organization.bootstrapped` event, all
/// in one transaction. `name` is already checked (`org_name_and_slug`).
pub async fn bootstrap(
    store: &Store,
    now: DateTime<Utc>,
    (name, slug): (String, String),
    founder: &Founder,
) -> Result<Bootstrapped, FoundingError> {
    let mut profile = UserProfile::for_email(&founder.email);
    if let Some(owner_name) = &founder.name {
        profile = profile.with_name(owner_name);
    }
    let owner_token = IssuedToken::generate(TokenKind::Personal);
    let scim_token = IssuedToken::generate(TokenKind::Scim);
    let (founded, owner_account_id, account_created) =
        in_transaction!(store, |session| -> Result<
            (Founded, AccountId, bool),
            FoundingError,
        > {
            let (account_id, created) =
                match store::accounts::find_by_email(store, Some(&mut *session), &founder.email)
                    .await?
                {
                    Some(existing) => (existing.account.id, false),
                    None => {
                        let account = Account {
                            id: AccountId::new(),
                            email: founder.email.clone(),
                            display_name: founder.name.as_ref().map(PersonName::formatted),
                            created_at: now,
                            updated_at: now,
                        };
                        let hash = founder.password_hash.as_ref();
                        if store::accounts::insert(store, session, &account, hash).await?
                            == Inserted::AlreadyExists
                        {
                            return Err(FoundingError::Concurrent);
                        }
                        (account.id, true)
                    }
                };
            let founded = Founded::new(name.clone(), slug.clone(), account_id.clone(), now);
            found(store, session, &founded, &profile).await?;
            let org = &founded.org;
            for (issued, token_name, account) in [
                (
                    &owner_token,
                    "bootstrap owner token",
                    Some(account_id.clone()),
                ),
                (&scim_token, "bootstrap SCIM token", None),
            ] {
                let record = TokenRecord::new(
                    issued,
                    Some(token_name.to_owned()),
                    account,
                    Some(org.id.clone()),
                    now,
                    None,
                );
                if store::tokens::insert(store, Some(&mut *session), &record).await?
                    == Inserted::AlreadyExists
                {
                    return Err(FoundingError::Concurrent);
                }
            }
            let event = AuditEvent {
                org_id: Some(org.id.clone()),
                at: now,
                actor: Actor::System,
                actor_label: None,
                action: "organization.bootstrapped",
                target: Target {
                    kind: "organization",
                    id: org.id.to_string(),
                },
                before: None,
                after: Some(json!({
                    "name": org.name,
                    "owner_account_id": account_id.to_string(),
                    "owner_email": founder.email.as_str(),
                })),
                origin: RequestOrigin::default(),
            };
            store::audit::record(store, session, &event).await?;
            Ok((founded, account_id, created))
        })?;
    Ok(Bootstrapped {
        org: founded.org,
        owner_account_id,
        account_created,
        owner_token,
        scim_token,
    })
}

/// What a change of an organization sets; `None` leaves a field as it is.
/// Values are as sent: the use case checks them.
#[derive(Debug, Default)]
pub struct OrgUpdate {
    pub name: Option<String>,
    pub invitation_ttl_days: Option<u32>,
    pub audit_retention_days: Option<u32>,
    pub allowed_email_domains: Option<Vec<String>>,
    pub scim_activation_emails: Option<bool>,
    pub require_mfa: Option<bool>,
}

/// An organization as a change left it, with its count of active owners
/// (read in the same transaction).
pub struct OrgNow {
    pub org: Organization,
    pub active_owners: u64,
}

/// An owner changes the organization's name or settings, field by field:
/// concurrent changes of different fields both stay.
pub async fn update(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    update: OrgUpdate,
) -> Result<OrgNow, AppError> {
    acting.require(Permission::ManageOrganization)?;
    let change = OrgChange {
        name: update
            .name
            .map(|name| org_name_and_slug(&name).map_err(|err| AppError::invalid("name", err)))
            .transpose()?,
        invitation_ttl_days: update.invitation_ttl_days,
        audit_retention_days: update.audit_retention_days,
        allowed_email_domains: update
            .allowed_email_domains
            .map(|domains| {
                allowed_email_domains(domains)
                    .map_err(|err| AppError::invalid("settings.allowed_email_domains", err))
            })
            .transpose()?,
        scim_activation_emails: update.scim_activation_emails,
        require_mfa: update.require_mfa,
    };
    let org_id = &acting.org_id;
    in_transaction!(store, |session| -> Result<OrgNow, AppError> {
        // Before and after as this transaction sees them, not as a copy
        // read before it: concurrent changes of other fields stay in both.
        let before = store::orgs::get(store, Some(&mut *session), org_id)
            .await?
            .ok_or_else(not_found)?;
        if change.require_mfa == Some(true) && !before.settings.mfa_required {
            ensure_actor_has_mfa(store, session, acting).await?;
        }
        match store::orgs::update(store, session, org_id, &change, now).await? {
            Updated::Yes => {}
            Updated::NameTaken => {
                let name = change.name.as_ref().map(|(name, _)| name.clone());
                return Err(FoundingError::NameTaken {
                    name: name.unwrap_or_default(),
                }
                .into());
            }
            Updated::Missing => return Err(not_found()),
        }
        let after = store::orgs::get(store, Some(&mut *session), org_id)
            .await?
            .ok_or_else(not_found)?;
        let event = acting.event(
            now,
            "organization.updated",
            ("organization", org_id.as_str()),
            Some(snapshot(&before)),
            Some(snapshot(&after)),
        );
        store::audit::record(store, session, &event).await?;
        let active_owners =
            store::members::count_active_owners(store, Some(session), org_id).await?;
        Ok(OrgNow {
            org: after,
            active_owners,
        })
    })
}

/// An owner who requires two-factor authentication of everyone has it
/// on: otherwise the setting would lock them out of the organization they
/// just changed.
async fn ensure_actor_has_mfa(
    store: &Store,
    session: &mut mongodb::ClientSession,
    acting: &Acting,
) -> Result<(), AppError> {
    let account = match &acting.actor {
        Actor::Account(account)
        | Actor::ApiToken {
            account_id: account,
            ..
        } => account,
        // Muster itself or an identity provider: nobody to lock out.
        Actor::ScimToken(_) | Actor::System => return Ok(()),
    };
    if !store::accounts::has_mfa(store, Some(session), account).await? {
        return Err(MfaError::EnableItYourselfFirst.into());
    }
    Ok(())
}

/// An owner deletes the organization with its members, groups, projects
/// and tokens, and revokes its pending invitations (their waiting mail
/// jobs are removed), in one transaction. The members' accounts and the
/// audit trail remain.
pub async fn delete(store: &Store, now: DateTime<Utc>, acting: &Acting) -> Result<(), AppError> {
    acting.require(Permission::ManageOrganization)?;
    let org_id = &acting.org_id;
    let revoked = in_transaction!(store, |session| -> Result<usize, AppError> {
        let before = store::orgs::get(store, Some(&mut *session), org_id)
            .await?
            .ok_or_else(not_found)?;
        if !store::orgs::delete(store, session, org_id).await? {
            return Err(not_found());
        }
        let revoked =
            store::invitations::revoke_pending_for_org(store, session, org_id, now).await?;
        super::jobs::cancel_send_invitations(store, session, &revoked).await?;
        let event = acting.event(
            now,
            "organization.deleted",
            ("organization", org_id.as_str()),
            Some(snapshot(&before)),
            Some(json!({ "revoked_invitations": revoked.len() })),
        );
        store::audit::record(store, session, &event).await?;
        Ok(revoked.len())
    })?;
    // One event stands for all of them, so the commit's count of
    // `invitation.revoked` events misses them: counted here, committed.
    crate::measure::invitations_revoked(revoked as u64);
    Ok(())
}
