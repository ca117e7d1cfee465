//! Members: memberships and, on the same document, their SCIM profile.

use bson::{Document, RawDocumentBuf, doc};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::error::Error as MongoError;
use mongodb::options::{IndexOptions, InsertOneModel};
use mongodb::{ClientSession, Collection, IndexModel};

use super::docs::{MemberDoc, bson_time};
use super::token_cache::CacheKey;
use super::{Inserted, Store, first_taken, index, inserted, page, total_of, with_session};
use crate::domain::policy::{self, LastOwner, loses_an_owner};
use crate::domain::{AccountId, Member, MemberId, MemberStatus, OrgId, Role, Standing};
use crate::protocol::user::{GroupRef, UserProfile, UserRecord};

pub(super) const COLLECTION: &str = "members";

fn collection(store: &Store) -> Collection<MemberDoc> {
    store.database().collection(COLLECTION)
}

fn unique_where(keys: Document, partial: Document) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(
            IndexOptions::builder()
                .unique(true)
                .partial_filter_expression(partial)
                .build(),
        )
        .build()
}

pub(super) async fn create_indexes(store: &Store) -> Result<(), MongoError> {
    let members = collection(store);
    for model in [
        unique_where(
            doc! { "org_id": 1, "account_id": 1 },
            doc! { "account_id": { "$type": "string" } },
        ),
        index(doc! { "org_id": 1, "user_name_lc": 1 }, true),
        unique_where(
            doc! { "org_id": 1, "external_id": 1 },
            doc! { "external_id": { "$type": "string" } },
        ),
        // Lookups, beside the unique partial index above: query planners
        // (the development server's among them) may not pick a partial
        // index for a plain equality.
        index(doc! { "org_id": 1, "external_id": 1, "_id": 1 }, false),
        index(doc! { "account_id": 1 }, false),
        index(doc! { "org_id": 1, "_id": 1 }, false),
        index(doc! { "org_id": 1, "role": 1, "status": 1 }, false),
        index(doc! { "org_id": 1, "emails_lc": 1 }, false),
        index(doc! { "org_id": 1, "display_name_lc": 1 }, false),
        index(doc! { "org_id": 1, "updated_at": 1 }, false),
    ] {
        members.create_index(model).await?;
    }
    Ok(())
}

/// `AlreadyExists` when the account is already a member of the
/// organization, or the userName or externalId is taken in it.
pub async fn insert(
    store: &Store,
    session: &mut ClientSession,
    member: &Member,
    profile: &UserProfile,
) -> Result<Inserted, MongoError> {
    let doc = MemberDoc::new(member, profile, 1)?;
    inserted(collection(store).insert_one(doc).session(session).await)
}

