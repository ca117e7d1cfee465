//! The page an invitation mail links to: `/invite/{token}`. Server-rendered
//! HTML, no scripts. GET only shows the invitation (mail scanners open
//! links); acceptance happens on POST, through the same use case as the
//! API (`app::invitations::accept`).
//!
//! Accepting signs the person in on this browser: a session, like one from
//! `POST /auth/login`, kept in a cookie that only invitation pages receive
//! (`Path=/invite`, `HttpOnly`, `SameSite=Strict`). A later invitation page
//! then knows who is signed in: the same account joins with one click; a
//! different one is told so, and can sign out.

use std::sync::LazyLock;

use chrono::SecondsFormat;
use minijinja::{AutoEscape, Environment, context};
use poem::http::{StatusCode, header};
use poem::web::{Data, Form, Path};
use poem::{Request, Response, handler};
use serde::Deserialize;

use crate::app::invitations::{AcceptInput, Accepted, accept, open};
use crate::app::mfa::MfaProof;
use crate::app::sessions::{end_session, start_session};
use crate::auth::{Principal, authenticate};
use crate::domain::invitation::InvitationKind;
use crate::domain::{AccountId, TokenId};
use crate::error::AppError;
use crate::scim::origin_of;
use crate::state::AppState;
use crate::store;

const INVITE: &str = "page/invite.html";
/// The session cookie of invitation pages.
const SESSION_COOKIE: &str = "muster_session";
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

/// What the person typed, shown again when the form comes back with an
/// error (never the password).
#[derive(Debug, Default)]
struct Typed {
    name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
}

/// The form, with what the invitation says and what the person must enter.
async fn form(
    state: &AppState,
    token: &str,
    status: StatusCode,
    error: Option<String>,
    typed: Typed,
    signed_in: Option<&SignedIn>,
) -> Response {
    let invitation = match open(state.store(), state.clock().now(), token).await {
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
        return error_page(&crate::domain::invitation::AcceptError::OrganizationDeleted.into());
    };
    let inviter = match (&invitation.invited_by, inviter) {
        (_, Some(account)) => account
            .display_name
            .clone()
            .unwrap_or_else(|| account.email.to_string()),
        // The inviter deleted their account since.
        (Some(_), None) => format!("a former member of {}", org.name),
        (None, None) => format!("{}'s identity provider", org.name),
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
            signed_in_as => signed_in.map(|s| s.email.clone()),
            signed_in_here => signed_in.is_some_and(|s| s.email == invitation.email.as_str()),
            token,
            has_password => account.as_ref().is_some_and(|a| a.password_hash.is_some()),
            has_mfa => account.as_ref().is_some_and(|a| a.enabled_mfa().is_some()),
            // A new person invited by an admin gives the names identity
            // providers require; an IdP's own user has them already.
            ask_names => invitation.kind == InvitationKind::Invite,
            error,
            name => typed.name.unwrap_or_default(),
            given_name => typed.given_name.unwrap_or_default(),
            family_name => typed.family_name.unwrap_or_default(),
        },
    )
}

/// The account signed in on this browser, from the page's session cookie.
struct SignedIn {
    account_id: AccountId,
    session_id: TokenId,
    email: String,
}

/// Who the session cookie signs in, if it names a live session. A cookie
/// that does not (ended, expired, forged) counts as no cookie, and so does
/// a database error: the page still works, without the notice.
async fn signed_in(state: &AppState, req: &Request) -> Option<SignedIn> {
    let secret = cookie(req, SESSION_COOKIE)?;
    let store = state.store();
    let principal = match authenticate(store, secret, state.clock().now()).await {
        Ok(principal) => principal,
        Err(crate::auth::AuthError::Store(err)) => {
            tracing::warn!(error = %err, "cannot read the invitation page's session");
            return None;
        }
        Err(_) => return None,
    };
    let Principal::Session {
        account_id,
        session_id,
    } = principal
    else {
        return None;
    };
    let account = store::accounts::get(store, &account_id).await.ok()??;
    Some(SignedIn {
        account_id,
        session_id,
        email: account.email.to_string(),
    })
}

pub(crate) fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then_some(value)
        })
}

/// The `Set-Cookie` value that keeps `secret` for `max_age_secs` (0
/// removes the cookie). `Secure` whenever the public URL is HTTPS.
fn session_cookie(state: &AppState, secret: &str, max_age_secs: i64) -> String {
    let secure = if state.settings().public_url().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{SESSION_COOKIE}={secret}; Path=/invite; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}"
    )
}

#[handler]
pub async fn show(state: Data<&AppState>, req: &Request, Path(token): Path<String>) -> Response {
    let signed_in = signed_in(&state, req).await;
    form(
        &state,
        &token,
        StatusCode::OK,
        None,
        Typed::default(),
        signed_in.as_ref(),
    )
    .await
}

