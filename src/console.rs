//! The admin console under `/console` (issue 15, first slice): sign in
//! (with the TOTP step when the account has it), sign out, the
//! organizations the person belongs to, and a read-only members table.
//! Server-rendered HTML, no scripts, one stylesheet served as a file so
//! the Content-Security-Policy needs no inline style.
//!
//! Nothing here decides anything on its own: signing in and out are the
//! use cases of `POST /auth/login`, `/auth/login/mfa` and the API's
//! sign-out (same throttling, same audit events), the session is an
//! ordinary session (listed in `/me/sessions`) kept in a cookie only
//! console pages receive, and the members page runs the API's access
//! check (`OrgAccess`) and listing.
//!
//! Forms are protected against cross-site requests twice: every POST
//! carries a token (before sign-in, a double-submit cookie; after, a value
//! derived from the session's secret, which the page never shows), and a
//! POST whose `Origin` is not the public URL's origin is refused. Both
//! failures are 403 and change nothing.

use std::sync::LazyLock;

use chrono::SecondsFormat;
use minijinja::{AutoEscape, Environment, context};
use poem::http::{StatusCode, header};
use poem::web::{Data, Form, Path};
use poem::{Request, Response, handler};
use rand::RngCore as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::api::access::OrgAccess;
use crate::app::mfa::MfaProof;
use crate::app::sessions::{SignIn, complete_sign_in, end_session, sign_in};
use crate::auth::{Principal, authenticate};
use crate::domain::{AccountId, Permission, TokenId};
use crate::error::AppError;
use crate::invite_page::cookie;
use crate::scim::origin_of;
use crate::state::AppState;
use crate::store::members::MemberQuery;

/// The console's session cookie: the session's secret.
const SESSION_COOKIE: &str = "muster_console";
/// The pre-session CSRF token (double-submit): the sign-in forms carry
/// its value, which a cross-site page can neither read nor set.
const CSRF_COOKIE: &str = "muster_console_csrf";
/// The MFA challenge between the password and the code, kept out of the
/// page.
const MFA_COOKIE: &str = "muster_console_mfa";
/// The members table shows this many; paging is the next slice.
const MEMBERS_SHOWN: u32 = 200;

const BASE: &str = "console/base.html";
const SIGN_IN: &str = "console/sign_in.html";
const MFA: &str = "console/mfa.html";
const ORGS: &str = "console/orgs.html";
const MEMBERS: &str = "console/members.html";
const MESSAGE: &str = "console/message.html";

static PAGES: LazyLock<Result<Environment<'static>, String>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    for (name, source) in [
        (BASE, include_str!("../templates/console/base.html")),
        (SIGN_IN, include_str!("../templates/console/sign_in.html")),
        (MFA, include_str!("../templates/console/mfa.html")),
        (ORGS, include_str!("../templates/console/orgs.html")),
        (MEMBERS, include_str!("../templates/console/members.html")),
        (MESSAGE, include_str!("../templates/console/message.html")),
    ] {
        env.add_template(name, source)
            .map_err(|err| format!("template {name}: {err}"))?;
    }
    Ok(env)
});

/// A page: its template's content inside `console/base.html` (two
/// renders, as the minijinja build has no template inheritance), which
/// shows the sign-out button when `values` has a `csrf_session`.
fn html(status: StatusCode, template: &str, title: &str, values: minijinja::Value) -> Response {
    let render = |env: &Environment<'static>| -> Result<String, minijinja::Error> {
        let main = env.get_template(template)?.render(&values)?;
        env.get_template(BASE)?.render(context! {
            title,
            main => minijinja::Value::from_safe_string(main),
            csrf_session => values.get_attr("csrf_session").ok(),
        })
    };
    let rendered = PAGES
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|env| render(env).map_err(|err| err.to_string()));
    match rendered {
        Ok(body) => Response::builder()
            .status(status)
            .content_type("text/html; charset=utf-8")
            .header(header::CACHE_CONTROL, "no-store")
            .body(body),
        Err(err) => {
            tracing::error!(error = %err, "cannot render a console page");
            Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .content_type("text/plain; charset=utf-8")
                .body("internal error")
        }
    }
}

fn message(status: StatusCode, title: &str, detail: &str, signed_in: Option<&Console>) -> Response {
    html(
        status,
        MESSAGE,
        title,
        context! { title, detail, csrf_session => signed_in.map(Console::csrf) },
    )
}

fn error_page(err: &AppError, signed_in: Option<&Console>) -> Response {
    message(
        err.status(),
        "Something went wrong",
        &err.problem().detail,
        signed_in,
    )
}

fn forbidden_form() -> Response {
    message(
        StatusCode::FORBIDDEN,
        "This form cannot be accepted",
        "It was not sent from this console, or it is too old. Go back, reload the page and try again.",
        None,
    )
}

fn see_other(to: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, to)
        .header(header::CACHE_CONTROL, "no-store")
        .finish()
}

