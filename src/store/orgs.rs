use bson::doc;
use futures::TryStreamExt;
use mongodb::error::Error as MongoError;
use mongodb::{ClientSession, Collection};

use super::docs::OrgDoc;
use super::{Inserted, Store, index, inserted, with_session};
use crate::domain::{OrgId, Organization};

pub(super) const COLLECTION: &str = "organizations";

fn collection(store: &Store) -> Collection<OrgDoc> {
    store.database().collection(COLLECTION)
}

pub(super) async fn create_indexes(store: &Store) -> Result<(), MongoError> {
    collection(store)
        .create_index(index(doc! { "slug": 1 }, true))
        .await?;
    Ok(())
}

/// `AlreadyExists` when an organization with the same slug exists.
pub async fn insert(
    store: &Store,
    session: &mut ClientSession,
    org: &Organization,
) -> Result<Inserted, MongoError> {
    inserted(
        collection(store)
            .insert_one(OrgDoc::from(org))
            .session(session)
            .await,
    )
}

pub async fn get(
    store: &Store,
    session: Option<&mut ClientSession>,
    id: &OrgId,
) -> Result<Option<Organization>, MongoError> {
    let found = with_session!(
        collection(store).find_one(doc! { "_id": id.as_str() }),
        session
    )?;
    Ok(found.map(Organization::from))
}

pub async fn get_many(store: &Store, ids: &[OrgId]) -> Result<Vec<Organization>, MongoError> {
    let ids: Vec<&str> = ids.iter().map(OrgId::as_str).collect();
    let docs: Vec<OrgDoc> = collection(store)
        .find(doc! { "_id": { "$in": ids } })
        .await?
        .try_collect()
        .await?;
    Ok(docs.into_iter().map(Organization::from).collect())
}

/// Writes the organization's document to serialize changes that take an
/// owner away (see `members::ensure_an_owner_remains`).
pub async fn touch_owner_guard(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
) -> Result<(), MongoError> {
    collection(store)
        .update_one(
            doc! { "_id": org_id.as_str() },
            doc! { "$inc": { "owner_changes": 1_i64 } },
        )
        .session(session)
        .await?;
    Ok(())
}

/// How an update ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Updated {
    Yes,
    /// The new slug is another organization's.
    NameTaken,
    Missing,
}

/// The fields a change of an organization sets; `None` leaves a field as
/// it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrgChange {
    /// The name and the slug derived from it.
    pub name: Option<(String, String)>,
    pub invitation_ttl_days: Option<u32>,
    pub audit_retention_days: Option<u32>,
    pub allowed_email_domains: Option<Vec<String>>,
    pub scim_activation_emails: Option<bool>,
    pub require_mfa: Option<bool>,
}

/// Sets only the fields `change` names (and `updated_at`): two concurrent
/// changes of different fields both stay, where writing the whole
/// settings document from a copy read earlier lost one of them.
pub async fn update(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
    change: &OrgChange,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Updated, MongoError> {
    let mut set = doc! { "updated_at": super::docs::bson_time(now) };
    if let Some((name, slug)) = &change.name {
        set.insert("name", name.as_str());
        set.insert("slug", slug.as_str());
    }
    if let Some(days) = change.invitation_ttl_days {
        set.insert("settings.invitation_ttl_days", days);
    }
    if let Some(days) = change.audit_retention_days {
        set.insert("settings.audit_retention_days", days);
    }
    if let Some(domains) = &change.allowed_email_domains {
        set.insert("settings.allowed_email_domains", domains.clone());
    }
    if let Some(emails) = change.scim_activation_emails {
        set.insert("settings.scim_activation_emails", emails);
    }
    if let Some(required) = change.require_mfa {
        set.insert("settings.mfa_required", required);
    }
    let result = collection(store)
        .update_one(doc! { "_id": org_id.as_str() }, doc! { "$set": set })
        .session(session)
        .await;
    match result {
        Ok(result) if result.matched_count == 0 => Ok(Updated::Missing),
        Ok(_) => Ok(Updated::Yes),
        Err(err) if super::is_duplicate_key(&err) => Ok(Updated::NameTaken),
        Err(err) => Err(err),
    }
}

/// Deletes the organization and everything that belongs to it except its
/// audit trail, which ages out with the retention sweep.
pub async fn delete(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
) -> Result<bool, MongoError> {
    let deleted = collection(store)
        .delete_one(doc! { "_id": org_id.as_str() })
        .session(&mut *session)
        .await?;
    if deleted.deleted_count == 0 {
        return Ok(false);
    }
    super::members::delete_for_org(store, session, org_id).await?;
    super::groups::delete_for_org(store, session, org_id).await?;
    super::tokens::delete_for_org(store, session, org_id).await?;
    super::projects::delete_for_org(store, session, org_id).await?;
    Ok(true)
}

/// Every organization's audit retention in days, for the purge.
pub async fn audit_retentions(store: &Store) -> Result<Vec<(OrgId, u32)>, MongoError> {
    let docs: Vec<OrgDoc> = collection(store).find(doc! {}).await?.try_collect().await?;
    Ok(docs
        .into_iter()
        .map(|doc| {
            (
                OrgId::from_stored(doc.id),
                doc.settings.audit_retention_days,
            )
        })
        .collect())
}
