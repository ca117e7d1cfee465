//! `muster bootstrap`: the first organization, its owner, and the two
//! tokens a new installation needs. The flags are checked here; the
//! organization is founded by `app::orgs::bootstrap`, in one transaction.

use chrono::{DateTime, Utc};
use mongodb::error::Error as MongoError;
use serde::Serialize;

use crate::app;
use crate::app::orgs::{Founder, FoundingError};
use crate::auth::password::{PasswordError, PasswordHashString, hash_password};
use crate::domain::org::org_name_and_slug;
use crate::domain::{Email, InvalidEmail, InvalidOrgName, InvalidPersonName, PersonName};
use crate::store::Store;

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

impl From<FoundingError> for BootstrapError {
    fn from(err: FoundingError) -> Self {
        match err {
            FoundingError::NameTaken { name } => BootstrapError::OrgExists { name },
            FoundingError::Concurrent => BootstrapError::Concurrent,
            FoundingError::Store(err) => BootstrapError::Store(err),
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
    let password_hash: Option<PasswordHashString> = match input.owner_password {
        Some(password) => Some(
            tokio::task::spawn_blocking(move || hash_password(&password))
                .await
                .map_err(|_| PasswordError::Hashing)??,
        ),
        None => None,
    };
    let founder = Founder {
        email,
        name: owner_name,
        password_hash,
    };
    let done = app::orgs::bootstrap(store, now, (name, slug), &founder).await?;
    Ok(BootstrapOutput {
        org_id: done.org.id.to_string(),
        owner_account_id: done.owner_account_id.to_string(),
        owner_token: done.owner_token.secret.into_exposed(),
        scim_token: done.scim_token.secret.into_exposed(),
        account_created: done.account_created,
    })
}
