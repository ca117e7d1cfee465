//! An organization's groups: the list with a form to create one, and a
//! group's page with its role mapping, its members a page at a time, and
//! forms to rename it, map it to a role, add or remove members and delete
//! it. Each form runs what the
//! API's route runs (`api::groups`), with the body the API would parse,
//! so a group an identity provider manages, or a mapping to owner by a
//! non-owner, is refused here exactly as there.

use std::collections::HashMap;

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Path, Query};
use poem::{Request, Response, handler};
use serde_json::json;

use super::{Answer, Done, Fields, InOrg, Refused, api_request, html, notice, respond, see_other};
use crate::api::groups::{GroupView, RoleMappingRequest};
use crate::api::members::ProjectRightsView;
use crate::domain::{Permission, Role};
use crate::state::AppState;
use crate::store::members::MemberQuery;

const GROUPS: &str = "console/groups.html";
const GROUP: &str = "console/group.html";
/// The API's largest page: the list shows one page, and says when there
/// are more.
const SHOWN: u32 = 200;
/// A group's members a page at a time, as many as the API's default page.
const MEMBERS_SHOWN: u32 = crate::api::paging::DEFAULT_PAGE_SIZE;

pub(super) const TEMPLATES: &[(&str, &str)] = &[
    (GROUPS, include_str!("../../templates/console/groups.html")),
    (GROUP, include_str!("../../templates/console/group.html")),
];

const DONE: &[(&str, &str)] = &[
    ("group-created", "The group was created."),
    ("group-renamed", "The group was renamed."),
    ("role-mapped", "The group's role mapping was saved."),
    ("mapping-cleared", "The group no longer grants a role."),
    ("member-added", "The member was added to the group."),
    ("member-removed", "The member was removed from the group."),
    (
        "group-deleted",
        "The group was deleted; its members remain.",
    ),
];

fn groups_url(page: &InOrg) -> String {
    format!("/console/orgs/{}/groups", page.access.org.id)
}

fn group_url(page: &InOrg, group: &str) -> String {
    format!("{}/{group}", groups_url(page))
}

/// The mapping for the page; each project named when the person can see
/// it in the API's project list (`names`), otherwise by its id.
fn mapping_context(group: &GroupView, names: &HashMap<String, String>) -> minijinja::Value {
    match &group.role_mapping {
        Some(mapping) => context! {
            role => mapping.role.clone(),
            project_rights => mapping.project_rights.iter().map(|grant| context! {
                project_id => grant.project_id.0.clone(),
                project => names.get(&grant.project_id.0).cloned(),
                rights => grant.rights.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
            }).collect::<Vec<_>>(),
        },
        None => minijinja::Value::from(()),
    }
}

/// The groups list, with the create form (and its refusal, if any).
async fn list(
    state: &AppState,
    page: &InOrg,
    cursor: Option<&str>,
    done: Option<&str>,
    refused: Option<Refused>,
    typed: &str,
) -> Answer {
    let listed = crate::api::groups::list_groups(state, &page.access, cursor, SHOWN)
        .await
        .map_err(|err| page.error(&err))?;
    let rows: Vec<_> = listed
        .items
        .iter()
        .map(|group| {
            context! {
                id => group.id.clone(),
                name => group.display_name.clone(),
                members => group.member_count,
                role => group.role_mapping.as_ref().and_then(|m| m.role.clone()),
                scim => group.external_id.is_some(),
            }
        })
        .collect();
    let status = refused.as_ref().map_or(StatusCode::OK, |r| r.status);
    Ok(html(
        status,
        GROUPS,
        &format!("Groups of {}", page.access.org.name),
        context! {
            groups => rows,
            next_cursor => listed.next_cursor.clone(),
            paged => cursor.is_some(),
            shown => SHOWN,
            notice => notice(done, DONE),
            error => refused.map(|r| r.reason),
            typed,
            ..page.values()
        },
    ))
}

