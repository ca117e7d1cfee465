//! Projects of an organization: list (cursor pages), create, read, rename,
//! delete, each checked against the caller's effective project rights.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::access::OrgAccess;
use super::examples::{ORG_ID, PROJECT_ID, example_time};
use super::paging;
use super::text::Text;
use super::{ApiTags, BearerAuth};
use crate::app;
use crate::domain::org::project_name;
use crate::domain::role::ProjectRights;
use crate::domain::{Member, Permission, Project, ProjectId, ProjectRight, Role};
use crate::error::AppError;
use crate::state::AppState;
use crate::store;

pub struct ProjectsApi;

#[derive(Debug, Object)]
#[oai(example)]
pub struct ProjectView {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The caller's effective rights on this project: `read`, `write`,
    /// `delete` (all three for owners and admins).
    pub my_rights: Vec<String>,
}

impl Example for ProjectView {
    fn example() -> Self {
        ProjectView {
            id: PROJECT_ID.to_owned(),
            org_id: ORG_ID.to_owned(),
            name: "Website".to_owned(),
            created_at: example_time("2024-11-05T09:12:00Z"),
            updated_at: example_time("2024-11-05T09:12:00Z"),
            my_rights: vec!["read".to_owned(), "write".to_owned()],
        }
    }
}

/// A member's effective project rights: their direct grants joined with
/// those of the groups they are in, under their effective role.
#[derive(Debug, Object)]
#[oai(example)]
pub struct EffectiveProjectRightsView {
    /// True for owners and admins, who hold every right on every project;
    /// `projects` is then empty.
    pub all_projects: bool,
    /// Each project the member holds a right on, with those rights. A
    /// viewer holds `read` at most, whatever was granted.
    pub projects: Vec<EffectiveProjectRightView>,
}

#[derive(Debug, Object)]
pub struct EffectiveProjectRightView {
    pub project_id: String,
    /// Any of `read`, `write`, `delete`.
    pub rights: Vec<String>,
}

impl Example for EffectiveProjectRightsView {
    fn example() -> Self {
        EffectiveProjectRightsView {
            all_projects: false,
            projects: vec![EffectiveProjectRightView {
                project_id: PROJECT_ID.to_owned(),
                rights: vec!["read".to_owned(), "write".to_owned()],
            }],
        }
    }
}

fn right_names(rights: impl IntoIterator<Item = ProjectRight>) -> Vec<String> {
    rights.into_iter().map(|r| r.as_str().to_owned()).collect()
}

pub fn effective_rights_view(rights: &ProjectRights) -> EffectiveProjectRightsView {
    match rights {
        ProjectRights::All => EffectiveProjectRightsView {
            all_projects: true,
            projects: Vec::new(),
        },
        ProjectRights::Granted(granted) => EffectiveProjectRightsView {
            all_projects: false,
            projects: granted
                .iter()
                .map(|(project, rights)| EffectiveProjectRightView {
                    project_id: project.to_string(),
                    rights: right_names(rights.iter().copied()),
                })
                .collect(),
        },
    }
}

/// The effective project rights of `member`, whose effective role is
/// `role`.
pub async fn project_rights_of(
    state: &AppState,
    member: &Member,
    role: Role,
) -> Result<ProjectRights, AppError> {
    app::projects::rights_of(state.store(), member, role).await
}

/// The caller's effective project rights.
async fn caller_rights(state: &AppState, access: &OrgAccess) -> Result<ProjectRights, AppError> {
    project_rights_of(state, &access.member, access.role).await
}

