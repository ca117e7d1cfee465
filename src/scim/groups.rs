//! `/Groups`: groups of the token's organization. Membership lives in its
//! own collection, so member changes are applied as additions and
//! removals, never by rewriting a list.

use std::collections::HashMap;

use poem::http::StatusCode;
use poem::web::Path;
use poem::{Request, Response, handler};
use serde_json::{Map, Value, json};

use super::filter::{Filter, matches};
use super::params::{ListParams, from_query, from_search};
use super::patch::{Op, Operation, apply, parse_request};
use super::schema::{
    GROUP_SCHEMA, MUSTER_GROUP_SCHEMA, Projection, ResourceKind, normalize_resource, project,
};
use super::user::{etag, format_time};
use super::users::resource_error;
use super::{ScimBody, ScimContext, check_if_match, not_modified, resource_response};
use crate::domain::GroupId;
use crate::error::{AppError, ScimType};
use crate::in_transaction;
use crate::store::groups::{Group, Taken};
use crate::store::{self, Inserted};

fn not_found() -> AppError {
    AppError::NotFound("group")
}

fn parse_id(raw: &str) -> Result<String, AppError> {
    GroupId::parse(raw)
        .map(GroupId::into_string)
        .map_err(|_| not_found())
}

/// The full resource, before projection. `members` is `None` when the
/// response leaves them out, so they are not read at all.
pub fn group_resource(group: &Group, members: Option<&[String]>, base_url: &str) -> Value {
    let mut resource = Map::new();
    let mut schemas = vec![Value::from(GROUP_SCHEMA)];
    if group.role_mapping.is_some() || group.extension_assigned {
        schemas.push(Value::from(MUSTER_GROUP_SCHEMA));
    }
    resource.insert("schemas".into(), Value::Array(schemas));
    resource.insert("id".into(), Value::from(group.id.as_str()));
    if let Some(external_id) = &group.external_id {
        resource.insert("externalId".into(), Value::from(external_id.as_str()));
    }
    resource.insert(
        "displayName".into(),
        Value::from(group.display_name.as_str()),
    );
    if let Some(members) = members {
        let members: Vec<Value> = members
            .iter()
            .map(|id| json!({ "value": id, "$ref": format!("{base_url}/Users/{id}"), "type": "User" }))
            .collect();
        resource.insert("members".into(), Value::Array(members));
    }
    if group.role_mapping.is_some() || group.extension_assigned {
        let rights: Vec<Value> = group
            .role_mapping
            .iter()
            .flat_map(|mapping| &mapping.project_rights)
            .map(|grant| json!({ "projectId": grant.project_id.as_str(), "rights": grant.rights }))
            .collect();
        let mut extension = Map::new();
        if let Some(role) = group.role_mapping.as_ref().and_then(|mapping| mapping.role) {
            extension.insert("role".into(), Value::from(role.as_str()));
        }
        if !rights.is_empty() {
            extension.insert("projectRights".into(), Value::Array(rights));
        }
        resource.insert(MUSTER_GROUP_SCHEMA.into(), Value::Object(extension));
    }
    resource.insert(
        "meta".into(),
        json!({
            "resourceType": "Group",
            "created": format_time(group.created_at),
            "lastModified": format_time(group.updated_at),
            "location": format!("{base_url}/Groups/{}", group.id),
            "version": etag(group.version),
        }),
    );
    Value::Object(resource)
}

fn wants_members(projection: &Projection) -> bool {
    let named = |paths: &[super::filter::AttrPath]| {
        paths.iter().any(|p| p.name.eq_ignore_ascii_case("members"))
    };
    (projection.attributes.is_empty() || named(&projection.attributes))
        && !named(&projection.excluded_attributes)
}

/// A validated Group body.
struct GroupInput {
    display_name: String,
    external_id: Option<String>,
    members: Vec<String>,
    /// Whether the body carries Muster's (read-only) extension object.
    extension_assigned: bool,
}

