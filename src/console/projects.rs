//! An organization's projects: the list the API's `GET …/projects` gives
//! the person (the projects they may read, with their rights on each),
//! and forms to create, rename and delete through `api::projects`, the
//! API's own path to the use cases and their project-rights checks.

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Path, Query};
use poem::{Request, Response, handler};
use serde_json::json;

use super::{Answer, Done, Fields, InOrg, Refused, api_request, html, notice, respond, see_other};
use crate::state::AppState;

const PROJECTS: &str = "console/projects.html";
/// The API's largest page.
const SHOWN: u32 = 200;

pub(super) const TEMPLATES: &[(&str, &str)] = &[(
    PROJECTS,
    include_str!("../../templates/console/projects.html"),
)];

const DONE: &[(&str, &str)] = &[
    ("project-created", "The project was created."),
    ("project-renamed", "The project was renamed."),
    ("project-deleted", "The project was deleted."),
];

/// The list; a refusal is shown next to the form that caused it (the
/// create form, or the row of the project it named).
async fn list(
    state: &AppState,
    page: &InOrg,
    cursor: Option<&str>,
    done: Option<&str>,
    refused: Option<(Option<String>, Refused)>,
) -> Answer {
    let listed = crate::api::projects::list_projects(state, &page.access, cursor, SHOWN)
        .await
        .map_err(|err| page.error(&err))?;
    let rows: Vec<_> = listed
        .items
        .iter()
        .map(|project| {
            context! {
                id => project.id.clone(),
                name => project.name.clone(),
                created_at => project.created_at.to_rfc3339(),
                rights => project.my_rights.clone(),
            }
        })
        .collect();
    let status = refused.as_ref().map_or(StatusCode::OK, |(_, r)| r.status);
    let (error_project, error_form, error) = match refused {
        Some((project, r)) => (project, Some(r.form), Some(r.reason)),
        None => (None, None, None),
    };
    // A refusal about a project the list shows goes in its row; one about
    // a project it does not (gone, or never readable) above the table.
    let error_row = error_project.filter(|id| listed.items.iter().any(|p| &p.id == id));
    Ok(html(
        status,
        PROJECTS,
        &format!("Projects of {}", page.access.org.name),
        context! {
            projects => rows,
            next_cursor => listed.next_cursor.clone(),
            paged => cursor.is_some(),
            shown => SHOWN,
            notice => notice(done, DONE),
            error_row,
            error_form,
            error,
            ..page.values()
        },
    ))
}

fn projects_url(page: &InOrg) -> String {
    format!("/console/orgs/{}/projects", page.access.org.id)
}

#[handler]
pub async fn projects_page(
    state: Data<&AppState>,
    req: &Request,
    Path(org): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    respond(
        async {
            let page = InOrg::open(&state, req, &org).await?;
            list(
                &state,
                &page,
                done.cursor.as_deref(),
                done.done.as_deref(),
                None,
            )
            .await
        }
        .await,
    )
}

/// What a project form asks of the API.
enum Change {
    Create(String),
    Rename(String, String),
    Delete(String),
}

async fn change(
    state: &AppState,
    req: &Request,
    org: &str,
    body: &str,
    read: impl FnOnce(&Fields) -> Change,
) -> Answer {
    let (page, fields) = InOrg::posted(state, req, org, body).await?;
    let change = read(&fields);
    let access = &page.access;
    let outcome = match &change {
        Change::Create(name) => match api_request(json!({ "name": name })) {
            Ok(request) => crate::api::projects::create_project(state, access, request)
                .await
                .map(|_| "project-created"),
            Err(err) => Err(err),
        },
        Change::Rename(project, name) => match api_request(json!({ "name": name })) {
            Ok(request) => crate::api::projects::update_project(state, access, project, request)
                .await
                .map(|_| "project-renamed"),
            Err(err) => Err(err),
        },
        Change::Delete(project) => crate::api::projects::delete_project(state, access, project)
            .await
            .map(|()| "project-deleted"),
    };
    match outcome {
        Ok(done) => Ok(see_other(&format!("{}?done={done}", projects_url(&page)))),
        Err(err) => {
            let refused = match change {
                Change::Create(_) => (None, Refused::of("create", &err)),
                Change::Rename(project, _) => (Some(project), Refused::of("rename", &err)),
                Change::Delete(project) => (Some(project), Refused::of("delete", &err)),
            };
            list(state, &page, None, None, Some(refused)).await
        }
    }
}

#[handler]
pub async fn create(
    state: Data<&AppState>,
    req: &Request,
    Path(org): Path<String>,
    body: String,
) -> Response {
    respond(
        change(&state, req, &org, &body, |fields| {
            Change::Create(fields.get("name").to_owned())
        })
        .await,
    )
}

#[handler]
pub async fn rename(
    state: Data<&AppState>,
    req: &Request,
    Path((org, project)): Path<(String, String)>,
    body: String,
) -> Response {
    respond(
        change(&state, req, &org, &body, |fields| {
            Change::Rename(project, fields.get("name").to_owned())
        })
        .await,
    )
}

#[handler]
pub async fn delete(
    state: Data<&AppState>,
    req: &Request,
    Path((org, project)): Path<(String, String)>,
    body: String,
) -> Response {
    respond(change(&state, req, &org, &body, |_| Change::Delete(project)).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_renders_with_and_without_projects() {
        for projects in [
            vec![
                context! { id => "p", name => "P", created_at => "2026-12-02T15:04:05Z", rights => vec!["read"] },
            ],
            Vec::new(),
        ] {
            let page = html(
                StatusCode::CONFLICT,
                PROJECTS,
                "Title",
                context! {
                    csrf_session => "t",
                    org => context! { id => "o", name => "O" },
                    projects,
                    error_row => "p",
                    next_cursor => "p 1",
                    paged => true,
                    shown => 200,
                    error_form => "rename",
                    error => "taken",
                },
            );
            assert_eq!(page.status(), StatusCode::CONFLICT);
        }
    }
}
