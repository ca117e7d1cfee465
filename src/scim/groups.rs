//! `/Groups`: groups of the token's organization. Membership lives in its
//! own collection, so member changes are applied as additions and
//! removals, never by rewriting a list.

use std::collections::HashMap;

use poem::http::StatusCode;
use poem::web::Path;
use poem::{Request, Response, handler};
use serde_json::{Map, Value, json};

use super::params::{ListParams, from_query, from_search};
use super::users::resource_error;
use super::{ScimBody, ScimContext, check_if_match, not_modified, resource_response};
use crate::app::{
    self,
    groups::{GroupAttributes, MembershipChange, UnknownMembers},
};
use crate::domain::GroupId;
use crate::error::{AppError, ScimType};
use crate::protocol::patch::{Op, Operation, apply, parse_request};
use crate::protocol::schema::{
    GROUP_SCHEMA, MUSTER_GROUP_SCHEMA, Projection, ResourceKind, normalize_resource, project,
};
use crate::protocol::user::{etag, format_time};
use crate::store;
use crate::store::groups::Group;

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
    let named = |paths: &[crate::protocol::filter::AttrPath]| {
        paths.iter().any(|p| p.name.eq_ignore_ascii_case("members"))
    };
    (projection.attributes.is_empty() || named(&projection.attributes))
        && !named(&projection.excluded_attributes)
}

/// A validated Group body.
#[derive(Debug)]
pub struct GroupInput {
    pub display_name: String,
    pub external_id: Option<String>,
    pub members: Vec<String>,
    /// Whether the body carries Muster's (read-only) extension object.
    pub extension_assigned: bool,
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

/// Decodes a POST or PUT body, or a patched resource. Public for the
/// fuzzers (`fuzz/`).
pub fn group_input(body: &Value) -> Result<GroupInput, AppError> {
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
        context.org_id(),
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
    let (group, _) = app::groups::create(
        context.state.store(),
        context.state.clock().now(),
        &context.acting,
        GroupAttributes {
            display_name: input.display_name,
            external_id: input.external_id,
            extension_assigned: input.extension_assigned,
        },
        &input.members,
        UnknownMembers::Ignore,
    )
    .await?;
    Ok(respond_with(&context, req, StatusCode::CREATED, &group).await?)
}

#[handler]
pub async fn read(
    context: ScimContext,
    req: &Request,
    Path(id): Path<String>,
) -> poem::Result<Response> {
    let id = parse_id(&id)?;
    let group = store::groups::get(context.state.store(), None, context.org_id(), &id)
        .await
        .map_err(AppError::from)?
        .ok_or_else(not_found)?;
    if not_modified(req.headers(), group.version) {
        return Ok(super::not_modified_response(group.version));
    }
    Ok(respond_with(&context, req, StatusCode::OK, &group).await?)
}

fn is_members(name: &str) -> bool {
    name.eq_ignore_ascii_case("members")
}

/// Splits PATCH operations into membership changes and the rest, which
/// apply to the group's other attributes. Public for the fuzzers (`fuzz/`).
pub fn split_operations(
    operations: Vec<Operation>,
) -> Result<(Vec<MembershipChange>, Vec<Operation>), AppError> {
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
                    (Op::Add, None, _) => {
                        changes.push(MembershipChange::Add(ids()?, UnknownMembers::Ignore))
                    }
                    (Op::Replace, None, _) => {
                        changes.push(MembershipChange::RemoveAll);
                        changes.push(MembershipChange::Add(ids()?, UnknownMembers::Ignore));
                    }
                    (Op::Remove, None, _) if operation.value.is_some() => {
                        changes.push(MembershipChange::Remove(ids()?))
                    }
                    (Op::Remove, None, _) => changes.push(MembershipChange::RemoveAll),
                    (Op::Remove, Some(filter), _) => {
                        changes.push(MembershipChange::RemoveWhere(filter.clone()))
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
                            changes.push(MembershipChange::RemoveAll);
                        }
                        changes.push(MembershipChange::Add(ids, UnknownMembers::Ignore));
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

/// An identity provider's new version of a group, through the use case
/// every face shares.
async fn update(
    context: &ScimContext,
    req: &Request,
    id: &str,
    changes: &[MembershipChange],
    attributes: impl Fn(&Group) -> Result<GroupAttributes, AppError>,
) -> Result<Group, AppError> {
    app::groups::update(
        context.state.store(),
        context.state.clock().now(),
        &context.acting,
        id,
        &|version| check_if_match(req.headers(), version),
        attributes,
        changes,
    )
    .await
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
        MembershipChange::RemoveAll,
        MembershipChange::Add(input.members.clone(), UnknownMembers::Ignore),
    ];
    let group = update(&context, req, &id, &changes, |_| {
        Ok(GroupAttributes {
            display_name: input.display_name.clone(),
            external_id: input.external_id.clone(),
            extension_assigned: input.extension_assigned,
        })
    })
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
    let (changes, others) = split_operations(parse_request(&body.0).map_err(AppError::from)?)?;
    let group = update(&context, req, &id, &changes, |current| {
        if others.is_empty() {
            return Ok(GroupAttributes {
                display_name: current.display_name.clone(),
                external_id: current.external_id.clone(),
                extension_assigned: current.extension_assigned,
            });
        }
        let resource = group_resource(current, None, &context.base_url);
        let patched = apply(ResourceKind::Group, &resource, &others)?;
        let input = group_input(&patched)?;
        Ok(GroupAttributes {
            display_name: input.display_name,
            external_id: input.external_id,
            extension_assigned: input.extension_assigned,
        })
    })
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
    app::groups::delete(
        context.state.store(),
        context.state.clock().now(),
        &context.acting,
        &id,
        &|version| check_if_match(req.headers(), version),
    )
    .await?;
    Ok(Response::builder().status(StatusCode::NO_CONTENT).finish())
}