/// A group's page, its members from `cursor` on; `refused` puts a form's
/// refusal next to that form.
async fn show(
    state: &AppState,
    page: &InOrg,
    group_id: &str,
    cursor: Option<&str>,
    done: Option<&str>,
    refused: Option<Refused>,
) -> Answer {
    let group = crate::api::groups::group_of(state, &page.access, group_id)
        .await
        .map_err(|err| page.error(&err))?;
    let listed =
        crate::api::groups::group_members(state, &page.access, group_id, cursor, MEMBERS_SHOWN)
            .await
            .map_err(|err| page.error(&err))?;
    let members: Vec<_> = listed
        .items
        .iter()
        .map(|member| {
            context! {
                id => member.id.clone(),
                name => member.display_name.clone().unwrap_or_else(|| member.user_name.clone()),
                email => member.email.clone(),
                status => member.status.clone(),
            }
        })
        .collect();
    // The form's choices: the organization's members, to add or remove.
    let granted = page.require(Permission::ViewDirectory)?;
    let query = MemberQuery {
        role: None,
        status: None,
        text: None,
        after: None,
        limit: SHOWN,
    };
    let everyone = crate::api::members::list_page(state, &granted, &query)
        .await
        .map_err(|err| page.error(&err))?;
    let choices: Vec<_> = everyone
        .items
        .iter()
        .map(|member| {
            let name = member
                .display_name
                .clone()
                .unwrap_or_else(|| member.user_name.clone());
            context! {
                id => member.id.clone(),
                name,
                email => member.email.clone(),
            }
        })
        .collect();
    let project_names: HashMap<String, String> = if group.role_mapping.is_some() {
        crate::api::projects::list_projects(state, &page.access, None, SHOWN)
            .await
            .map_err(|err| page.error(&err))?
            .items
            .into_iter()
            .map(|project| (project.id, project.name))
            .collect()
    } else {
        HashMap::new()
    };
    let status = refused.as_ref().map_or(StatusCode::OK, |r| r.status);
    let (error_form, error) = match refused {
        Some(r) => (Some(r.form), Some(r.reason)),
        None => (None, None),
    };
    Ok(html(
        status,
        GROUP,
        &format!("Group {}", group.display_name),
        context! {
            group => context! {
                id => group.id.clone(),
                name => group.display_name.clone(),
                external_id => group.external_id.clone(),
                members => group.member_count,
                created_at => group.created_at.to_rfc3339(),
                updated_at => group.updated_at.to_rfc3339(),
                mapping => mapping_context(&group, &project_names),
            },
            roles => Role::ALL.iter().rev().map(|r| r.as_str()).collect::<Vec<_>>(),
            members,
            next_cursor => listed.next_cursor.clone(),
            paged => cursor.is_some(),
            choices,
            more_members => everyone.next_cursor.is_some(),
            shown => SHOWN,
            notice => notice(done, DONE),
            error_form,
            error,
            ..page.values()
        },
    ))
}

#[handler]
pub async fn groups_page(
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
                "",
            )
            .await
        }
        .await,
    )
}

/// `POST /orgs/{org}/groups` from the create form.
#[handler]
pub async fn create(
    state: Data<&AppState>,
    req: &Request,
    Path(org): Path<String>,
    body: String,
) -> Response {
    respond(
        async {
            let (page, fields) = InOrg::posted(&state, req, &org, &body).await?;
            let name = fields.get("display_name");
            let created = async {
                let request = api_request(json!({ "display_name": name }))?;
                crate::api::groups::create_group(&state, &page.access, request).await
            }
            .await;
            match created {
                Ok(group) => Ok(see_other(&format!(
                    "{}?done=group-created",
                    group_url(&page, &group.id)
                ))),
                Err(err) => {
                    list(
                        &state,
                        &page,
                        None,
                        None,
                        Some(Refused::of("create", &err)),
                        name,
                    )
                    .await
                }
            }
        }
        .await,
    )
}

#[handler]
pub async fn group_page(
    state: Data<&AppState>,
    req: &Request,
    Path((org, group)): Path<(String, String)>,
    Query(done): Query<Done>,
) -> Response {
    respond(
        async {
            let page = InOrg::open(&state, req, &org).await?;
            show(
                &state,
                &page,
                &group,
                done.cursor.as_deref(),
                done.done.as_deref(),
                None,
            )
            .await
        }
        .await,
    )
}

/// What a group form asks of the API, once its fields are read.
enum Change {
    Rename(String),
    Map(Option<String>),
    Clear,
    Add(String),
    Remove(String),
    Delete,
}

impl Change {
    fn form(&self) -> &'static str {
        match self {
            Change::Rename(_) => "rename",
            Change::Map(_) | Change::Clear => "mapping",
            Change::Add(_) | Change::Remove(_) => "members",
            Change::Delete => "delete",
        }
    }

    fn done(&self) -> &'static str {
        match self {
            Change::Rename(_) => "group-renamed",
            Change::Map(_) => "role-mapped",
            Change::Clear => "mapping-cleared",
            Change::Add(_) => "member-added",
            Change::Remove(_) => "member-removed",
            Change::Delete => "group-deleted",
        }
    }
}

