//! `muster token`: the operator's face for an organization's SCIM tokens
//! and accounts' personal tokens, so automation can rotate them without a
//! browser. It calls the same use cases as the API, acting as Muster
//! itself (the audit log's `system` actor) with an owner's powers: whoever
//! runs the binary against the database holds them already.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::app::{self, Acting};
use crate::auth::token::{TokenKind, TokenRecord};
use crate::domain::{AccountId, Email, OrgId, TokenId};
use crate::error::AppError;
use crate::store::{self, Store};

/// A SCIM token as the CLI prints it; `token` (the secret) only on create.
#[derive(Debug, Serialize)]
pub struct ScimTokenOutput {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub display_prefix: String,
    pub allow_owner_changes: bool,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl ScimTokenOutput {
    fn of(record: TokenRecord, secret: Option<String>) -> ScimTokenOutput {
        ScimTokenOutput {
            id: record.id.to_string(),
            org_id: record.org_id.map(|id| id.to_string()).unwrap_or_default(),
            name: record.name.unwrap_or_default(),
            display_prefix: record.display_prefix,
            allow_owner_changes: record.allow_owner_changes,
            created_at: record.created_at,
            expires_at: record.expires_at,
            last_used_at: record.last_used_at,
            token: secret,
        }
    }

    /// One line for people: what tells tokens apart, never the secret.
    pub fn line(&self) -> String {
        format!(
            "{}  {}  {}{}{}",
            self.id,
            self.display_prefix,
            self.name,
            if self.allow_owner_changes {
                "  (may change owners)"
            } else {
                ""
            },
            self.expires_at
                .map(|at| format!("  expires {}", at.to_rfc3339()))
                .unwrap_or_default(),
        )
    }
}

/// The organization `raw` names, which must exist.
async fn acting_in(store: &Store, raw: &str) -> Result<Acting, AppError> {
    let org_id =
        OrgId::parse(raw).map_err(|_| AppError::invalid("--org", "not an organization id"))?;
    store::orgs::get(store, None, &org_id)
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    Ok(Acting::system(org_id))
}

pub async fn create_scim(
    store: &Store,
    now: DateTime<Utc>,
    org: &str,
    name: &str,
    allow_owner_changes: bool,
    expires_at: Option<DateTime<Utc>>,
) -> Result<ScimTokenOutput, AppError> {
    let acting = acting_in(store, org).await?;
    let name = app::tokens::checked_name(name)?;
    let expires_at = app::tokens::checked_expiry(expires_at, now)?;
    let (record, issued) =
        app::tokens::issue_scim(store, now, &acting, name, expires_at, allow_owner_changes).await?;
    Ok(ScimTokenOutput::of(
        record,
        Some(issued.secret.into_exposed()),
    ))
}

pub async fn list_scim(store: &Store, org: &str) -> Result<Vec<ScimTokenOutput>, AppError> {
    let acting = acting_in(store, org).await?;
    let records = store::tokens::list_for_org(store, TokenKind::Scim, &acting.org_id).await?;
    Ok(records
        .into_iter()
        .map(|record| ScimTokenOutput::of(record, None))
        .collect())
}

pub async fn revoke_scim(
    store: &Store,
    now: DateTime<Utc>,
    org: &str,
    id: &str,
) -> Result<(), AppError> {
    let acting = acting_in(store, org).await?;
    let id = TokenId::parse(id).map_err(|_| AppError::NotFound("token"))?;
    app::tokens::revoke_scim(store, now, &acting, &id).await
}

/// A personal token as the CLI prints it; `token` (the secret) only on
/// create.
#[derive(Debug, Serialize)]
pub struct PersonalTokenOutput {
    pub id: String,
    pub account_id: String,
    pub org_id: String,
    pub name: String,
    pub display_prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl PersonalTokenOutput {
    fn of(record: TokenRecord, secret: Option<String>) -> PersonalTokenOutput {
        PersonalTokenOutput {
            id: record.id.to_string(),
            account_id: record
                .account_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            org_id: record.org_id.map(|id| id.to_string()).unwrap_or_default(),
            name: record.name.unwrap_or_default(),
            display_prefix: record.display_prefix,
            created_at: record.created_at,
            expires_at: record.expires_at,
            last_used_at: record.last_used_at,
            token: secret,
        }
    }

    /// One line for people: what tells tokens apart, never the secret.
    pub fn line(&self) -> String {
        format!(
            "{}  {}  {}  org {}{}",
            self.id,
            self.display_prefix,
            self.name,
            self.org_id,
            self.expires_at
                .map(|at| format!("  expires {}", at.to_rfc3339()))
                .unwrap_or_default(),
        )
    }
}

/// The account of an email, which must exist.
async fn account_of(store: &Store, email: &str) -> Result<AccountId, AppError> {
    let email = Email::parse(email).map_err(|err| AppError::invalid("--account", err))?;
    let credentials = store::accounts::find_by_email(store, None, &email)
        .await?
        .ok_or(AppError::NotFound("account"))?;
    Ok(credentials.account.id)
}

pub async fn create_personal(
    store: &Store,
    now: DateTime<Utc>,
    account: &str,
    org: &str,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<PersonalTokenOutput, AppError> {
    let account_id = account_of(store, account).await?;
    let acting = acting_in(store, org).await?;
    let name = app::tokens::checked_name(name)?;
    let expires_at = app::tokens::checked_expiry(expires_at, now)?;
    let (record, issued) =
        app::tokens::issue_personal_for(store, now, &acting, &account_id, name, expires_at).await?;
    Ok(PersonalTokenOutput::of(
        record,
        Some(issued.secret.into_exposed()),
    ))
}

pub async fn list_personal(
    store: &Store,
    account: &str,
    org: Option<&str>,
) -> Result<Vec<PersonalTokenOutput>, AppError> {
    let account_id = account_of(store, account).await?;
    let org_id = org
        .map(|raw| {
            OrgId::parse(raw).map_err(|_| AppError::invalid("--org", "not an organization id"))
        })
        .transpose()?;
    let records =
        store::tokens::list_for_account(store, TokenKind::Personal, &account_id, org_id.as_ref())
            .await?;
    Ok(records
        .into_iter()
        .map(|record| PersonalTokenOutput::of(record, None))
        .collect())
}

pub async fn revoke_personal(
    store: &Store,
    now: DateTime<Utc>,
    account: &str,
    id: &str,
) -> Result<(), AppError> {
    let account_id = account_of(store, account).await?;
    let id = TokenId::parse(id).map_err(|_| AppError::NotFound("token"))?;
    app::tokens::revoke_personal_of(store, now, &account_id, &id).await
}
