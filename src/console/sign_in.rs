//! Signing in (the password, then the TOTP step when the account has it)
//! and out: the use cases of `POST /auth/login`, `/auth/login/mfa` and the
//! API's sign-out, with the same throttling and audit events.

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query};
use poem::{Request, Response, handler};
use rand::RngCore as _;
use serde::Deserialize;

use super::{
    SESSION_COOKIE, TokenOnly, console_cookie, error_page, forbidden_form, html, origin_allowed,
    respond, see_other, signed_in, tokens_match, with_cookie,
};
use crate::app::mfa::MfaProof;
use crate::app::sessions::{SignIn, complete_sign_in, end_session, sign_in};
use crate::error::AppError;
use crate::invite_page::cookie;
use crate::scim::origin_of;
use crate::state::AppState;

/// The pre-session CSRF token (double-submit): the sign-in forms carry
/// its value, which a cross-site page can neither read nor set.
const CSRF_COOKIE: &str = "muster_console_csrf";
/// The MFA challenge between the password and the code, kept out of the
/// page.
const MFA_COOKIE: &str = "muster_console_mfa";

const SIGN_IN: &str = "console/sign_in.html";
const MFA: &str = "console/mfa.html";

pub(super) const TEMPLATES: &[(&str, &str)] = &[
    (
        SIGN_IN,
        include_str!("../../templates/console/sign_in.html"),
    ),
    (MFA, include_str!("../../templates/console/mfa.html")),
];

/// The pre-session token of this browser, and whether it must be set
/// (a new one, when the browser has none that looks like ours).
fn pre_session_token(req: &Request) -> (String, bool) {
    match cookie(req, CSRF_COOKIE) {
        Some(token) if token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (token.to_owned(), false)
        }
        _ => {
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            (hex::encode(bytes), true)
        }
    }
}

/// A sign-in form's POST may go on: its origin is ours and its token is
/// the browser's pre-session cookie.
fn pre_session_allowed(state: &AppState, req: &Request, sent: &str) -> bool {
    origin_allowed(state, req)
        && cookie(req, CSRF_COOKIE).is_some_and(|expected| tokens_match(sent, expected))
}

fn sign_in_form(
    state: &AppState,
    req: &Request,
    status: StatusCode,
    error: Option<String>,
    email: &str,
) -> Response {
    sign_in_form_with(state, req, status, error, email, None)
}

fn sign_in_form_with(
    state: &AppState,
    req: &Request,
    status: StatusCode,
    error: Option<String>,
    email: &str,
    notice: Option<&str>,
) -> Response {
    let (csrf, new) = pre_session_token(req);
    let page = html(
        status,
        SIGN_IN,
        "Sign in",
        context! { csrf => csrf.clone(), error, email, notice },
    );
    if new {
        with_cookie(page, console_cookie(state, CSRF_COOKIE, &csrf, 3600))
    } else {
        page
    }
}

fn mfa_form(
    state: &AppState,
    req: &Request,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let (csrf, new) = pre_session_token(req);
    let page = html(
        status,
        MFA,
        "Two-factor authentication",
        context! { csrf => csrf.clone(), error },
    );
    if new {
        with_cookie(page, console_cookie(state, CSRF_COOKIE, &csrf, 3600))
    } else {
        page
    }
}

/// Signed in: the session cookie, the challenge forgotten, and the
/// session this browser had before ended (it would otherwise linger in
/// `/me/sessions` with nobody holding it).
async fn signed_in_now(
    state: &AppState,
    req: &Request,
    token: &str,
    expires_at: chrono::DateTime<chrono::Utc>,
) -> Response {
    if let Some(before) = signed_in(state, req).await
        && let Err(err) = end_session(
            state,
            &before.account_id,
            &before.session_id,
            origin_of(req),
        )
        .await
    {
        tracing::warn!(error = %err.problem().detail, "cannot end the console's previous session");
    }
    let max_age = (expires_at - state.clock().now()).num_seconds().max(0);
    let page = see_other("/console");
    let page = with_cookie(page, console_cookie(state, SESSION_COOKIE, token, max_age));
    with_cookie(page, console_cookie(state, MFA_COOKIE, "", 0))
}

#[handler]
pub async fn sign_in_page(
    state: Data<&AppState>,
    req: &Request,
    query: poem::Result<Query<Done>>,
) -> Response {
    if signed_in(&state, req).await.is_some() {
        return see_other("/console");
    }
    // Fixed text for the one thing that lands here having just happened:
    // the query never puts words of its own on the page.
    let notice = query
        .ok()
        .filter(|Query(done)| done.done.as_deref() == Some("account-deleted"))
        .map(|_| "Your account is deleted. Thank you for using Muster.");
    sign_in_form_with(&state, req, StatusCode::OK, None, "", notice)
}

