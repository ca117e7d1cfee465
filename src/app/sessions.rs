//! Sessions of an account that proved who it is: by its password
//! (`POST /auth/login`) or by accepting an invitation on the page. Each
//! start and end is audited on the account.

use chrono::{DateTime, Duration, Utc};

use crate::auth::token::{IssuedToken, TokenKind, TokenRecord};
use crate::domain::{AccountId, Actor, AuditEvent, RequestOrigin, TokenId};
use crate::error::AppError;
use crate::in_transaction;
use crate::store::{self, Inserted, Store};

/// Starts a session that lasts `ttl_hours` (`auth.session_ttl_hours`):
/// its secret (shown once) and when it expires. Audited as
/// `account.signed_in`.
pub async fn start_session(
    store: &Store,
    now: DateTime<Utc>,
    ttl_hours: u32,
    account_id: &AccountId,
    origin: RequestOrigin,
) -> Result<(String, DateTime<Utc>), AppError> {
    let expires_at = now + Duration::hours(i64::from(ttl_hours));
    let issued = IssuedToken::generate(TokenKind::Session);
    let record = TokenRecord::new(
        &issued,
        None,
        Some(account_id.clone()),
        None,
        now,
        Some(expires_at),
    );
    let signed_in = AuditEvent::of_account(
        Actor::Account(account_id.clone()),
        account_id,
        now,
        "account.signed_in",
        Some(serde_json::json!({ "session_id": record.id.as_str(), "expires_at": expires_at })),
        origin,
    );
    in_transaction!(store, |session| -> Result<(), AppError> {
        if store::tokens::insert(store, Some(&mut *session), &record).await?
            == Inserted::AlreadyExists
        {
            return Err(AppError::internal(
                "a fresh session token collided with a stored one",
            ));
        }
        store::audit::record(store, session, &signed_in).await?;
        Ok(())
    })?;
    Ok((issued.secret.into_exposed(), expires_at))
}

/// Ends one of an account's sessions. Audited as `account.signed_out`.
pub async fn end_session(
    store: &Store,
    now: DateTime<Utc>,
    account_id: &AccountId,
    session_id: &TokenId,
    origin: RequestOrigin,
) -> Result<(), AppError> {
    let event = AuditEvent::of_account(
        Actor::Account(account_id.clone()),
        account_id,
        now,
        "account.signed_out",
        Some(serde_json::json!({ "session_id": session_id.as_str() })),
        origin,
    );
    let owner = store::tokens::TokenOwner::Account {
        account_id,
        org_id: None,
    };
    in_transaction!(store, |session| -> Result<(), AppError> {
        store::tokens::delete_owned(store, session, TokenKind::Session, session_id, owner).await?;
        store::audit::record(store, session, &event).await?;
        Ok(())
    })
}
