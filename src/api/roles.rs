//! The role and permission matrix, for clients that render it.

use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use crate::domain::{Permission, ProjectRight, Role};

pub struct RolesApi;

#[derive(Debug, Object)]
#[oai(example)]
pub struct RolesResponse {
    /// Highest first.
    pub roles: Vec<RoleView>,
    /// Every permission, in the order of the table.
    pub permissions: Vec<String>,
    /// The rights a member can hold on one project.
    pub project_rights: Vec<String>,
}

#[derive(Debug, Object)]
pub struct RoleView {
    pub name: String,
    /// The permissions this role holds.
    pub permissions: Vec<String>,
    /// Whether the role holds every right on every project (otherwise
    /// rights are granted per project).
    pub all_project_rights: bool,
}

impl Example for RolesResponse {
    fn example() -> Self {
        matrix()
    }
}

/// The matrix as the code enforces it.
fn matrix() -> RolesResponse {
    RolesResponse {
        roles: Role::ALL
            .into_iter()
            .map(|role| RoleView {
                name: role.to_string(),
                permissions: role.permissions().map(|p| p.as_str().to_owned()).collect(),
                all_project_rights: role.has_all_project_rights(),
            })
            .collect(),
        permissions: Permission::ALL
            .into_iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
        project_rights: ProjectRight::ALL
            .into_iter()
            .map(|r| r.as_str().to_owned())
            .collect(),
    }
}

#[OpenApi(tag = "ApiTags::Roles")]
impl RolesApi {
    /// The role and permission matrix
    ///
    /// Which permissions each role holds and which rights exist per
    /// project. Public: it is the same for every organization.
    #[oai(path = "/roles", method = "get")]
    async fn roles(&self) -> Json<RolesResponse> {
        Json(matrix())
    }
}