fn member_ids(members: Option<&Value>) -> Result<Vec<String>, AppError> {
    let Some(Value::Array(items)) = members else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .map(|item| {
            if item
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("group"))
            {
                return Err(AppError::scim(
                    ScimType::InvalidValue,
                    "groups cannot contain groups here",
                ));
            }
            item.get("value")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    AppError::scim(
                        ScimType::InvalidValue,
                        "each member needs a `value` (the user's id)",
                    )
                })
        })
        .collect()
}

fn group_input(body: &Value) -> Result<GroupInput, AppError> {
    let (attributes, _password) =
        normalize_resource(ResourceKind::Group, body).map_err(resource_error)?;
    let display_name = match attributes.get("displayName") {
        Some(Value::String(name)) if !name.trim().is_empty() => name.clone(),
        _ => {
            return Err(AppError::scim(
                ScimType::InvalidValue,
                "displayName is required",
            ));
        }
    };
    let extension_assigned = body.as_object().is_some_and(|object| {
        object
            .iter()
            .any(|(key, value)| key.eq_ignore_ascii_case(MUSTER_GROUP_SCHEMA) && !value.is_null())
    });
    Ok(GroupInput {
        extension_assigned,
        display_name,
        external_id: attributes
            .get("externalId")
            .and_then(Value::as_str)
            .map(str::to_owned),
        members: member_ids(attributes.get("members"))?,
    })
}

fn taken(which: Taken, display_name: &str, external_id: Option<&str>) -> AppError {
    AppError::scim(
        ScimType::Uniqueness,
        match which {
            Taken::DisplayName => {
                format!(
                    "a group named `{display_name}` already exists in this organization (names are case-insensitive)"
                )
            }
            Taken::ExternalId => format!(
                "externalId `{}` is already taken in this organization",
                external_id.unwrap_or_default()
            ),
        },
    )
}

/// The ids among `ids` that are users of this organization. Others are
/// left out rather than failing the request: RFC 7644 does not ask for
/// the check, and an identity provider that adds a member before creating
/// the user (or one since deleted) should not have the whole change, and
/// its retries, refused. The audit event counts what was left out.
async fn known_users(
    context: &ScimContext,
    session: &mut mongodb::ClientSession,
    ids: &[String],
) -> Result<Vec<String>, AppError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let found =
        store::members::existing_ids(context.state.store(), Some(session), &context.org_id, ids)
            .await?;
    Ok(ids
        .iter()
        .filter(|id| found.contains(id))
        .cloned()
        .collect())
}

fn audit_view(group: &Group) -> Value {
    json!({ "displayName": group.display_name, "externalId": group.external_id })
}

async fn respond_with(
    context: &ScimContext,
    req: &Request,
    status: StatusCode,
    group: &Group,
) -> Result<Response, AppError> {
    let projection = from_query(req)?.projection;
    let members = if wants_members(&projection) {
        Some(store::groups::member_ids(context.state.store(), None, &group.id).await?)
    } else {
        None
    };
    let body = project(
        ResourceKind::Group,
        &group_resource(group, members.as_deref(), &context.base_url),
        &projection,
    );
    let location = format!("{}/Groups/{}", context.base_url, group.id);
    let location = (status == StatusCode::CREATED).then_some(location.as_str());
    Ok(resource_response(status, &body, group.version, location))
}

/// One page of groups, rendered.
pub async fn page(
    context: &ScimContext,
    params: &ListParams,
    skip: u64,
    limit: u64,
) -> Result<(Vec<Value>, u64), AppError> {
    let (filter, sort) = super::params::query(ResourceKind::Group, params)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let (groups, total) = store::groups::list(
        context.state.store(),
        &context.org_id,
        filter,
        sort,
        skip,
        limit,
    )
    .await?;
    let members: HashMap<String, Vec<String>> = if wants_members(&params.projection) {
        let ids: Vec<&str> = groups.iter().map(|g| g.id.as_str()).collect();
        store::groups::member_ids_of(context.state.store(), &ids).await?
    } else {
        HashMap::new()
    };
    let wanted = wants_members(&params.projection);
    let resources = groups
        .iter()
        .map(|group| {
            let members = wanted.then(|| members.get(&group.id).map_or(&[][..], Vec::as_slice));
            project(
                ResourceKind::Group,
                &group_resource(group, members, &context.base_url),
                &params.projection,
            )
        })
        .collect();
    Ok((resources, total))
}

