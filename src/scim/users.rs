//! `/Users`: members of the token's organization.

use std::collections::HashMap;

use poem::http::StatusCode;
use poem::web::Path;
use poem::{Request, Response, handler};
use serde_json::{Value, json};

use super::params::{ListParams, from_query, from_search};
use super::schema::{Projection, ResourceError, ResourceKind, normalize_resource, project};
use super::user::{GroupRef, UserProfile, UserRecord, user_resource};
use super::{ScimBody, ScimContext, check_if_match, not_modified, resource_response};
use crate::auth::password::hash_idp_password;
use crate::domain::member::status_for_idp_active;
use crate::domain::{Member, MemberId, MemberStatus, Role, Standing};
use crate::error::{AppError, ScimType};
use crate::in_transaction;
use crate::store::{self, Inserted};

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

fn taken(taken: store::members::Taken, profile: &UserProfile) -> AppError {
    let detail = match taken {
        store::members::Taken::UserName => format!(
            "userName `{}` is already taken in this organization (userName is case-insensitive)",
            profile.user_name
        ),
        store::members::Taken::ExternalId => format!(
            "externalId `{}` is already taken in this organization",
            profile.external_id.as_deref().unwrap_or_default()
        ),
    };
    AppError::scim(ScimType::Uniqueness, detail)
}

/// A validated User body: the profile, the `active` flag if sent, and the
/// password if sent.
struct UserInput {
    profile: UserProfile,
    active: Option<bool>,
    password: Option<String>,
}