/// A `Set-Cookie` value for a console cookie: `HttpOnly`,
/// `SameSite=Strict`, `Path=/console`, `Secure` whenever the public URL is
/// HTTPS (as the invitation page decides it). `max_age_secs` 0 removes it.
fn console_cookie(state: &AppState, name: &str, value: &str, max_age_secs: i64) -> String {
    let secure = if state.settings().public_url().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{name}={value}; Path=/console; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}"
    )
}

fn with_cookie(mut response: Response, value: String) -> Response {
    if let Ok(value) = value.parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Equal, in time that does not depend on where they differ; an empty
/// token never matches.
fn tokens_match(sent: &str, expected: &str) -> bool {
    !expected.is_empty() && bool::from(sent.as_bytes().ct_eq(expected.as_bytes()))
}

/// The origin (`scheme://host[:port]`) of a URL, as browsers send it in
/// `Origin`: lower case, without a path, and without the scheme's default
/// port (a public URL written `https://host:443` must still match).
fn origin_of_url(url: &str) -> String {
    let host_start = url.find("://").map_or(0, |at| at + 3);
    let end = url[host_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |at| host_start + at);
    let origin = url[..end].to_ascii_lowercase();
    for (scheme, port) in [("https://", ":443"), ("http://", ":80")] {
        if origin.starts_with(scheme)
            && let Some(bare) = origin.strip_suffix(port)
        {
            return bare.to_owned();
        }
    }
    origin
}

/// A POST whose `Origin` names another site (or `null`) did not come from
/// a console page. Browsers send `Origin` on every form POST; a request
/// without one still needs the token.
fn origin_allowed(state: &AppState, req: &Request) -> bool {
    match req.headers().get(header::ORIGIN) {
        None => true,
        Some(origin) => origin.to_str().is_ok_and(|origin| {
            origin.to_ascii_lowercase() == origin_of_url(state.settings().public_url())
        }),
    }
}

/// The person signed in on this browser, from the console cookie.
struct Console {
    account_id: AccountId,
    session_id: TokenId,
    principal: Principal,
    secret: String,
}

impl Console {
    /// The forms' token while signed in: derived from the session's
    /// secret, which only the HttpOnly cookie holds, so a page elsewhere
    /// cannot compute it; and the session's own, so it dies with it.
    /// Domain-separated, so it is never the secret's stored hash.
    fn csrf(&self) -> String {
        let mut digest = Sha256::new();
        digest.update(b"muster console csrf\0");
        digest.update(self.secret.as_bytes());
        hex::encode(digest.finalize())
    }
}

/// Who the console cookie signs in, if it names a live session. An ended,
/// expired or forged cookie counts as none, and so does a database error
/// (logged): the person is asked to sign in.
async fn signed_in(state: &AppState, req: &Request) -> Option<Console> {
    let secret = cookie(req, SESSION_COOKIE).filter(|s| !s.is_empty())?;
    let principal = match authenticate(state.store(), secret, state.clock().now()).await {
        Ok(principal) => principal,
        Err(crate::auth::AuthError::Store(err)) => {
            tracing::warn!(error = %err, "cannot read the console's session");
            return None;
        }
        Err(_) => return None,
    };
    let Principal::Session {
        account_id,
        session_id,
    } = &principal
    else {
        return None;
    };
    Some(Console {
        account_id: account_id.clone(),
        session_id: session_id.clone(),
        secret: secret.to_owned(),
        principal,
    })
}

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
    let (csrf, new) = pre_session_token(req);
    let page = html(
        status,
        SIGN_IN,
        "Sign in",
        context! { csrf => csrf.clone(), error, email },
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
pub async fn sign_in_page(state: Data<&AppState>, req: &Request) -> Response {
    if signed_in(&state, req).await.is_some() {
        return see_other("/console");
    }
    sign_in_form(&state, req, StatusCode::OK, None, "")
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

#[derive(Debug, Deserialize)]
pub struct TokenOnly {
    #[serde(default)]
    csrf: String,
}

/// Ends the session (the use case of the API's sign-out, audited as
/// `account.signed_out`) and forgets the cookie.
#[handler]
pub async fn sign_out(
    state: Data<&AppState>,
    req: &Request,
    form: poem::Result<Form<TokenOnly>>,
) -> Response {
    let Some(console) = signed_in(&state, req).await else {
        // Nothing to end; the cookie goes all the same.
        return with_cookie(
            see_other("/console/sign-in"),
            console_cookie(&state, SESSION_COOKIE, "", 0),
        );
    };
    let allowed = form
        .ok()
        .is_some_and(|Form(form)| tokens_match(&form.csrf, &console.csrf()));
    if !allowed || !origin_allowed(&state, req) {
        return forbidden_form();
    }
    if let Err(err) = end_session(
        &state,
        &console.account_id,
        &console.session_id,
        origin_of(req),
    )
    .await
    {
        return error_page(&err, Some(&console));
    }
    with_cookie(
        see_other("/console/sign-in"),
        console_cookie(&state, SESSION_COOKIE, "", 0),
    )
}

/// The organizations the person belongs to, each a link to its members.
#[handler]
pub async fn home(state: Data<&AppState>, req: &Request) -> Response {
    let Some(console) = signed_in(&state, req).await else {
        return see_other("/console/sign-in");
    };
    // What `GET /me` answers: the same memberships, roles and statuses.
    let me = match crate::api::me::me_response(&state, &console.principal).await {
        Ok(me) => me,
        Err(err) => return error_page(&err, Some(&console)),
    };
    let orgs: Vec<_> = me
        .memberships
        .into_iter()
        .map(|membership| {
            context! {
                id => membership.org_id,
                name => membership.org_name,
                status => membership.status,
            }
        })
        .collect();
    html(
        StatusCode::OK,
        ORGS,
        "Organizations",
        context! {
            csrf_session => console.csrf(),
            email => me.account.email,
            orgs,
        },
    )
}

/// The organization's members, read-only: the API's access check (404 for
/// a non-member, 403 for a member who may not act or lacks the second
/// factor the organization requires) and the API's first page.
#[handler]
pub async fn members_page(
    state: Data<&AppState>,
    req: &Request,
    Path(org): Path<String>,
) -> Response {
    let Some(console) = signed_in(&state, req).await else {
        return see_other("/console/sign-in");
    };
    let access = match OrgAccess::load_for(&state, &console.principal, req, &org).await {
        Ok(access) => access,
        Err(err) => return error_page(&err, Some(&console)),
    };
    let granted = match access.require(Permission::ViewDirectory) {
        Ok(granted) => granted,
        Err(err) => return error_page(&err, Some(&console)),
    };
    let query = MemberQuery {
        role: None,
        status: None,
        text: None,
        after: None,
        limit: MEMBERS_SHOWN,
    };
    let page = match crate::api::members::list_page(&state, &granted, &query).await {
        Ok(page) => page,
        Err(err) => return error_page(&err, Some(&console)),
    };
    let rows: Vec<_> = page
        .items
        .iter()
        .map(|member| {
            context! {
                name => member.display_name.clone().unwrap_or_else(|| member.user_name.clone()),
                email => member.email.clone(),
                role => member.role.clone(),
                status => member.status.clone(),
                suspended_until => member.suspended_until.map(|at| {
                    at.to_rfc3339_opts(SecondsFormat::Secs, true)
                        .replace('T', " ")
                        .replace('Z', " UTC")
                }),
            }
        })
        .collect();
    html(
        StatusCode::OK,
        MEMBERS,
        &format!("Members of {}", access.org.name),
        context! {
            csrf_session => console.csrf(),
            org_name => access.org.name.clone(),
            org_id => access.org.id.to_string(),
            members => rows,
            more => page.next_cursor.is_some(),
            shown => MEMBERS_SHOWN,
        },
    )
}

/// The console's one stylesheet, a file so pages need no inline style.
#[handler]
pub fn stylesheet() -> Response {
    Response::builder()
        .content_type("text/css; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=300")
        .body(include_str!("../templates/console/console.css"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_renders() {
        assert!(PAGES.is_ok(), "{:?}", PAGES.as_ref().err());
        for (name, values) in [
            (
                SIGN_IN,
                context! { csrf => "t", error => "e", email => "a@b" },
            ),
            (MFA, context! { csrf => "t" }),
            (
                ORGS,
                context! { csrf_session => "t", orgs => vec![context! { id => "o", name => "O", status => "active" }] },
            ),
            (
                ORGS,
                context! { csrf_session => "t", orgs => Vec::<minijinja::Value>::new() },
            ),
            (
                MEMBERS,
                context! { csrf_session => "t", org_name => "O", org_id => "o", members => vec![context! { name => "n", role => "owner", status => "active" }], more => true, shown => 200 },
            ),
            (MESSAGE, context! { title => "t", detail => "d" }),
        ] {
            let page = html(StatusCode::OK, name, "Title", values);
            assert_eq!(page.status(), StatusCode::OK, "{name}");
        }
    }

    #[test]
    fn the_public_origin_is_what_browsers_send() {
        assert_eq!(
            origin_of_url("https://Muster.example.com/base"),
            "https://muster.example.com"
        );
        assert_eq!(
            origin_of_url("https://muster.example.com:443"),
            "https://muster.example.com"
        );
        assert_eq!(
            origin_of_url("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            origin_of_url("https://muster.example.com:8443/"),
            "https://muster.example.com:8443"
        );
    }

    #[test]
    fn tokens_match_only_when_equal_and_not_empty() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abd", "abc"));
        assert!(!tokens_match("ab", "abc"));
        assert!(!tokens_match("", ""));
    }
}
