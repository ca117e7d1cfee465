//! Inviting people and managing invitations: the invite form (a pasted
//! list of addresses, a role, project rights and a note) and its
//! per-address outcomes, and the invitations list by status with resend
//! and withdraw. Each runs the function behind the matching API route
//! (`crate::api::invitations`: `invite_addresses`, `list_page`,
//! `resend_invitation`, `revoke_invitation`), past the same `OrgAccess`
//! check, so the console refuses exactly what the API refuses.

use std::collections::HashMap;

use minijinja::context;
use minijinja::value::Serde;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{Request, Response, handler};
use serde::Deserialize;

use super::{Answer, InOrg, TokenOnly, html, respond, see_other, with_retry_after};
use crate::api::invitations::{
    InvitationView, invite_addresses, list_page, resend_invitation, revoke_invitation,
};
use crate::api::members::ProjectRightsView;
use crate::api::text::Text;
use crate::domain::invitation::{InviteOutcome, split_addresses};
use crate::domain::{AccountId, Permission, Role};
use crate::error::AppError;
use crate::state::AppState;
use crate::store;

const INVITE: &str = "console/invite.html";
const INVITE_RESULTS: &str = "console/invite_results.html";
const INVITATIONS: &str = "console/invitations.html";

/// Invitations per page of the list.
const PAGE_SIZE: u32 = 50;
/// Projects the invite form offers rights on; an organization with more
/// grants the rest through the API or a group mapping.
const PROJECTS_OFFERED: u32 = 200;
/// The prefix of a project's rights field on the invite form
/// (`rights:{project id}`).
const RIGHTS_FIELD: &str = "rights:";

pub(super) const TEMPLATES: &[(&str, &str)] = &[
    (INVITE, include_str!("../../templates/console/invite.html")),
    (
        INVITE_RESULTS,
        include_str!("../../templates/console/invite_results.html"),
    ),
    (
        INVITATIONS,
        include_str!("../../templates/console/invitations.html"),
    ),
];

/// The list's views, in the order of their tabs: the API's `status`
/// values, with what the tab says.
const VIEWS: [(&str, &str); 4] = [
    ("pending", "Pending"),
    ("accepted", "Accepted"),
    ("expired", "Expired"),
    ("revoked", "Withdrawn"),
];

/// The invite form as typed, to show again when it comes back refused.
#[derive(Debug, Default)]
struct Typed {
    emails: String,
    role: String,
    message: String,
    /// Project id → the rights field's value.
    rights: HashMap<String, String>,
}

impl Typed {
    /// The form's fields, in any order; unknown ones are ignored.
    fn from_fields(fields: Vec<(String, String)>) -> (Typed, String) {
        let mut typed = Typed::default();
        let mut csrf = String::new();
        for (name, value) in fields {
            match name.as_str() {
                "csrf" => csrf = value,
                "emails" => typed.emails = value,
                "role" => typed.role = value,
                "message" => typed.message = value,
                _ => {
                    if let Some(project) = name.strip_prefix(RIGHTS_FIELD) {
                        typed.rights.insert(project.to_owned(), value);
                    }
                }
            }
        }
        (typed, csrf)
    }

    /// The rights as the API's `project_rights` takes them. A field's
    /// value names the widest right; the form's choices include the
    /// narrower ones (as the API's own examples grant them). A value the
    /// form does not offer is passed on as it is, for the API's parser
    /// to refuse.
    fn project_rights(&self) -> Vec<ProjectRightsView> {
        let mut projects: Vec<(&String, &String)> = self
            .rights
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .collect();
        // The order the API reports a bad entry in: stable, by project id.
        projects.sort();
        projects
            .into_iter()
            .map(|(project, value)| {
                let rights: &[&str] = match value.as_str() {
                    "read" => &["read"],
                    "write" => &["read", "write"],
                    "delete" => &["read", "write", "delete"],
                    other => &[other],
                };
                ProjectRightsView {
                    project_id: Text(project.clone()),
                    rights: rights.iter().map(|r| Text((*r).to_owned())).collect(),
                }
            })
            .collect()
    }