#[handler]
pub async fn list(context: ScimContext, req: &Request) -> poem::Result<Response> {
    Ok(super::params::list(&context, ResourceKind::Group, from_query(req)?).await?)
}

#[handler]
pub async fn search(context: ScimContext, body: ScimBody) -> poem::Result<Response> {
    Ok(super::params::list(&context, ResourceKind::Group, from_search(&body.0)?).await?)
}

#[handler]
pub async fn create(context: ScimContext, req: &Request, body: ScimBody) -> poem::Result<Response> {
    let input = group_input(&body.0)?;
    let now = context.state.clock().now();
    let group = Group {
        id: GroupId::new().into_string(),
        org_id: context.org_id.clone(),
        display_name: input.display_name,
        external_id: input.external_id,
        role_mapping: None,
        extension_assigned: input.extension_assigned,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let store = context.state.store();
    let org_id = &context.org_id;
    in_transaction!(store, |session| -> Result<(), AppError> {
        if let Some(which) = store::groups::find_taken(
            store,
            session,
            org_id,
            &group.display_name,
            group.external_id.as_deref(),
            None,
        )
        .await?
        {
            return Err(taken(
                which,
                &group.display_name,
                group.external_id.as_deref(),
            ));
        }
        let members = known_users(&context, session, &input.members).await?;
        if store::groups::insert(store, session, &group).await? == Inserted::AlreadyExists {
            return Err(taken(Taken::DisplayName, &group.display_name, None));
        }
        store::groups::add_members(store, session, org_id, &group.id, &members, now).await?;
        let mut after = audit_view(&group);
        after["members_added"] = json!(members.len());
        after["unknown_members_ignored"] = json!(input.members.len() - members.len());
        store::audit::record(
            store,
            session,
            &context.event("group.created", "group", &group.id, None, Some(after)),
        )
        .await?;
        Ok(())
    })?;
    Ok(respond_with(&context, req, StatusCode::CREATED, &group).await?)
}

#[handler]
pub async fn read(
    context: ScimContext,
    req: &Request,
    Path(id): Path<String>,
) -> poem::Result<Response> {
    let id = parse_id(&id)?;
    let group = store::groups::get(context.state.store(), None, &context.org_id, &id)
        .await
        .map_err(AppError::from)?
        .ok_or_else(not_found)?;
    if not_modified(req.headers(), group.version) {
        return Ok(super::not_modified_response(group.version));
    }
    Ok(respond_with(&context, req, StatusCode::OK, &group).await?)
}

/// A change to membership, applied in order inside the transaction.
#[derive(Debug)]
enum MemberChange {
    Add(Vec<String>),
    Remove(Vec<String>),
    RemoveAll,
    /// Remove the members a value filter selects.
    RemoveWhere(Filter),
}

fn is_members(name: &str) -> bool {
    name.eq_ignore_ascii_case("members")
}

/// Splits PATCH operations into membership changes and the rest, which
/// apply to the group's other attributes.
fn split_operations(
    operations: Vec<Operation>,
) -> Result<(Vec<MemberChange>, Vec<Operation>), AppError> {
    let mut changes = Vec::new();
    let mut others = Vec::new();
    for operation in operations {
        match &operation.path {
            Some(path) if is_members(&path.attr.name) => {
                let ids = || {
                    member_ids(
                        operation
                            .value
                            .as_ref()
                            .map(|v| match v {
                                Value::Array(_) => v.clone(),
                                other => Value::Array(vec![other.clone()]),
                            })
                            .as_ref(),
                    )
                };
                match (
                    operation.op,
                    &path.value_filter,
                    path.sub_attr.is_some() || path.attr.sub_attr.is_some(),
                ) {
                    (_, _, true) => {
                        return Err(AppError::scim(
                            ScimType::Mutability,
                            "a member's sub-attributes cannot be changed; add or remove the member",
                        ));
                    }
                    (Op::Add, None, _) => changes.push(MemberChange::Add(ids()?)),
                    (Op::Replace, None, _) => {
                        changes.push(MemberChange::RemoveAll);
                        changes.push(MemberChange::Add(ids()?));
                    }
                    (Op::Remove, None, _) if operation.value.is_some() => {
                        changes.push(MemberChange::Remove(ids()?))
                    }
                    (Op::Remove, None, _) => changes.push(MemberChange::RemoveAll),
                    (Op::Remove, Some(filter), _) => {
                        changes.push(MemberChange::RemoveWhere(filter.clone()))
                    }
                    (Op::Add | Op::Replace, Some(_), _) => {
                        return Err(AppError::scim(
                            ScimType::InvalidPath,
                            "members are added or replaced with path `members`, not with a filter",
                        ));
                    }
                }
            }
            None => {
                // Okta renames with `{"op":"replace","value":{"id":…,"displayName":…}}`,
                // possibly with members in the same value.
                let mut value = operation.value.clone().unwrap_or(Value::Null);
                if let Some(object) = value.as_object_mut() {
                    let key = object.keys().find(|k| is_members(k)).cloned();
                    if let Some(key) = key {
                        let members = object.remove(&key);
                        let ids = member_ids(members.as_ref())?;
                        if operation.op == Op::Replace {
                            changes.push(MemberChange::RemoveAll);
                        }
                        changes.push(MemberChange::Add(ids));
                    }
                    if !object.is_empty() {
                        others.push(Operation {
                            value: Some(value),
                            ..operation
                        });
                    }
                }
            }
            Some(_) => others.push(operation),
        }
    }
    Ok((changes, others))
}

/// Ids a `members[value eq "…"]` filter names, without reading the group.
fn ids_named_by(filter: &Filter) -> Option<Vec<String>> {
    use super::filter::{CompValue, CompareOp};
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

async fn apply_member_changes(
    context: &ScimContext,
    session: &mut mongodb::ClientSession,
    group_id: &str,
    changes: &[MemberChange],
) -> Result<MemberCounts, AppError> {
    let store = context.state.store();
    let now = context.state.clock().now();
    let mut counts = MemberCounts::default();
    for change in changes {
        match change {
            MemberChange::Add(ids) => {
                let known = known_users(context, session, ids).await?;
                counts.ignored += ids.len() - known.len();
                counts.added += store::groups::add_members(
                    store,
                    session,
                    &context.org_id,
                    group_id,
                    &known,
                    now,
                )
                .await?;
            }
            MemberChange::Remove(ids) => {
                counts.removed +=
                    store::groups::remove_members(store, session, group_id, ids).await?
            }
            MemberChange::RemoveAll => {
                counts.removed +=
                    store::groups::remove_all_members(store, session, group_id).await?
            }
            MemberChange::RemoveWhere(filter) => {
                let ids = match ids_named_by(filter) {
                    Some(ids) => ids,
                    None => {
                        let members =
                            store::groups::member_ids(store, Some(&mut *session), group_id).await?;
                        let value_path = Filter::ValuePath {
                            path: super::filter::AttrPath {
                                urn: None,
                                name: "members".into(),
                                sub_attr: None,
                            },
                            filter: Box::new(filter.clone()),
                        };
                        let mut selected = Vec::new();
                        for id in members {
                            let probe = json!({ "members": [{ "value": id, "type": "User" }] });
                            if matches(&value_path, &probe, ResourceKind::Group).map_err(|err| {
                                AppError::scim(ScimType::InvalidPath, err.to_string())
                            })? {
                                selected.push(id);
                            }
                        }
                        selected
                    }
                };
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

/// What a write did to a group's membership, for its audit event.
#[derive(Default)]
struct MemberCounts {
    added: usize,
    removed: u64,
    ignored: usize,
}

/// Applies attribute changes and membership changes to a group in one
/// transaction. Shared by PUT and PATCH.
async fn write_group(
    context: &ScimContext,
    req: &Request,
    id: &str,
    changes: &[MemberChange],
    attributes: impl Fn(&Group) -> Result<(String, Option<String>, bool), AppError>,
    action: &'static str,
) -> Result<Group, AppError> {
    let store = context.state.store();
    let org_id = &context.org_id;
    let now = context.state.clock().now();
    in_transaction!(store, |session| -> Result<Group, AppError> {
        let current = store::groups::get(store, Some(&mut *session), org_id, id)
            .await?
            .ok_or_else(not_found)?;
        check_if_match(req.headers(), current.version)?;
        let (display_name, external_id, extension_assigned) = attributes(&current)?;
        if let Some(which) = store::groups::find_taken(
            store,
            session,
            org_id,
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
        // The version is bumped first: concurrent changes to one group
        // then conflict on their first write, back off and retry, instead
        // of conflicting after doing all their work.
        if !store::groups::replace(store, session, &group, current.version).await? {
            return Err(not_found());
        }
        let counts = apply_member_changes(context, session, id, changes).await?;
        let mut after = audit_view(&group);
        after["members_added"] = json!(counts.added);
        after["members_removed"] = json!(counts.removed);
        after["unknown_members_ignored"] = json!(counts.ignored);
        store::audit::record(
            store,
            session,
            &context.event(action, "group", id, Some(audit_view(&current)), Some(after)),
        )
        .await?;
        Ok(group)
    })
}

#[handler]
pub async fn replace(
    context: ScimContext,
    req: &Request,
    Path(id): Path<String>,
    body: ScimBody,
) -> poem::Result<Response> {
    let id = parse_id(&id)?;
    let input = group_input(&body.0)?;
    let changes = [
        MemberChange::RemoveAll,
        MemberChange::Add(input.members.clone()),
    ];
    let group = write_group(
        &context,
        req,
        &id,
        &changes,
        |_| {
            Ok((
                input.display_name.clone(),
                input.external_id.clone(),
                input.extension_assigned,
            ))
        },
        "group.replaced",
    )
    .await?;
    Ok(respond_with(&context, req, StatusCode::OK, &group).await?)
}

#[handler]
pub async fn patch(
    context: ScimContext,
    req: &Request,
    Path(id): Path<String>,
    body: ScimBody,
) -> poem::Result<Response> {
    let id = parse_id(&id)?;
    let (changes, others) = split_operations(parse_request(&body.0)?)?;
    let group = write_group(
        &context,
        req,
        &id,
        &changes,
        |current| {
            if others.is_empty() {
                return Ok((
                    current.display_name.clone(),
                    current.external_id.clone(),
                    current.extension_assigned,
                ));
            }
            let resource = group_resource(current, None, &context.base_url);
            let patched = apply(ResourceKind::Group, &resource, &others)?;
            let input = group_input(&patched)?;
            Ok((
                input.display_name,
                input.external_id,
                input.extension_assigned,
            ))
        },
        "group.patched",
    )
    .await?;
    Ok(respond_with(&context, req, StatusCode::OK, &group).await?)
}

#[handler]
pub async fn delete(
    context: ScimContext,
    req: &Request,
    Path(id): Path<String>,
) -> poem::Result<Response> {
    let id = parse_id(&id)?;
    let store = context.state.store();
    let org_id = &context.org_id;
    in_transaction!(store, |session| -> Result<(), AppError> {
        let current = store::groups::get(store, Some(&mut *session), org_id, &id)
            .await?
            .ok_or_else(not_found)?;
        check_if_match(req.headers(), current.version)?;
        store::groups::delete(store, session, org_id, &id).await?;
        store::audit::record(
            store,
            session,
            &context.event(
                "group.deleted",
                "group",
                &id,
                Some(audit_view(&current)),
                None,
            ),
        )
        .await?;
        Ok(())
    })?;
    Ok(Response::builder().status(StatusCode::NO_CONTENT).finish())
}
