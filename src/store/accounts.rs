use bson::doc;
use mongodb::error::Error as MongoError;
use mongodb::{ClientSession, Collection};

use super::docs::{AccountDoc, MfaDoc, bson_time};
use super::{Inserted, Store, index, inserted, with_session};
use crate::auth::password::PasswordHashString;
use crate::domain::mfa::MfaState;
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

/// An account with its password hash and second factor, for sign-in.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub account: Account,
    pub password_hash: Option<PasswordHashString>,
    pub mfa: Option<MfaState>,
}

impl Credentials {
    /// The second factor, if it is on (not merely being enrolled).
    pub fn enabled_mfa(&self) -> Option<&MfaState> {
        self.mfa.as_ref().filter(|mfa| mfa.is_enabled())
    }
}

impl From<AccountDoc> for Credentials {
    fn from(doc: AccountDoc) -> Self {
        Credentials {
            account: doc.to_account(),
            password_hash: doc.password_hash.map(PasswordHashString::from_stored),
            mfa: doc.mfa.as_ref().map(MfaDoc::to_state),
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

/// Starts (or restarts) an enrolment with a sealed secret; false when the
/// account is gone or its second factor is already on.
pub async fn begin_mfa(
    store: &Store,
    session: &mut ClientSession,
    id: &AccountId,
    sealed_secret: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, MongoError> {
    let mfa = MfaDoc {
        secret: sealed_secret.to_owned(),
        started_at: bson_time(now),
        enabled_at: None,
        last_step: None,
        recovery_codes: Vec::new(),
        failures: 0,
        locked_until: None,
    };
    let mfa = bson::to_bson(&mfa).map_err(MongoError::custom)?;
    let result = collection(store)
        .update_one(
            doc! { "_id": id.as_str(), "mfa.enabled_at": null },
            doc! { "$set": { "mfa": mfa, "updated_at": bson_time(now) } },
        )
        .session(session)
        .await?;
    Ok(result.matched_count == 1)
}

/// Turns on the enrolment sealed as `sealed_secret`, spending `step`;
/// false if the enrolment changed or was confirmed meanwhile.
pub async fn enable_mfa(
    store: &Store,
    session: &mut ClientSession,
    id: &AccountId,
    sealed_secret: &str,
    step: u64,
    recovery_code_hashes: &[String],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, MongoError> {
    let result = collection(store)
        .update_one(
            doc! { "_id": id.as_str(), "mfa.secret": sealed_secret, "mfa.enabled_at": null },
            doc! { "$set": {
                "mfa.enabled_at": bson_time(now),
                "mfa.last_step": step_i64(step),
                "mfa.recovery_codes": recovery_code_hashes,
                "mfa.failures": 0,
                "mfa.locked_until": null,
                "updated_at": bson_time(now),
            } },
        )
        .session(session)
        .await?;
    Ok(result.matched_count == 1)
}

fn step_i64(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

/// Spends the code of time step `step`: false if it or a later one was
/// spent already (a replay), or the second factor is no longer on.
pub async fn spend_totp_step(
    store: &Store,
    session: &mut ClientSession,
    id: &AccountId,
    step: u64,
) -> Result<bool, MongoError> {
    let step = step_i64(step);
    let result = collection(store)
        .update_one(
            doc! {
                "_id": id.as_str(),
                "mfa.enabled_at": { "$ne": null },
                "$or": [{ "mfa.last_step": null }, { "mfa.last_step": { "$lt": step } }],
            },
            doc! { "$set": { "mfa.last_step": step, "mfa.failures": 0 } },
        )
        .session(session)
        .await?;
    Ok(result.matched_count == 1)
}

/// Spends a recovery code by its hash: false if it was spent already.
pub async fn spend_recovery_code(
    store: &Store,
    session: &mut ClientSession,
    id: &AccountId,
    code_hash: &str,
) -> Result<bool, MongoError> {
    let result = collection(store)
        .update_one(
            doc! {
                "_id": id.as_str(),
                "mfa.enabled_at": { "$ne": null },
                "mfa.recovery_codes": code_hash,
            },
            doc! {
                "$pull": { "mfa.recovery_codes": code_hash },
                "$set": { "mfa.failures": 0 },
            },
        )
        .session(session)
        .await?;
    Ok(result.modified_count == 1)
}

/// Replaces every recovery code with `recovery_code_hashes`: false if the
/// second factor is no longer on (turned off by a racing request).
pub async fn replace_recovery_codes(
    store: &Store,
    session: &mut ClientSession,
    id: &AccountId,
    recovery_code_hashes: &[String],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, MongoError> {
    let result = collection(store)
        .update_one(
            doc! { "_id": id.as_str(), "mfa.enabled_at": { "$ne": null } },
            doc! { "$set": {
                "mfa.recovery_codes": recovery_code_hashes,
                "updated_at": bson_time(now),
            } },
        )
        .session(session)
        .await?;
    Ok(result.matched_count == 1)
}

/// Counts a wrong code; returns the failures in a row it makes.
pub async fn count_mfa_failure(
    store: &Store,
    session: &mut ClientSession,
    id: &AccountId,
) -> Result<u32, MongoError> {
    let updated = collection(store)
        .find_one_and_update(
            doc! { "_id": id.as_str(), "mfa": { "$ne": null } },
            doc! { "$inc": { "mfa.failures": 1 } },
        )
        .return_document(mongodb::options::ReturnDocument::After)
        .session(session)
        .await?;
    Ok(updated
        .and_then(|doc| doc.mfa)
        .map_or(0, |mfa| mfa.failures))
}

/// Locks the second factor until `until`, starting a new count.
pub async fn lock_mfa(
    store: &Store,
    session: &mut ClientSession,
    id: &AccountId,
    until: chrono::DateTime<chrono::Utc>,
) -> Result<(), MongoError> {
    collection(store)
        .update_one(
            doc! { "_id": id.as_str(), "mfa": { "$ne": null } },
            doc! { "$set": { "mfa.locked_until": bson_time(until), "mfa.failures": 0 } },
        )
        .session(session)
        .await?;
    Ok(())
}

/// Turns the second factor off; false if it was not on.
pub async fn disable_mfa(
    store: &Store,
    session: &mut ClientSession,
    id: &AccountId,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, MongoError> {
    let result = collection(store)
        .update_one(
            doc! { "_id": id.as_str(), "mfa.enabled_at": { "$ne": null } },
            doc! { "$unset": { "mfa": "" }, "$set": { "updated_at": bson_time(now) } },
        )
        .session(session)
        .await?;
    Ok(result.matched_count == 1)
}

/// Whether the account's second factor is on (an organization requiring
/// one asks on each request).
pub async fn has_mfa(
    store: &Store,
    session: Option<&mut ClientSession>,
    id: &AccountId,
) -> Result<bool, MongoError> {
    let found = with_session!(
        store
            .database()
            .collection::<bson::Document>(COLLECTION)
            .find_one(doc! { "_id": id.as_str(), "mfa.enabled_at": { "$ne": null } })
            .projection(doc! { "_id": 1 }),
        session
    )?;
    Ok(found.is_some())
}

/// Whether any account has its second factor on: such a database needs
/// `auth.mfa_key` to serve.
pub async fn any_with_mfa(store: &Store) -> Result<bool, MongoError> {
    let found = store
        .database()
        .collection::<bson::Document>(COLLECTION)
        .find_one(doc! { "mfa.enabled_at": { "$ne": null } })
        .projection(doc! { "_id": 1 })
        .await?;
    Ok(found.is_some())
}

/// Deletes the account's document; false if it was gone already.
pub async fn delete(
    store: &Store,
    session: &mut ClientSession,
    id: &AccountId,
) -> Result<bool, MongoError> {
    let result = collection(store)
        .delete_one(doc! { "_id": id.as_str() })
        .session(session)
        .await?;
    Ok(result.deleted_count == 1)
}