/// Ends the page's session and shows the invitation again.
#[handler]
pub async fn sign_out(
    state: Data<&AppState>,
    req: &Request,
    Path(token): Path<String>,
) -> Response {
    if let Some(signed_in) = signed_in(&state, req).await
        && let Err(err) = end_session(
            &state,
            &signed_in.account_id,
            &signed_in.session_id,
            origin_of(req),
        )
        .await
    {
        return error_page(&err);
    }
    // Only a well-formed token goes back into a header.
    let back = if crate::auth::token::is_well_formed_invitation(&token) {
        format!("/invite/{token}")
    } else {
        "/invite/".to_owned()
    };
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, back)
        .header(header::SET_COOKIE, session_cookie(&state, "", 0))
        .header("Cache-Control", "no-store")
        .finish()
}

#[derive(Debug, Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    given_name: Option<String>,
    #[serde(default)]
    family_name: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    recovery_code: Option<String>,
}

#[handler]
pub async fn submit(
    state: Data<&AppState>,
    req: &Request,
    Path(token): Path<String>,
    form_data: poem::Result<Form<AcceptForm>>,
) -> Response {
    let signed_in = signed_in(&state, req).await;
    let Ok(Form(AcceptForm {
        name,
        given_name,
        family_name,
        password,
        code,
        recovery_code,
    })) = form_data
    else {
        return form(
            &state,
            &token,
            StatusCode::BAD_REQUEST,
            Some("The form could not be read; please fill it in again.".into()),
            Typed::default(),
            signed_in.as_ref(),
        )
        .await;
    };
    let filled = |field: Option<String>| field.filter(|f| !f.trim().is_empty());
    let typed = Typed {
        name: filled(name),
        given_name: filled(given_name),
        family_name: filled(family_name),
    };
    let input = AcceptInput {
        token: token.clone(),
        name: typed.name.clone(),
        given_name: typed.given_name.clone(),
        family_name: typed.family_name.clone(),
        names_required: true,
        password: password.filter(|p| !p.is_empty()),
        mfa_proof: match MfaProof::from_fields(code, recovery_code) {
            Ok(proof) => proof,
            Err(err) => {
                let err = AppError::from(err);
                return form(
                    &state,
                    &token,
                    err.status(),
                    Some(err.problem().detail),
                    typed,
                    signed_in.as_ref(),
                )
                .await;
            }
        },
        signed_in: signed_in.as_ref().map(|s| s.account_id.clone()),
    };
    let accepted = accept(
        state.store(),
        state.clock().now(),
        origin_of(req),
        state.0,
        input,
    )
    .await;
    match accepted {
        Ok(accepted) => welcome(&state, req, &accepted, signed_in.as_ref()).await,
        Err(
            err @ (AppError::Invalid { .. }
            | AppError::Forbidden(_)
            | AppError::Denied { .. }
            | AppError::Conflict { .. }),
        ) => {
            let status = err.status();
            form(
                &state,
                &token,
                status,
                Some(err.problem().detail),
                typed,
                signed_in.as_ref(),
            )
            .await
        }
        Err(err) => error_page(&err),
    }
}

/// The page after an acceptance, signing the new member in on this
/// browser (ending the session of another account signed in before).
async fn welcome(
    state: &AppState,
    req: &Request,
    accepted: &Accepted,
    signed_in: Option<&SignedIn>,
) -> Response {
    let org = store::orgs::get(state.store(), None, &accepted.org_id)
        .await
        .ok()
        .flatten()
        .map(|org| org.name)
        .unwrap_or_else(|| "the organization".into());
    let page = outcome(
        StatusCode::OK,
        &format!("Welcome to {org}"),
        "You are now a member, signed in on this browser. \
         Elsewhere, sign in with your email and password.",
    );
    if signed_in.is_some_and(|s| s.account_id == accepted.account_id) {
        return page;
    }
    if let Some(other) = signed_in
        && let Err(err) =
            end_session(state, &other.account_id, &other.session_id, origin_of(req)).await
    {
        tracing::warn!(error = %err.problem().detail, "cannot end the previous session of the invitation page");
    }
    let started = start_session(state, &accepted.account_id, origin_of(req)).await;
    match started {
        Ok((secret, expires_at)) => {
            let max_age = (expires_at - state.clock().now()).num_seconds().max(0);
            let mut page = page;
            if let Ok(value) = session_cookie(state, &secret, max_age).parse() {
                page.headers_mut().insert(header::SET_COOKIE, value);
            }
            page
        }
        Err(err) => {
            // The acceptance stands; only the convenience is lost.
            tracing::warn!(error = %err.problem().detail, "cannot sign in after accepting an invitation");
            page
        }
    }
}
