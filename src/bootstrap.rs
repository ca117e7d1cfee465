//! `muster bootstrap`: the first organization, its owner, and the two
//! tokens a new installation needs, in one transaction.

use chrono::{DateTime, Utc};
use mongodb::error::Error as MongoError;
use serde::Serialize;

use crate::auth::password::{PasswordError, PasswordHashString, hash_password};
use crate::auth::token::{IssuedToken, TokenKind, TokenRecord};
use crate::domain::org::org_name_and_slug;
use crate::domain::{
    Account, AccountId, Actor, AuditEvent, Email, InvalidEmail, InvalidOrgName, InvalidPersonName,
    Member, MemberId, MemberStatus, OrgId, OrgSettings, Organization, PersonName, RequestOrigin,
    Role, Target,
};
use crate::protocol::user::UserProfile;
use crate::store::{self, Inserted, Store, TxError};

pub struct BootstrapInput {
    pub org_name: String,
    pub owner_email: String,
    pub owner_password: Option<String>,
}

/// Printed by `--json`; a public contract, so fields are only ever added.
#[derive(Debug, Serialize)]
pub struct BootstrapOutput {
    pub org_id: String,
    pub owner_account_id: String,
    pub owner_token: String,
    pub scim_token: String,
    /// False when the email already had an account, which was linked as is
    /// (its password unchanged).
    #[serde(skip)]
    pub account_created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("--org-name: {0}")]
    InvalidName(#[from] InvalidOrgName),
    #[error("--owner-email: {0}")]
    InvalidEmail(#[from] InvalidEmail),
    #[error("--owner-password: {0}")]
    InvalidPassword(#[from] PasswordError),
    #[error("--owner-name: {0}")]
    InvalidOwnerName(#[from] InvalidPersonName),
    #[error("an organization named {name:?} already exists; choose another --org-name")]
    OrgExists { name: String },
    #[error("the owner's account or membership was created concurrently; run the command again")]
    Concurrent,
    #[error("database error: {0}")]
    Store(#[from] MongoError),
}

impl TxError for BootstrapError {
    fn as_mongo(&self) -> Option<&MongoError> {
        match self {
            BootstrapError::Store(err) => Some(err),
            _ => None,
        }
    }
}

pub async fn bootstrap(
    store: &Store,
    now: DateTime<Utc>,
    input: BootstrapInput,
) -> Result<BootstrapOutput, BootstrapError> {
    bootstrap_named(store, now, input, None).await
}

/// [`bootstrap`] with the owner's full name ("Ada Lovelace": the first
/// word is the given name), which the owner's SCIM User shows as `name`
/// and `displayName`: the owner is the first user an identity provider
/// imports, and Okta requires given and family names. A new account also
/// takes it as its display name.
pub async fn bootstrap_named(
    store: &Store,
    now: DateTime<Utc>,
    input: BootstrapInput,
    owner_name: Option<String>,
) -> Result<BootstrapOutput, BootstrapError> {
    let (name, slug) = org_name_and_slug(&input.org_name)?;
    let email = Email::parse(&input.owner_email)?;
    let owner_name = owner_name
        .as_deref()
        .map(PersonName::from_full)
        .transpose()?;
    let mut profile = UserProfile::for_email(&email);
    if let Some(owner_name) = &owner_name {
        profile = profile.with_name(owner_name);
    }
    let password_hash: Option<PasswordHashString> = match input.owner_password {
        Some(password) => Some(
            tokio::task::spawn_blocking(move || hash_password(&password))
                .await
                .map_err(|_| PasswordError::Hashing)??,
        ),
        None => None,
    };
    let org = Organization {
        id: OrgId::new(),
        name,
        slug,
        settings: OrgSettings::default(),
        created_at: now,
        updated_at: now,
    };
    let owner_token = IssuedToken::generate(TokenKind::Personal);
    let scim_token = IssuedToken::generate(TokenKind::Scim);

    let (account_id, account_created) = crate::in_transaction!(store, |session| -> Result<
        (AccountId, bool),
        BootstrapError,
    > {
        if store::orgs::insert(store, session, &org).await? == Inserted::AlreadyExists {
            return Err(BootstrapError::OrgExists {
                name: org.name.clone(),
            });
        }
        let (account_id, created) =
            match store::accounts::find_by_email(store, Some(&mut *session), &email).await? {
                Some(existing) => (existing.account.id, false),
                None => {
                    let account = Account {
                        id: AccountId::new(),
                        email: email.clone(),
                        display_name: owner_name.as_ref().map(PersonName::formatted),
                        created_at: now,
                        updated_at: now,
                    };
                    let inserted =
                        store::accounts::insert(store, session, &account, password_hash.as_ref())
                            .await?;
                    if inserted == Inserted::AlreadyExists {
                        return Err(BootstrapError::Concurrent);
                    }
                    (account.id, true)
                }
            };
        let member = Member {
            id: MemberId::new(),
            org_id: org.id.clone(),
            account_id: Some(account_id.clone()),
            role: Role::Owner,
            status: MemberStatus::Active,
            suspended_until: None,
            project_rights: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        if store::members::insert(store, session, &member, &profile).await?
            == Inserted::AlreadyExists
        {
            return Err(BootstrapError::Concurrent);
        }
        for (issued, name, account) in [
            (
                &owner_token,
                "bootstrap owner token",
                Some(account_id.clone()),
            ),
            (&scim_token, "bootstrap SCIM token", None),
        ] {
            let record = TokenRecord::new(
                issued,
                Some(name.to_owned()),
                account,
                Some(org.id.clone()),
                now,
                None,
            );
            if store::tokens::insert(store, Some(&mut *session), &record).await?
                == Inserted::AlreadyExists
            {
                return Err(BootstrapError::Concurrent);
            }
        }
        store::audit::record(
            store,
            session,
            &AuditEvent {
                org_id: Some(org.id.clone()),
                at: now,
                actor: Actor::System,
                action: "organization.bootstrapped",
                target: Target {
                    kind: "organization",
                    id: org.id.to_string(),
                },
                before: None,
                after: Some(serde_json::json!({
                    "name": org.name,
                    "owner_account_id": account_id.to_string(),
                    "owner_email": email.as_str(),
                })),
                origin: RequestOrigin::default(),
            },
        )
        .await?;
        Ok((account_id, created))
    })?;

    Ok(BootstrapOutput {
        org_id: org.id.to_string(),
        owner_account_id: account_id.to_string(),
        owner_token: owner_token.secret.into_exposed(),
        scim_token: scim_token.secret.into_exposed(),
        account_created,
    })
}