fn user_input(body: &Value) -> Result<UserInput, AppError> {
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

/// What the audit log keeps of a user: enough to see what changed.
fn audit_view(profile: &UserProfile, status: MemberStatus) -> Value {
    json!({
        "userName": profile.user_name,
        "externalId": profile.external_id,
        "status": status.as_str(),
        "attributes": Value::Object(profile.attributes.clone()),
    })
}

fn wants_groups(projection: &Projection) -> bool {
    let named = |paths: &[super::filter::AttrPath]| {
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
    let groups = groups_for(context, &[id], &projection).await?;
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
    let (records, total) = store::members::list_users(
        context.state.store(),
        &context.org_id,
        filter,
        sort,
        skip,
        limit,
    )
    .await?;
    let ids: Vec<&str> = records.iter().map(|r| r.member.id.as_str()).collect();
    let groups = groups_for(context, &ids, &params.projection).await?;
    let resources = records
        .iter()
        .map(|record| {
            let groups = groups
                .get(record.member.id.as_str())
                .map_or(&[][..], Vec::as_slice);
            render(context, record, groups, &params.projection)
        })
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
    let password_hash = hash(&context, input.password).await?;
    let now = context.state.clock().now();
    let profile = input.profile;
    let login_email = profile.login_email();
    let status = match input.active {
        Some(false) => MemberStatus::Inactive,
        _ => MemberStatus::Pending,
    };
    let store = context.state.store();
    let org_id = &context.org_id;
    let member = in_transaction!(store, |session| -> Result<Member, AppError> {
        if let Some(which) =
            store::members::find_taken(store, session, org_id, &profile, None).await?
        {
            return Err(taken(which, &profile));
        }
        // One login per person: an existing account with this email is
        // linked, not duplicated.
        let mut account_id = None;
        if let Some(email) = &login_email
            && let Some(existing) =
                store::accounts::find_by_email(store, Some(&mut *session), email).await?
        {
            let already = store::members::find_by_account(
                store,
                Some(&mut *session),
                org_id,
                &existing.account.id,
            )
            .await?;
            if already.is_some() {
                return Err(AppError::scim(
                    ScimType::Uniqueness,
                    format!(
                        "{email} is already a member of this organization under another userName"
                    ),
                ));
            }
            account_id = Some(existing.account.id);
        }
        let member = Member {
            id: MemberId::new(),
            org_id: org_id.clone(),
            account_id,
            role: Role::Viewer,
            status,
            suspended_until: None,
            project_rights: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        if store::members::insert(store, session, &member, &profile).await?
            == Inserted::AlreadyExists
        {
            return Err(AppError::scim(
                ScimType::Uniqueness,
                "the userName or externalId was taken concurrently; look the user up and retry",
            ));
        }
        if let Some(hash) = &password_hash {
            store::members::set_idp_password_hash(store, session, &member.id, hash).await?;
        }
        let created = context.event(
            "member.created",
            "member",
            member.id.as_str(),
            None,
            Some(audit_view(&profile, status)),
        );
        let mut events = vec![created];
        if let Some(email) = &login_email
            && let Some(invitation) =
                crate::invitations::create_scim_activation(store, session, &member, email, now)
                    .await?
        {
            events.push(context.event(
                "invitation.created",
                "invitation",
                invitation.id.as_str(),
                None,
                Some(serde_json::json!({
                    "kind": "scim_activation",
                    "email": invitation.email.as_str(),
                    "member_id": member.id.as_str(),
                })),
            ));
        }
        store::audit::record_many(store, session, &events).await?;
        Ok(member)
    })?;
    let record = UserRecord {
        member,
        profile,
        version: 1,
    };
    Ok(respond_with(&context, req, StatusCode::CREATED, &record).await?)
}

#[handler]
pub async fn read(
    context: ScimContext,
    req: &Request,
    Path(id): Path<String>,
) -> poem::Result<Response> {
    let id = parse_id(&id)?;
    let record = store::members::get_user(context.state.store(), None, &context.org_id, &id)
        .await
        .map_err(AppError::from)?
        .ok_or_else(not_found)?;
    if not_modified(req.headers(), record.version) {
        return Ok(super::not_modified_response(record.version));
    }
    Ok(respond_with(&context, req, StatusCode::OK, &record).await?)
}

/// Applies a new profile and IdP `active` flag to a member, enforcing the
/// last-owner rule, and writes it with its audit event. Shared by PUT and
/// PATCH.
pub async fn write_user(
    context: &ScimContext,
    req: &Request,
    id: &MemberId,
    change: impl Fn(&UserRecord) -> Result<(UserProfile, Option<bool>, Option<String>), AppError>,
    action: &'static str,
) -> Result<UserRecord, AppError> {
    let store = context.state.store();
    let org_id = &context.org_id;
    let now = context.state.clock().now();
    in_transaction!(store, |session| -> Result<UserRecord, AppError> {
        let current = store::members::get_user(store, Some(&mut *session), org_id, id)
            .await?
            .ok_or_else(not_found)?;
        check_if_match(req.headers(), current.version)?;
        let (profile, active, password) = change(&current)?;
        if let Some(which) =
            store::members::find_taken(store, session, org_id, &profile, Some(id)).await?
        {
            return Err(taken(which, &profile));
        }
        let mut member = current.member.clone();
        if let Some(active) = active {
            member.status =
                status_for_idp_active(member.status, active, member.account_id.is_some());
        }
        member.status = current.member.status.transition(member.status)?;
        let before = Standing {
            role: current.member.role,
            status: current.member.status,
        };
        let after = Standing {
            role: member.role,
            status: member.status,
        };
        store::members::ensure_an_owner_remains(store, session, org_id, before, Some(after))
            .await??;
        member.updated_at = now;
        if !store::members::replace_user(store, session, &member, &profile, current.version).await?
        {
            return Err(not_found());
        }
        if let Some(password) = &password {
            store::members::set_idp_password_hash(store, session, id, password).await?;
        }
        if member.status == MemberStatus::Inactive {
            revoke_activation(context, store, session, id, now).await?;
        }
        let change = context.event(
            action,
            "member",
            id.as_str(),
            Some(audit_view(&current.profile, current.member.status)),
            Some(audit_view(&profile, member.status)),
        );
        store::audit::record(store, session, &change).await?;
        Ok(UserRecord {
            member,
            profile,
            version: current.version + 1,
        })
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
    let input = user_input(&body.0)?;
    let password_hash = hash(&context, input.password).await?;
    let profile = input.profile;
    let active = input.active;
    let record = write_user(
        &context,
        req,
        &id,
        |_| Ok((profile.clone(), active, password_hash.clone())),
        "member.replaced",
    )
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
    let operations = super::patch::parse_request(&body.0)?;
    let password_hash = hash(&context, super::patch::new_password(&operations)).await?;
    let record = write_user(
        &context,
        req,
        &id,
        |current| {
            let resource = user_resource(current, &[], &context.base_url);
            let patched = super::patch::apply(ResourceKind::User, &resource, &operations)?;
            let input = user_input(&patched)?;
            Ok((input.profile, input.active, password_hash.clone()))
        },
        "member.patched",
    )
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
    let store = context.state.store();
    let org_id = &context.org_id;
    in_transaction!(store, |session| -> Result<(), AppError> {
        let current = store::members::get_user(store, Some(&mut *session), org_id, &id)
            .await?
            .ok_or_else(not_found)?;
        check_if_match(req.headers(), current.version)?;
        let before = Standing {
            role: current.member.role,
            status: current.member.status,
        };
        store::members::ensure_an_owner_remains(store, session, org_id, before, None).await??;
        revoke_activation(&context, store, session, &id, context.state.clock().now()).await?;
        store::members::delete(store, session, org_id, &id).await?;
        store::groups::forget_member(store, session, id.as_str()).await?;
        let removed = context.event(
            "member.deleted",
            "member",
            id.as_str(),
            Some(audit_view(&current.profile, current.member.status)),
            None,
        );
        store::audit::record(store, session, &removed).await?;
        Ok(())
    })?;
    Ok(Response::builder().status(StatusCode::NO_CONTENT).finish())
}

/// A member the identity provider deactivated or deleted will not be
/// activated: its pending activation invitation is revoked, with an audit
/// event.
async fn revoke_activation(
    context: &ScimContext,
    store: &store::Store,
    session: &mut mongodb::ClientSession,
    member_id: &MemberId,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), AppError> {
    if let Some(invitation) =
        crate::invitations::revoke_scim_activation(store, session, member_id, now).await?
    {
        let revoked = context.event(
            "invitation.revoked",
            "invitation",
            invitation.id.as_str(),
            Some(serde_json::json!({ "status": "pending" })),
            Some(serde_json::json!({ "status": "revoked", "member_id": member_id.as_str() })),
        );
        store::audit::record(store, session, &revoked).await?;
    }
    Ok(())
}
