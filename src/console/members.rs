//! An organization's members: the table (`GET /orgs/{org}/members`, with
//! the API's filters and cursor) and one member's page, whose forms change
//! the role, the status and the project rights, or remove the member.
//!
//! Every read and write is the API's own function (`api::members::
//! list_page`, `member_page`, `update`, `remove`) behind the API's
//! permission check, so what the console refuses the API refuses too, with
//! the same reason and status; the forms only turn fields into the API's
//! request.

use minijinja::context;
use minijinja::value::Serde;
use poem::http::StatusCode;
use poem::web::{Data, Path, Query};
use poem::{Request, Response, handler};
use poem_openapi::types::MaybeUndefined;
use serde::Deserialize;

use super::{Answer, Fields, InOrg, html, notice, respond, see_other, utc_field};
use crate::api;
use crate::api::members::{MemberView, ProjectRightsView, UpdateMemberRequest};
use crate::api::text::Text;
use crate::domain::{MemberStatus, Permission, ProjectRight, Role};
use crate::error::AppError;
use crate::state::AppState;
use crate::store;

const MEMBERS: &str = "console/members.html";
const MEMBER: &str = "console/member.html";
/// Rows per page unless the viewer picks another of `PAGE_SIZES`.
const DEFAULT_PAGE_SIZE: u32 = 50;
const PAGE_SIZES: [u32; 4] = [25, 50, 100, 200];
/// The member page names this many of the projects the viewer may read
/// (the API's largest page); the rights form lists them and every project
/// the member already has rights on.
const PROJECTS_LISTED: u32 = 200;

pub(super) const TEMPLATES: &[(&str, &str)] = &[
    (
        MEMBERS,
        include_str!("../../templates/console/members.html"),
    ),
    (MEMBER, include_str!("../../templates/console/member.html")),
];

/// What each `?done=` slug says after a member form.
const DONE: &[(&str, &str)] = &[
    ("role", "The role was changed."),
    ("status", "The status was changed."),
    ("rights", "The project rights were saved."),
    ("removed", "The member was removed."),
];

/// The table's GET form: the API's filters, with empty fields meaning
/// "any" (a `<select>`'s first option sends an empty value).
#[derive(Debug, Default, Deserialize)]
pub struct TableQuery {
    q: Option<String>,
    role: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
    done: Option<String>,
}

fn filled(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl TableQuery {
    fn limit(&self) -> u32 {
        self.limit
            .filter(|limit| PAGE_SIZES.contains(limit))
            .unwrap_or(DEFAULT_PAGE_SIZE)
    }

    /// The table's address with these filters, from `cursor` (the first
    /// page for `None`), for the paging links.
    fn link(&self, org: &str, cursor: Option<&str>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("q", filled(&self.q)),
            ("role", filled(&self.role)),
            ("status", filled(&self.status)),
        ] {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
        if self.limit() != DEFAULT_PAGE_SIZE {
            query.append_pair("limit", &self.limit().to_string());
        }
        if let Some(cursor) = cursor {
            query.append_pair("cursor", cursor);
        }
        let query = query.finish();
        let path = format!("/console/orgs/{org}/members");
        if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        }
    }

    fn filtered(&self) -> bool {
        filled(&self.q).is_some() || filled(&self.role).is_some() || filled(&self.status).is_some()
    }
}

/// Where the effective role comes from: "direct", "via group X", or both
/// when they grant the same role.
fn role_source(member: &MemberView) -> String {
    let mut sources = Vec::new();
    if member.direct_role == member.role {
        sources.push("direct".to_owned());
    }
    sources.extend(
        member
            .group_roles
            .iter()
            .filter(|group| group.role == member.role)
            .map(|group| format!("via group {}", group.group_name)),
    );
    sources.join(", ")
}

fn name_of(member: &MemberView) -> String {
    member
        .display_name
        .clone()
        .unwrap_or_else(|| member.user_name.clone())
}

