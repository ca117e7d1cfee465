//! Personal API tokens, SCIM tokens and sessions: one document shape, one
//! collection per kind, looked up by the SHA-256 of the secret.

use bson::{DateTime as BsonDateTime, doc};
use chrono::{DateTime, Duration, Utc};
use futures::TryStreamExt;
use mongodb::error::Error as MongoError;
use mongodb::options::IndexOptions;
use mongodb::{ClientSession, Collection, IndexModel};
use serde::{Deserialize, Serialize};

use super::docs::bson_time;
use super::token_cache::CacheKey;
use super::{Inserted, Store, index, inserted, with_session};
use crate::auth::token::{TokenHash, TokenKind, TokenRecord};
use crate::domain::{AccountId, OrgId, TokenId};

fn collection_name(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Personal => "api_tokens",
        TokenKind::Scim => "scim_tokens",
        TokenKind::Session => "sessions",
    }
}

fn collection(store: &Store, kind: TokenKind) -> Collection<TokenDoc> {
    store.database().collection(collection_name(kind))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenDoc {
    #[serde(rename = "_id")]
    id: String,
    hash: String,
    display_prefix: String,
    name: Option<String>,
    account_id: Option<String>,
    org_id: Option<String>,
    created_at: BsonDateTime,
    expires_at: Option<BsonDateTime>,
    last_used_at: Option<BsonDateTime>,
    /// Absent on tokens made before SCIM tokens could be given authority
    /// over owners: they have none.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    allow_owner_changes: bool,
    /// Sessions only, and absent on those opened before they were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
}

impl TokenDoc {
    fn new(record: &TokenRecord) -> TokenDoc {
        TokenDoc {
            id: record.id.to_string(),
            hash: record.hash.as_str().to_owned(),
            display_prefix: record.display_prefix.clone(),
            name: record.name.clone(),
            account_id: record.account_id.as_ref().map(ToString::to_string),
            org_id: record.org_id.as_ref().map(ToString::to_string),
            created_at: bson_time(record.created_at),
            expires_at: record.expires_at.map(bson_time),
            last_used_at: record.last_used_at.map(bson_time),
            allow_owner_changes: record.allow_owner_changes,
            ip: record.ip.clone(),
            user_agent: record.user_agent.clone(),
        }
    }

    fn into_record(self, kind: TokenKind) -> TokenRecord {
        TokenRecord {
            id: TokenId::from_stored(self.id),
            kind,
            hash: TokenHash::from_stored(self.hash),
            display_prefix: self.display_prefix,
            name: self.name,
            account_id: self.account_id.map(AccountId::from_stored),
            org_id: self.org_id.map(OrgId::from_stored),
            created_at: self.created_at.to_chrono(),
            expires_at: self.expires_at.map(BsonDateTime::to_chrono),
            last_used_at: self.last_used_at.map(BsonDateTime::to_chrono),
            allow_owner_changes: self.allow_owner_changes,
            ip: self.ip,
            user_agent: self.user_agent,
        }
    }
}

pub(super) async fn create_indexes(store: &Store) -> Result<(), MongoError> {
    for kind in TokenKind::ALL {
        let tokens = collection(store, kind);
        tokens.create_index(index(doc! { "hash": 1 }, true)).await?;
        tokens
            .create_index(index(doc! { "org_id": 1, "account_id": 1 }, false))
            .await?;
        // An account's tokens across organizations (`GET /me/tokens`), and
        // its sessions when its password changes.
        tokens
            .create_index(index(doc! { "account_id": 1, "_id": 1 }, false))
            .await?;
    }
    // Expired sessions are useless; MongoDB deletes them. Tokens with an
    // expiry stay listable (as expired) until their owner deletes them.
    collection(store, TokenKind::Session)
        .create_index(
            IndexModel::builder()
                .keys(doc! { "expires_at": 1 })
                .options(
                    IndexOptions::builder()
                        .expire_after(std::time::Duration::ZERO)
                        .build(),
                )
                .build(),
        )
        .await?;
    Ok(())
}

pub async fn insert(
    store: &Store,
    session: Option<&mut ClientSession>,
    record: &TokenRecord,
) -> Result<Inserted, MongoError> {
    inserted(with_session!(
        collection(store, record.kind).insert_one(TokenDoc::new(record)),
        session
    ))
}

pub async fn find_by_hash(
    store: &Store,
    kind: TokenKind,
    hash: &TokenHash,
) -> Result<Option<TokenRecord>, MongoError> {
    let found = collection(store, kind)
        .find_one(doc! { "hash": hash.as_str() })
        .await?;
    Ok(found
        .map(|doc| doc.into_record(kind))
        .filter(|record| record.hash.matches(hash)))
}

/// How stale `last_used_at` may get.
pub const TOUCH_INTERVAL: Duration = Duration::minutes(1);

/// Records use, at most once a minute per token, so that authenticating
/// is not a write per request.
pub async fn touch(
    store: &Store,
    kind: TokenKind,
    id: &TokenId,
    now: DateTime<Utc>,
) -> Result<(), MongoError> {
    let stale = bson_time(now - TOUCH_INTERVAL);
    collection(store, kind)
        .update_one(
            doc! {
                "_id": id.as_str(),
                "$or": [ { "last_used_at": null }, { "last_used_at": { "$lt": stale } } ],
            },
            doc! { "$set": { "last_used_at": bson_time(now) } },
        )
        .await?;
    Ok(())
}

pub async fn list_for_org(
    store: &Store,
    kind: TokenKind,
    org_id: &OrgId,
) -> Result<Vec<TokenRecord>, MongoError> {
    let docs: Vec<TokenDoc> = collection(store, kind)
        .find(doc! { "org_id": org_id.as_str() })
        .sort(doc! { "_id": 1 })
        .await?
        .try_collect()
        .await?;
    Ok(docs.into_iter().map(|doc| doc.into_record(kind)).collect())
}

/// An account's tokens of one kind, oldest first; only those of `org_id`
/// when given.
pub async fn list_for_account(
    store: &Store,
    kind: TokenKind,
    account_id: &AccountId,
    org_id: Option<&OrgId>,
) -> Result<Vec<TokenRecord>, MongoError> {
    let mut filter = doc! { "account_id": account_id.as_str() };
    if let Some(org_id) = org_id {
        filter.insert("org_id", org_id.as_str());
    }
    let docs: Vec<TokenDoc> = collection(store, kind)
        .find(filter)
        .sort(doc! { "_id": 1 })
        .await?
        .try_collect()
        .await?;
    Ok(docs.into_iter().map(|doc| doc.into_record(kind)).collect())
}

/// Whose token a deletion may remove: an id alone never suffices, so that
/// nobody deletes a token that is not theirs by guessing its id.
#[derive(Debug, Clone, Copy)]
pub enum TokenOwner<'a> {
    /// An account's token, optionally only in one organization (a caller
    /// that is itself a personal token sees no other organization).
    Account {
        account_id: &'a AccountId,
        org_id: Option<&'a OrgId>,
    },
    /// An organization's token (SCIM tokens).
    Org(&'a OrgId),
}

/// Deletes the token `id` if `owner` owns it, in the caller's transaction;
/// returns what was deleted, `None` when there was no such token.
pub async fn delete_owned(
    store: &Store,
    session: &mut ClientSession,
    kind: TokenKind,
    id: &TokenId,
    owner: TokenOwner<'_>,
) -> Result<Option<TokenRecord>, MongoError> {
    store.token_cache().forget(CacheKey::Token(id.to_string()));
    let mut filter = doc! { "_id": id.as_str() };
    match owner {
        TokenOwner::Account { account_id, org_id } => {
            filter.insert("account_id", account_id.as_str());
            if let Some(org_id) = org_id {
                filter.insert("org_id", org_id.as_str());
            }
        }
        TokenOwner::Org(org_id) => {
            filter.insert("org_id", org_id.as_str());
        }
    }
    let deleted = collection(store, kind)
        .find_one_and_delete(filter)
        .session(session)
        .await?;
    Ok(deleted.map(|doc| doc.into_record(kind)))
}

/// Ends every session of an account except `keep` (the one making the
/// request): what a password change does, so that whoever knew the old
/// password is signed out.
pub async fn delete_sessions_except(
    store: &Store,
    session: &mut ClientSession,
    account_id: &AccountId,
    keep: Option<&TokenId>,
) -> Result<u64, MongoError> {
    store
        .token_cache()
        .forget(CacheKey::Account(account_id.to_string()));
    let mut filter = doc! { "account_id": account_id.as_str() };
    if let Some(keep) = keep {
        filter.insert("_id", doc! { "$ne": keep.as_str() });
    }
    let result = collection(store, TokenKind::Session)
        .delete_many(filter)
        .session(session)
        .await?;
    Ok(result.deleted_count)
}

pub(super) async fn delete_for_org(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
) -> Result<(), MongoError> {
    store
        .token_cache()
        .forget(CacheKey::Org(org_id.to_string()));
    for kind in [TokenKind::Personal, TokenKind::Scim] {
        collection(store, kind)
            .delete_many(doc! { "org_id": org_id.as_str() })
            .session(&mut *session)
            .await?;
    }
    Ok(())
}

/// Deletes an account's personal tokens for one organization, in the
/// transaction that removes its membership: a token must not outlive the
/// membership it acts for, or it would work again if the person rejoined.
pub async fn delete_personal_for_member(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
    account_id: &AccountId,
) -> Result<u64, MongoError> {
    store
        .token_cache()
        .forget(CacheKey::Account(account_id.to_string()));
    let result = collection(store, TokenKind::Personal)
        .delete_many(doc! { "org_id": org_id.as_str(), "account_id": account_id.as_str() })
        .session(session)
        .await?;
    Ok(result.deleted_count)
}