    fn message(&self) -> Option<String> {
        let message = self.message.trim();
        (!message.is_empty()).then(|| message.to_owned())
    }
}

/// What the person reads for one address's outcome.
fn outcome_sentence(outcome: InviteOutcome) -> &'static str {
    match outcome {
        InviteOutcome::Invited => "Invited: the invitation mail is on its way.",
        InviteOutcome::AlreadyPending => {
            "Not invited again: an invitation to this address is already pending."
        }
        InviteOutcome::AlreadyMember => "Not invited: already a member of this organization.",
        InviteOutcome::InvalidEmail => "Not invited: this is not a valid email address.",
        InviteOutcome::NotAllowed => "Not invited: only an owner can invite an owner.",
        InviteOutcome::DomainNotAllowed => {
            "Not invited: the organization only accepts addresses in its allowed domains."
        }
    }
}

/// The invite form, with `error` (and the status it came with) when the
/// last attempt was refused whole.
async fn invite_form(
    state: &AppState,
    page: &InOrg,
    typed: &Typed,
    refused: Option<&AppError>,
) -> Answer {
    // Owners and admins (the only ones past the permission check) hold
    // every right on every project, as `GET /orgs/{org}/projects` shows.
    let (projects, more) = store::projects::list(
        state.store(),
        &page.access.org.id,
        None,
        None,
        PROJECTS_OFFERED,
    )
    .await
    .map_err(|err| page.error(&err.into()))?;
    let projects: Vec<_> = projects
        .iter()
        .map(|project| {
            let id = project.id.to_string();
            context! {
                chosen => typed.rights.get(&id).cloned().unwrap_or_default(),
                id,
                name => project.name.clone(),
            }
        })
        .collect();
    let role = if typed.role.is_empty() {
        Role::Contributor.as_str().to_owned()
    } else {
        typed.role.clone()
    };
    let status = refused.map_or(StatusCode::OK, AppError::status);
    let form = html(
        status,
        INVITE,
        &format!("Invite people to {}", page.access.org.name),
        context! {
            error => refused.map(|err| err.problem().detail),
            emails => typed.emails.clone(),
            role,
            roles => Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            message => typed.message.clone(),
            projects,
            more_projects => more,
            allowed_domains => page.access.org.settings.allowed_email_domains.clone(),
            ..page.values()
        },
    );
    Ok(with_retry_after(form, refused))
}

/// The invite form; for those who may invite (the API's check).
#[handler]
pub async fn invite_page(
    state: Data<&AppState>,
    req: &Request,
    Path(org): Path<String>,
) -> Response {
    respond(
        async {
            let page = InOrg::open(&state, req, &org).await?;
            page.require(Permission::ManageInvitations)?;
            invite_form(&state, &page, &Typed::default(), None).await
        }
        .await,
    )
}

