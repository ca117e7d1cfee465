//! Groups, whichever face acts: create, rename and change members (API,
//! SCIM PUT and PATCH, `/Bulk`), delete, and map to a role. Who is in a
//! group mapped to owner decides who is an owner, so changing its members
//! or deleting it needs an owner, or a SCIM token an owner gave that
//! authority.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use mongodb::ClientSession;
use serde_json::{Value, json};

use super::{Acting, VersionCheck};
use crate::domain::member::ProjectGrant;
use crate::domain::policy::{ensure_may_assign_role, ensure_may_change_group_members};
use crate::domain::{GroupId, Permission, Role};
use crate::error::{AppError, ScimType};
use crate::in_transaction;
use crate::protocol::filter::{AttrPath, CompValue, CompareOp, Filter, matches};
use crate::protocol::schema::ResourceKind;
use crate::store::groups::{Group, RoleMapping, Taken};
use crate::store::{self, Inserted, Store};

fn not_found() -> AppError {
    AppError::NotFound("group")
}

/// What the audit log keeps of a group, the same for every face.
pub fn snapshot(group: &Group) -> Value {
    json!({
        "displayName": group.display_name,
        "externalId": group.external_id,
        "role_mapping": group.role_mapping.as_ref().map(|mapping| json!({
            "role": mapping.role,
            "project_rights": mapping.project_rights,
        })),
    })
}

fn taken(which: Taken, display_name: &str, external_id: Option<&str>) -> AppError {
    AppError::Taken {
        problem: "group-exists",
        detail: match which {
            Taken::DisplayName => format!(
                "a group named `{display_name}` already exists in this organization (names are case-insensitive)"
            ),
            Taken::ExternalId => format!(
                "externalId `{}` is already taken in this organization",
                external_id.unwrap_or_default()
            ),
        },
    }
}

/// What to do with member ids that are not members of the organization.
#[derive(Debug, Clone, Copy)]
pub enum UnknownMembers {
    /// Leave them out (SCIM): RFC 7644 does not ask for the check, and an
    /// identity provider that adds a member before creating the user (or
    /// one since deleted) should not have the whole change, and its
    /// retries, refused. The audit event counts what was left out.
    Ignore,
    /// Refuse the request naming the entry of `field` (the API, where no
    /// identity provider adds members before creating them).
    Refuse { field: &'static str },
}

/// A change to a group's membership, applied in order in the transaction.
#[derive(Debug, Clone)]
pub enum MembershipChange {
    Add(Vec<String>, UnknownMembers),
    Remove(Vec<String>),
    RemoveAll,
    /// Remove the members a SCIM value filter (`members[…]`) selects.
    RemoveWhere(Filter),
}

/// The attributes of a group a face may set.
#[derive(Debug, Clone)]
pub struct GroupAttributes {
    pub display_name: String,
    pub external_id: Option<String>,
    /// Whether a SCIM body carried Muster's (read-only) extension object.
    pub extension_assigned: bool,
}

async fn known_members(
    store: &Store,
    session: &mut ClientSession,
    acting: &Acting,
    ids: &[String],
    unknown: UnknownMembers,
) -> Result<Vec<String>, AppError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let found = store::members::existing_ids(store, Some(session), &acting.org_id, ids).await?;
    let found: HashSet<String> = found.into_iter().collect();
    known_of(ids, &found, unknown)
}

/// `ids` that name members (`found`), in order; an unknown one is skipped
/// or refused as `unknown` says.
fn known_of(
    ids: &[String],
    found: &HashSet<String>,
    unknown: UnknownMembers,
) -> Result<Vec<String>, AppError> {
    match unknown {
        UnknownMembers::Ignore => Ok(ids
            .iter()
            .filter(|id| found.contains(*id))
            .cloned()
            .collect()),
        UnknownMembers::Refuse { field } => match ids.iter().position(|id| !found.contains(id)) {
            Some(i) => Err(AppError::invalid(
                format!("{field}[{i}]"),
                "no such member in this organization",
            )),
            None => Ok(ids.to_vec()),
        },
    }
}

/// What a write did to a group's membership, for its audit event.
#[derive(Default)]
struct MemberCounts {
    added: usize,
    removed: u64,
    ignored: usize,
}

impl MemberCounts {
    fn record(&self, after: &mut Value) {
        after["members_added"] = json!(self.added);
        after["members_removed"] = json!(self.removed);
        after["unknown_members_ignored"] = json!(self.ignored);
    }
}

/// Ids a `members[value eq "…"]` filter names, without reading the group.
fn ids_named_by(filter: &Filter) -> Option<Vec<String>> {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: CompValue::Str(id),
        } if path.name.eq_ignore_ascii_case("value") && path.sub_attr.is_none() => {
            Some(vec![id.clone()])
        }
        Filter::Or(left, right) => {
            let mut ids = ids_named_by(left)?;
            ids.extend(ids_named_by(right)?);
            Some(ids)
        }
        _ => None,
    }
}