/// [`insert`] as an insert to make with the other inserts of its
/// transaction (`store::insert_all`).
pub fn insert_model(
    store: &Store,
    member: &Member,
    profile: &UserProfile,
) -> Result<InsertOneModel, MongoError> {
    collection(store).insert_one_model(MemberDoc::new(member, profile, 1)?)
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
/// Every membership of an account with its SCIM attributes, read in the
/// transaction that is about to delete them (the account goes).
pub async fn records_for_account(
    store: &Store,
    session: &mut ClientSession,
    account_id: &AccountId,
) -> Result<Vec<UserRecord>, MongoError> {
    let mut records = Vec::new();
    let mut cursor = collection(store)
        .find(doc! { "account_id": account_id.as_str() })
        .sort(doc! { "_id": 1 })
        .session(&mut *session)
        .await?;
    while let Some(doc) = cursor.next(&mut *session).await.transpose()? {
        records.push(doc.into_record());
    }
    Ok(records)
}

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

/// Notes a sign-in on every membership of the account, inside the
/// sign-in's transaction. Not a change of the SCIM resource: `version`
/// and `updated_at` stay.
pub async fn record_sign_in(
    store: &Store,
    session: &mut ClientSession,
    account_id: &AccountId,
    now: DateTime<Utc>,
) -> Result<(), MongoError> {
    collection(store)
        .update_many(
            doc! { "account_id": account_id.as_str() },
            doc! { "$set": { "last_sign_in_at": bson_time(now) } },
        )
        .session(session)
        .await?;
    Ok(())
}

/// Sets a member's status (and the end of a suspension).
pub async fn set_status(
    store: &Store,
    session: Option<&mut ClientSession>,
    org_id: &OrgId,
    member_id: &MemberId,
    status: MemberStatus,
    suspended_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<bool, MongoError> {
    store
        .token_cache()
        .forget(CacheKey::Member(member_id.to_string()));
    let result = with_session!(
        collection(store).update_one(
            doc! { "_id": member_id.as_str(), "org_id": org_id.as_str() },
            doc! {
                "$set": {
                    "status": status.as_str(),
                    "suspended_until": suspended_until.map(bson_time),
                    "updated_at": bson_time(now),
                },
                "$inc": { "version": 1 },
            },
        ),
        session
    )?;
    Ok(result.matched_count == 1)
}

/// The last-owner rule, inside the caller's transaction. When the change
/// takes an active owner away, the organization's document is written
/// too: two transactions that each remove one of two owners then conflict
/// on it, and the one retried sees the other's change in its count.
/// The outer error is the database's, the inner one the rule's.
pub async fn ensure_an_owner_remains(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
    before: Standing,
    after: Option<Standing>,
) -> Result<Result<(), LastOwner>, MongoError> {
    if !loses_an_owner(before, after) {
        return Ok(Ok(()));
    }
    super::orgs::touch_owner_guard(store, session, org_id).await?;
    let owners = count_active_owners(store, Some(session), org_id).await?;
    Ok(policy::ensure_an_owner_remains(before, after, owners))
}

pub async fn get_user(
    store: &Store,
    session: Option<&mut ClientSession>,
    org_id: &OrgId,
    member_id: &MemberId,
) -> Result<Option<UserRecord>, MongoError> {
    let found = with_session!(
        collection(store).find_one(doc! { "_id": member_id.as_str(), "org_id": org_id.as_str() }),
        session
    )?;
    Ok(found.map(MemberDoc::into_record))
}

/// Which unique SCIM attribute another member of the organization holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    UserName,
    ExternalId,
}

/// Checked before a write so the answer names the attribute; the unique
/// indexes still catch races.
pub async fn find_taken(
    store: &Store,
    session: Option<&mut ClientSession>,
    org_id: &OrgId,
    profile: &UserProfile,
    except: Option<&MemberId>,
) -> Result<Option<Taken>, MongoError> {
    let mut candidates = vec![(
        Taken::UserName,
        doc! { "org_id": org_id.as_str(), "user_name_lc": profile.user_name.to_lowercase() },
    )];
    if let Some(external_id) = &profile.external_id {
        candidates.push((
            Taken::ExternalId,
            doc! { "org_id": org_id.as_str(), "external_id": external_id },
        ));
    }
    first_taken(
        store,
        session,
        COLLECTION,
        candidates,
        except.map(MemberId::as_str),
    )
    .await
}

/// Writes a member's new profile, role and status if its version is still
/// `expected_version`; false when it changed or vanished meanwhile. Fields
/// this function does not know (a password hash) are kept.
pub async fn replace_user(
    store: &Store,
    session: &mut ClientSession,
    member: &Member,
    profile: &UserProfile,
    expected_version: i64,
) -> Result<bool, MongoError> {
    store
        .token_cache()
        .forget(CacheKey::Member(member.id.to_string()));
    let mut fields = bson::to_document(&MemberDoc::new(member, profile, expected_version + 1)?)?;
    fields.remove("_id");
    fields.remove("org_id");
    fields.remove("created_at");
    let result = collection(store)
        .update_one(
            doc! {
                "_id": member.id.as_str(),
                "org_id": member.org_id.as_str(),
                "version": expected_version,
            },
            doc! { "$set": fields },
        )
        .session(session)
        .await?;
    Ok(result.matched_count == 1)
}

/// Keeps the hash of a password an identity provider sent (Okta always
/// sends one). It is never returned and does not sign anyone in.
pub async fn set_idp_password_hash(
    store: &Store,
    session: &mut ClientSession,
    member_id: &MemberId,
    hash: &str,
) -> Result<(), MongoError> {
    collection(store)
        .update_one(
            doc! { "_id": member_id.as_str() },
            doc! { "$set": { "idp_password_hash": hash } },
        )
        .session(session)
        .await?;
    Ok(())
}

pub async fn delete(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
    member_id: &MemberId,
) -> Result<bool, MongoError> {
    store
        .token_cache()
        .forget(CacheKey::Member(member_id.to_string()));
    let result = collection(store)
        .delete_one(doc! { "_id": member_id.as_str(), "org_id": org_id.as_str() })
        .session(session)
        .await?;
    Ok(result.deleted_count == 1)
}

/// The `$lookup` that joins a member with its groups and their names, as
/// `_groups: [{group_id, group: [{display_name}]}]`. Each membership has
/// its group's name nested: a `$lookup` on an array of ids is not
/// understood by every MongoDB-compatible server.
fn groups_lookup() -> Document {
    doc! { "$lookup": {
        "from": super::groups::MEMBERSHIPS,
        "localField": "_id",
        "foreignField": "member_id",
        "pipeline": [
            { "$lookup": {
                "from": super::groups::GROUPS,
                "localField": "group_id",
                "foreignField": "_id",
                "as": "group",
            } },
            { "$project": { "_id": 0, "group_id": 1, "group.display_name": 1 } },
        ],
        "as": "_groups",
    } }
}

/// A member document with its `groups_lookup`, read in place: the member
/// is deserialized from the raw bytes (its `_groups` field ignored) and
/// the groups are walked without building documents.
fn with_groups(raw: &RawDocumentBuf) -> Result<(UserRecord, Vec<GroupRef>), MongoError> {
    let record = bson::from_slice::<MemberDoc>(raw.as_bytes())
        .map_err(MongoError::custom)?
        .into_record();
    let Ok(links) = raw.get_array("_groups") else {
        return Ok((record, Vec::new()));
    };
    // A membership whose group is gone meanwhile shows no group.
    let refs = links
        .into_iter()
        .filter_map(|link| {
            let link = link.ok()?.as_document()?;
            let group = link.get_array("group").ok()?.into_iter().next()?.ok()?;
            Some(GroupRef {
                id: link.get_str("group_id").ok()?.to_owned(),
                display_name: group
                    .as_document()?
                    .get_str("display_name")
                    .ok()?
                    .to_owned(),
            })
        })
        .collect();
    Ok((record, refs))
}

/// A user with the groups it belongs to and their names, in one round
/// trip: what `GET /Users/{id}` shows.
pub async fn get_user_with_groups(
    store: &Store,
    org_id: &OrgId,
    member_id: &MemberId,
) -> Result<Option<(UserRecord, Vec<GroupRef>)>, MongoError> {
    let pipeline = vec![
        doc! { "$match": { "_id": member_id.as_str(), "org_id": org_id.as_str() } },
        groups_lookup(),
    ];
    let mut cursor = collection(store)
        .aggregate(pipeline)
        .with_type::<RawDocumentBuf>()
        .await?;
    match cursor.try_next().await? {
        Some(raw) => with_groups(&raw).map(Some),
        None => Ok(None),
    }
}

/// One page of users matching `filter` (already scoped by the caller's
/// query compiler), with the total count; with each user's groups when
/// `groups` says so, joined in the same round trip.
pub async fn list_users(
    store: &Store,
    org_id: &OrgId,
    filter: Document,
    sort: Document,
    skip: u64,
    limit: i64,
    groups: bool,
) -> Result<(Vec<(UserRecord, Vec<GroupRef>)>, u64), MongoError> {
    if !groups || limit == 0 {
        let (docs, total) = page(&collection(store), org_id, filter, sort, skip, limit).await?;
        let users = docs
            .into_iter()
            .map(|doc| (doc.into_record(), Vec::new()))
            .collect();
        return Ok((users, total));
    }
    let mut filter = filter;
    filter.insert("org_id", org_id.as_str());
    let mut pipeline = vec![doc! { "$match": filter.clone() }];
    if !sort.is_empty() {
        pipeline.push(doc! { "$sort": sort });
    }
    if skip > 0 {
        pipeline.push(doc! { "$skip": i64::try_from(skip).unwrap_or(i64::MAX) });
    }
    pipeline.push(doc! { "$limit": limit });
    pipeline.push(groups_lookup());
    // The whole page in the first batch: a server's default batch may be
    // smaller, and each getMore is another round trip.
    let raws: Vec<RawDocumentBuf> = collection(store)
        .aggregate(pipeline)
        .batch_size(u32::try_from(limit).unwrap_or(u32::MAX))
        .with_type::<RawDocumentBuf>()
        .await?
        .try_collect()
        .await?;
    let users = raws
        .iter()
        .map(with_groups)
        .collect::<Result<Vec<_>, _>>()?;
    let total = total_of(&collection(store), filter, skip, limit, users.len()).await?;
    Ok((users, total))
}

/// Which of `ids` are members of the organization.
pub async fn existing_ids(
    store: &Store,
    session: Option<&mut ClientSession>,
    org_id: &OrgId,
    ids: &[String],
) -> Result<Vec<String>, MongoError> {
    let filter = doc! { "org_id": org_id.as_str(), "_id": { "$in": ids } };
    let found: Vec<Document> = match session {
        Some(session) => {
            let mut cursor = store
                .database()
                .collection::<Document>(COLLECTION)
                .find(filter)
                .projection(doc! { "_id": 1 })
                .session(&mut *session)
                .await?;
            let mut found = Vec::new();
            while let Some(doc) = cursor.next(&mut *session).await.transpose()? {
                found.push(doc);
            }
            found
        }
        None => {
            store
                .database()
                .collection::<Document>(COLLECTION)
                .find(filter)
                .projection(doc! { "_id": 1 })
                .await?
                .try_collect()
                .await?
        }
    };
    Ok(found
        .into_iter()
        .filter_map(|doc| doc.get_str("_id").ok().map(str::to_owned))
        .collect())
}

/// Inserts many members at once, outside any transaction: for imports and
/// benchmarks that seed large organizations. Stops at the first error.
pub async fn insert_many(
    store: &Store,
    members: &[(Member, UserProfile)],
) -> Result<(), MongoError> {
    if members.is_empty() {
        return Ok(());
    }
    let docs = members
        .iter()
        .map(|(member, profile)| MemberDoc::new(member, profile, 1))
        .collect::<Result<Vec<_>, _>>()?;
    collection(store).insert_many(docs).await?;
    Ok(())
}

pub(super) async fn delete_for_org(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
) -> Result<(), MongoError> {
    collection(store)
        .delete_many(doc! { "org_id": org_id.as_str() })
        .session(session)
        .await?;
    Ok(())
}

/// Active members whose direct role is owner. The last-owner rule counts
/// these: a role held through a group mapping can be taken away by
/// changing the group, so it never keeps an organization owned.
pub async fn count_active_owners(
    store: &Store,
    session: Option<&mut ClientSession>,
    org_id: &OrgId,
) -> Result<u64, MongoError> {
    with_session!(
        collection(store).count_documents(doc! {
            "org_id": org_id.as_str(),
            "role": Role::Owner.as_str(),
            "status": MemberStatus::Active.as_str(),
        }),
        session
    )
}

/// What the management API's member list asks for.
#[derive(Debug, Clone, Default)]
pub struct MemberQuery {
    pub role: Option<Role>,
    /// Matched against the status that counts at `now`.
    pub status: Option<MemberStatus>,
    /// A case-insensitive substring of the userName, an email or the
    /// display name.
    pub text: Option<String>,
    /// The last id of the previous page.
    pub after: Option<MemberId>,
    pub limit: u32,
}

/// One page of members in id (creation) order, and whether more follow.
pub async fn list_page(
    store: &Store,
    org_id: &OrgId,
    query: &MemberQuery,
    now: DateTime<Utc>,
) -> Result<(Vec<UserRecord>, bool), MongoError> {
    let mut filter = doc! { "org_id": org_id.as_str() };
    let mut all = Vec::new();
    if let Some(role) = query.role {
        filter.insert("role", role.as_str());
    }
    let lifted = doc! { "status": MemberStatus::Suspended.as_str(), "suspended_until": { "$lte": bson_time(now) } };
    match query.status {
        Some(MemberStatus::Active) => {
            all.push(doc! { "$or": [ { "status": MemberStatus::Active.as_str() }, lifted ] })
        }
        Some(MemberStatus::Suspended) => {
            filter.insert("status", MemberStatus::Suspended.as_str());
            all.push(doc! { "$or": [
                { "suspended_until": null },
                { "suspended_until": { "$gt": bson_time(now) } },
            ] });
        }
        Some(status) => {
            filter.insert("status", status.as_str());
        }
        None => {}
    }
    if let Some(text) = query
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let pattern = super::scim_query::escape_regex(&text.to_lowercase());
        let matches = doc! { "$regex": pattern };
        all.push(doc! { "$or": [
            { "user_name_lc": matches.clone() },
            { "emails_lc": matches.clone() },
            { "display_name_lc": matches },
        ] });
    }
    if !all.is_empty() {
        filter.insert("$and", all);
    }
    let after = query.after.as_ref().map(MemberId::as_str);
    let (docs, more) = super::cursor_page(&collection(store), filter, after, query.limit).await?;
    Ok((docs.into_iter().map(MemberDoc::into_record).collect(), more))
}