/// Invites the pasted addresses (split as the API splits a pasted string)
/// through the API's invite, and shows each address's outcome. A refusal
/// of the whole request (permission, the hourly cap, a bad role or
/// project right, too many addresses) shows the form again with the
/// reason and the API's status.
#[handler]
pub async fn invite_submit(
    state: Data<&AppState>,
    req: &Request,
    Path(org): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    respond(
        async {
            let page = InOrg::open(&state, req, &org).await?;
            let (typed, csrf) = Typed::from_fields(fields);
            page.console.check_form(&state, req, &csrf)?;
            let granted = match page.access.require(Permission::ManageInvitations) {
                Ok(granted) => granted,
                Err(err) => return invite_form(&state, &page, &typed, Some(&err)).await,
            };
            let invited = invite_addresses(
                &state,
                &granted,
                split_addresses(&typed.emails),
                &typed.role,
                typed.project_rights(),
                typed.message(),
            )
            .await;
            let results = match invited {
                Ok(results) => results,
                Err(err) => return invite_form(&state, &page, &typed, Some(&err)).await,
            };
            let invited = results
                .iter()
                .filter(|r| r.outcome == InviteOutcome::Invited)
                .count();
            let rows: Vec<_> = results
                .iter()
                .map(|result| {
                    context! {
                        email => result.email.clone(),
                        outcome => result.outcome.as_str(),
                        invited => result.outcome == InviteOutcome::Invited,
                        sentence => outcome_sentence(result.outcome),
                    }
                })
                .collect();
            Ok(html(
                StatusCode::OK,
                INVITE_RESULTS,
                &format!("Invitations to {}", page.access.org.name),
                context! {
                    results => rows,
                    invited,
                    allowed_domains => page.access.org.settings.allowed_email_domains.clone(),
                    ..page.values()
                },
            ))
        }
        .await,
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// The API's `status`: pending when absent.
    status: Option<String>,
    /// The API's `cursor`.
    cursor: Option<String>,
    /// What a form just did: `resent` or `withdrawn`.
    done: Option<String>,
}

/// Who sent each invitation, as the list shows it: the inviter's email
/// (their account's), read once per inviter.
async fn inviters(
    state: &AppState,
    items: &[InvitationView],
) -> Result<HashMap<String, String>, AppError> {
    let mut found = HashMap::new();
    for id in items.iter().filter_map(|i| i.invited_by.as_deref()) {
        if found.contains_key(id) {
            continue;
        }
        let Ok(account_id) = AccountId::parse(id) else {
            continue;
        };
        if let Some(account) = store::accounts::get(state.store(), &account_id).await? {
            found.insert(id.to_owned(), account.email.to_string());
        }
    }
    Ok(found)
}

/// The invitations page: `query`'s view and page, with a notice of what
/// was just done or the refusal of what was just tried (and its status).
async fn invitations_list(
    state: &AppState,
    page: &InOrg,
    query: &ListQuery,
    refused: Option<&AppError>,
) -> Answer {
    let granted = page.require(Permission::ManageInvitations)?;
    let listed = list_page(
        state,
        &granted,
        query.status.as_deref(),
        query.cursor.as_deref(),
        PAGE_SIZE,
    )
    .await
    .map_err(|err| page.error(&err))?;
    let inviters = inviters(state, &listed.items)
        .await
        .map_err(|err| page.error(&err))?;
    let status = query.status.clone().unwrap_or_else(|| "pending".into());
    let rows: Vec<_> = listed
        .items
        .iter()
        .map(|item| {
            let inviter = match (&item.invited_by, item.kind.as_str()) {
                (_, "scim_activation") => "The identity provider (activation)".to_owned(),
                (Some(id), _) => inviters.get(id).cloned().unwrap_or_else(|| id.clone()),
                (None, _) => String::new(),
            };
            context! {
                id => item.id.clone(),
                email => item.email.clone(),
                role => item.role.clone(),
                projects => item.project_rights.len(),
                inviter,
                created_at => Serde(item.created_at),
                expires_at => Serde(item.expires_at),
                accepted_at => Serde(item.accepted_at),
                pending => item.status == "pending",
                sends => item.delivery.sends,
                sent_at => Serde(item.delivery.sent_at),
                last_error => item.delivery.last_error.clone(),
            }
        })
        .collect();
    let views: Vec<_> = VIEWS
        .iter()
        .map(|&(value, label)| context! { value, label, current => value == status })
        .collect();
    let notice = match query.done.as_deref() {
        Some("resent") => Some(
            "The invitation was sent again with a new link and a new expiry; the old link no longer works.",
        ),
        Some("withdrawn") => Some("The invitation was withdrawn; its link no longer works."),
        _ => None,
    };
    let next = listed
        .next_cursor
        .map(|cursor| format!("?status={status}&cursor={cursor}"));
    let list = html(
        refused.map_or(StatusCode::OK, AppError::status),
        INVITATIONS,
        &format!("Invitations to {}", page.access.org.name),
        context! {
            invitations => rows,
            view => VIEWS.iter().find(|(value, _)| *value == status).map(|(_, label)| *label),
            status,
            views,
            notice,
            error => refused.map(|err| err.problem().detail),
            first_page => query.cursor.is_none(),
            next,
            ..page.values()
        },
    );
    Ok(with_retry_after(list, refused))
}

/// The organization's invitations, pending ones first, a page at a time.
#[handler]
pub async fn invitations_page(
    state: Data<&AppState>,
    req: &Request,
    Path(org): Path<String>,
    Query(query): Query<ListQuery>,
) -> Response {
    respond(
        async {
            let page = InOrg::open(&state, req, &org).await?;
            invitations_list(&state, &page, &query, None).await
        }
        .await,
    )
}

/// What the invitations' buttons do.
enum Action {
    Resend,
    Withdraw,
}

/// Runs a button's API use case; 303 back to the pending list with what
/// was done, or the list with the refusal.
async fn act(
    state: &AppState,
    req: &Request,
    org: &str,
    id: &str,
    form: &TokenOnly,
    action: Action,
) -> Answer {
    let page = InOrg::open(state, req, org).await?;
    page.console.check_form(state, req, &form.csrf)?;
    let done = match page.access.require(Permission::ManageInvitations) {
        Ok(granted) => match action {
            Action::Resend => resend_invitation(state, &granted, id)
                .await
                .map(|_| "resent"),
            Action::Withdraw => revoke_invitation(state, &granted, id)
                .await
                .map(|()| "withdrawn"),
        },
        Err(err) => Err(err),
    };
    match done {
        Ok(done) => Ok(see_other(&format!(
            "/console/orgs/{}/invitations?done={done}",
            page.access.org.id
        ))),
        Err(err) => invitations_list(state, &page, &ListQuery::default(), Some(&err)).await,
    }
}

/// Resend: a new link, a new expiry, the mail again (the API's resend).
#[handler]
pub async fn resend(
    state: Data<&AppState>,
    req: &Request,
    Path((org, id)): Path<(String, String)>,
    Form(form): Form<TokenOnly>,
) -> Response {
    respond(act(&state, req, &org, &id, &form, Action::Resend).await)
}

/// Withdraw: the API's revoke; the link stops working at once.
#[handler]
pub async fn withdraw(
    state: Data<&AppState>,
    req: &Request,
    Path((org, id)): Path<(String, String)>,
    Form(form): Form<TokenOnly>,
) -> Response {
    respond(act(&state, req, &org, &id, &form, Action::Withdraw).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> minijinja::Value {
        context! { csrf_session => "t", org => context! { id => "o", name => "O" } }
    }

    #[test]
    fn the_pages_render() {
        for (template, values) in [
            (
                INVITE,
                context! {
                    error => "no", emails => "a@x.io", role => "viewer", roles => vec!["owner", "viewer"],
                    projects => vec![context! { id => "p", name => "P", chosen => "write" }],
                    allowed_domains => vec!["x.io"], ..values()
                },
            ),
            (
                INVITE_RESULTS,
                context! {
                    results => vec![context! { email => "a@x.io", outcome => "invited", invited => true, sentence => "s" }],
                    invited => 1, ..values()
                },
            ),
            (
                INVITATIONS,
                context! {
                    invitations => vec![context! { id => "i", email => "a@x.io", pending => true, sends => 2 }],
                    status => "pending", view => "Pending", notice => "n", error => "e", next => "?x", ..values()
                },
            ),
            (INVITATIONS, context! { status => "revoked", ..values() }),
        ] {
            let page = html(StatusCode::OK, template, "Title", values);
            assert_eq!(page.status(), StatusCode::OK, "{template}");
        }
    }

    #[test]
    fn each_rights_choice_includes_the_narrower_rights() {
        let (typed, csrf) = Typed::from_fields(vec![
            ("csrf".into(), "c".into()),
            ("rights:b".into(), "delete".into()),
            ("rights:a".into(), "read".into()),
            ("rights:c".into(), String::new()),
            ("rights:d".into(), "bogus".into()),
            ("other".into(), "x".into()),
        ]);
        assert_eq!(csrf, "c");
        let rights: Vec<(String, Vec<String>)> = typed
            .project_rights()
            .into_iter()
            .map(|p| (p.project_id.0, p.rights.into_iter().map(|r| r.0).collect()))
            .collect();
        assert_eq!(
            rights,
            vec![
                ("a".to_owned(), vec!["read".to_owned()]),
                (
                    "b".to_owned(),
                    vec!["read".into(), "write".into(), "delete".into()]
                ),
                ("d".to_owned(), vec!["bogus".to_owned()]),
            ]
        );
    }
}