/// One page of projects, oldest first.
#[derive(Debug, Object)]
#[oai(example)]
pub struct ProjectList {
    pub items: Vec<ProjectView>,
    /// Pass as `cursor` to get the next page; null on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

impl Example for ProjectList {
    fn example() -> Self {
        ProjectList {
            items: vec![ProjectView::example()],
            next_cursor: Some(PROJECT_ID.to_owned()),
        }
    }
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct CreateProjectRequest {
    /// 1 to 100 characters after trimming; unique in the organization,
    /// ignoring case.
    pub name: Text,
}

impl Example for CreateProjectRequest {
    fn example() -> Self {
        CreateProjectRequest {
            name: "Website".into(),
        }
    }
}

/// Only the fields sent change.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct UpdateProjectRequest {
    /// 1 to 100 characters after trimming; unique in the organization,
    /// ignoring case.
    #[oai(nullable)]
    pub name: Option<Text>,
}

impl Example for UpdateProjectRequest {
    fn example() -> Self {
        UpdateProjectRequest {
            name: Some("Website (2025)".into()),
        }
    }
}

#[derive(ApiResponse)]
pub enum CreatedProject {
    /// The new project.
    #[oai(status = 201)]
    Created(Json<ProjectView>),
}

#[derive(ApiResponse)]
pub enum DeletedProject {
    /// The project is gone, and with it every member's rights on it.
    #[oai(status = 204)]
    Deleted,
}

fn project_view(project: &Project, rights: &ProjectRights) -> ProjectView {
    ProjectView {
        id: project.id.to_string(),
        org_id: project.org_id.to_string(),
        name: project.name.clone(),
        created_at: project.created_at,
        updated_at: project.updated_at,
        my_rights: right_names(rights.on(&project.id)),
    }
}

fn valid_name(raw: &str) -> Result<String, AppError> {
    project_name(raw).map_err(|err| AppError::invalid("name", err))
}

/// A project id from the path: anything malformed names no project.
fn project_id(raw: &str) -> Result<ProjectId, AppError> {
    ProjectId::parse(raw).map_err(|_| app::projects::not_found())
}

/// One page of the projects the caller may read, as `GET
/// /orgs/{org}/projects` answers it; the console's project rights form
/// lists the same.
pub(crate) async fn list_page(
    state: &AppState,
    access: &OrgAccess,
    after: Option<&ProjectId>,
    limit: u32,
) -> Result<ProjectList, AppError> {
    let rights = caller_rights(state, access).await?;
    let readable = rights.projects_with(ProjectRight::Read);
    let (projects, more) = store::projects::list(
        state.store(),
        access.org_id(),
        readable.as_deref(),
        after,
        limit,
    )
    .await?;
    let next_cursor = more
        .then(|| projects.last().map(|p| p.id.to_string()))
        .flatten();
    Ok(ProjectList {
        items: projects.iter().map(|p| project_view(p, &rights)).collect(),
        next_cursor,
    })
}

/// The caller as the use cases take it.
#[OpenApi(tag = "ApiTags::Projects")]
impl ProjectsApi {
    /// List an organization's projects
    ///
    /// Oldest first, in pages: pass the previous page's `next_cursor` as
    /// `cursor` until it is null. Owners and admins see every project;
    /// contributors and viewers the projects they hold `read` on (directly
    /// or through a group). Each item carries the caller's rights on it.
    #[oai(path = "/orgs/:org/projects", method = "get")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        /// The `next_cursor` of the previous page (the id of its last
        /// project); omit for the first page.
        cursor: Query<Option<String>>,
        /// Projects per page, 1 to 200.
        #[oai(
            default = "paging::default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<u32>,
    ) -> Result<Json<ProjectList>, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        access.require(Permission::ViewDirectory)?;
        let after = paging::cursor(cursor.0.as_deref(), ProjectId::parse)?;
        Ok(Json(
            list_page(&state, &access, after.as_ref(), limit.0).await?,
        ))
    }

    /// Create a project
    ///
    /// Owners, admins and contributors. Names are unique in the
    /// organization, ignoring case. A contributor who creates a project is
    /// granted `read`, `write` and `delete` on it.
    #[oai(path = "/orgs/:org/projects", method = "post")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        body: Json<CreateProjectRequest>,
    ) -> Result<CreatedProject, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        access.require(Permission::ManageProjects)?;
        let name = valid_name(&body.0.name)?;
        let now = state.clock().now();
        let project = app::projects::create(
            state.store(),
            &access.acting(),
            &access.member.id,
            name,
            now,
        )
        .await?;
        let rights = caller_rights(&state, &access).await?;
        Ok(CreatedProject::Created(Json(project_view(
            &project, &rights,
        ))))
    }

    /// Get a project
    ///
    /// Owners and admins, and members holding `read` on it.
    #[oai(path = "/orgs/:org/projects/:project", method = "get")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        /// The project's id.
        project: Path<String>,
    ) -> Result<Json<ProjectView>, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        access.require(Permission::ViewDirectory)?;
        let id = project_id(&project)?;
        let project = store::projects::get(state.store(), None, access.org_id(), &id)
            .await?
            .ok_or_else(app::projects::not_found)?;
        let rights = caller_rights(&state, &access).await?;
        rights.require(&id, ProjectRight::Read)?;
        Ok(Json(project_view(&project, &rights)))
    }

    /// Rename a project
    ///
    /// Owners and admins, and contributors holding `write` on it. Only the
    /// fields sent change; a request that changes nothing writes nothing.
    #[oai(path = "/orgs/:org/projects/:project", method = "patch")]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        /// The project's id.
        project: Path<String>,
        body: Json<UpdateProjectRequest>,
    ) -> Result<Json<ProjectView>, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        access.require(Permission::ManageProjects)?;
        let id = project_id(&project)?;
        let rights = caller_rights(&state, &access).await?;
        let UpdateProjectRequest { name } = body.0;
        let name = name.as_deref().map(valid_name).transpose()?;
        let now = state.clock().now();
        let changed =
            app::projects::update(state.store(), &access.acting(), &rights, &id, name, now).await?;
        Ok(Json(project_view(&changed, &rights)))
    }

    /// Delete a project
    ///
    /// Owners and admins, and contributors holding `delete` on it.
    /// Members' and groups' rights on the project go with it.
    #[oai(path = "/orgs/:org/projects/:project", method = "delete")]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        /// The project's id.
        project: Path<String>,
    ) -> Result<DeletedProject, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        access.require(Permission::ManageProjects)?;
        let id = project_id(&project)?;
        let rights = caller_rights(&state, &access).await?;
        let now = state.clock().now();
        app::projects::delete(state.store(), &access.acting(), &rights, &id, now).await?;
        Ok(DeletedProject::Deleted)
    }
}