/// The organization's members, a page at a time, with the API's access
/// check, filters and cursor.
#[handler]
pub async fn members_page(
    state: Data<&AppState>,
    req: &Request,
    Path(org): Path<String>,
    query: poem::Result<Query<TableQuery>>,
) -> Response {
    respond(
        async {
            let page = InOrg::open(&state, req, &org).await?;
            let granted = page.require(Permission::ViewDirectory)?;
            // A query string this form never makes (a limit that is not a
            // number) reads as no filter rather than an error page.
            let filters = query.map(|Query(query)| query).unwrap_or_default();
            let listed = async {
                let query = api::members::member_query(
                    filled(&filters.role),
                    filled(&filters.status),
                    filled(&filters.q).map(str::to_owned),
                    filled(&filters.cursor),
                    filters.limit(),
                )?;
                api::members::list_page(&state, &granted, &query).await
            }
            .await
            .map_err(|err| page.error(&err))?;
            let org_id = page.access.org.id.to_string();
            let rows: Vec<_> = listed
                .items
                .iter()
                .map(|member| {
                    context! {
                        id => member.id.clone(),
                        name => name_of(member),
                        email => member.email.clone(),
                        role => member.role.clone(),
                        role_source => role_source(member),
                        status => member.status.clone(),
                        suspended_until => Serde(member.suspended_until),
                        last_sign_in_at => Serde(member.last_sign_in_at),
                    }
                })
                .collect();
            Ok(html(
                StatusCode::OK,
                MEMBERS,
                &format!("Members of {}", page.access.org.name),
                context! {
                    members => rows,
                    q => filled(&filters.q),
                    role => filled(&filters.role),
                    status => filled(&filters.status),
                    limit => filters.limit(),
                    roles => Role::ALL.map(Role::as_str),
                    statuses => MemberStatus::ALL.map(MemberStatus::as_str),
                    page_sizes => PAGE_SIZES,
                    filtered => filters.filtered(),
                    paged => filled(&filters.cursor).is_some(),
                    next => listed.next_cursor.as_deref().map(|cursor| filters.link(&org_id, Some(cursor))),
                    first => filters.link(&org_id, None),
                    notice => notice(filters.done.as_deref(), DONE),
                    ..page.values()
                },
            ))
        }
        .await,
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    done: Option<String>,
}

/// One member: role and where it comes from, status, project rights and
/// groups, with the forms the viewer's role allows.
#[handler]
pub async fn member_page(
    state: Data<&AppState>,
    req: &Request,
    Path((org, member)): Path<(String, String)>,
    query: poem::Result<Query<PageQuery>>,
) -> Response {
    respond(
        async {
            let page = InOrg::open(&state, req, &org).await?;
            let done = query.ok().and_then(|Query(query)| query.done);
            let shown = Shown {
                status: StatusCode::OK,
                notice: notice(done.as_deref(), DONE),
                refused: None,
            };
            render_member(&state, &page, &member, shown).await
        }
        .await,
    )
}

/// How the member page is shown: after a change, or with the reason one
/// was refused next to its form.
struct Shown<'a> {
    status: StatusCode,
    notice: Option<&'static str>,
    refused: Option<(&'a str, String)>,
}

async fn render_member(state: &AppState, page: &InOrg, member: &str, shown: Shown<'_>) -> Answer {
    let granted = page.require(Permission::ViewDirectory)?;
    let view = api::members::member_page(state, &granted, member)
        .await
        .map_err(|err| page.error(&err))?;
    let may_manage = page.access.role.allows(Permission::ManageNonOwnerMembers);
    let may_remove = page.access.role.allows(Permission::RemoveNonOwnerMembers);
    // All the member's groups, not only those mapped to a role: a read,
    // the same one SCIM's `groups` attribute makes.
    let groups = store::groups::groups_of(state.store(), &[view.id.as_str()])
        .await
        .map_err(|err| page.error(&err.into()))?
        .remove(view.id.as_str())
        .unwrap_or_default();
    // The projects the viewer may read (the API's listing), for names and
    // the rights form; a project they may not read shows as its id.
    let projects = api::projects::list_projects(state, &page.access, None, PROJECTS_LISTED)
        .await
        .map_err(|err| page.error(&err))?
        .items;
    let named = |id: &str| {
        projects
            .iter()
            .find(|project| project.id == id)
            .map_or_else(|| id.to_owned(), |project| project.name.clone())
    };
    let held = |id: &str| {
        view.project_rights
            .iter()
            .find(|grant| &*grant.project_id == id)
            .map(|grant| grant.rights.iter().map(|r| r.0.clone()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    // Every listed project, then any the member holds rights on that the
    // list did not reach, so saving the form never drops a right unseen.
    let mut rows: Vec<String> = projects.iter().map(|p| p.id.clone()).collect();
    for grant in &view.project_rights {
        if !rows.contains(&grant.project_id.0) {
            rows.push(grant.project_id.0.clone());
        }
    }
    let rights_rows: Vec<_> = rows
        .iter()
        .map(|id| {
            context! {
                id => id.clone(),
                name => named(id),
                rights => held(id),
            }
        })
        .collect();
    let project_rights: Vec<_> = view
        .project_rights
        .iter()
        .map(|grant| {
            context! {
                name => named(&grant.project_id),
                rights => grant.rights.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
            }
        })
        .collect();
    // A refusal of a form the page does not show (a viewer's POST) is
    // shown at the top.
    let (error, error_form) = match shown.refused {
        Some((form, reason)) => {
            let visible = if form == "remove" {
                may_remove
            } else {
                may_manage
            };
            (Some(reason), Some(if visible { form } else { "page" }))
        }
        None => (None, None),
    };
    let name = name_of(&view);
    Ok(html(
        shown.status,
        MEMBER,
        &name,
        context! {
            member => context! {
                id => view.id.clone(),
                name => name.clone(),
                user_name => view.user_name.clone(),
                email => view.email.clone(),
                role => view.role.clone(),
                direct_role => view.direct_role.clone(),
                group_roles => view.group_roles.iter().map(|group| context! {
                    name => group.group_name.clone(),
                    role => group.role.clone(),
                }).collect::<Vec<_>>(),
                status => view.status.clone(),
                suspended_until => Serde(view.suspended_until),
                last_sign_in_at => Serde(view.last_sign_in_at),
                created_at => Serde(view.created_at),
                all_projects => view.effective_project_rights.as_ref().is_some_and(|r| r.all_projects),
                project_rights => project_rights,
            },
            groups => groups.iter().map(|group| group.display_name.clone()).collect::<Vec<_>>(),
            may_manage,
            may_remove,
            roles => Role::ALL.map(Role::as_str),
            statuses => [MemberStatus::Active, MemberStatus::Suspended, MemberStatus::Inactive, MemberStatus::Pending].map(MemberStatus::as_str),
            rights_names => ProjectRight::ALL.map(ProjectRight::as_str),
            rights_rows,
            notice => shown.notice,
            error,
            error_form,
            ..page.values()
        },
    ))
}

/// What one of the member page's forms asks for, as the API's request.
enum Change {
    Update(&'static str, UpdateMemberRequest),
    Remove { confirmed: bool },
}

fn request() -> UpdateMemberRequest {
    UpdateMemberRequest {
        role: None,
        status: None,
        suspended_until: MaybeUndefined::Undefined,
        project_rights: None,
    }
}

fn status_change(fields: &Fields) -> Result<Change, AppError> {
    let status = fields.get("status");
    let until = utc_field("suspended_until", fields.get("suspended_until"))?;
    // A date only with a suspension; without one, suspending means "until
    // further notice". A date with another status goes to the use case,
    // which refuses it with the API's reason.
    let suspended_until = match until {
        Some(at) => MaybeUndefined::Value(at),
        None if status == MemberStatus::Suspended.as_str() => MaybeUndefined::Null,
        None => MaybeUndefined::Undefined,
    };
    Ok(Change::Update(
        "status",
        UpdateMemberRequest {
            status: Some(status.into()),
            suspended_until,
            ..request()
        },
    ))
}

/// The checkboxes `right` = `{project}:{right}`, grouped by project in the
/// order they came; a project with no box ticked holds no rights.
fn rights_change(fields: &Fields) -> Change {
    let mut grants: Vec<ProjectRightsView> = Vec::new();
    for value in fields.all("right") {
        // A value this form never sends still goes to the API, whose
        // parsing refuses it with a reason, rather than being dropped.
        let (project, right) = value.rsplit_once(':').unwrap_or((value, ""));
        match grants.iter_mut().find(|g| &*g.project_id == project) {
            Some(grant) => grant.rights.push(right.into()),
            None => grants.push(ProjectRightsView {
                project_id: project.into(),
                rights: vec![right.into()],
            }),
        }
    }
    Change::Update(
        "rights",
        UpdateMemberRequest {
            project_rights: Some(grants),
            ..request()
        },
    )
}

/// Runs a change through the API's permission check and use case; the
/// `done` slug on success.
async fn apply(
    state: &AppState,
    page: &InOrg,
    member: &str,
    change: Change,
) -> Result<&'static str, AppError> {
    match change {
        Change::Update(done, request) => {
            let granted = page.access.require(Permission::ManageNonOwnerMembers)?;
            api::members::update(state, &granted, member, request).await?;
            Ok(done)
        }
        Change::Remove { confirmed } => {
            let granted = page.access.require(Permission::RemoveNonOwnerMembers)?;
            if !confirmed {
                return Err(AppError::invalid(
                    "confirm",
                    "tick \"Yes, remove this member\" to confirm",
                ));
            }
            api::members::remove(state, &granted, member).await?;
            Ok("removed")
        }
    }
}

/// A member form's POST: the CSRF and Origin check, then the change; a
/// redirect that says what was done, or the page again with the reason
/// next to the form and the API's status.
async fn submit(
    state: &AppState,
    req: &Request,
    org: &str,
    member: &str,
    form: &'static str,
    body: poem::Result<Vec<u8>>,
    change: impl FnOnce(&Fields) -> Result<Change, AppError>,
) -> Answer {
    // A body that cannot be read carries no token: refused as forged.
    let (page, fields) = InOrg::posted(state, req, org, body.unwrap_or_default()).await?;
    let applied = match change(&fields) {
        Ok(change) => apply(state, &page, member, change).await,
        Err(err) => Err(err),
    };
    let org_id = page.access.org.id.to_string();
    match applied {
        Ok("removed") => Ok(see_other(&format!(
            "/console/orgs/{org_id}/members?done=removed"
        ))),
        Ok(done) => Ok(see_other(&format!(
            "/console/orgs/{org_id}/members/{}?done={done}",
            form_urlencoded::byte_serialize(member.as_bytes()).collect::<String>()
        ))),
        Err(err @ (AppError::NotFound(_) | AppError::Store(_) | AppError::Unavailable(_))) => {
            Err(page.error(&err))
        }
        Err(err) => {
            let shown = Shown {
                status: err.status(),
                notice: None,
                refused: Some((form, err.problem().detail)),
            };
            render_member(state, &page, member, shown).await
        }
    }
}

#[handler]
pub async fn change_role(
    state: Data<&AppState>,
    req: &Request,
    Path((org, member)): Path<(String, String)>,
    body: poem::Result<Vec<u8>>,
) -> Response {
    let role = |fields: &Fields| {
        Ok(Change::Update(
            "role",
            UpdateMemberRequest {
                role: Some(Text(fields.get("role").to_owned())),
                ..request()
            },
        ))
    };
    respond(submit(&state, req, &org, &member, "role", body, role).await)
}

#[handler]
pub async fn change_status(
    state: Data<&AppState>,
    req: &Request,
    Path((org, member)): Path<(String, String)>,
    body: poem::Result<Vec<u8>>,
) -> Response {
    respond(submit(&state, req, &org, &member, "status", body, status_change).await)
}

#[handler]
pub async fn change_rights(
    state: Data<&AppState>,
    req: &Request,
    Path((org, member)): Path<(String, String)>,
    body: poem::Result<Vec<u8>>,
) -> Response {
    let rights = |fields: &Fields| Ok(rights_change(fields));
    respond(submit(&state, req, &org, &member, "rights", body, rights).await)
}

#[handler]
pub async fn remove_member(
    state: Data<&AppState>,
    req: &Request,
    Path((org, member)): Path<(String, String)>,
    body: poem::Result<Vec<u8>>,
) -> Response {
    let remove = |fields: &Fields| {
        Ok(Change::Remove {
            confirmed: fields.get("confirm") == "yes",
        })
    };
    respond(submit(&state, req, &org, &member, "remove", body, remove).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_render() {
        let page = html(
            StatusCode::OK,
            MEMBERS,
            "Title",
            context! {
                csrf_session => "t",
                org => context! { id => "o", name => "O" },
                members => vec![context! { id => "m", name => "n", role => "owner", role_source => "direct", status => "active" }],
                roles => Role::ALL.map(Role::as_str),
                next => "/next",
                first => "/first",
            },
        );
        assert_eq!(page.status(), StatusCode::OK);
        let page = html(
            StatusCode::CONFLICT,
            MEMBER,
            "Title",
            context! {
                csrf_session => "t",
                org => context! { id => "o", name => "O" },
                member => context! { id => "m", name => "n", role => "owner", status => "active" },
                may_manage => true,
                may_remove => true,
                error => "no",
                error_form => "role",
            },
        );
        assert_eq!(page.status(), StatusCode::CONFLICT);
    }

    #[test]
    fn a_role_says_where_it_comes_from() {
        let mut member = MemberView {
            id: "m".into(),
            account_id: None,
            user_name: "u".into(),
            email: None,
            display_name: None,
            role: "admin".into(),
            direct_role: "viewer".into(),
            group_roles: vec![api::members::GroupRoleView {
                group_id: "g".into(),
                group_name: "Ops".into(),
                role: "admin".into(),
            }],
            status: "active".into(),
            suspended_until: None,
            project_rights: Vec::new(),
            effective_project_rights: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            last_sign_in_at: None,
        };
        assert_eq!(role_source(&member), "via group Ops");
        member.direct_role = "admin".into();
        assert_eq!(role_source(&member), "direct, via group Ops");
        member.group_roles.clear();
        assert_eq!(role_source(&member), "direct");
    }

    #[test]
    fn rights_boxes_become_the_api_s_project_rights() {
        let sent =
            Fields::parse(b"csrf=t&right=p1%3Aread&right=p2%3Adelete&right=p1%3Awrite&right=junk");
        let Change::Update("rights", request) = rights_change(&sent) else {
            panic!("a rights update");
        };
        let grants: Vec<(String, Vec<String>)> = request
            .project_rights
            .unwrap_or_default()
            .into_iter()
            .map(|g| (g.project_id.0, g.rights.into_iter().map(|r| r.0).collect()))
            .collect();
        assert_eq!(
            grants,
            vec![
                ("p1".into(), vec!["read".into(), "write".into()]),
                ("p2".into(), vec!["delete".into()]),
                // Left for the API to refuse, not dropped.
                ("junk".into(), vec!["".into()]),
            ]
        );
    }

    #[test]
    fn paging_links_keep_the_filters() {
        let query = TableQuery {
            q: Some("ada lovelace".into()),
            role: Some("".into()),
            status: Some("active".into()),
            limit: Some(25),
            ..TableQuery::default()
        };
        assert_eq!(
            query.link("o", Some("c1")),
            "/console/orgs/o/members?q=ada+lovelace&status=active&limit=25&cursor=c1"
        );
        assert_eq!(
            TableQuery::default().link("o", None),
            "/console/orgs/o/members"
        );
    }
}