/// Runs a group form: the CSRF check, then the API's operation; a
/// success goes back to the page (or, after a deletion, to the list)
/// with a notice, a refusal shows the page again with the reason.
async fn change(
    state: &AppState,
    req: &Request,
    org: &str,
    group: &str,
    body: &str,
    read: impl FnOnce(&Fields) -> Change,
) -> Answer {
    let (page, fields) = InOrg::posted(state, req, org, body).await?;
    let change = read(&fields);
    let access = &page.access;
    let outcome = async {
        match &change {
            Change::Rename(name) => {
                let request = api_request(json!({ "display_name": name }))?;
                crate::api::groups::update_group(state, access, group, request).await?;
            }
            Change::Add(member) => {
                let request = api_request(json!({ "add_members": [member] }))?;
                crate::api::groups::update_group(state, access, group, request).await?;
            }
            Change::Remove(member) => {
                let request = api_request(json!({ "remove_members": [member] }))?;
                crate::api::groups::update_group(state, access, group, request).await?;
            }
            Change::Map(role) => {
                // The form sets the role only: the project rights the
                // mapping grants are sent back as they are, as the API's
                // PUT replaces both.
                let current = crate::api::groups::group_of(state, access, group).await?;
                let rights: Vec<ProjectRightsView> = current
                    .role_mapping
                    .map(|mapping| mapping.project_rights)
                    .unwrap_or_default();
                let rights: Vec<_> = rights
                    .iter()
                    .map(|grant| {
                        json!({
                            "project_id": grant.project_id.0,
                            "rights": grant.rights.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                let request: RoleMappingRequest =
                    api_request(json!({ "role": role, "project_rights": rights }))?;
                crate::api::groups::map_group_role(state, access, group, request).await?;
            }
            Change::Clear => {
                let request: RoleMappingRequest =
                    api_request(json!({ "role": null, "project_rights": [] }))?;
                crate::api::groups::map_group_role(state, access, group, request).await?;
            }
            Change::Delete => crate::api::groups::delete_group(state, access, group).await?,
        }
        Ok::<(), crate::error::AppError>(())
    }
    .await;
    match outcome {
        Ok(()) if matches!(change, Change::Delete) => Ok(see_other(&format!(
            "{}?done={}",
            groups_url(&page),
            change.done()
        ))),
        Ok(()) => Ok(see_other(&format!(
            "{}?done={}",
            group_url(&page, group),
            change.done()
        ))),
        Err(err) => {
            show(
                state,
                &page,
                group,
                None,
                None,
                Some(Refused::of(change.form(), &err)),
            )
            .await
        }
    }
}

#[handler]
pub async fn rename(
    state: Data<&AppState>,
    req: &Request,
    Path((org, group)): Path<(String, String)>,
    body: String,
) -> Response {
    respond(
        change(&state, req, &org, &group, &body, |fields| {
            Change::Rename(fields.get("display_name").to_owned())
        })
        .await,
    )
}

/// The mapping form: `role` is a role's name, or empty for none (the
/// project rights the mapping grants stay); its "clear" button removes
/// the role and the rights.
#[handler]
pub async fn map_role(
    state: Data<&AppState>,
    req: &Request,
    Path((org, group)): Path<(String, String)>,
    body: String,
) -> Response {
    respond(
        change(&state, req, &org, &group, &body, |fields| {
            let role = fields.get("role");
            if fields.has("clear") {
                Change::Clear
            } else {
                Change::Map(Some(role.to_owned()).filter(|role| !role.is_empty()))
            }
        })
        .await,
    )
}

/// The members form: `member` with `action` `add` or `remove`.
#[handler]
pub async fn members_form(
    state: Data<&AppState>,
    req: &Request,
    Path((org, group)): Path<(String, String)>,
    body: String,
) -> Response {
    respond(
        change(&state, req, &org, &group, &body, |fields| {
            let member = fields.get("member").to_owned();
            if fields.get("action") == "remove" {
                Change::Remove(member)
            } else {
                Change::Add(member)
            }
        })
        .await,
    )
}

#[handler]
pub async fn delete(
    state: Data<&AppState>,
    req: &Request,
    Path((org, group)): Path<(String, String)>,
    body: String,
) -> Response {
    respond(change(&state, req, &org, &group, &body, |_| Change::Delete).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_render_with_and_without_groups() {
        let org = context! { id => "o", name => "O" };
        for groups in [
            vec![context! { id => "g", name => "G", members => 2, role => "admin", scim => true }],
            Vec::new(),
        ] {
            let page = html(
                StatusCode::OK,
                GROUPS,
                "Title",
                context! { csrf_session => "t", org => org.clone(), groups, notice => "n", error => "e", next_cursor => "g 1", paged => true, shown => 200 },
            );
            assert_eq!(page.status(), StatusCode::OK);
        }
        // With members and pages before and after, and with none.
        for (members, next_cursor, paged) in [
            (
                vec![
                    context! { id => "m", name => "M", email => "m@example.com", status => "active" },
                ],
                Some("m"),
                true,
            ),
            (Vec::new(), None, false),
            (Vec::new(), None, true),
        ] {
            let page = html(
                StatusCode::FORBIDDEN,
                GROUP,
                "Title",
                context! {
                    csrf_session => "t",
                    org => org.clone(),
                    group => context! { id => "g", name => "G", members => 1, mapping => context! { role => "admin", project_rights => vec![context! { project_id => "p", rights => vec!["read"] }] } },
                    roles => vec!["viewer", "owner"],
                    members,
                    next_cursor,
                    paged,
                    choices => vec![context! { id => "m", name => "M" }],
                    error_form => "mapping",
                    error => "only an owner may",
                },
            );
            assert_eq!(page.status(), StatusCode::FORBIDDEN);
        }
    }
}
