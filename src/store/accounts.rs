use bson::doc;
use mongodb::error::Error as MongoError;
use mongodb::{ClientSession, Collection};

use super::docs::AccountDoc;
use super::{Inserted, Store, index, inserted, with_session};
use crate::auth::password::PasswordHashString;
use crate::domain::{Account, AccountId, Email};

const COLLECTION: &str = "accounts";

fn collection(store: &Store) -> Collection<AccountDoc> {
    store.database().collection(COLLECTION)
}

pub(super) async fn create_indexes(store: &Store) -> Result<(), MongoError> {
    collection(store)
        .create_index(index(doc! { "email": 1 }, true))
        .await?;
    Ok(())
}

/// An account with its password hash, for sign-in.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub account: Account,
    pub password_hash: Option<PasswordHashString>,
}

impl From<AccountDoc> for Credentials {
    fn from(doc: AccountDoc) -> Self {
        Credentials {
            account: doc.to_account(),
            password_hash: doc.password_hash.map(PasswordHashString::from_stored),
        }
    }
}

/// `AlreadyExists` when the email has an account.
pub async fn insert(
    store: &Store,
    session: &mut ClientSession,
    account: &Account,
    password_hash: Option<&PasswordHashString>,
) -> Result<Inserted, MongoError> {
    let doc = AccountDoc::new(account, password_hash.map(|h| h.as_str().to_owned()));
    inserted(collection(store).insert_one(doc).session(session).await)
}

pub async fn find_by_email(
    store: &Store,
    session: Option<&mut ClientSession>,
    email: &Email,
) -> Result<Option<Credentials>, MongoError> {
    let found = with_session!(
        collection(store).find_one(doc! { "email": email.as_str() }),
        session
    )?;
    Ok(found.map(Credentials::from))
}

pub async fn get(store: &Store, id: &AccountId) -> Result<Option<Account>, MongoError> {
    let found = collection(store)
        .find_one(doc! { "_id": id.as_str() })
        .await?;
    Ok(found.map(|doc| doc.to_account()))
}

/// An account with its password hash, by id.
pub async fn get_credentials(
    store: &Store,
    session: Option<&mut ClientSession>,
    id: &AccountId,
) -> Result<Option<Credentials>, MongoError> {
    let found = with_session!(
        collection(store).find_one(doc! { "_id": id.as_str() }),
        session
    )?;
    Ok(found.map(Credentials::from))
}

/// What a person changes on their own account (`PATCH /me`).
#[derive(Debug, Clone, Default)]
pub struct SelfUpdate<'a> {
    /// `Some(None)` clears the display name; `None` leaves it.
    pub display_name: Option<Option<&'a str>>,
    /// The new password's hash, and the hash it replaces: the write only
    /// happens if the stored hash is still that one, so two concurrent
    /// changes cannot both pass the check of the current password.
    pub password: Option<(&'a PasswordHashString, &'a PasswordHashString)>,
}

/// Writes a `SelfUpdate`; false when the account is gone or its password
/// changed meanwhile.
pub async fn update_self(
    store: &Store,
    session: &mut ClientSession,
    id: &AccountId,
    update: &SelfUpdate<'_>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, MongoError> {
    let mut filter = doc! { "_id": id.as_str() };
    let mut set = doc! { "updated_at": super::docs::bson_time(now) };
    if let Some(display_name) = update.display_name {
        set.insert("display_name", display_name);
    }
    if let Some((new, replaced)) = update.password {
        filter.insert("password_hash", replaced.as_str());
        set.insert("password_hash", new.as_str());
    }
    let result = collection(store)
        .update_one(filter, doc! { "$set": set })
        .session(session)
        .await?;
    Ok(result.matched_count == 1)
}

/// The accounts of `emails` (normalized), as (email, id) pairs.
pub async fn ids_by_email(
    store: &Store,
    session: &mut ClientSession,
    emails: &[&str],
) -> Result<Vec<(String, AccountId)>, MongoError> {
    let mut found = Vec::new();
    let mut cursor = collection(store)
        .find(doc! { "email": { "$in": emails } })
        .session(&mut *session)
        .await?;
    while let Some(account) = cursor.next(&mut *session).await.transpose()? {
        found.push((
            account.email.clone(),
            AccountId::from_stored(account.id.clone()),
        ));
    }
    Ok(found)
}

/// Records that the account's owner proved control of its email (an
/// invitation accepted through its emailed link).
pub async fn mark_email_verified(
    store: &Store,
    session: &mut ClientSession,
    id: &AccountId,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), MongoError> {
    collection(store)
        .update_one(
            doc! { "_id": id.as_str() },
            doc! { "$set": { "email_verified_at": super::docs::bson_time(now) } },
        )
        .session(session)
        .await?;
    Ok(())
}

/// Sets the password of an account that has none; false if it has one
/// (set meanwhile).
pub async fn set_password_hash(
    store: &Store,
    session: &mut ClientSession,
    id: &AccountId,
    hash: &PasswordHashString,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, MongoError> {
    let result = collection(store)
        .update_one(
            doc! { "_id": id.as_str(), "password_hash": null },
            doc! { "$set": {
                "password_hash": hash.as_str(),
                "updated_at": super::docs::bson_time(now),
            } },
        )
        .session(session)
        .await?;
    Ok(result.matched_count == 1)
}