/// `?done=` on the sign-in page.
#[derive(Debug, Deserialize)]
pub struct Done {
    done: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// The password step. A wrong password (or unknown email) answers 401
/// with the form again and the API's message; a locked email or address
/// 429, the same way.
#[handler]
pub async fn sign_in_submit(
    state: Data<&AppState>,
    req: &Request,
    form: poem::Result<Form<SignInForm>>,
) -> Response {
    let Ok(Form(form)) = form else {
        return forbidden_form();
    };
    if !pre_session_allowed(&state, req, &form.csrf) {
        return forbidden_form();
    }
    // The API's limits on the same fields.
    if form.email.chars().count() > 254 || form.password.chars().count() > 1024 {
        return sign_in_form(
            &state,
            req,
            StatusCode::BAD_REQUEST,
            Some("The email or the password is too long.".into()),
            "",
        );
    }
    let email = form.email.trim().to_owned();
    match sign_in(&state, &email, form.password, origin_of(req)).await {
        Ok(SignIn::Session(session)) => {
            signed_in_now(&state, req, &session.token, session.expires_at).await
        }
        Ok(SignIn::SecondFactorNeeded(challenge)) => {
            let max_age = (challenge.expires_at - state.clock().now())
                .num_seconds()
                .max(0);
            with_cookie(
                see_other("/console/sign-in/mfa"),
                console_cookie(&state, MFA_COOKIE, &challenge.challenge, max_age),
            )
        }
        Err(err @ (AppError::Unauthorized(_) | AppError::TooManyRequests { .. })) => sign_in_form(
            &state,
            req,
            err.status(),
            Some(err.problem().detail),
            &email,
        ),
        Err(err) => error_page(&err, None),
    }
}

#[handler]
pub async fn mfa_page(state: Data<&AppState>, req: &Request) -> Response {
    if cookie(req, MFA_COOKIE).is_none_or(str::is_empty) {
        return see_other("/console/sign-in");
    }
    mfa_form(&state, req, StatusCode::OK, None)
}

#[derive(Debug, Deserialize)]
pub struct MfaForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    recovery_code: Option<String>,
}

/// The code step: a wrong code answers 401 with the form again; an
/// expired or used challenge sends the person back to the password.
#[handler]
pub async fn mfa_submit(
    state: Data<&AppState>,
    req: &Request,
    form: poem::Result<Form<MfaForm>>,
) -> Response {
    let Ok(Form(form)) = form else {
        return forbidden_form();
    };
    if !pre_session_allowed(&state, req, &form.csrf) {
        return forbidden_form();
    }
    let Some(challenge) = cookie(req, MFA_COOKIE).filter(|c| !c.is_empty()) else {
        return see_other("/console/sign-in");
    };
    let proof = match MfaProof::from_fields(form.code, form.recovery_code) {
        Ok(proof) => proof,
        Err(err) => {
            let err = AppError::from(err);
            return mfa_form(&state, req, err.status(), Some(err.problem().detail));
        }
    };
    match complete_sign_in(&state, challenge, proof, origin_of(req)).await {
        Ok(session) => signed_in_now(&state, req, &session.token, session.expires_at).await,
        Err(
            err @ (AppError::Unauthorized(_)
            | AppError::TooManyRequests { .. }
            | AppError::Denied { .. }
            | AppError::Invalid { .. }),
        ) => mfa_form(&state, req, err.status(), Some(err.problem().detail)),
        Err(err) => error_page(&err, None),
    }
}

/// Ends the session (the use case of the API's sign-out, audited as
/// `account.signed_out`) and forgets the cookie.
#[handler]
pub async fn sign_out(
    state: Data<&AppState>,
    req: &Request,
    form: poem::Result<Form<TokenOnly>>,
) -> Response {
    let signed_out = || {
        with_cookie(
            see_other("/console/sign-in"),
            console_cookie(&state, SESSION_COOKIE, "", 0),
        )
    };
    // Nothing to end; the cookie goes all the same.
    let Some(console) = signed_in(&state, req).await else {
        return signed_out();
    };
    respond(
        async {
            let sent = form.map(|Form(form)| form.csrf).unwrap_or_default();
            console.check_form(&state, req, &sent)?;
            end_session(
                &state,
                &console.account_id,
                &console.session_id,
                origin_of(req),
            )
            .await
            .map_err(|err| console.error(&err))?;
            Ok(signed_out())
        }
        .await,
    )
}
