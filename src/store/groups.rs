//! Groups and their memberships. Memberships are documents of their own
//! (one per group and member), so a group may have any number of members,
//! adding or removing one costs the same whatever the group's size, and
//! concurrent changes to one group cannot overwrite each other.

use std::collections::{HashMap, HashSet};

use bson::{DateTime as BsonDateTime, Document, doc};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::error::Error as MongoError;
use mongodb::{ClientSession, Collection};
use serde::{Deserialize, Serialize};

use super::docs::{MemberDoc, bson_time};
use super::{Inserted, Store, first_taken, index, inserted, page, with_session};
use crate::domain::member::ProjectGrant;
use crate::domain::{OrgId, Role};
use crate::protocol::user::{GroupRef, UserRecord};

pub(super) const GROUPS: &str = "groups";
pub(super) const MEMBERSHIPS: &str = "group_members";

/// The role and project rights membership in a group grants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleMapping {
    pub role: Option<Role>,
    pub project_rights: Vec<ProjectGrant>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub id: String,
    pub org_id: OrgId,
    pub display_name: String,
    pub external_id: Option<String>,
    pub role_mapping: Option<RoleMapping>,
    /// Whether SCIM shows Muster's extension on a group that maps to
    /// nothing: a client may add (or remove) the empty extension object.
    pub extension_assigned: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GroupDoc {
    #[serde(rename = "_id")]
    id: String,
    org_id: String,
    display_name: String,
    display_name_lc: String,
    external_id: Option<String>,
    role_mapping: Option<RoleMapping>,
    #[serde(default)]
    extension_assigned: bool,
    created_at: BsonDateTime,
    updated_at: BsonDateTime,
    version: i64,
}

impl GroupDoc {
    fn new(group: &Group) -> GroupDoc {
        GroupDoc {
            id: group.id.clone(),
            org_id: group.org_id.to_string(),
            display_name: group.display_name.clone(),
            display_name_lc: group.display_name.to_lowercase(),
            external_id: group.external_id.clone(),
            role_mapping: group.role_mapping.clone(),
            extension_assigned: group.extension_assigned,
            created_at: bson_time(group.created_at),
            updated_at: bson_time(group.updated_at),
            version: group.version,
        }
    }

