//! Members of an organization: list, read, change role/status/rights,
//! remove, and leave.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::{Example, MaybeUndefined};
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::access::{Granted, OrgAccess, role_of};
use super::examples::{GROUP_ID, MEMBER_ID, PROJECT_ID, example_time};
use super::paging;
use super::projects::{EffectiveProjectRightsView, effective_rights_view, project_rights_of};
use super::text::Text;
use super::{ApiTags, BearerAuth};
use crate::app;
use crate::domain::member::ProjectGrant;
use crate::domain::policy::MemberChange;
use crate::domain::role::effective_role;
use crate::domain::{MemberId, MemberStatus, Permission, ProjectId, ProjectRight, Role};
use crate::error::AppError;
use crate::protocol::user::UserRecord;
use crate::state::AppState;
use crate::store::groups::MappedRole;
use crate::store::members::MemberQuery;
use crate::store::{self};

pub struct MembersApi;

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none, example)]
pub struct MemberView {
    pub id: String,
    /// The login behind the membership; absent for a person an identity
    /// provider created who has not signed in yet.
    pub account_id: Option<String>,
    pub user_name: String,
    /// The primary (or first) email.
    pub email: Option<String>,
    pub display_name: Option<String>,
    /// The effective role: the highest of `direct_role` and `group_roles`.
    pub role: String,
    /// The role given to the member directly (by an admin, an invitation
    /// or the organization's creation).
    pub direct_role: String,
    /// Roles held through groups mapped to a role.
    pub group_roles: Vec<GroupRoleView>,
    /// The status that counts now: a suspension whose end has passed reads
    /// `active`.
    pub status: String,
    pub suspended_until: Option<DateTime<Utc>>,
    /// Rights on single projects (contributors and viewers; owners and
    /// admins hold every right on every project).
    pub project_rights: Vec<ProjectRightsView>,
    /// What the member may do on projects: `project_rights` joined with
    /// the rights of their groups, under the effective role. Only in
    /// `GET /orgs/{org}/members/{member}`.
    pub effective_project_rights: Option<EffectiveProjectRightsView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the person last signed in to Muster (with a password, in any
    /// organization); absent if they never have.
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

impl Example for MemberView {
    fn example() -> Self {
        MemberView {
            id: MEMBER_ID.to_owned(),
            account_id: Some("01933eba-a680-71c3-943b-34675b967715".to_owned()),
            user_name: "ada@example.com".to_owned(),
            email: Some("ada@example.com".to_owned()),
            display_name: Some("Ada Lovelace".to_owned()),
            role: "contributor".to_owned(),
            direct_role: "viewer".to_owned(),
            group_roles: vec![GroupRoleView {
                group_id: GROUP_ID.to_owned(),
                group_name: "Engineering".to_owned(),
                role: "contributor".to_owned(),
            }],
            status: "active".to_owned(),
            suspended_until: None,
            project_rights: vec![ProjectRightsView {
                project_id: PROJECT_ID.into(),
                rights: vec!["read".into(), "write".into()],
            }],
            effective_project_rights: Some(EffectiveProjectRightsView::example()),
            created_at: example_time("2024-11-18T10:05:00Z"),
            updated_at: example_time("2025-01-10T11:42:00Z"),
            last_sign_in_at: Some(example_time("2025-02-03T08:15:00Z")),
        }
    }
}

#[derive(Debug, Object)]
pub struct GroupRoleView {
    pub group_id: String,
    pub group_name: String,
    pub role: String,
}

#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct ProjectRightsView {
    pub project_id: Text,
    /// Any of `read`, `write` (create and update), `delete`.
    pub rights: Vec<Text>,
}

#[derive(Debug, Object)]
#[oai(example)]
pub struct MemberPage {
    pub items: Vec<MemberView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

impl Example for MemberPage {
    fn example() -> Self {
        MemberPage {
            items: vec![MemberView::example()],
            next_cursor: Some(MEMBER_ID.to_owned()),
        }
    }
}

/// Only the fields sent change.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct UpdateMemberRequest {
    /// `owner`, `admin`, `contributor` or `viewer`. Only owners grant,
    /// change or remove the owner role.
    #[oai(nullable)]
    pub role: Option<Text>,
    /// `active`, `inactive` or `suspended` (`pending` only for an inactive
    /// member who never signed in).
    #[oai(nullable)]
    pub status: Option<Text>,
    /// The end of a suspension (with `status: "suspended"`); `null` for
    /// until further notice.
    #[oai(nullable)]
    pub suspended_until: MaybeUndefined<DateTime<Utc>>,
    /// Replaces the member's per-project rights.
    #[oai(nullable, validator(max_items = 1000))]
    pub project_rights: Option<Vec<ProjectRightsView>>,
}

impl Example for UpdateMemberRequest {
    fn example() -> Self {
        UpdateMemberRequest {
            role: Some("contributor".into()),
            status: Some("suspended".into()),
            suspended_until: MaybeUndefined::Value(example_time("2030-01-31T00:00:00Z")),
            project_rights: None,
        }
    }
}

#[derive(ApiResponse)]
pub enum Removed {
    /// The membership is gone; the account and the audit trail remain.
    #[oai(status = 204)]
    Removed,
}

fn member_not_found() -> AppError {
    AppError::NotFound("member")
}

/// Shared with a group's member list (`api::groups`), which shows the same
/// email as the members list.
pub(crate) fn primary_email(record: &UserRecord) -> Option<String> {
    let emails = record.profile.attributes.get("emails")?.as_array()?;
    let primary = emails
        .iter()
        .find(|email| email.get("primary").and_then(|p| p.as_bool()) == Some(true))
        .or_else(|| emails.first())?;
    primary.get("value")?.as_str().map(str::to_owned)
}

fn member_view(record: &UserRecord, groups: &[MappedRole], now: DateTime<Utc>) -> MemberView {
    let member = &record.member;
    let role = effective_role(member.role, groups.iter().map(|group| group.role));
    MemberView {
        id: member.id.to_string(),
        account_id: member.account_id.as_ref().map(ToString::to_string),
        user_name: record.profile.user_name.clone(),
        email: primary_email(record),
        display_name: record.profile.display_name().map(str::to_owned),
        role: role.to_string(),
        direct_role: member.role.to_string(),
        group_roles: groups
            .iter()
            .map(|group| GroupRoleView {
                group_id: group.group_id.clone(),
                group_name: group.group_name.clone(),
                role: group.role.to_string(),
            })
            .collect(),
        status: member.effective_status(now).to_string(),
        suspended_until: member.suspended_until,
        project_rights: rights_view(&member.project_rights),
        effective_project_rights: None,
        created_at: member.created_at,
        updated_at: member.updated_at,
        last_sign_in_at: member.last_sign_in_at,
    }
}

pub fn rights_view(grants: &[ProjectGrant]) -> Vec<ProjectRightsView> {
    grants
        .iter()
        .map(|grant| ProjectRightsView {
            project_id: Text(grant.project_id.to_string()),
            rights: grant.rights.iter().map(|r| r.as_str().into()).collect(),
        })
        .collect()
}

fn parse_member_id(raw: &str) -> Result<MemberId, AppError> {
    MemberId::parse(raw).map_err(|_| member_not_found())
}

pub fn parse_rights(raw: Vec<ProjectRightsView>) -> Result<Vec<ProjectGrant>, AppError> {
    let mut grants: Vec<ProjectGrant> = Vec::with_capacity(raw.len());
    for (i, grant) in raw.into_iter().enumerate() {
        let project_id = ProjectId::parse(&grant.project_id).map_err(|_| {
            AppError::invalid(
                format!("project_rights[{i}].project_id"),
                "not a project id",
            )
        })?;
        let mut rights = Vec::new();
        for right in &grant.rights {
            let right = ProjectRight::ALL
                .into_iter()
                .find(|r| r.as_str() == &**right)
                .ok_or_else(|| {
                    AppError::invalid(
                        format!("project_rights[{i}].rights"),
                        format!(
                            "unknown right {:?}; expected read, write or delete",
                            right.chars().take(32).collect::<String>()
                        ),
                    )
                })?;
            if !rights.contains(&right) {
                rights.push(right);
            }
        }
        rights.sort();
        if grants.iter().any(|g| g.project_id == project_id) {
            return Err(AppError::invalid(
                format!("project_rights[{i}].project_id"),
                "the project is listed twice",
            ));
        }
        grants.push(ProjectGrant { project_id, rights });
    }
    Ok(grants)
}

/// The filters of `GET /orgs/{org}/members` as the store takes them,
/// refused as the API refuses them; the console's filters go through here
/// too.
pub(crate) fn member_query(
    role: Option<&str>,
    status: Option<&str>,
    text: Option<String>,
    cursor: Option<&str>,
    limit: u32,
) -> Result<MemberQuery, AppError> {
    Ok(MemberQuery {
        role: role
            .map(str::parse::<Role>)
            .transpose()
            .map_err(|err| AppError::invalid("role", err))?,
        status: status
            .map(str::parse::<MemberStatus>)
            .transpose()
            .map_err(|err| AppError::invalid("status", err))?,
        text: match text {
            Some(q) if q.chars().count() > 200 => {
                return Err(AppError::invalid("q", "at most 200 characters"));
            }
            q => q,
        },
        after: paging::cursor(cursor, MemberId::parse)?,
        limit,
    })
}

/// One page of the organization's members as `GET /orgs/{org}/members`
/// answers it; the console's members table shows the same page.
pub(crate) async fn list_page(
    state: &AppState,
    granted: &Granted<'_>,
    query: &MemberQuery,
) -> Result<MemberPage, AppError> {
    let now = state.clock().now();
    let (records, more) =
        store::members::list_page(state.store(), granted.org_id(), query, now).await?;
    let ids: Vec<&str> = records.iter().map(|r| r.member.id.as_str()).collect();
    let mapped = store::groups::mapped_roles_of(state.store(), &ids).await?;
    let empty = Vec::new();
    let next_cursor = more
        .then(|| records.last().map(|r| r.member.id.to_string()))
        .flatten();
    let items = records
        .iter()
        .map(|record| {
            let groups = mapped.get(record.member.id.as_str()).unwrap_or(&empty);
            member_view(record, groups, now)
        })
        .collect();
    Ok(MemberPage { items, next_cursor })
}

async fn view_of(state: &AppState, record: &UserRecord) -> Result<MemberView, AppError> {
    let mapped =
        store::groups::mapped_roles_of(state.store(), &[record.member.id.as_str()]).await?;
    let groups = mapped
        .get(record.member.id.as_str())
        .map(Vec::as_slice)
        .unwrap_or_default();
    Ok(member_view(record, groups, state.clock().now()))
}

/// One member as `GET /orgs/{org}/members/{member}` answers it, with the
/// effective project rights; the console's member page shows the same.
pub(crate) async fn member_page(
    state: &AppState,
    granted: &Granted<'_>,
    member: &str,
) -> Result<MemberView, AppError> {
    let id = parse_member_id(member)?;
    let record = store::members::get_user(state.store(), None, granted.org_id(), &id)
        .await?
        .ok_or_else(member_not_found)?;
    let mut view = view_of(state, &record).await?;
    let role = role_of(state, &record.member).await?;
    let rights = project_rights_of(state, &record.member, role).await?;
    view.effective_project_rights = Some(effective_rights_view(&rights));
    Ok(view)
}

/// `PATCH /orgs/{org}/members/{member}`: the request's fields parsed as
/// the API parses them, then `app::members::update`. The console's member
/// forms send the same request, so both faces refuse the same things.
pub(crate) async fn update(
    state: &AppState,
    granted: &Granted<'_>,
    member: &str,
    request: UpdateMemberRequest,
) -> Result<MemberView, AppError> {
    let id = parse_member_id(member)?;
    let UpdateMemberRequest {
        role,
        status,
        suspended_until,
        project_rights,
    } = request;
    let change = MemberChange {
        role: role
            .as_deref()
            .map(str::parse::<Role>)
            .transpose()
            .map_err(|err| AppError::invalid("role", err))?,
        status: status
            .as_deref()
            .map(str::parse::<MemberStatus>)
            .transpose()
            .map_err(|err| AppError::invalid("status", err))?,
        suspended_until: match suspended_until {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(at) => Some(Some(at)),
        },
        touches_project_rights: project_rights.is_some(),
    };
    let rights = project_rights.map(parse_rights).transpose()?;
    let record = app::members::update(
        state.store(),
        state.clock().now(),
        &granted.acting(),
        &id,
        &change,
        rights.as_deref(),
    )
    .await?;
    view_of(state, &record).await
}

/// `DELETE /orgs/{org}/members/{member}`: `app::members::remove`, for the
/// API and the console alike.
pub(crate) async fn remove(
    state: &AppState,
    granted: &Granted<'_>,
    member: &str,
) -> Result<(), AppError> {
    let id = parse_member_id(member)?;
    app::members::remove(
        state.store(),
        state.clock().now(),
        &granted.acting(),
        &id,
        &app::any_version,
    )
    .await
}

#[OpenApi(tag = "ApiTags::Members")]
impl MembersApi {
    /// List members
    ///
    /// In the order they joined, a page at a time. `role` matches the
    /// direct role; `status` the status that counts now; `q` a part of the
    /// userName, an email or the display name, ignoring case.
    #[oai(path = "/orgs/:org/members", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        /// `owner`, `admin`, `contributor` or `viewer`.
        role: Query<Option<String>>,
        /// `active`, `inactive`, `pending` or `suspended`.
        status: Query<Option<String>>,
        /// Text to look for in userName, emails and display name.
        q: Query<Option<String>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1 to 200.
        #[oai(
            default = "paging::default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<u32>,
    ) -> Result<Json<MemberPage>, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        let granted = access.require(Permission::ViewDirectory)?;
        let query = member_query(
            role.0.as_deref(),
            status.0.as_deref(),
            q.0,
            cursor.0.as_deref(),
            limit.0,
        )?;
        Ok(Json(list_page(&state, &granted, &query).await?))
    }

    /// Get a member
    ///
    /// With the effective role and where it comes from: the direct role and
    /// every group mapped to a role.
    #[oai(path = "/orgs/:org/members/:member", method = "get")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        /// The member's id.
        member: Path<String>,
    ) -> Result<Json<MemberView>, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        let granted = access.require(Permission::ViewDirectory)?;
        Ok(Json(member_page(&state, &granted, &member).await?))
    }

    /// Change a member's role, status or project rights
    ///
    /// Owners and admins change members who are not owners; only owners
    /// grant, change or remove the owner role. The last active owner cannot
    /// be downgraded, suspended or deactivated (409). Suspending or
    /// deactivating stops the member's sessions and tokens in this
    /// organization at once.
    #[oai(path = "/orgs/:org/members/:member", method = "patch")]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        /// The member's id.
        member: Path<String>,
        body: Json<UpdateMemberRequest>,
    ) -> Result<Json<MemberView>, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        let granted = access.require(Permission::ManageNonOwnerMembers)?;
        Ok(Json(update(&state, &granted, &member, body.0).await?))
    }

    /// Remove a member
    ///
    /// Owners and admins remove members who are not owners; only owners
    /// remove an owner, and never the last active one (409). The account
    /// and the audit trail remain.
    #[oai(path = "/orgs/:org/members/:member", method = "delete")]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        /// The member's id.
        member: Path<String>,
    ) -> Result<Removed, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        let granted = access.require(Permission::RemoveNonOwnerMembers)?;
        remove(&state, &granted, &member).await?;
        Ok(Removed::Removed)
    }

    /// Leave an organization
    ///
    /// Owners and admins may leave on their own (others ask an admin); the
    /// last active owner cannot leave (409).
    #[oai(path = "/orgs/:org/leave", method = "post")]
    async fn leave(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
    ) -> Result<Removed, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        leave(&state, &access).await?;
        Ok(Removed::Removed)
    }
}

/// `POST /orgs/{org}/leave`'s work once the access is loaded, for the API
/// and the console alike (the last active owner is refused, 409).
pub async fn leave(state: &AppState, access: &OrgAccess) -> Result<(), AppError> {
    app::members::leave(
        state.store(),
        state.clock().now(),
        &access.acting(),
        &access.member.id,
    )
    .await
}
