//! Roles, permissions and the permission matrix of DESIGN.md §3.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ProjectId;
use super::member::ProjectGrant;

/// A member's role in an organization, lowest to highest. The derived order
/// is the rank order: the effective role of a member is the maximum of
/// their direct role and every role their groups map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Contributor,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Contributor, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Contributor => "contributor",
            Role::Viewer => "viewer",
        }
    }

    /// The permission matrix. One `match` so that a reader sees every cell
    /// and the compiler sees every permission.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        use Role::*;
        match permission {
            ViewDirectory => true,
            CreatePersonalTokens | ManageProjects => matches!(self, Owner | Admin | Contributor),
            ManageIntegrations
            | ManageInvitations
            | ManageNonOwnerMembers
            | RemoveNonOwnerMembers
            | ViewAuditLog => matches!(self, Owner | Admin),
            ManageOwners | ManageOrganization => self == Owner,
        }
    }

    pub fn permissions(self) -> impl Iterator<Item = Permission> {
        Permission::ALL.into_iter().filter(move |p| self.allows(*p))
    }

    /// Owners and admins hold every right on every project; the others hold
    /// only the rights granted to them per project.
    pub fn has_all_project_rights(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

/// A member's effective role: the highest of their direct role and the
/// roles their groups map to.
pub fn effective_role(direct: Role, group_roles: impl IntoIterator<Item = Role>) -> Role {
    group_roles.into_iter().fold(direct, Role::max)
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`; expected one of owner, admin, contributor, viewer")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownRole(s.chars().take(64).collect()))
    }
}

/// What a role may do inside its organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// View members, groups and projects.
    ViewDirectory,
    CreatePersonalTokens,
    /// Create, update and delete projects.
    ManageProjects,
    /// Manage integrations and SCIM tokens.
    ManageIntegrations,
    /// Invite members and manage invitations.
    ManageInvitations,
    /// Change the role or status of members who are not owners.
    ManageNonOwnerMembers,
    RemoveNonOwnerMembers,
    /// View and export the audit log.
    ViewAuditLog,
    /// Grant, change or remove the owner role.
    ManageOwners,
    /// Rename or delete the organization, change its settings.
    ManageOrganization,
}

impl Permission {
    pub const ALL: [Permission; 10] = [
        Permission::ViewDirectory,
        Permission::CreatePersonalTokens,
        Permission::ManageProjects,
        Permission::ManageIntegrations,
        Permission::ManageInvitations,
        Permission::ManageNonOwnerMembers,
        Permission::RemoveNonOwnerMembers,
        Permission::ViewAuditLog,
        Permission::ManageOwners,
        Permission::ManageOrganization,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ViewDirectory => "view_directory",
            Permission::CreatePersonalTokens => "create_personal_tokens",
            Permission::ManageProjects => "manage_projects",
            Permission::ManageIntegrations => "manage_integrations",
            Permission::ManageInvitations => "manage_invitations",
            Permission::ManageNonOwnerMembers => "manage_non_owner_members",
            Permission::RemoveNonOwnerMembers => "remove_non_owner_members",
            Permission::ViewAuditLog => "view_audit_log",
            Permission::ManageOwners => "manage_owners",
            Permission::ManageOrganization => "manage_organization",
        }
    }
}

/// A right on one project, granted to contributors and viewers per project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProjectRight {
    Read,
    /// Create and update.
    Write,
    Delete,
}

impl ProjectRight {
    pub const ALL: [ProjectRight; 3] = [
        ProjectRight::Read,
        ProjectRight::Write,
        ProjectRight::Delete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProjectRight::Read => "read",
            ProjectRight::Write => "write",
            ProjectRight::Delete => "delete",
        }
    }
}

impl fmt::Display for ProjectRight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a member may do on the organization's projects: owners and admins
/// everything everywhere, the others what their grants say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRights {
    All,
    Granted(BTreeMap<ProjectId, BTreeSet<ProjectRight>>),
}

/// A member's effective project rights: the union of their direct grants
/// and the grants of the groups they are in, under their effective role.
/// Owners and admins hold every right on every project. A viewer keeps only
/// `read`: the role matrix lets viewers change no project, and a `write` or
/// `delete` shown as effective would promise what the routes refuse.
pub fn effective_project_rights<'a>(
    role: Role,
    direct: &'a [ProjectGrant],
    through_groups: impl IntoIterator<Item = &'a ProjectGrant>,
) -> ProjectRights {
    if role.has_all_project_rights() {
        return ProjectRights::All;
    }
    let mut granted: BTreeMap<ProjectId, BTreeSet<ProjectRight>> = BTreeMap::new();
    for grant in direct.iter().chain(through_groups) {
        let rights = grant.rights.iter().copied().filter(|right| {
            role.allows(Permission::ManageProjects) || *right == ProjectRight::Read
        });
        let held = granted.entry(grant.project_id.clone()).or_default();
        held.extend(rights);
        if held.is_empty() {
            granted.remove(&grant.project_id);
        }
    }
    ProjectRights::Granted(granted)
}

/// A right the caller lacks on a project.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "you need the `{right}` right on project {project}; your rights on it: {held}. \
     An owner or admin can grant it to you or to a group you are in"
)]
pub struct MissingProjectRight {
    pub project: ProjectId,
    pub right: ProjectRight,
    /// The rights held, for the message (`none` when there are none).
    pub held: String,
}

impl ProjectRights {
    /// The rights held on one project, in `read`, `write`, `delete` order.
    pub fn on(&self, project: &ProjectId) -> Vec<ProjectRight> {
        match self {
            ProjectRights::All => ProjectRight::ALL.to_vec(),
            ProjectRights::Granted(granted) => granted
                .get(project)
                .map(|rights| rights.iter().copied().collect())
                .unwrap_or_default(),
        }
    }

    pub fn require(
        &self,
        project: &ProjectId,
        right: ProjectRight,
    ) -> Result<(), MissingProjectRight> {
        let held = self.on(project);
        if held.contains(&right) {
            return Ok(());
        }
        Err(MissingProjectRight {
            project: project.clone(),
            right,
            held: if held.is_empty() {
                "none".to_owned()
            } else {
                held.iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
    }

    /// The projects `right` is held on; `None` when it is held on all.
    pub fn projects_with(&self, right: ProjectRight) -> Option<Vec<&ProjectId>> {
        match self {
            ProjectRights::All => None,
            ProjectRights::Granted(granted) => Some(
                granted
                    .iter()
                    .filter(|(_, rights)| rights.contains(&right))
                    .map(|(project, _)| project)
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DESIGN.md §3, transcribed cell by cell: (permission, owner, admin,
    /// contributor, viewer).
    const MATRIX: [(Permission, bool, bool, bool, bool); 10] = [
        (Permission::ViewDirectory, true, true, true, true),
        (Permission::CreatePersonalTokens, true, true, true, false),
        (Permission::ManageProjects, true, true, true, false),
        (Permission::ManageIntegrations, true, true, false, false),
        (Permission::ManageInvitations, true, true, false, false),
        (Permission::ManageNonOwnerMembers, true, true, false, false),
        (Permission::RemoveNonOwnerMembers, true, true, false, false),
        (Permission::ViewAuditLog, true, true, false, false),
        (Permission::ManageOwners, true, false, false, false),
        (Permission::ManageOrganization, true, false, false, false),
    ];

    #[test]
    fn every_cell_of_the_matrix() {
        for (permission, owner, admin, contributor, viewer) in MATRIX {
            for (role, expected) in [
                (Role::Owner, owner),
                (Role::Admin, admin),
                (Role::Contributor, contributor),
                (Role::Viewer, viewer),
            ] {
                assert_eq!(
                    role.allows(permission),
                    expected,
                    "{role} / {}",
                    permission.as_str()
                );
            }
        }
    }

    #[test]
    fn the_matrix_covers_every_permission() {
        for permission in Permission::ALL {
            assert!(
                MATRIX.iter().any(|row| row.0 == permission),
                "{permission:?}"
            );
        }
    }

    #[test]
    fn the_effective_role_is_the_highest_held() {
        assert_eq!(effective_role(Role::Viewer, []), Role::Viewer);
        assert_eq!(
            effective_role(Role::Viewer, [Role::Contributor, Role::Admin]),
            Role::Admin
        );
        assert_eq!(effective_role(Role::Owner, [Role::Viewer]), Role::Owner);
    }

    #[test]
    fn roles_rank_from_viewer_to_owner() {
        assert!(Role::Owner > Role::Admin);
        assert!(Role::Admin > Role::Contributor);
        assert!(Role::Contributor > Role::Viewer);
    }

    #[test]
    fn roles_parse_case_insensitively_and_reject_others() {
        assert_eq!("Owner".parse::<Role>(), Ok(Role::Owner));
        assert_eq!("viewer".parse::<Role>(), Ok(Role::Viewer));
        assert!("superuser".parse::<Role>().is_err());
    }

    fn grant(project: &ProjectId, rights: &[ProjectRight]) -> ProjectGrant {
        ProjectGrant {
            project_id: project.clone(),
            rights: rights.to_vec(),
        }
    }

    #[test]
    fn owners_and_admins_hold_every_project_right() {
        let project = ProjectId::new();
        for role in [Role::Owner, Role::Admin] {
            let rights = effective_project_rights(role, &[], []);
            assert_eq!(rights, ProjectRights::All);
            assert_eq!(rights.on(&project), ProjectRight::ALL.to_vec());
            assert_eq!(rights.projects_with(ProjectRight::Read), None);
        }
    }

    #[test]
    fn effective_project_rights_are_the_union_of_direct_and_group_grants() {
        let (a, b, c) = (ProjectId::new(), ProjectId::new(), ProjectId::new());
        let direct = [grant(&a, &[ProjectRight::Read])];
        let groups = [
            grant(&a, &[ProjectRight::Write]),
            grant(&b, &[ProjectRight::Delete]),
            grant(&b, &[ProjectRight::Read]),
        ];
        let rights = effective_project_rights(Role::Contributor, &direct, &groups);
        assert_eq!(rights.on(&a), [ProjectRight::Read, ProjectRight::Write]);
        assert_eq!(rights.on(&b), [ProjectRight::Read, ProjectRight::Delete]);
        assert_eq!(rights.on(&c), []);
        assert_eq!(
            rights.projects_with(ProjectRight::Read).map(|p| p.len()),
            Some(2)
        );
        assert!(rights.require(&a, ProjectRight::Write).is_ok());
        let missing = rights
            .require(&a, ProjectRight::Delete)
            .expect_err("no delete on a");
        assert_eq!(missing.right, ProjectRight::Delete);
        assert!(missing.to_string().contains("`delete`"), "{missing}");
        assert!(missing.to_string().contains("read, write"), "{missing}");
        let missing = rights.require(&c, ProjectRight::Read).expect_err("none");
        assert!(missing.to_string().contains("none"), "{missing}");
    }

    #[test]
    fn viewers_keep_only_read() {
        let (a, b) = (ProjectId::new(), ProjectId::new());
        let direct = [grant(&a, &ProjectRight::ALL)];
        let groups = [grant(&b, &[ProjectRight::Write])];
        let rights = effective_project_rights(Role::Viewer, &direct, &groups);
        assert_eq!(rights.on(&a), [ProjectRight::Read]);
        assert_eq!(rights.on(&b), []);
        assert_eq!(
            rights.projects_with(ProjectRight::Read),
            Some(vec![&a]),
            "a project with no right left is not listed"
        );
    }
}
