//! `/Users`: members of the token's organization.

use std::collections::HashMap;

use poem::http::StatusCode;
use poem::web::Path;
use poem::{Request, Response, handler};
use serde_json::Value;

use super::params::{ListParams, from_query, from_search};
use super::{ScimBody, ScimContext, check_if_match, not_modified, resource_response};
use crate::app::{self, members::Provisioned};
use crate::auth::password::hash_idp_password;
use crate::domain::MemberId;
use crate::error::{AppError, ScimType};
use crate::protocol::schema::{
    Projection, ResourceError, ResourceKind, normalize_resource, project,
};
use crate::protocol::user::{GroupRef, UserProfile, UserRecord, user_resource};
use crate::store;

pub fn resource_error(err: ResourceError) -> AppError {
    let scim_type = match err {
        ResourceError::InvalidSyntax(_) => ScimType::InvalidSyntax,
        ResourceError::InvalidValue(_) => ScimType::InvalidValue,
        ResourceError::Mutability(_) => ScimType::Mutability,
    };
    AppError::scim(scim_type, err.to_string())
}

fn not_found() -> AppError {
    AppError::NotFound("user")
}

fn parse_id(raw: &str) -> Result<MemberId, AppError> {
    MemberId::parse(raw).map_err(|_| not_found())
}

/// A validated User body: the profile, the `active` flag if sent, and the
/// password if sent.
#[derive(Debug)]
pub struct UserInput {
    pub profile: UserProfile,
    pub active: Option<bool>,
    pub password: Option<String>,
}

/// Decodes a POST or PUT body, or a patched resource. Public for the
/// fuzzers (`fuzz/`).
pub fn user_input(body: &Value) -> Result<UserInput, AppError> {
    let (mut attributes, password) =
        normalize_resource(ResourceKind::User, body).map_err(resource_error)?;
    let user_name = match attributes.remove("userName") {
        Some(Value::String(name)) if !name.trim().is_empty() => name,
        _ => {
            return Err(AppError::scim(
                ScimType::InvalidValue,
                "userName is required",
            ));
        }
    };
    let external_id = match attributes.remove("externalId") {
        Some(Value::String(id)) => Some(id),
        _ => None,
    };
    let active = attributes
        .remove("active")
        .and_then(|value| value.as_bool());
    Ok(UserInput {
        profile: UserProfile {
            user_name,
            external_id,
            attributes,
            active_assigned: active.is_some(),
        },
        active,
        password,
    })
}

async fn hash(context: &ScimContext, password: Option<String>) -> Result<Option<String>, AppError> {
    let Some(password) = password else {
        return Ok(None);
    };
    let hashed = context
        .state
        .hashing()
        .run(move || hash_idp_password(&password))
        .await?
        .map_err(|err| AppError::scim(ScimType::InvalidValue, format!("password: {err}")))?;
    Ok(Some(hashed.as_str().to_owned()))
}

fn wants_groups(projection: &Projection) -> bool {
    let named = |paths: &[crate::protocol::filter::AttrPath]| {
        paths.iter().any(|p| p.name.eq_ignore_ascii_case("groups"))
    };
    (projection.attributes.is_empty() || named(&projection.attributes))
        && !named(&projection.excluded_attributes)
}

async fn groups_for(
    context: &ScimContext,
    ids: &[&str],
    projection: &Projection,
) -> Result<HashMap<String, Vec<GroupRef>>, AppError> {
    if !wants_groups(projection) {
        return Ok(HashMap::new());
    }
    Ok(store::groups::groups_of(context.state.store(), ids).await?)
}

fn render(
    context: &ScimContext,
    record: &UserRecord,
    groups: &[GroupRef],
    projection: &Projection,
) -> Value {
    project(
        ResourceKind::User,
        &user_resource(record, groups, &context.base_url),
        projection,
    )
}

async fn respond_with(
    context: &ScimContext,
    req: &Request,
    status: StatusCode,
    record: &UserRecord,
) -> Result<Response, AppError> {
    let projection = from_query(req)?.projection;
    let id = record.member.id.as_str();
    // A user just created is in no group yet: no need to ask.
    let groups = if status == StatusCode::CREATED {
        HashMap::new()
    } else {
        groups_for(context, &[id], &projection).await?
    };
    let body = render(
        context,
        record,
        groups.get(id).map_or(&[][..], Vec::as_slice),
        &projection,
    );
    let location = format!("{}/Users/{id}", context.base_url);
    let location = (status == StatusCode::CREATED).then_some(location.as_str());
    Ok(resource_response(status, &body, record.version, location))
}

