//! The password step of a sign-in with two-factor authentication: a
//! short-lived challenge the code completes. Stored as the SHA-256 of its
//! secret, deleted by MongoDB once expired and by the sign-in once used.

use bson::{DateTime as BsonDateTime, doc};
use chrono::{DateTime, Utc};
use mongodb::error::Error as MongoError;
use mongodb::options::IndexOptions;
use mongodb::{ClientSession, Collection, IndexModel};
use serde::{Deserialize, Serialize};

use super::docs::bson_time;
use super::{Store, index};
use crate::auth::token::TokenHash;
use crate::domain::AccountId;

const COLLECTION: &str = "mfa_challenges";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChallengeDoc {
    #[serde(rename = "_id")]
    hash: String,
    account_id: String,
    created_at: BsonDateTime,
    expires_at: BsonDateTime,
}

fn collection(store: &Store) -> Collection<ChallengeDoc> {
    store.database().collection(COLLECTION)
}

pub(super) async fn create_indexes(store: &Store) -> Result<(), MongoError> {
    let challenges = collection(store);
    challenges
        .create_index(index(doc! { "account_id": 1 }, false))
        .await?;
    challenges
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
    hash: &TokenHash,
    account_id: &AccountId,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), MongoError> {
    collection(store)
        .insert_one(ChallengeDoc {
            hash: hash.as_str().to_owned(),
            account_id: account_id.to_string(),
            created_at: bson_time(now),
            expires_at: bson_time(expires_at),
        })
        .await?;
    Ok(())
}

/// The account a live challenge is for. MongoDB's expiry runs once a
/// minute, so expiry is checked here too.
pub async fn account_of(
    store: &Store,
    hash: &TokenHash,
    now: DateTime<Utc>,
) -> Result<Option<AccountId>, MongoError> {
    let found = collection(store)
        .find_one(doc! { "_id": hash.as_str(), "expires_at": { "$gt": bson_time(now) } })
        .await?;
    Ok(found.map(|doc| AccountId::from_stored(doc.account_id)))
}

/// Uses the challenge up: false if it was used meanwhile.
pub async fn spend(
    store: &Store,
    session: &mut ClientSession,
    hash: &TokenHash,
) -> Result<bool, MongoError> {
    let result = collection(store)
        .delete_one(doc! { "_id": hash.as_str() })
        .session(session)
        .await?;
    Ok(result.deleted_count == 1)
}

/// Every challenge of an account (it is being deleted).
pub async fn delete_for_account(
    store: &Store,
    session: &mut ClientSession,
    account_id: &AccountId,
) -> Result<(), MongoError> {
    collection(store)
        .delete_many(doc! { "account_id": account_id.as_str() })
        .session(session)
        .await?;
    Ok(())
}
