//! Projects: scopes inside an organization. Names are unique per
//! organization ignoring case, through a lower-cased shadow field and a
//! unique index.

use bson::{DateTime as BsonDateTime, doc};
use mongodb::error::Error as MongoError;
use mongodb::{ClientSession, Collection};
use serde::{Deserialize, Serialize};

use super::docs::bson_time;
use super::{Inserted, Store, index, inserted, with_session};
use crate::domain::{OrgId, Project, ProjectId};

const COLLECTION: &str = "projects";

fn collection(store: &Store) -> Collection<ProjectDoc> {
    store.database().collection(COLLECTION)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ProjectDoc {
    #[serde(rename = "_id")]
    id: String,
    org_id: String,
    name: String,
    /// `name` lower-cased: the unique key.
    name_lc: String,
    created_at: BsonDateTime,
    updated_at: BsonDateTime,
}

impl From<&Project> for ProjectDoc {
    fn from(project: &Project) -> Self {
        ProjectDoc {
            id: project.id.to_string(),
            org_id: project.org_id.to_string(),
            name: project.name.clone(),
            name_lc: project.name.to_lowercase(),
            created_at: bson_time(project.created_at),
            updated_at: bson_time(project.updated_at),
        }
    }
}

impl From<ProjectDoc> for Project {
    fn from(doc: ProjectDoc) -> Self {
        Project {
            id: ProjectId::from_stored(doc.id),
            org_id: OrgId::from_stored(doc.org_id),
            name: doc.name,
            created_at: doc.created_at.to_chrono(),
            updated_at: doc.updated_at.to_chrono(),
        }
    }
}

pub(super) async fn create_indexes(store: &Store) -> Result<(), MongoError> {
    let projects = collection(store);
    projects
        .create_index(index(doc! { "org_id": 1, "name_lc": 1 }, true))
        .await?;
    // Pages in id order (ids are UUIDv7, so in creation order).
    projects
        .create_index(index(doc! { "org_id": 1, "_id": 1 }, false))
        .await?;
    Ok(())
}

/// `AlreadyExists` when the organization has a project of that name
/// (ignoring case).
pub async fn insert(
    store: &Store,
    session: &mut ClientSession,
    project: &Project,
) -> Result<Inserted, MongoError> {
    inserted(
        collection(store)
            .insert_one(ProjectDoc::from(project))
            .session(session)
            .await,
    )
}

pub async fn get(
    store: &Store,
    session: Option<&mut ClientSession>,
    org_id: &OrgId,
    id: &ProjectId,
) -> Result<Option<Project>, MongoError> {
    let found = with_session!(
        collection(store).find_one(doc! { "_id": id.as_str(), "org_id": org_id.as_str() }),
        session
    )?;
    Ok(found.map(Project::from))
}

/// Up to `limit` projects of the organization in id order, starting after
/// the id `after` when given; only those of `only` when given.
pub async fn list(
    store: &Store,
    org_id: &OrgId,
    only: Option<&[&ProjectId]>,
    after: Option<&ProjectId>,
    limit: u32,
) -> Result<(Vec<Project>, bool), MongoError> {
    let mut filter = doc! { "org_id": org_id.as_str() };
    if let Some(only) = only {
        let ids: Vec<&str> = only.iter().map(|id| id.as_str()).collect();
        // Under `$and`, as the page's own condition on `_id` goes beside it.
        filter.insert("$and", vec![doc! { "_id": { "$in": ids } }]);
    }
    let (docs, more) = super::cursor_page(
        &collection(store),
        filter,
        after.map(ProjectId::as_str),
        limit,
    )
    .await?;
    Ok((docs.into_iter().map(Project::from).collect(), more))
}

/// How an update ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Updated {
    Yes,
    /// Another project of the organization has the new name. Inside a
    /// transaction the server has aborted it.
    NameTaken,
    Missing,
}

/// Writes the project's name.
pub async fn update(
    store: &Store,
    session: &mut ClientSession,
    project: &Project,
) -> Result<Updated, MongoError> {
    let doc = ProjectDoc::from(project);
    let result = collection(store)
        .update_one(
            doc! { "_id": &doc.id, "org_id": &doc.org_id },
            doc! { "$set": {
                "name": &doc.name,
                "name_lc": &doc.name_lc,
                "updated_at": doc.updated_at,
            } },
        )
        .session(session)
        .await;
    match result {
        Ok(result) if result.matched_count == 0 => Ok(Updated::Missing),
        Ok(_) => Ok(Updated::Yes),
        Err(err) if super::is_duplicate_key(&err) => Ok(Updated::NameTaken),
        Err(err) => Err(err),
    }
}

/// Deletes one project of the organization and the rights members hold on
/// it; false when there was no such project.
pub async fn delete(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
    id: &ProjectId,
) -> Result<bool, MongoError> {
    let deleted = collection(store)
        .delete_one(doc! { "_id": id.as_str(), "org_id": org_id.as_str() })
        .session(&mut *session)
        .await?;
    if deleted.deleted_count == 0 {
        return Ok(false);
    }
    super::members::remove_project_rights(store, session, org_id, id).await?;
    super::groups::remove_project_rights(store, session, org_id, id).await?;
    Ok(true)
}

/// The first of `ids` that is not a project of the organization, read in
/// the caller's transaction (so a grant cannot name a project deleted
/// meanwhile).
pub async fn first_missing<'a>(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
    ids: impl IntoIterator<Item = &'a ProjectId>,
) -> Result<Option<ProjectId>, MongoError> {
    let ids: Vec<&ProjectId> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(None);
    }
    let wanted: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
    let mut found = std::collections::HashSet::new();
    let mut cursor = collection(store)
        .find(doc! { "org_id": org_id.as_str(), "_id": { "$in": wanted } })
        .session(&mut *session)
        .await?;
    while let Some(project) = cursor.next(&mut *session).await.transpose()? {
        found.insert(project.id);
    }
    Ok(ids
        .into_iter()
        .find(|id| !found.contains(id.as_str()))
        .cloned())
}

pub(super) async fn delete_for_org(
    store: &Store,
    session: &mut ClientSession,
    org_id: &OrgId,
) -> Result<(), MongoError> {
    collection(store)
        .delete_many(doc! { "org_id": org_id.as_str() })
        .session(session)
        .await?;
    Ok(())
}