/// One page of users, rendered.
pub async fn page(
    context: &ScimContext,
    params: &ListParams,
    skip: u64,
    limit: u64,
) -> Result<(Vec<Value>, u64), AppError> {
    let (filter, sort) = super::params::query(ResourceKind::User, params)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let (users, total) = store::members::list_users(
        context.state.store(),
        context.org_id(),
        filter,
        sort,
        skip,
        limit,
        wants_groups(&params.projection),
    )
    .await?;
    let resources = users
        .iter()
        .map(|(record, groups)| render(context, record, groups, &params.projection))
        .collect();
    Ok((resources, total))
}

#[handler]
pub async fn list(context: ScimContext, req: &Request) -> poem::Result<Response> {
    Ok(super::params::list(&context, ResourceKind::User, from_query(req)?).await?)
}

#[handler]
pub async fn search(context: ScimContext, body: ScimBody) -> poem::Result<Response> {
    Ok(super::params::list(&context, ResourceKind::User, from_search(&body.0)?).await?)
}

#[handler]
pub async fn create(context: ScimContext, req: &Request, body: ScimBody) -> poem::Result<Response> {
    let input = user_input(&body.0)?;
    let provisioned = Provisioned {
        password_hash: hash(&context, input.password).await?,
        profile: input.profile,
        active: input.active,
    };
    let record = app::members::provision(
        context.state.store(),
        context.state.clock().now(),
        &context.acting,
        &provisioned,
        context.state.settings().invitations.max_per_org_per_hour,
    )
    .await?;
    Ok(respond_with(&context, req, StatusCode::CREATED, &record).await?)
}

#[handler]
pub async fn read(
    context: ScimContext,
    req: &Request,
    Path(id): Path<String>,
) -> poem::Result<Response> {
    let id = parse_id(&id)?;
    let projection = from_query(req)?.projection;
    let store = context.state.store();
    // With its groups, the user is one aggregation: one round trip.
    let found = if wants_groups(&projection) {
        store::members::get_user_with_groups(store, context.org_id(), &id).await
    } else {
        store::members::get_user(store, None, context.org_id(), &id)
            .await
            .map(|found| found.map(|record| (record, Vec::new())))
    };
    let (record, groups) = found.map_err(AppError::from)?.ok_or_else(not_found)?;
    if not_modified(req.headers(), record.version) {
        return Ok(super::not_modified_response(record.version));
    }
    let body = render(&context, &record, &groups, &projection);
    Ok(resource_response(
        StatusCode::OK,
        &body,
        record.version,
        None,
    ))
}

/// An identity provider's new version of its user, through the use case
/// every face shares.
async fn reprovision(
    context: &ScimContext,
    req: &Request,
    id: &MemberId,
    change: impl Fn(&UserRecord) -> Result<Provisioned, AppError>,
) -> Result<UserRecord, AppError> {
    app::members::reprovision(
        context.state.store(),
        context.state.clock().now(),
        &context.acting,
        id,
        &|version| check_if_match(req.headers(), version),
        change,
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
    let input = user_input(&body.0)?;
    let password_hash = hash(&context, input.password).await?;
    let record = reprovision(&context, req, &id, |_| {
        Ok(Provisioned {
            profile: input.profile.clone(),
            active: input.active,
            password_hash: password_hash.clone(),
        })
    })
    .await?;
    Ok(respond_with(&context, req, StatusCode::OK, &record).await?)
}

#[handler]
pub async fn patch(
    context: ScimContext,
    req: &Request,
    Path(id): Path<String>,
    body: ScimBody,
) -> poem::Result<Response> {
    let id = parse_id(&id)?;
    let operations = crate::protocol::patch::parse_request(&body.0).map_err(AppError::from)?;
    let password_hash = hash(&context, crate::protocol::patch::new_password(&operations)).await?;
    let record = reprovision(&context, req, &id, |current| {
        let resource = user_resource(current, &[], &context.base_url);
        let patched = crate::protocol::patch::apply(ResourceKind::User, &resource, &operations)?;
        let input = user_input(&patched)?;
        Ok(Provisioned {
            profile: input.profile,
            active: input.active,
            password_hash: password_hash.clone(),
        })
    })
    .await?;
    Ok(respond_with(&context, req, StatusCode::OK, &record).await?)
}

#[handler]
pub async fn delete(
    context: ScimContext,
    req: &Request,
    Path(id): Path<String>,
) -> poem::Result<Response> {
    let id = parse_id(&id)?;
    app::members::remove(
        context.state.store(),
        context.state.clock().now(),
        &context.acting,
        &id,
        &|version| check_if_match(req.headers(), version),
    )
    .await?;
    Ok(Response::builder().status(StatusCode::NO_CONTENT).finish())
}