async fn selected_by(
    store: &Store,
    session: &mut ClientSession,
    group_id: &str,
    filter: &Filter,
) -> Result<Vec<String>, AppError> {
    if let Some(ids) = ids_named_by(filter) {
        return Ok(ids);
    }
    let members = store::groups::member_ids(store, Some(&mut *session), group_id).await?;
    let value_path = Filter::ValuePath {
        path: AttrPath {
            urn: None,
            name: "members".into(),
            sub_attr: None,
        },
        filter: Box::new(filter.clone()),
    };
    let mut selected = Vec::new();
    for id in members {
        let probe = json!({ "members": [{ "value": id, "type": "User" }] });
        if matches(&value_path, &probe, ResourceKind::Group)
            .map_err(|err| AppError::scim(ScimType::InvalidPath, err.to_string()))?
        {
            selected.push(id);
        }
    }
    Ok(selected)
}

async fn apply_membership_changes(
    store: &Store,
    session: &mut ClientSession,
    acting: &Acting,
    group_id: &str,
    changes: &[MembershipChange],
    now: DateTime<Utc>,
) -> Result<MemberCounts, AppError> {
    let mut counts = MemberCounts::default();
    for change in changes {
        match change {
            MembershipChange::Add(ids, unknown) => {
                let (found, in_group) =
                    store::groups::membership_of(store, session, &acting.org_id, group_id, ids)
                        .await?;
                let known = known_of(ids, &found, *unknown)?;
                counts.ignored += ids.len() - known.len();
                let new: Vec<&String> = known.iter().filter(|id| !in_group.contains(*id)).collect();
                counts.added += store::groups::insert_memberships(
                    store,
                    session,
                    &acting.org_id,
                    group_id,
                    &new,
                    now,
                )
                .await?;
            }
            MembershipChange::Remove(ids) => {
                counts.removed +=
                    store::groups::remove_members(store, session, group_id, ids).await?
            }
            MembershipChange::RemoveAll => {
                counts.removed +=
                    store::groups::remove_all_members(store, session, group_id).await?
            }
            MembershipChange::RemoveWhere(filter) => {
                let ids = selected_by(store, session, group_id, filter).await?;
                let count = store::groups::remove_members(store, session, group_id, &ids).await?;
                if count == 0 {
                    return Err(AppError::scim(
                        ScimType::NoTarget,
                        "the member filter matches no member",
                    ));
                }
                counts.removed += count;
            }
        }
    }
    Ok(counts)
}

async fn members_set(
    store: &Store,
    session: &mut ClientSession,
    group_id: &str,
) -> Result<HashSet<String>, AppError> {
    Ok(store::groups::member_ids(store, Some(session), group_id)
        .await?
        .into_iter()
        .collect())
}

