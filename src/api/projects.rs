//! Projects of an organization: list (cursor pages), create, read, rename,
//! delete.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde_json::json;

use super::access::OrgAccess;
use super::examples::{ORG_ID, PROJECT_ID, example_time};
use super::paging;
use super::text::Text;
use super::{ApiTags, BearerAuth};
use crate::domain::org::project_name;
use crate::domain::{Permission, Project, ProjectId};
use crate::error::AppError;
use crate::in_transaction;
use crate::state::AppState;
use crate::store::{self, Inserted};

pub struct ProjectsApi;

#[derive(Debug, Object)]
#[oai(example)]
pub struct ProjectView {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Example for ProjectView {
    fn example() -> Self {
        ProjectView {
            id: PROJECT_ID.to_owned(),
            org_id: ORG_ID.to_owned(),
            name: "Website".to_owned(),
            created_at: example_time("2024-11-05T09:12:00Z"),
            updated_at: example_time("2024-11-05T09:12:00Z"),
        }
    }
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

fn project_view(project: &Project) -> ProjectView {
    ProjectView {
        id: project.id.to_string(),
        org_id: project.org_id.to_string(),
        name: project.name.clone(),
        created_at: project.created_at,
        updated_at: project.updated_at,
    }
}

fn audited(project: &Project) -> serde_json::Value {
    json!({ "name": project.name })
}

fn project_not_found() -> AppError {
    AppError::NotFound("project")
}

fn name_taken() -> AppError {
    AppError::Conflict {
        problem: "project-name-taken",
        detail: "this organization already has a project with this name (ignoring case); \
                 choose another name"
            .into(),
    }
}

fn valid_name(raw: &str) -> Result<String, AppError> {
    project_name(raw).map_err(|err| AppError::invalid("name", err))
}

/// A project id from the path: anything malformed names no project.
fn project_id(raw: &str) -> Result<ProjectId, AppError> {
    ProjectId::parse(raw).map_err(|_| project_not_found())
}

#[OpenApi(tag = "ApiTags::Projects")]
impl ProjectsApi {
    /// List an organization's projects
    ///
    /// Oldest first, in pages: pass the previous page's `next_cursor` as
    /// `cursor` until it is null. Any member may list projects.
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
        let limit = limit.0;
        let after = paging::cursor(cursor.0.as_deref(), ProjectId::parse)?;
        let (projects, more) =
            store::projects::list(state.store(), access.org_id(), after.as_ref(), limit).await?;
        let next_cursor = more
            .then(|| projects.last().map(|p| p.id.to_string()))
            .flatten();
        Ok(Json(ProjectList {
            items: projects.iter().map(project_view).collect(),
            next_cursor,
        }))
    }

    /// Create a project
    ///
    /// Owners, admins and contributors. Names are unique in the
    /// organization, ignoring case.
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
        let granted = access.require(Permission::ManageProjects)?;
        let name = valid_name(&body.0.name)?;
        let now = state.clock().now();
        let project = Project {
            id: ProjectId::new(),
            org_id: access.org_id().clone(),
            name,
            created_at: now,
            updated_at: now,
        };
        let store = state.store();
        in_transaction!(store, |session| -> Result<(), AppError> {
            if store::projects::insert(store, session, &project).await? == Inserted::AlreadyExists {
                return Err(name_taken());
            }
            let event = granted.event(
                now,
                "project.created",
                ("project", project.id.as_str()),
                None,
                Some(audited(&project)),
            );
            store::audit::record(store, session, &event).await?;
            Ok(())
        })?;
        Ok(CreatedProject::Created(Json(project_view(&project))))
    }

    /// Get a project
    ///
    /// Any member may read it.
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
            .ok_or_else(project_not_found)?;
        Ok(Json(project_view(&project)))
    }

    /// Rename a project
    ///
    /// Owners, admins and contributors. Only the fields sent change; a
    /// request that changes nothing writes nothing.
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
        let granted = access.require(Permission::ManageProjects)?;
        let id = project_id(&project)?;
        let UpdateProjectRequest { name } = body.0;
        let name = name.as_deref().map(valid_name).transpose()?;
        let store = state.store();
        let now = state.clock().now();
        let changed = in_transaction!(store, |session| -> Result<Project, AppError> {
            let before = store::projects::get(store, Some(&mut *session), access.org_id(), &id)
                .await?
                .ok_or_else(project_not_found)?;
            let mut changed = before.clone();
            if let Some(name) = &name {
                changed.name = name.clone();
            }
            if changed == before {
                return Ok(before);
            }
            changed.updated_at = now;
            match store::projects::update(store, session, &changed).await? {
                store::projects::Updated::Yes => {}
                store::projects::Updated::NameTaken => return Err(name_taken()),
                store::projects::Updated::Missing => return Err(project_not_found()),
            }
            let event = granted.event(
                now,
                "project.updated",
                ("project", changed.id.as_str()),
                Some(audited(&before)),
                Some(audited(&changed)),
            );
            store::audit::record(store, session, &event).await?;
            Ok(changed)
        })?;
        Ok(Json(project_view(&changed)))
    }

    /// Delete a project
    ///
    /// Owners, admins and contributors. Members' rights on the project go
    /// with it.
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
        let granted = access.require(Permission::ManageProjects)?;
        let id = project_id(&project)?;
        let store = state.store();
        let now = state.clock().now();
        in_transaction!(store, |session| -> Result<(), AppError> {
            let before = store::projects::get(store, Some(&mut *session), access.org_id(), &id)
                .await?
                .ok_or_else(project_not_found)?;
            if !store::projects::delete(store, session, access.org_id(), &id).await? {
                return Err(project_not_found());
            }
            let event = granted.event(
                now,
                "project.deleted",
                ("project", id.as_str()),
                Some(audited(&before)),
                None,
            );
            store::audit::record(store, session, &event).await?;
            Ok(())
        })?;
        Ok(DeletedProject::Deleted)
    }
}
