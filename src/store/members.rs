use bson::doc;
use futures::TryStreamExt;
use mongodb::error::Error as MongoError;
use mongodb::{ClientSession, Collection};

use super::docs::MemberDoc;
use super::{Inserted, Store, index, inserted, with_session};
use crate::domain::{AccountId, Member, OrgId};

const COLLECTION: &str = "members";

fn collection(store: &Store) -> Collection<MemberDoc> {
    store.database().collection(COLLECTION)
}

pub(super) async fn create_indexes(store: &Store) -> Result<(), MongoError> {
    let members = collection(store);
    members
        .create_index(index(doc! { "org_id": 1, "account_id": 1 }, true))
        .await?;
    members
        .create_index(index(doc! { "account_id": 1 }, false))
        .await?;
    members
        .create_index(index(doc! { "org_id": 1, "role": 1, "status": 1 }, false))
        .await?;
    Ok(())
}

/// `AlreadyExists` when the account is already a member of the organization.
pub async fn insert(
    store: &Store,
    session: &mut ClientSession,
    member: &Member,
) -> Result<Inserted, MongoError> {
    inserted(
        collection(store)
            .insert_one(MemberDoc::from(member))
            .session(session)
            .await,
    )
}

pub async fn find_by_account(
    store: &Store,
    session: Option<&mut ClientSession>,
    org_id: &OrgId,
    account_id: &AccountId,
) -> Result<Option<Member>, MongoError> {
    let found = with_session!(
        collection(store).find_one(doc! {
            "org_id": org_id.as_str(),
            "account_id": account_id.as_str(),
        }),
        session
    )?;
    Ok(found.map(Member::from))
}

/// Every membership of an account, oldest first.
pub async fn list_for_account(
    store: &Store,
    account_id: &AccountId,
) -> Result<Vec<Member>, MongoError> {
    let docs: Vec<MemberDoc> = collection(store)
        .find(doc! { "account_id": account_id.as_str() })
        .sort(doc! { "_id": 1 })
        .await?
        .try_collect()
        .await?;
    Ok(docs.into_iter().map(Member::from).collect())
}

/// Sets a member's status (and the end of a suspension).
pub async fn set_status(
    store: &Store,
    session: Option<&mut ClientSession>,
    org_id: &OrgId,
    member_id: &crate::domain::MemberId,
    status: crate::domain::MemberStatus,
    suspended_until: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, MongoError> {
    let result = with_session!(
        collection(store).update_one(
            doc! { "_id": member_id.as_str(), "org_id": org_id.as_str() },
            doc! { "$set": {
                "status": status.as_str(),
                "suspended_until": suspended_until.map(super::docs::bson_time),
                "updated_at": super::docs::bson_time(now),
            } },
        ),
        session
    )?;
    Ok(result.matched_count == 1)
}
