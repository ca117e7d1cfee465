//! The page an invitation mail links to: `/invite/{token}`. Server-rendered
//! HTML, no scripts. GET only shows the invitation (mail scanners open
//! links); acceptance happens on POST, through the same use case as the
//! API (`invitations::accept`).

use std::sync::LazyLock;

use chrono::SecondsFormat;
use minijinja::{AutoEscape, Environment, context};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{Request, Response, handler};
use serde::Deserialize;

use crate::error::AppError;
use crate::invitations::{AcceptInput, accept, open};
use crate::scim::origin_of;
use crate::state::AppState;
use crate::store;

const INVITE: &str = "page/invite.html";
const OUTCOME: &str = "page/outcome.html";

static PAGES: LazyLock<Result<Environment<'static>, String>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    for (name, source) in [
        (INVITE, include_str!("../templates/page/invite.html")),
        (OUTCOME, include_str!("../templates/page/outcome.html")),
    ] {
        env.add_template(name, source)
            .map_err(|err| format!("template {name}: {err}"))?;
    }
    Ok(env)
});

fn html(status: StatusCode, template: &str, values: minijinja::Value) -> Response {
    let rendered = PAGES.as_ref().map_err(Clone::clone).and_then(|env| {
        env.get_template(template)
            .and_then(|t| t.render(values))
            .map_err(|err| err.to_string())
    });
    match rendered {
        Ok(body) => Response::builder()
            .status(status)
            .content_type("text/html; charset=utf-8")
            .header("Cache-Control", "no-store")
            .body(body),
        Err(err) => {
            tracing::error!(error = %err, "cannot render the invitation page");
            Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .content_type("text/plain; charset=utf-8")
                .body("internal error")
        }
    }
}

fn outcome(status: StatusCode, title: &str, detail: &str) -> Response {
    html(status, OUTCOME, context! { title, detail })
}

/// An error as a page: gone (410), unknown (404) and the rest.
fn error_page(err: &AppError) -> Response {
    match err {
        AppError::Gone { .. } => outcome(
            StatusCode::GONE,
            "This invitation can no longer be used",
            &err.to_string(),
        ),
        AppError::NotFound(_) => outcome(
            StatusCode::NOT_FOUND,
            "No such invitation",
            "This link is not a valid invitation. If it was resent, use the newest mail.",
        ),
        other => {
            let problem = other.problem();
            outcome(
                other.status(),
                "Something went wrong",
                &format!("{} (request id in the X-Request-Id header)", problem.detail),
            )
        }
    }
}

/// The form, with what the invitation says and what the person must enter.
async fn form(
    state: &AppState,
    token: &str,
    status: StatusCode,
    error: Option<String>,
    name: Option<String>,
) -> Response {
    let invitation = match open(state, token).await {
        Ok(invitation) => invitation,
        Err(err) => return error_page(&err),
    };
    let store = state.store();
    let details = async {
        let org = store::orgs::get(store, None, &invitation.org_id).await?;
        let inviter = match &invitation.invited_by {
            Some(id) => store::accounts::get(store, id).await?,
            None => None,
        };
        let account = store::accounts::find_by_email(store, None, &invitation.email).await?;
        Ok::<_, AppError>((org, inviter, account))
    };
    let (org, inviter, account) = match details.await {
        Ok(found) => found,
        Err(err) => return error_page(&err),
    };
    let Some(org) = org else {
        return error_page(&AppError::NotFound("invitation"));
    };
    let inviter = match inviter {
        Some(account) => account
            .display_name
            .clone()
            .unwrap_or_else(|| account.email.to_string()),
        None => format!("{}'s identity provider", org.name),
    };
    html(
        status,
        INVITE,
        context! {
            org_name => org.name,
            inviter,
            email => invitation.email.as_str(),
            role => invitation.role.as_str(),
            message => invitation.message,
            expires_at => invitation.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true).replace('T', " ").replace('Z', " UTC"),
            has_account => account.is_some(),
            has_password => account.as_ref().is_some_and(|a| a.password_hash.is_some()),
            error,
            name => name.unwrap_or_default(),
        },
    )
}

#[handler]
pub async fn show(state: Data<&AppState>, Path(token): Path<String>) -> Response {
    form(&state, &token, StatusCode::OK, None, None).await
}

#[derive(Debug, Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

#[handler]
pub async fn submit(
    state: Data<&AppState>,
    req: &Request,
    Path(token): Path<String>,
    form_data: poem::Result<Form<AcceptForm>>,
) -> Response {
    let Ok(Form(AcceptForm { name, password })) = form_data else {
        return form(
            &state,
            &token,
            StatusCode::BAD_REQUEST,
            Some("The form could not be read; please fill it in again.".into()),
            None,
        )
        .await;
    };
    let name = name.filter(|n| !n.trim().is_empty());
    let input = AcceptInput {
        token: token.clone(),
        name: name.clone(),
        password: password.filter(|p| !p.is_empty()),
    };
    match accept(&state, origin_of(req), input).await {
        Ok(accepted) => {
            let org = store::orgs::get(state.store(), None, &accepted.org_id)
                .await
                .ok()
                .flatten()
                .map(|org| org.name)
                .unwrap_or_else(|| "the organization".into());
            outcome(
                StatusCode::OK,
                &format!("Welcome to {org}"),
                "You are now a member. Sign in with your email and password.",
            )
        }
        Err(
            err @ (AppError::Invalid { .. } | AppError::Forbidden(_) | AppError::Conflict { .. }),
        ) => {
            let status = err.status();
            form(&state, &token, status, Some(err.problem().detail), name).await
        }
        Err(err) => error_page(&err),
    }
}
