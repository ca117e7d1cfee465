//! Groups and their role mappings: the same groups SCIM provisions, for
//! organizations that manage them by hand.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::access::OrgAccess;
use super::examples::{GROUP_ID, MEMBER_ID, PROJECT_ID, example_time};
use super::members::{ProjectRightsView, parse_rights, primary_email, rights_view};
use super::paging;
use super::text::Text;
use super::{ApiTags, BearerAuth};
use crate::app::{
    self,
    groups::{GroupAttributes, MembershipChange, UnknownMembers},
};
use crate::domain::{GroupId, MemberId, Permission, Role};
use crate::error::AppError;
use crate::protocol::user::UserRecord;
use crate::state::AppState;
use crate::store::groups::Group;
use crate::store::{self, Store};

pub struct GroupsApi;

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none, example)]
pub struct GroupView {
    pub id: String,
    pub display_name: String,
    /// The identity provider's id for the group, when SCIM created it.
    pub external_id: Option<String>,
    /// The role and project rights membership grants; absent when the
    /// group grants nothing.
    pub role_mapping: Option<RoleMappingView>,
    pub member_count: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Example for GroupView {
    fn example() -> Self {
        GroupView {
            id: GROUP_ID.to_owned(),
            display_name: "Engineering".to_owned(),
            external_id: None,
            role_mapping: Some(RoleMappingView {
                role: Some("contributor".to_owned()),
                project_rights: vec![ProjectRightsView {
                    project_id: PROJECT_ID.into(),
                    rights: vec!["read".into(), "write".into(), "delete".into()],
                }],
            }),
            member_count: 12,
            created_at: example_time("2024-11-12T14:00:00Z"),
            updated_at: example_time("2025-01-10T11:40:00Z"),
        }
    }
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RoleMappingView {
    pub role: Option<String>,
    pub project_rights: Vec<ProjectRightsView>,
}

#[derive(Debug, Object)]
#[oai(example)]
pub struct GroupPage {
    pub items: Vec<GroupView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

impl Example for GroupPage {
    fn example() -> Self {
        GroupPage {
            items: vec![GroupView::example()],
            next_cursor: Some(GROUP_ID.to_owned()),
        }
    }
}

/// A member of a group: who they are and their status. Their role and
/// rights are in `GET /orgs/{org}/members/{member}`.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none, example)]
pub struct GroupMemberView {
    /// The member's id, as in `GET /orgs/{org}/members/{member}`.
    pub id: String,
    pub user_name: String,
    pub display_name: Option<String>,
    /// The primary (or first) email.
    pub email: Option<String>,
    /// The status that counts now: a suspension whose end has passed reads
    /// `active`.
    pub status: String,
}

impl Example for GroupMemberView {
    fn example() -> Self {
        GroupMemberView {
            id: MEMBER_ID.to_owned(),
            user_name: "ada@example.com".to_owned(),
            display_name: Some("Ada Lovelace".to_owned()),
            email: Some("ada@example.com".to_owned()),
            status: "active".to_owned(),
        }
    }
}

#[derive(Debug, Object)]
#[oai(example)]
pub struct GroupMemberPage {
    pub items: Vec<GroupMemberView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

impl Example for GroupMemberPage {
    fn example() -> Self {
        GroupMemberPage {
            items: vec![GroupMemberView::example()],
            next_cursor: Some(MEMBER_ID.to_owned()),
        }
    }
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct CreateGroupRequest {
    #[oai(validator(min_length = 1, max_length = 256))]
    pub display_name: Text,
    /// Member ids to add.
    #[oai(default, nullable, validator(max_items = 1000))]
    pub members: Vec<Text>,
}

impl Example for CreateGroupRequest {
    fn example() -> Self {
        CreateGroupRequest {
            display_name: "Engineering".into(),
            members: Vec::new(),
        }
    }
}

/// Only the fields sent change.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct UpdateGroupRequest {
    #[oai(nullable, validator(min_length = 1, max_length = 256))]
    pub display_name: Option<Text>,
    /// Member ids to add.
    #[oai(default, nullable, validator(max_items = 1000))]
    pub add_members: Vec<Text>,
    /// Member ids to remove.
    #[oai(default, nullable, validator(max_items = 1000))]
    pub remove_members: Vec<Text>,
}

impl Example for UpdateGroupRequest {
    fn example() -> Self {
        UpdateGroupRequest {
            display_name: Some("Platform engineering".into()),
            add_members: vec![MEMBER_ID.into()],
            remove_members: Vec::new(),
        }
    }
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct RoleMappingRequest {
    /// `owner`, `admin`, `contributor`, `viewer`, or `null` for none. Only
    /// owners map a group to owner or change a group mapped to owner.
    #[oai(nullable)]
    pub role: Option<Text>,
    #[oai(default, nullable, validator(max_items = 1000))]
    pub project_rights: Vec<ProjectRightsView>,
}

impl Example for RoleMappingRequest {
    fn example() -> Self {
        RoleMappingRequest {
            role: Some("contributor".into()),
            project_rights: Vec::new(),
        }
    }
}

#[derive(ApiResponse)]
pub enum CreatedGroup {
    #[oai(status = 201)]
    Created(Json<GroupView>),
}

#[derive(ApiResponse)]
pub enum DeletedGroup {
    /// The group and its memberships are gone; its members remain.
    #[oai(status = 204)]
    Deleted,
}

fn group_not_found() -> AppError {
    AppError::NotFound("group")
}

fn parse_group_id(raw: &str) -> Result<String, AppError> {
    GroupId::parse(raw)
        .map(GroupId::into_string)
        .map_err(|_| group_not_found())
}

fn group_view(group: &Group, member_count: u64) -> GroupView {
    GroupView {
        id: group.id.clone(),
        display_name: group.display_name.clone(),
        external_id: group.external_id.clone(),
        role_mapping: group.role_mapping.as_ref().map(|m| RoleMappingView {
            role: m.role.map(|r| r.to_string()),
            project_rights: rights_view(&m.project_rights),
        }),
        member_count,
        created_at: group.created_at,
        updated_at: group.updated_at,
    }
}

/// Member ids as the request lists them; whether they are members of the
/// organization is checked in the write's transaction.
fn parse_member_ids(field: &str, raw: &[Text]) -> Result<Vec<String>, AppError> {
    raw.iter()
        .enumerate()
        .map(|(i, id)| {
            MemberId::parse(id)
                .map(MemberId::into_string)
                .map_err(|_| AppError::invalid(format!("{field}[{i}]"), "not a member id"))
        })
        .collect()
}

async fn count_members(store: &Store, group_id: &str) -> Result<u64, AppError> {
    let counts = store::groups::member_counts(store, &[group_id]).await?;
    Ok(counts.get(group_id).copied().unwrap_or(0))
}

// What each operation does after authentication, shared by the API's
// handlers and the console's forms (issue 15), so both faces run the
// same permission check, input rules and use case.

/// One page of groups, as `GET /orgs/{org}/groups` answers it.
pub(crate) async fn list_groups(
    state: &AppState,
    access: &OrgAccess,
    cursor: Option<&str>,
    limit: u32,
) -> Result<GroupPage, AppError> {
    access.require(Permission::ViewDirectory)?;
    let after = paging::cursor(cursor, |raw| GroupId::parse(raw).map(GroupId::into_string))?;
    let store = state.store();
    let (groups, more) =
        store::groups::list_after(store, access.org_id(), after.as_deref(), limit).await?;
    let ids: Vec<&str> = groups.iter().map(|g| g.id.as_str()).collect();
    let counts = store::groups::member_counts(store, &ids).await?;
    let next_cursor = more.then(|| groups.last().map(|g| g.id.clone())).flatten();
    Ok(GroupPage {
        items: groups
            .iter()
            .map(|g| group_view(g, counts.get(&g.id).copied().unwrap_or(0)))
            .collect(),
        next_cursor,
    })
}

/// `POST /orgs/{org}/groups`.
pub(crate) async fn create_group(
    state: &AppState,
    access: &OrgAccess,
    body: CreateGroupRequest,
) -> Result<GroupView, AppError> {
    let granted = access.require(Permission::ManageNonOwnerMembers)?;
    let display_name = body.display_name.trim().to_owned();
    if display_name.is_empty() {
        return Err(AppError::invalid("display_name", "must not be blank"));
    }
    let members = parse_member_ids("members", &body.members)?;
    let (group, added) = app::groups::create(
        state.store(),
        state.clock().now(),
        &granted.acting(),
        GroupAttributes {
            display_name,
            external_id: None,
            extension_assigned: false,
        },
        &members,
        UnknownMembers::Refuse { field: "members" },
    )
    .await?;
    Ok(group_view(&group, added))
}

/// `GET /orgs/{org}/groups/{group}`.
pub(crate) async fn group_of(
    state: &AppState,
    access: &OrgAccess,
    group: &str,
) -> Result<GroupView, AppError> {
    access.require(Permission::ViewDirectory)?;
    let id = parse_group_id(group)?;
    let store = state.store();
    let group = store::groups::get(store, None, access.org_id(), &id)
        .await?
        .ok_or_else(group_not_found)?;
    Ok(group_view(&group, count_members(store, &id).await?))
}

fn group_member_view(record: &UserRecord, now: DateTime<Utc>) -> GroupMemberView {
    GroupMemberView {
        id: record.member.id.to_string(),
        user_name: record.profile.user_name.clone(),
        display_name: record.profile.display_name().map(str::to_owned),
        email: primary_email(record),
        status: record.member.effective_status(now).to_string(),
    }
}

/// `GET /orgs/{org}/groups/{group}/members`: whoever may read the group
/// may read who is in it. Two round trips: the group (so an unknown one
/// is 404, not an empty page), then the page of members.
pub(crate) async fn group_members(
    state: &AppState,
    access: &OrgAccess,
    group: &str,
    cursor: Option<&str>,
    limit: u32,
) -> Result<GroupMemberPage, AppError> {
    access.require(Permission::ViewDirectory)?;
    let id = parse_group_id(group)?;
    let after = paging::cursor(cursor, |raw| {
        MemberId::parse(raw).map(MemberId::into_string)
    })?;
    let store = state.store();
    store::groups::get(store, None, access.org_id(), &id)
        .await?
        .ok_or_else(group_not_found)?;
    let (records, next_cursor) =
        store::groups::members_page(store, access.org_id(), &id, after.as_deref(), limit).await?;
    let now = state.clock().now();
    Ok(GroupMemberPage {
        items: records
            .iter()
            .map(|record| group_member_view(record, now))
            .collect(),
        next_cursor,
    })
}

/// `PATCH /orgs/{org}/groups/{group}`.
pub(crate) async fn update_group(
    state: &AppState,
    access: &OrgAccess,
    group: &str,
    body: UpdateGroupRequest,
) -> Result<GroupView, AppError> {
    let granted = access.require(Permission::ManageNonOwnerMembers)?;
    let id = parse_group_id(group)?;
    let UpdateGroupRequest {
        display_name,
        add_members,
        remove_members,
    } = body;
    let display_name = display_name.map(|n| n.trim().to_owned());
    if display_name.as_deref() == Some("") {
        return Err(AppError::invalid("display_name", "must not be blank"));
    }
    let add = parse_member_ids("add_members", &add_members)?;
    let remove = parse_member_ids("remove_members", &remove_members)?;
    let changes = [
        MembershipChange::Remove(remove),
        MembershipChange::Add(
            add,
            UnknownMembers::Refuse {
                field: "add_members",
            },
        ),
    ];
    let store = state.store();
    let group = app::groups::update(
        store,
        state.clock().now(),
        &granted.acting(),
        &id,
        &app::any_version,
        |current| {
            Ok(GroupAttributes {
                display_name: display_name
                    .clone()
                    .unwrap_or_else(|| current.display_name.clone()),
                external_id: current.external_id.clone(),
                extension_assigned: current.extension_assigned,
            })
        },
        &changes,
    )
    .await?;
    Ok(group_view(&group, count_members(store, &id).await?))
}

/// `DELETE /orgs/{org}/groups/{group}`.
pub(crate) async fn delete_group(
    state: &AppState,
    access: &OrgAccess,
    group: &str,
) -> Result<(), AppError> {
    let granted = access.require(Permission::ManageNonOwnerMembers)?;
    let id = parse_group_id(group)?;
    app::groups::delete(
        state.store(),
        state.clock().now(),
        &granted.acting(),
        &id,
        &app::any_version,
    )
    .await
}

/// `PUT /orgs/{org}/groups/{group}/role-mapping`.
pub(crate) async fn map_group_role(
    state: &AppState,
    access: &OrgAccess,
    group: &str,
    body: RoleMappingRequest,
) -> Result<GroupView, AppError> {
    let granted = access.require(Permission::ManageNonOwnerMembers)?;
    let id = parse_group_id(group)?;
    let RoleMappingRequest {
        role,
        project_rights,
    } = body;
    let role = role
        .as_deref()
        .map(str::parse::<Role>)
        .transpose()
        .map_err(|err| AppError::invalid("role", err))?;
    let project_rights = parse_rights(project_rights)?;
    let store = state.store();
    let group = app::groups::map_role(
        store,
        state.clock().now(),
        &granted.acting(),
        &id,
        role,
        &project_rights,
    )
    .await?;
    Ok(group_view(&group, count_members(store, &id).await?))
}

#[OpenApi(tag = "ApiTags::Groups")]
impl GroupsApi {
    /// List groups
    ///
    /// In the order they were created, a page at a time, with their role
    /// mappings and member counts.
    #[oai(path = "/orgs/:org/groups", method = "get")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1 to 200.
        #[oai(
            default = "paging::default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<u32>,
    ) -> Result<Json<GroupPage>, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        Ok(Json(
            list_groups(&state, &access, cursor.0.as_deref(), limit.0).await?,
        ))
    }

    /// Create a group
    ///
    /// Owners and admins. Display names are unique in the organization,
    /// ignoring case.
    #[oai(path = "/orgs/:org/groups", method = "post")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        body: Json<CreateGroupRequest>,
    ) -> Result<CreatedGroup, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        Ok(CreatedGroup::Created(Json(
            create_group(&state, &access, body.0).await?,
        )))
    }

    /// Get a group
    ///
    /// With its role mapping and member count; any member may read it.
    #[oai(path = "/orgs/:org/groups/:group", method = "get")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        /// The group's id.
        group: Path<String>,
    ) -> Result<Json<GroupView>, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        Ok(Json(group_of(&state, &access, &group).await?))
    }

    /// List a group's members
    ///
    /// In the order they joined the organization, a page at a time: each
    /// member's id, names, email and status. Any member may read it, as
    /// they may read the group.
    #[oai(path = "/orgs/:org/groups/:group/members", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn list_members(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        /// The group's id.
        group: Path<String>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1 to 200.
        #[oai(
            default = "paging::default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<u32>,
    ) -> Result<Json<GroupMemberPage>, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        Ok(Json(
            group_members(&state, &access, &group, cursor.0.as_deref(), limit.0).await?,
        ))
    }

    /// Rename a group or change its members
    ///
    /// Owners and admins; only owners change the members of a group mapped
    /// to owner. Adding a member who is in the group already, or removing
    /// one who is not, changes nothing.
    #[oai(path = "/orgs/:org/groups/:group", method = "patch")]
    #[allow(clippy::too_many_arguments)]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        /// The group's id.
        group: Path<String>,
        body: Json<UpdateGroupRequest>,
    ) -> Result<Json<GroupView>, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        Ok(Json(update_group(&state, &access, &group, body.0).await?))
    }

    /// Delete a group
    ///
    /// Owners and admins; only owners delete a group mapped to owner. The
    /// members stay in the organization and lose what the group granted.
    #[oai(path = "/orgs/:org/groups/:group", method = "delete")]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        /// The group's id.
        group: Path<String>,
    ) -> Result<DeletedGroup, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        delete_group(&state, &access, &group).await?;
        Ok(DeletedGroup::Deleted)
    }

    /// Map a group to a role
    ///
    /// Its members hold the role (and project rights) as long as they are
    /// in the group; a member's effective role is the highest of their
    /// direct role and their groups' roles. Owners and admins; only owners
    /// map a group to owner or change a group mapped to owner.
    #[oai(path = "/orgs/:org/groups/:group/role-mapping", method = "put")]
    #[allow(clippy::too_many_arguments)]
    async fn put_role_mapping(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        /// The group's id.
        group: Path<String>,
        body: Json<RoleMappingRequest>,
    ) -> Result<Json<GroupView>, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        Ok(Json(map_group_role(&state, &access, &group, body.0).await?))
    }
}
