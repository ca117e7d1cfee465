//! Tokens: an organization's SCIM tokens for identity providers, and the
//! personal tokens a member makes to act as themselves in one
//! organization.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Acting;
use super::accounts::AccountActing;
use crate::auth::token::{IssuedToken, TokenKind, TokenRecord};
use crate::domain::member::may_authenticate;
use crate::domain::policy::ensure_may_assign_role;
use crate::domain::role::effective_role;
use crate::domain::{AccountId, Actor, Permission, Role, TokenId};
use crate::error::AppError;
use crate::in_transaction;
use crate::store::tokens::TokenOwner;
use crate::store::{self, Inserted, Store};

/// What the audit log keeps of a token: never its secret or hash.
pub fn snapshot(record: &TokenRecord) -> Value {
    json!({
        "name": record.name,
        "display_prefix": record.display_prefix,
        "account_id": record.account_id.as_ref().map(ToString::to_string),
        "expires_at": record.expires_at.map(|at| at.to_rfc3339()),
        "allow_owner_changes": record.allow_owner_changes,
    })
}

/// The longest token name, in characters.
pub const MAX_TOKEN_NAME_CHARS: usize = 100;

/// A token's name as given, trimmed: 1 to 100 characters, no control
/// characters.
pub fn checked_name(raw: &str) -> Result<String, AppError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(AppError::invalid(
            "name",
            "the token name must not be empty",
        ));
    }
    if name.chars().count() > MAX_TOKEN_NAME_CHARS {
        return Err(AppError::invalid(
            "name",
            format!("the token name must be at most {MAX_TOKEN_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "name",
            "the token name must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// An expiry must lie in the future; none means the token does not expire.
pub fn checked_expiry(
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, AppError> {
    match expires_at {
        Some(at) if at <= now => Err(AppError::invalid(
            "expires_at",
            "`expires_at` must be in the future; omit it for a token that does not expire",
        )),
        other => Ok(other.map(crate::domain::clock::stored_precision)),
    }
}

pub fn collided() -> AppError {
    AppError::internal("a fresh token collided with a stored one")
}

/// Stores a new token with its `action` event on the target `kind`.
async fn insert_issued(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    record: &TokenRecord,
    (action, kind): (&'static str, &'static str),
) -> Result<(), AppError> {
    in_transaction!(store, |session| -> Result<(), AppError> {
        if store::tokens::insert(store, Some(&mut *session), record).await?
            == Inserted::AlreadyExists
        {
            return Err(collided());
        }
        let event = acting.event(
            now,
            action,
            (kind, record.id.as_str()),
            None,
            Some(snapshot(record)),
        );
        store::audit::record(store, session, &event).await?;
        Ok(())
    })
}

/// A new SCIM token. Authority over owners is the owner role's to hand
/// out: only an owner may give it.
pub async fn issue_scim(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    name: String,
    expires_at: Option<DateTime<Utc>>,
    allow_owner_changes: bool,
) -> Result<(TokenRecord, IssuedToken), AppError> {
    acting.require(Permission::ManageIntegrations)?;
    if allow_owner_changes {
        ensure_may_assign_role(acting.role, None, Some(Role::Owner))?;
    }
    let issued = IssuedToken::generate(TokenKind::Scim);
    let record = TokenRecord {
        allow_owner_changes,
        ..TokenRecord::new(
            &issued,
            Some(name),
            None,
            Some(acting.org_id.clone()),
            now,
            expires_at,
        )
    };
    insert_issued(
        store,
        now,
        acting,
        &record,
        ("scim_token.created", "scim_token"),
    )
    .await?;
    Ok((record, issued))
}

/// Revokes a SCIM token: the identity provider using it gets 401 at once.
pub async fn revoke_scim(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    id: &TokenId,
) -> Result<(), AppError> {
    acting.require(Permission::ManageIntegrations)?;
    in_transaction!(store, |session| -> Result<(), AppError> {
        let deleted = store::tokens::delete_owned(
            store,
            session,
            TokenKind::Scim,
            id,
            TokenOwner::Org(&acting.org_id),
        )
        .await?
        .ok_or(AppError::NotFound("token"))?;
        let event = acting.event(
            now,
            "scim_token.deleted",
            ("scim_token", id.as_str()),
            Some(snapshot(&deleted)),
            None,
        );
        store::audit::record(store, session, &event).await?;
        Ok(())
    })
}

/// The account a member acts as; an identity provider has none.
fn acting_account(acting: &Acting) -> Result<&AccountId, AppError> {
    match &acting.actor {
        Actor::Account(account_id) | Actor::ApiToken { account_id, .. } => Ok(account_id),
        Actor::ScimToken(_) | Actor::System => Err(AppError::Forbidden(
            "only a member's own account may have personal tokens".into(),
        )),
    }
}

/// A member's new personal token, which acts as them in the acting
/// organization only (not for viewers).
pub async fn issue_personal(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    name: String,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(TokenRecord, IssuedToken), AppError> {
    acting.require(Permission::CreatePersonalTokens)?;
    let account_id = acting_account(acting)?.clone();
    insert_personal(store, now, acting, &account_id, name, expires_at).await
}

/// An operator issues a personal token for an account (`muster token
/// personal create`), acting as Muster itself in the organization: the
/// token the account could issue itself, under the same rules (an active
/// member whose effective role may have tokens).
pub async fn issue_personal_for(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    account_id: &AccountId,
    name: String,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(TokenRecord, IssuedToken), AppError> {
    let member = store::members::find_by_account(store, None, &acting.org_id, account_id)
        .await?
        .ok_or(AppError::NotFound("member"))?;
    let status = member.effective_status(now);
    if !may_authenticate(status) {
        return Err(AppError::Forbidden(format!(
            "the account's membership is {status}: its tokens would not work"
        )));
    }
    let mapped = store::groups::mapped_roles_of(store, &[member.id.as_str()]).await?;
    let group_roles = mapped.get(member.id.as_str()).into_iter().flatten();
    let role = effective_role(member.role, group_roles.map(|group| group.role));
    super::ensure_allowed(role, Permission::CreatePersonalTokens)?;
    insert_personal(store, now, acting, account_id, name, expires_at).await
}

async fn insert_personal(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    account_id: &AccountId,
    name: String,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(TokenRecord, IssuedToken), AppError> {
    let issued = IssuedToken::generate(TokenKind::Personal);
    let record = TokenRecord::new(
        &issued,
        Some(name),
        Some(account_id.clone()),
        Some(acting.org_id.clone()),
        now,
        expires_at,
    );
    insert_issued(
        store,
        now,
        acting,
        &record,
        ("personal_token.created", "personal_token"),
    )
    .await?;
    Ok((record, issued))
}

/// An account revokes one of its personal tokens, in whichever
/// organization; another account's token is never found.
pub async fn revoke_personal(
    store: &Store,
    now: DateTime<Utc>,
    caller: &AccountActing,
    id: &TokenId,
) -> Result<(), AppError> {
    delete_personal(store, now, caller, id).await
}

/// An operator revokes an account's personal token (`muster token
/// personal revoke`), audited as Muster itself.
pub async fn revoke_personal_of(
    store: &Store,
    now: DateTime<Utc>,
    account_id: &AccountId,
    id: &TokenId,
) -> Result<(), AppError> {
    let operator = AccountActing {
        account_id: account_id.clone(),
        actor: Actor::System,
        origin: Default::default(),
    };
    delete_personal(store, now, &operator, id).await
}

/// Deletes one of `owner.account_id`'s personal tokens; its organization's
/// log records it, as done by `owner.actor`.
async fn delete_personal(
    store: &Store,
    now: DateTime<Utc>,
    owner: &AccountActing,
    id: &TokenId,
) -> Result<(), AppError> {
    let owned_by = TokenOwner::Account {
        account_id: &owner.account_id,
        org_id: None,
    };
    in_transaction!(store, |session| -> Result<(), AppError> {
        let deleted =
            store::tokens::delete_owned(store, session, TokenKind::Personal, id, owned_by)
                .await?
                .ok_or(AppError::NotFound("token"))?;
        // Personal tokens always belong to an organization; its log
        // records the deletion, whatever the account's role there now.
        if let Some(org_id) = &deleted.org_id {
            let event = owner.event_in(
                org_id,
                now,
                "personal_token.deleted",
                ("personal_token", id.as_str()),
                Some(snapshot(&deleted)),
                None,
            );
            store::audit::record(store, session, &event).await?;
        }
        Ok(())
    })
}