/// Writes a member's role, status, end of suspension and project rights
/// if its version is still `expected_version`; false otherwise.
pub async fn update_membership(
    store: &Store,
    session: &mut ClientSession,
    member: &Member,
    expected_version: i64,
) -> Result<bool, MongoError> {
    store
        .token_cache()
        .forget(CacheKey::Member(member.id.to_string()));
    let rights = bson::to_bson(&member.project_rights).map_err(MongoError::custom)?;
    let result = collection(store)
        .update_one(
            doc! {
                "_id": member.id.as_str(),
                "org_id": member.org_id.as_str(),
                "version": expected_version,
            },
            doc! {
                "$set": {
                    "role": member.role.as_str(),
                    "status": member.status.as_str(),
                    "suspended_until": member.suspended_until.map(bson_time),
                    "project_rights": rights,
                    "updated_at": bson_time(member.updated_at),
                },
                "$inc": { "version": 1 },
            },
        )
        .session(session)
        .await?;
    Ok(result.matched_count == 1)
}

/// Removes every member's rights on a project that is being deleted, in
/// the deletion's transaction.
pub async fn remove_project_rights(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
    project_id: &crate::domain::ProjectId,
) -> Result<(), MongoError> {
    collection(store)
        .update_many(
            doc! {
                "org_id": org_id.as_str(),
                "project_rights.project_id": project_id.as_str(),
            },
            doc! { "$pull": { "project_rights": { "project_id": project_id.as_str() } } },
        )
        .session(session)
        .await?;
    Ok(())
}