    fn into_group(self) -> Group {
        Group {
            id: self.id,
            org_id: OrgId::from_stored(self.org_id),
            display_name: self.display_name,
            external_id: self.external_id,
            role_mapping: self.role_mapping,
            extension_assigned: self.extension_assigned,
            created_at: self.created_at.to_chrono(),
            updated_at: self.updated_at.to_chrono(),
            version: self.version,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MembershipDoc {
    /// `{group_id}:{member_id}`: unique by construction.
    #[serde(rename = "_id")]
    id: String,
    org_id: String,
    group_id: String,
    member_id: String,
    added_at: BsonDateTime,
}

fn groups(store: &Store) -> Collection<GroupDoc> {
    store.database().collection(GROUPS)
}

fn memberships(store: &Store) -> Collection<MembershipDoc> {
    store.database().collection(MEMBERSHIPS)
}

pub(super) async fn create_indexes(store: &Store) -> Result<(), MongoError> {
    let g = groups(store);
    g.create_index(index(doc! { "org_id": 1, "display_name_lc": 1 }, true))
        .await?;
    g.create_index(
        mongodb::IndexModel::builder()
            .keys(doc! { "org_id": 1, "external_id": 1 })
            .options(
                mongodb::options::IndexOptions::builder()
                    .unique(true)
                    .partial_filter_expression(doc! { "external_id": { "$type": "string" } })
                    .build(),
            )
            .build(),
    )
    .await?;
    g.create_index(index(doc! { "org_id": 1, "_id": 1 }, false))
        .await?;
    // For lookups: planners may not pick the partial index for equality.
    g.create_index(index(
        doc! { "org_id": 1, "external_id": 1, "_id": 1 },
        false,
    ))
    .await?;
    g.create_index(index(doc! { "org_id": 1, "updated_at": 1 }, false))
        .await?;
    let m = memberships(store);
    m.create_index(index(doc! { "group_id": 1, "member_id": 1 }, false))
        .await?;
    m.create_index(index(doc! { "member_id": 1 }, false))
        .await?;
    Ok(())
}

/// Which unique attribute of a group another group holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    DisplayName,
    ExternalId,
}

/// Checked before a write so the answer names the attribute; the unique
/// indexes still catch races.
pub async fn find_taken(
    store: &Store,
    session: Option<&mut ClientSession>,
    org_id: &OrgId,
    display_name: &str,
    external_id: Option<&str>,
    except: Option<&str>,
) -> Result<Option<Taken>, MongoError> {
    let mut candidates = vec![(
        Taken::DisplayName,
        doc! { "org_id": org_id.as_str(), "display_name_lc": display_name.to_lowercase() },
    )];
    if let Some(external_id) = external_id {
        candidates.push((
            Taken::ExternalId,
            doc! { "org_id": org_id.as_str(), "external_id": external_id },
        ));
    }
    first_taken(store, session, GROUPS, candidates, except).await
}

pub async fn insert(
    store: &Store,
    session: &mut ClientSession,
    group: &Group,
) -> Result<Inserted, MongoError> {
    inserted(
        groups(store)
            .insert_one(GroupDoc::new(group))
            .session(session)
            .await,
    )
}

pub async fn get(
    store: &Store,
    session: Option<&mut ClientSession>,
    org_id: &OrgId,
    id: &str,
) -> Result<Option<Group>, MongoError> {
    let found = with_session!(
        groups(store).find_one(doc! { "_id": id, "org_id": org_id.as_str() }),
        session
    )?;
    Ok(found.map(GroupDoc::into_group))
}

/// Takes the group's next version before anything else is read or
/// written, and answers the group as it was: concurrent changes to one
/// group then conflict on their first write, back off and retry, instead
/// of conflicting after doing all their work. `None` when there is no such
/// group.
pub async fn bump(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Group>, MongoError> {
    let found = groups(store)
        .find_one_and_update(
            doc! { "_id": id, "org_id": org_id.as_str() },
            doc! { "$inc": { "version": 1 }, "$set": { "updated_at": bson_time(now) } },
        )
        .return_document(mongodb::options::ReturnDocument::Before)
        .session(session)
        .await?;
    Ok(found.map(GroupDoc::into_group))
}

/// Writes the group if its version is still `expected_version` (the new
/// document carries `expected_version + 1`); false otherwise.
pub async fn replace(
    store: &Store,
    session: &mut ClientSession,
    group: &Group,
    expected_version: i64,
) -> Result<bool, MongoError> {
    let result = groups(store)
        .replace_one(
            doc! { "_id": &group.id, "org_id": group.org_id.as_str(), "version": expected_version },
            GroupDoc::new(group),
        )
        .session(session)
        .await?;
    Ok(result.matched_count == 1)
}

/// Deletes the group and its memberships.
pub async fn delete(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
    id: &str,
) -> Result<bool, MongoError> {
    let result = groups(store)
        .delete_one(doc! { "_id": id, "org_id": org_id.as_str() })
        .session(&mut *session)
        .await?;
    if result.deleted_count == 0 {
        return Ok(false);
    }
    memberships(store)
        .delete_many(doc! { "group_id": id })
        .session(session)
        .await?;
    Ok(true)
}

pub async fn list(
    store: &Store,
    org_id: &OrgId,
    filter: Document,
    sort: Document,
    skip: u64,
    limit: i64,
) -> Result<(Vec<Group>, u64), MongoError> {
    let (docs, total) = page(&groups(store), org_id, filter, sort, skip, limit).await?;
    Ok((docs.into_iter().map(GroupDoc::into_group).collect(), total))
}

/// Member ids of a group, in the order they joined.
pub async fn member_ids(
    store: &Store,
    session: Option<&mut ClientSession>,
    group_id: &str,
) -> Result<Vec<String>, MongoError> {
    let filter = doc! { "group_id": group_id };
    let docs: Vec<MembershipDoc> = match session {
        Some(session) => {
            let mut cursor = memberships(store)
                .find(filter)
                .session(&mut *session)
                .await?;
            let mut docs = Vec::new();
            while let Some(doc) = cursor.next(&mut *session).await.transpose()? {
                docs.push(doc);
            }
            docs
        }
        None => memberships(store).find(filter).await?.try_collect().await?,
    };
    Ok(docs.into_iter().map(|doc| doc.member_id).collect())
}

/// Adds members that are not in the group yet; returns how many were new.
pub async fn add_members(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
    group_id: &str,
    member_ids: &[String],
    now: DateTime<Utc>,
) -> Result<usize, MongoError> {
    if member_ids.is_empty() {
        return Ok(0);
    }
    let ids: Vec<String> = member_ids
        .iter()
        .map(|m| format!("{group_id}:{m}"))
        .collect();
    let mut existing = HashSet::new();
    let mut cursor = memberships(store)
        .find(doc! { "_id": { "$in": &ids } })
        .session(&mut *session)
        .await?;
    while let Some(doc) = cursor.next(&mut *session).await.transpose()? {
        existing.insert(doc.member_id);
    }
    let new: Vec<&String> = member_ids
        .iter()
        .filter(|m| !existing.contains(*m))
        .collect();
    insert_memberships(store, session, org_id, group_id, &new, now).await
}

/// Adds members known not to be in the group yet (see `membership_of`);
/// a repeated id counts once. Returns how many were added.
pub async fn insert_memberships(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
    group_id: &str,
    member_ids: &[&String],
    now: DateTime<Utc>,
) -> Result<usize, MongoError> {
    let mut seen = HashSet::new();
    let new: Vec<MembershipDoc> = member_ids
        .iter()
        .filter(|m| seen.insert(**m))
        .map(|m| MembershipDoc {
            id: format!("{group_id}:{m}"),
            org_id: org_id.to_string(),
            group_id: group_id.to_owned(),
            member_id: (*m).clone(),
            added_at: bson_time(now),
        })
        .collect();
    if new.is_empty() {
        return Ok(0);
    }
    let count = new.len();
    memberships(store).insert_many(new).session(session).await?;
    Ok(count)
}

/// Of `member_ids`, those that are members of the organization, and of
/// those, the ones already in the group: one round trip.
pub async fn membership_of(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
    group_id: &str,
    member_ids: &[String],
) -> Result<(HashSet<String>, HashSet<String>), MongoError> {
    let mut known = HashSet::new();
    let mut in_group = HashSet::new();
    if member_ids.is_empty() {
        return Ok((known, in_group));
    }
    let pipeline = vec![
        doc! { "$match": { "org_id": org_id.as_str(), "_id": { "$in": member_ids } } },
        doc! { "$project": { "_id": 1 } },
        doc! { "$lookup": {
            "from": MEMBERSHIPS,
            "localField": "_id",
            "foreignField": "member_id",
            "pipeline": [
                { "$match": { "group_id": group_id } },
                { "$project": { "_id": 1 } },
            ],
            "as": "in_group",
        } },
    ];
    #[derive(Deserialize)]
    struct Found {
        #[serde(rename = "_id")]
        id: String,
        in_group: Vec<Document>,
    }
    let mut cursor = store
        .database()
        .collection::<Document>(super::members::COLLECTION)
        .aggregate(pipeline)
        .with_type::<Found>()
        .session(&mut *session)
        .await?;
    while let Some(found) = cursor.next(&mut *session).await.transpose()? {
        if !found.in_group.is_empty() {
            in_group.insert(found.id.clone());
        }
        known.insert(found.id);
    }
    Ok((known, in_group))
}

/// Removes members from the group; returns how many were in it.
pub async fn remove_members(
    store: &Store,
    session: &mut ClientSession,
    group_id: &str,
    member_ids: &[String],
) -> Result<u64, MongoError> {
    if member_ids.is_empty() {
        return Ok(0);
    }
    let ids: Vec<String> = member_ids
        .iter()
        .map(|m| format!("{group_id}:{m}"))
        .collect();
    let result = memberships(store)
        .delete_many(doc! { "_id": { "$in": ids } })
        .session(session)
        .await?;
    Ok(result.deleted_count)
}

pub async fn remove_all_members(
    store: &Store,
    session: &mut ClientSession,
    group_id: &str,
) -> Result<u64, MongoError> {
    let result = memberships(store)
        .delete_many(doc! { "group_id": group_id })
        .session(session)
        .await?;
    Ok(result.deleted_count)
}

/// Removes a deleted member from every group.
pub async fn forget_member(
    store: &Store,
    session: &mut ClientSession,
    member_id: &str,
) -> Result<(), MongoError> {
    memberships(store)
        .delete_many(doc! { "member_id": member_id })
        .session(session)
        .await?;
    Ok(())
}

/// The groups of each of `member_ids`, for the users' `groups` attribute:
/// memberships joined with their groups' names in one round trip.
pub async fn groups_of(
    store: &Store,
    member_ids: &[&str],
) -> Result<HashMap<String, Vec<GroupRef>>, MongoError> {
    #[derive(Deserialize)]
    struct Name {
        display_name: String,
    }
    #[derive(Deserialize)]
    struct Link {
        group_id: String,
        member_id: String,
        group: Vec<Name>,
    }
    let mut by_member: HashMap<String, Vec<GroupRef>> = HashMap::new();
    if member_ids.is_empty() {
        return Ok(by_member);
    }
    let pipeline = vec![
        doc! { "$match": { "member_id": { "$in": member_ids } } },
        doc! { "$lookup": {
            "from": GROUPS, "localField": "group_id", "foreignField": "_id", "as": "group",
        } },
        doc! { "$project": { "_id": 0, "group_id": 1, "member_id": 1, "group.display_name": 1 } },
    ];
    let mut links = memberships(store)
        .aggregate(pipeline)
        .with_type::<Link>()
        .await?;
    while let Some(link) = links.try_next().await? {
        if let Some(group) = link.group.into_iter().next() {
            by_member.entry(link.member_id).or_default().push(GroupRef {
                id: link.group_id,
                display_name: group.display_name,
            });
        }
    }
    Ok(by_member)
}

/// Member ids of several groups at once, for list pages.
pub async fn member_ids_of(
    store: &Store,
    group_ids: &[&str],
) -> Result<HashMap<String, Vec<String>>, MongoError> {
    let mut by_group: HashMap<String, Vec<String>> = HashMap::new();
    if group_ids.is_empty() {
        return Ok(by_group);
    }
    let mut cursor = memberships(store)
        .find(doc! { "group_id": { "$in": group_ids } })
        .await?;
    while let Some(link) = cursor.try_next().await? {
        by_group
            .entry(link.group_id)
            .or_default()
            .push(link.member_id);
    }
    Ok(by_group)
}

/// A role a member holds through one of their groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedRole {
    pub group_id: String,
    pub group_name: String,
    pub role: Role,
}

/// The role mapping of every group each of `member_ids` is in, with the
/// group's id and name, in one round trip (memberships joined with their
/// groups). Groups that map to nothing are left out.
async fn mappings_of(
    store: &Store,
    member_ids: &[&str],
) -> Result<HashMap<String, Vec<(String, String, RoleMapping)>>, MongoError> {
    #[derive(Deserialize)]
    struct Mapped {
        display_name: String,
        role_mapping: Option<RoleMapping>,
    }
    #[derive(Deserialize)]
    struct Link {
        group_id: String,
        member_id: String,
        group: Vec<Mapped>,
    }
    let mut by_member: HashMap<String, Vec<(String, String, RoleMapping)>> = HashMap::new();
    if member_ids.is_empty() {
        return Ok(by_member);
    }
    let pipeline = vec![
        doc! { "$match": { "member_id": { "$in": member_ids } } },
        doc! { "$lookup": {
            "from": GROUPS, "localField": "group_id", "foreignField": "_id", "as": "group",
        } },
        doc! { "$project": {
            "_id": 0, "group_id": 1, "member_id": 1,
            "group.display_name": 1, "group.role_mapping": 1,
        } },
    ];
    let mut links = memberships(store)
        .aggregate(pipeline)
        .with_type::<Link>()
        .await?;
    while let Some(link) = links.try_next().await? {
        let Some(group) = link.group.into_iter().next() else {
            continue;
        };
        if let Some(mapping) = group.role_mapping {
            by_member.entry(link.member_id).or_default().push((
                link.group_id,
                group.display_name,
                mapping,
            ));
        }
    }
    Ok(by_member)
}

/// The roles each of `member_ids` holds through their groups' role
/// mappings, in one round trip.
pub async fn mapped_roles_of(
    store: &Store,
    member_ids: &[&str],
) -> Result<HashMap<String, Vec<MappedRole>>, MongoError> {
    Ok(mappings_of(store, member_ids)
        .await?
        .into_iter()
        .filter_map(|(member_id, mappings)| {
            let roles: Vec<MappedRole> = mappings
                .into_iter()
                .filter_map(|(group_id, group_name, mapping)| {
                    Some(MappedRole {
                        group_id,
                        group_name,
                        role: mapping.role?,
                    })
                })
                .collect();
            (!roles.is_empty()).then_some((member_id, roles))
        })
        .collect())
}

/// The project rights each of `member_ids` holds through their groups'
/// role mappings, in one round trip.
pub async fn mapped_project_rights_of(
    store: &Store,
    member_ids: &[&str],
) -> Result<HashMap<String, Vec<ProjectGrant>>, MongoError> {
    Ok(mappings_of(store, member_ids)
        .await?
        .into_iter()
        .map(|(member_id, mappings)| {
            let grants = mappings
                .into_iter()
                .flat_map(|(_, _, mapping)| mapping.project_rights)
                .collect();
            (member_id, grants)
        })
        .collect())
}

pub(super) async fn delete_for_org(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
) -> Result<(), MongoError> {
    groups(store)
        .delete_many(doc! { "org_id": org_id.as_str() })
        .session(&mut *session)
        .await?;
    memberships(store)
        .delete_many(doc! { "org_id": org_id.as_str() })
        .session(session)
        .await?;
    Ok(())
}

/// One page of an organization's groups in id (creation) order, after the
/// group `after`, and whether more follow.
pub async fn list_after(
    store: &Store,
    org_id: &OrgId,
    after: Option<&str>,
    limit: u32,
) -> Result<(Vec<Group>, bool), MongoError> {
    let (docs, more) = super::cursor_page(
        &groups(store),
        doc! { "org_id": org_id.as_str() },
        after,
        limit,
    )
    .await?;
    Ok((docs.into_iter().map(GroupDoc::into_group).collect(), more))
}

/// How many members each of `group_ids` has.
pub async fn member_counts(
    store: &Store,
    group_ids: &[&str],
) -> Result<HashMap<String, u64>, MongoError> {
    #[derive(Deserialize)]
    struct Count {
        #[serde(rename = "_id")]
        group_id: String,
        count: i64,
    }
    let mut counts = HashMap::new();
    if group_ids.is_empty() {
        return Ok(counts);
    }
    let mut cursor = memberships(store)
        .aggregate(vec![
            doc! { "$match": { "group_id": { "$in": group_ids } } },
            doc! { "$group": { "_id": "$group_id", "count": { "$sum": 1 } } },
        ])
        .with_type::<Count>()
        .await?;
    while let Some(count) = cursor.try_next().await? {
        counts.insert(count.group_id, count.count.unsigned_abs());
    }
    Ok(counts)
}

/// One page of a group's members in member id (creation) order, after the
/// member `after`, with the member id to pass as the next page's `after`
/// when more follow: the memberships, each joined with its member, in one
/// round trip. The cursor is the last membership's member id rather than
/// the last record's, so that a membership whose member is gone meanwhile
/// (left out of the page) still moves the cursor on.
pub async fn members_page(
    store: &Store,
    org_id: &OrgId,
    group_id: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<(Vec<UserRecord>, Option<String>), MongoError> {
    #[derive(Deserialize)]
    struct Link {
        member_id: String,
        member: Vec<MemberDoc>,
    }
    let mut filter = doc! { "group_id": group_id, "org_id": org_id.as_str() };
    if let Some(after) = after {
        filter.insert("member_id", doc! { "$gt": after });
    }
    let pipeline = vec![
        doc! { "$match": filter },
        // The `{group_id, member_id}` index serves both the match and the
        // order; one more than the page tells whether another follows.
        doc! { "$sort": { "member_id": 1 } },
        doc! { "$limit": i64::from(limit) + 1 },
        doc! { "$lookup": {
            "from": super::members::COLLECTION,
            "localField": "member_id",
            "foreignField": "_id",
            // The organization again, so that a membership can never show
            // another organization's member.
            "pipeline": [ { "$match": { "org_id": org_id.as_str() } } ],
            "as": "member",
        } },
        doc! { "$project": { "_id": 0, "member_id": 1, "member": 1 } },
    ];
    // The whole page in the first batch: each getMore is a round trip.
    let mut links: Vec<Link> = memberships(store)
        .aggregate(pipeline)
        .batch_size(limit.saturating_add(1))
        .with_type::<Link>()
        .await?
        .try_collect()
        .await?;
    let more = links.len() > limit as usize;
    links.truncate(limit as usize);
    let next = more
        .then(|| links.last().map(|link| link.member_id.clone()))
        .flatten();
    let records = links
        .into_iter()
        .filter_map(|link| link.member.into_iter().next())
        .map(MemberDoc::into_record)
        .collect();
    Ok((records, next))
}

/// Removes a project being deleted from every group's role mapping, in the
/// deletion's transaction.
pub async fn remove_project_rights(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
    project_id: &crate::domain::ProjectId,
) -> Result<(), MongoError> {
    groups(store)
        .update_many(
            doc! {
                "org_id": org_id.as_str(),
                "role_mapping.project_rights.project_id": project_id.as_str(),
            },
            doc! {
                "$pull": { "role_mapping.project_rights": { "project_id": project_id.as_str() } },
                "$inc": { "version": 1 },
            },
        )
        .session(session)
        .await?;
    Ok(())
}

/// The roles a member holds through groups, read in the caller's
/// transaction, for the rules that weigh a member's effective role.
pub async fn mapped_roles_in(
    store: &Store,
    session: &mut ClientSession,
    member_id: &str,
) -> Result<Vec<Role>, MongoError> {
    let group_ids: Vec<String> = memberships(store)
        .find(doc! { "member_id": member_id })
        .session(&mut *session)
        .await?
        .stream(&mut *session)
        .map_ok(|link| link.group_id)
        .try_collect()
        .await?;
    if group_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mapped: Vec<GroupDoc> = groups(store)
        .find(doc! { "_id": { "$in": group_ids }, "role_mapping.role": { "$ne": null } })
        .session(&mut *session)
        .await?
        .stream(&mut *session)
        .try_collect()
        .await?;
    Ok(mapped
        .into_iter()
        .filter_map(|group| group.role_mapping.and_then(|mapping| mapping.role))
        .collect())
}