/// Creates a group with its first members.
pub async fn create(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    attributes: GroupAttributes,
    members: &[String],
    unknown: UnknownMembers,
) -> Result<(Group, u64), AppError> {
    acting.require(Permission::ManageNonOwnerMembers)?;
    let group = Group {
        id: GroupId::new().into_string(),
        org_id: acting.org_id.clone(),
        display_name: attributes.display_name,
        external_id: attributes.external_id,
        role_mapping: None,
        extension_assigned: attributes.extension_assigned,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    in_transaction!(store, |session| -> Result<(Group, u64), AppError> {
        let external_id = group.external_id.as_deref();
        if let Some(which) = store::groups::find_taken(
            store,
            Some(&mut *session),
            &acting.org_id,
            &group.display_name,
            external_id,
            None,
        )
        .await?
        {
            return Err(taken(which, &group.display_name, external_id));
        }
        let known = known_members(store, session, acting, members, unknown).await?;
        if store::groups::insert(store, session, &group).await? == Inserted::AlreadyExists {
            return Err(taken(Taken::DisplayName, &group.display_name, None));
        }
        // A new group has no members yet: nothing to check them against.
        let known: Vec<&String> = known.iter().collect();
        let added = store::groups::insert_memberships(
            store,
            session,
            &acting.org_id,
            &group.id,
            &known,
            now,
        )
        .await?;
        let mut after = snapshot(&group);
        MemberCounts {
            added,
            removed: 0,
            ignored: members.len() - known.len(),
        }
        .record(&mut after);
        let event = acting.event(
            now,
            "group.created",
            ("group", &group.id),
            None,
            Some(after),
        );
        store::audit::record(store, session, &event).await?;
        Ok((group.clone(), added as u64))
    })
}

/// Renames a group or changes its members (API PATCH, SCIM PUT and
/// PATCH): `attributes` turns the current group into its new attributes.
pub async fn update(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    id: &str,
    check_version: VersionCheck<'_>,
    attributes: impl Fn(&Group) -> Result<GroupAttributes, AppError>,
    changes: &[MembershipChange],
) -> Result<Group, AppError> {
    acting.require(Permission::ManageNonOwnerMembers)?;
    in_transaction!(store, |session| -> Result<Group, AppError> {
        // The version is bumped first: concurrent changes to one group
        // then conflict on their first write, back off and retry, instead
        // of conflicting after doing all their work. A refusal below
        // aborts the transaction, and the bump with it.
        let current = store::groups::bump(store, session, &acting.org_id, id, now)
            .await?
            .ok_or_else(not_found)?;
        check_version(current.version)?;
        let GroupAttributes {
            display_name,
            external_id,
            extension_assigned,
        } = attributes(&current)?;
        // The unique indexes keep unchanged attributes unique: only a new
        // displayName or externalId needs looking up (a members-only PATCH
        // has neither).
        let renamed = display_name.to_lowercase() != current.display_name.to_lowercase()
            || external_id != current.external_id;
        if renamed
            && let Some(which) = store::groups::find_taken(
                store,
                Some(&mut *session),
                &acting.org_id,
                &display_name,
                external_id.as_deref(),
                Some(id),
            )
            .await?
        {
            return Err(taken(which, &display_name, external_id.as_deref()));
        }
        let group = Group {
            display_name,
            external_id,
            extension_assigned,
            updated_at: now,
            version: current.version + 1,
            ..current.clone()
        };
        let changed = renamed || extension_assigned != current.extension_assigned;
        if changed && !store::groups::replace(store, session, &group, group.version).await? {
            return Err(not_found());
        }
        // Only a change of who is in an owner group grants or takes the
        // owner role: an identity provider re-sending the same members
        // (PUT) changes nothing and is not refused.
        let guarded = mapped_role(&current) == Some(Role::Owner) && !changes.is_empty();
        let before = if guarded {
            Some(members_set(store, session, id).await?)
        } else {
            None
        };
        let counts = apply_membership_changes(store, session, acting, id, changes, now).await?;
        if let Some(before) = before
            && before != members_set(store, session, id).await?
        {
            ensure_may_change_group_members(acting.role, Some(Role::Owner))
                .map_err(|err| acting.refused(err))?;
        }
        let mut after = snapshot(&group);
        counts.record(&mut after);
        let event = acting.event(
            now,
            "group.updated",
            ("group", id),
            Some(snapshot(&current)),
            Some(after),
        );
        store::audit::record(store, session, &event).await?;
        Ok(group)
    })
}

fn mapped_role(group: &Group) -> Option<Role> {
    group.role_mapping.as_ref().and_then(|mapping| mapping.role)
}

/// Deletes a group; its members stay in the organization and lose what it
/// granted.
pub async fn delete(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    id: &str,
    check_version: VersionCheck<'_>,
) -> Result<(), AppError> {
    acting.require(Permission::ManageNonOwnerMembers)?;
    in_transaction!(store, |session| -> Result<(), AppError> {
        let current = store::groups::get(store, Some(&mut *session), &acting.org_id, id)
            .await?
            .ok_or_else(not_found)?;
        check_version(current.version)?;
        ensure_may_change_group_members(acting.role, mapped_role(&current))
            .map_err(|err| acting.refused(err))?;
        if !store::groups::delete(store, session, &acting.org_id, id).await? {
            return Err(not_found());
        }
        let event = acting.event(
            now,
            "group.deleted",
            ("group", id),
            Some(snapshot(&current)),
            None,
        );
        store::audit::record(store, session, &event).await?;
        Ok(())
    })
}

/// Maps a group to a role and project rights (or to nothing): its members
/// hold them while they are in it.
pub async fn map_role(
    store: &Store,
    now: DateTime<Utc>,
    acting: &Acting,
    id: &str,
    role: Option<Role>,
    project_rights: &[ProjectGrant],
) -> Result<Group, AppError> {
    acting.require(Permission::ManageNonOwnerMembers)?;
    in_transaction!(store, |session| -> Result<Group, AppError> {
        let current = store::groups::get(store, Some(&mut *session), &acting.org_id, id)
            .await?
            .ok_or_else(not_found)?;
        ensure_may_assign_role(acting.role, mapped_role(&current), role)
            .map_err(|err| acting.refused(err))?;
        super::members::ensure_projects_exist(store, session, &acting.org_id, project_rights)
            .await?;
        let mut group = current.clone();
        group.role_mapping = (role.is_some() || !project_rights.is_empty()).then(|| RoleMapping {
            role,
            project_rights: project_rights.to_vec(),
        });
        group.updated_at = now;
        group.version = current.version + 1;
        if !store::groups::replace(store, session, &group, current.version).await? {
            return Err(not_found());
        }
        let event = acting.event(
            now,
            "group.role_mapped",
            ("group", id),
            Some(snapshot(&current)),
            Some(snapshot(&group)),
        );
        store::audit::record(store, session, &event).await?;
        Ok(group)
    })
}