/// Which of `emails` (normalized) already belong to a member of the
/// organization: as a login's email, as a userName or as an email of the
/// profile. Four indexed lookups, whatever the number of addresses.
pub async fn existing_emails(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
    emails: &[&str],
) -> Result<std::collections::HashSet<String>, MongoError> {
    let mut found = std::collections::HashSet::new();
    if emails.is_empty() {
        return Ok(found);
    }
    let wanted: std::collections::HashSet<&str> = emails.iter().copied().collect();
    for filter in [
        doc! { "org_id": org_id.as_str(), "user_name_lc": { "$in": emails } },
        doc! { "org_id": org_id.as_str(), "emails_lc": { "$in": emails } },
    ] {
        let mut cursor = collection(store)
            .find(filter)
            .session(&mut *session)
            .await?;
        while let Some(member) = cursor.next(&mut *session).await.transpose()? {
            for email in std::iter::once(&member.user_name_lc).chain(&member.emails_lc) {
                if wanted.contains(email.as_str()) {
                    found.insert(email.clone());
                }
            }
        }
    }
    let accounts = super::accounts::ids_by_email(store, session, emails).await?;
    if accounts.is_empty() {
        return Ok(found);
    }
    let ids: Vec<&str> = accounts.iter().map(|(_, id)| id.as_str()).collect();
    let mut joined = std::collections::HashSet::new();
    let mut cursor = collection(store)
        .find(doc! { "org_id": org_id.as_str(), "account_id": { "$in": ids } })
        .session(&mut *session)
        .await?;
    while let Some(member) = cursor.next(&mut *session).await.transpose()? {
        joined.extend(member.account_id);
    }
    found.extend(
        accounts
            .into_iter()
            .filter(|(_, id)| joined.contains(id.as_str()))
            .map(|(email, _)| email),
    );
    Ok(found)
}

/// Gives a pending member without a login its account and makes it
/// active (accepting a SCIM activation). False when the member is gone,
/// has a login already or is no longer pending.
pub async fn link_account(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
    member_id: &MemberId,
    account_id: &AccountId,
    now: DateTime<Utc>,
) -> Result<bool, MongoError> {
    store
        .token_cache()
        .forget(CacheKey::Member(member_id.to_string()));
    let result = collection(store)
        .update_one(
            doc! {
                "_id": member_id.as_str(),
                "org_id": org_id.as_str(),
                "account_id": null,
                "status": MemberStatus::Pending.as_str(),
            },
            doc! {
                "$set": {
                    "account_id": account_id.as_str(),
                    "status": MemberStatus::Active.as_str(),
                    "updated_at": bson_time(now),
                },
                "$inc": { "version": 1 },
            },
        )
        .session(session)
        .await?;
    Ok(result.matched_count == 1)
}
