//! Authentication: passwords, bearer secrets, and the principal a request
//! acts as.

pub mod mfa_key;
pub mod password;
pub mod throttle;
pub mod token;
pub mod totp;

use chrono::{DateTime, Utc};
use mongodb::error::Error as MongoError;

use crate::domain::member::{effective_status, may_authenticate};
use crate::domain::{AccountId, Actor, OrgId, TokenId};
use crate::store::token_cache::{CachedMember, CachedToken};
use crate::store::{self, Store};
use token::{TokenHash, TokenKind, TokenRecord, is_well_formed};

/// Who a request acts as, once its bearer secret has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A signed-in account; may act in any organization it is an active
    /// member of.
    Session {
        account_id: AccountId,
        session_id: TokenId,
    },
    /// A personal API token: one account, one organization.
    PersonalToken {
        account_id: AccountId,
        org_id: OrgId,
        token_id: TokenId,
    },
    /// An identity provider, bound to one organization's SCIM endpoint.
    Scim {
        org_id: OrgId,
        token_id: TokenId,
        /// The token's name, so the audit log names the provider.
        name: Option<String>,
        /// Given by an owner: the provider may add and remove owners.
        allow_owner_changes: bool,
    },
}

impl Principal {
    pub fn account_id(&self) -> Option<&AccountId> {
        match self {
            Principal::Session { account_id, .. } | Principal::PersonalToken { account_id, .. } => {
                Some(account_id)
            }
            Principal::Scim { .. } => None,
        }
    }

    /// The audit log's name for this principal.
    pub fn actor(&self) -> Actor {
        match self {
            Principal::Session { account_id, .. } => Actor::Account(account_id.clone()),
            Principal::PersonalToken {
                account_id,
                token_id,
                ..
            } => Actor::ApiToken {
                account_id: account_id.clone(),
                token_id: token_id.clone(),
            },
            Principal::Scim { token_id, .. } => Actor::ScimToken(token_id.clone()),
        }
    }
}

/// Why a request is not authenticated. The message is safe to show.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("the bearer token is not valid")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the member is not active in this organization")]
    MemberNotActive,
    #[error(transparent)]
    Store(#[from] MongoError),
}

impl AuthError {
    /// A short name for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Invalid => "invalid",
            AuthError::Expired => "expired",
            AuthError::MemberNotActive => "member_not_active",
            AuthError::Store(_) => "store",
        }
    }
}

/// The secret of an `Authorization: Bearer ...` header value.
pub fn bearer_secret(header: Option<&str>) -> Result<&str, AuthError> {
    let header = header.ok_or(AuthError::Missing)?.trim();
    let (scheme, secret) = header.split_once(' ').ok_or(AuthError::Invalid)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Invalid);
    }
    Ok(secret.trim())
}

/// Resolves a presented secret to its principal. Personal tokens also
/// require the member to be allowed to act in the token's organization, so
/// that deactivating or suspending a member stops their tokens at once.
///
/// The token (and a personal token's membership) comes from the store's
/// token cache when it holds it, which forgets it the moment either
/// changes (`store::token_cache`); expiry and a suspension's end are
/// weighed at `now` either way.
pub async fn authenticate(
    store: &Store,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<Principal, AuthError> {
    let authenticated = resolve(store, secret, now).await;
    if let Err(err) = &authenticated {
        metrics::counter!("muster_auth_failures_total", "kind" => err.kind()).increment(1);
    }
    authenticated
}

async fn resolve(store: &Store, secret: &str, now: DateTime<Utc>) -> Result<Principal, AuthError> {
    if !is_well_formed(secret) {
        return Err(AuthError::Invalid);
    }
    let kind = TokenKind::of(secret).ok_or(AuthError::Invalid)?;
    let hash = TokenHash::of(secret);
    let token = match store.token_cache().get(hash.as_str()) {
        Some(token) => token,
        None => {
            let read_at = std::time::Instant::now();
            let token = read_token(store, kind, &hash).await?;
            store
                .token_cache()
                .put(hash.as_str(), token.clone(), read_at);
            token
        }
    };
    let record = &token.record;
    if record.is_expired(now) {
        return Err(AuthError::Expired);
    }
    let principal = principal_of(record).ok_or(AuthError::Invalid)?;
    if let Some(member) = &token.member
        && !may_authenticate(effective_status(member.status, member.suspended_until, now))
    {
        return Err(AuthError::MemberNotActive);
    }
    // Use is recorded at most once a minute: most requests need no write.
    if record
        .last_used_at
        .is_none_or(|at| now - at >= store::tokens::TOUCH_INTERVAL)
    {
        store::tokens::touch(store, kind, &record.id, now).await?;
        store.token_cache().touched(hash.as_str(), now);
    }
    Ok(principal)
}

/// A token from the database, with a personal token's membership.
async fn read_token(
    store: &Store,
    kind: TokenKind,
    hash: &TokenHash,
) -> Result<CachedToken, AuthError> {
    let record = store::tokens::find_by_hash(store, kind, hash)
        .await?
        .ok_or(AuthError::Invalid)?;
    let member = match (kind, &record.account_id, &record.org_id) {
        (TokenKind::Personal, Some(account_id), Some(org_id)) => {
            let member = store::members::find_by_account(store, None, org_id, account_id)
                .await?
                .ok_or(AuthError::Invalid)?;
            Some(CachedMember {
                id: member.id,
                status: member.status,
                suspended_until: member.suspended_until,
            })
        }
        _ => None,
    };
    Ok(CachedToken { record, member })
}

fn principal_of(record: &TokenRecord) -> Option<Principal> {
    let id = record.id.clone();
    Some(match record.kind {
        TokenKind::Session => Principal::Session {
            account_id: record.account_id.clone()?,
            session_id: id,
        },
        TokenKind::Personal => Principal::PersonalToken {
            account_id: record.account_id.clone()?,
            org_id: record.org_id.clone()?,
            token_id: id,
        },
        TokenKind::Scim => Principal::Scim {
            org_id: record.org_id.clone()?,
            token_id: id,
            name: record.name.clone(),
            allow_owner_changes: record.allow_owner_changes,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_parsing() {
        assert!(matches!(bearer_secret(None), Err(AuthError::Missing)));
        assert!(matches!(
            bearer_secret(Some("Basic abc")),
            Err(AuthError::Invalid)
        ));
        assert!(matches!(
            bearer_secret(Some("Bearer")),
            Err(AuthError::Invalid)
        ));
        assert_eq!(
            bearer_secret(Some("Bearer mst_pat_x")).ok(),
            Some("mst_pat_x")
        );
        assert_eq!(
            bearer_secret(Some("bearer  mst_pat_x ")).ok(),
            Some("mst_pat_x")
        );
    }
}
