//! Projects: create, rename and delete, each under the caller's effective
//! project rights (`domain::role::effective_project_rights`), in one
//! transaction with its audit event.

use chrono::{DateTime, Utc};
use mongodb::ClientSession;
use serde_json::{Value, json};

use super::Acting;
use crate::domain::member::ProjectGrant;
use crate::domain::role::{ProjectRights, effective_project_rights};
use crate::domain::{Member, MemberId, Project, ProjectId, ProjectRight, Role};
use crate::error::AppError;
use crate::in_transaction;
use crate::store::{self, Inserted, Store};

pub fn not_found() -> AppError {
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

/// What the audit log keeps of a project.
fn snapshot(project: &Project) -> Value {
    json!({ "name": project.name })
}

/// The effective project rights of `member`, whose effective role is
/// `role`: their grants joined with their groups' (owners and admins need
/// no read, they hold everything).
pub async fn rights_of(
    store: &Store,
    member: &Member,
    role: Role,
) -> Result<ProjectRights, AppError> {
    if role.has_all_project_rights() {
        return Ok(ProjectRights::All);
    }
    let mapped = store::groups::mapped_project_rights_of(store, &[member.id.as_str()]).await?;
    let through_groups: &[ProjectGrant] = mapped
        .get(member.id.as_str())
        .map(Vec::as_slice)
        .unwrap_or_default();
    Ok(effective_project_rights(
        role,
        &member.project_rights,
        through_groups,
    ))
}

/// Creates a project named `name` (already checked). A `creator` who does
/// not hold every right through their role (a contributor) is granted
/// `read`, `write` and `delete` on it in the same transaction.
pub async fn create(
    store: &Store,
    acting: &Acting,
    creator: &MemberId,
    name: String,
    now: DateTime<Utc>,
) -> Result<Project, AppError> {
    let project = Project {
        id: ProjectId::new(),
        org_id: acting.org_id.clone(),
        name,
        created_at: now,
        updated_at: now,
    };
    let creator_grant = (!acting.role.has_all_project_rights()).then(|| ProjectGrant {
        project_id: project.id.clone(),
        rights: ProjectRight::ALL.to_vec(),
    });
    in_transaction!(store, |session| -> Result<(), AppError> {
        if store::projects::insert(store, session, &project).await? == Inserted::AlreadyExists {
            return Err(name_taken());
        }
        if let Some(grant) = &creator_grant {
            grant_to_creator(store, session, acting, creator, grant, now).await?;
        }
        let mut after = snapshot(&project);
        after["creator_rights"] = json!(creator_grant.as_ref().map(|g| &g.rights));
        let event = acting.event(
            now,
            "project.created",
            ("project", project.id.as_str()),
            None,
            Some(after),
        );
        store::audit::record(store, session, &event).await?;
        Ok(())
    })?;
    Ok(project)
}

/// Adds the creator's grant on a new project to their direct rights.
async fn grant_to_creator(
    store: &Store,
    session: &mut ClientSession,
    acting: &Acting,
    creator: &MemberId,
    grant: &ProjectGrant,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let gone = || AppError::Forbidden("your membership changed while this request ran".into());
    let mut record = store::members::get_user(store, Some(&mut *session), &acting.org_id, creator)
        .await?
        .ok_or_else(gone)?;
    let member = &mut record.member;
    member.project_rights.push(grant.clone());
    member.updated_at = now;
    if !store::members::update_membership(store, session, member, record.version).await? {
        return Err(gone());
    }
    Ok(())
}

/// Renames a project the caller holds `write` on; `None` changes nothing.
/// A request that changes nothing writes nothing.
pub async fn update(
    store: &Store,
    acting: &Acting,
    rights: &ProjectRights,
    id: &ProjectId,
    name: Option<String>,
    now: DateTime<Utc>,
) -> Result<Project, AppError> {
    in_transaction!(store, |session| -> Result<Project, AppError> {
        let before = store::projects::get(store, Some(&mut *session), &acting.org_id, id)
            .await?
            .ok_or_else(not_found)?;
        // Once the project is known to exist, so that a missing project
        // reads 404 for everyone.
        rights.require(id, ProjectRight::Write)?;
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
            store::projects::Updated::Missing => return Err(not_found()),
        }
        let event = acting.event(
            now,
            "project.updated",
            ("project", changed.id.as_str()),
            Some(snapshot(&before)),
            Some(snapshot(&changed)),
        );
        store::audit::record(store, session, &event).await?;
        Ok(changed)
    })
}

/// Deletes a project the caller holds `delete` on, and every member's and
/// group's rights on it.
pub async fn delete(
    store: &Store,
    acting: &Acting,
    rights: &ProjectRights,
    id: &ProjectId,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    in_transaction!(store, |session| -> Result<(), AppError> {
        let before = store::projects::get(store, Some(&mut *session), &acting.org_id, id)
            .await?
            .ok_or_else(not_found)?;
        rights.require(id, ProjectRight::Delete)?;
        if !store::projects::delete(store, session, &acting.org_id, id).await? {
            return Err(not_found());
        }
        let event = acting.event(
            now,
            "project.deleted",
            ("project", id.as_str()),
            Some(snapshot(&before)),
            None,
        );
        store::audit::record(store, session, &event).await?;
        Ok(())
    })
}
