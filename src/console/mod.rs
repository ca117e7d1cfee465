//! The admin console under `/console` (issue 15): server-rendered HTML
//! that works without a script, one stylesheet and one small script
//! (local times, copy buttons) served as files, so the
//! Content-Security-Policy allows no inline code. One module per area
//! (`sign_in`, `orgs`, `members`, …); this one holds what they share: the
//! route table, rendering, cookies, the CSRF rules and who is signed in.
//!
//! Nothing here decides anything on its own: signing in and out are the
//! use cases of `POST /auth/login`, `/auth/login/mfa` and the API's
//! sign-out (same throttling, same audit events), the session is an
//! ordinary session (listed in `/me/sessions`) kept in a cookie only
//! console pages receive, and an organization's pages run the API's access
//! check ([`OrgAccess`], through [`InOrg::open`]) and the API's use cases.
//!
//! Forms are protected against cross-site requests twice: every POST
//! carries a token (before sign-in, a double-submit cookie; after, a value
//! derived from the session's secret, which the page never shows), and a
//! POST whose `Origin` is not the public URL's origin is refused. Both
//! failures are 403 and change nothing.

mod account;
mod audit;
mod groups;
mod integrations;
mod invitations;
mod members;
mod orgs;
mod projects;
mod settings;
mod sign_in;

use std::sync::LazyLock;

use chrono::{DateTime, SecondsFormat, Utc};
use minijinja::{AutoEscape, Environment, context};
use poem::http::{StatusCode, header};
use poem::{Request, Response, Route, RouteMethod, get, handler, post};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::api::access::{Granted, OrgAccess};
use crate::auth::{Principal, authenticate};
use crate::domain::{AccountId, Permission, TokenId};
use crate::error::AppError;
use crate::invite_page::cookie;
use crate::state::AppState;

/// The console's session cookie: the session's secret.
const SESSION_COOKIE: &str = "muster_console";

const BASE: &str = "console/base.html";
const MESSAGE: &str = "console/message.html";

/// Every console route, below `/console`, in poem's syntax. The metrics'
/// route labels come from the same table, so a new page is labelled
/// without another list to keep in step.
fn table() -> Vec<(&'static str, RouteMethod)> {
    vec![
        ("/", get(orgs::home)),
        (
            "/sign-in",
            get(sign_in::sign_in_page).post(sign_in::sign_in_submit),
        ),
        (
            "/sign-in/mfa",
            get(sign_in::mfa_page).post(sign_in::mfa_submit),
        ),
        ("/sign-out", post(sign_in::sign_out)),
        ("/orgs/:org/members", get(members::members_page)),
        (
            "/orgs/:org/invite",
            get(invitations::invite_page).post(invitations::invite_submit),
        ),
        ("/orgs/:org/invitations", get(invitations::invitations_page)),
        (
            "/orgs/:org/invitations/:id/resend",
            post(invitations::resend),
        ),
        (
            "/orgs/:org/invitations/:id/withdraw",
            post(invitations::withdraw),
        ),
        (
            "/orgs/:org/integrations",
            get(integrations::integrations_page),
        ),
        (
            "/orgs/:org/integrations/scim-tokens",
            post(integrations::create_token),
        ),
        (
            "/orgs/:org/integrations/scim-tokens/:id/revoke",
            get(integrations::revoke_page).post(integrations::revoke_token),
        ),
        ("/orgs/:org/audit", get(audit::audit_page)),
        ("/orgs/:org/audit/export.csv", get(audit::export_csv)),
        ("/orgs/:org/audit/export.jsonl", get(audit::export_jsonl)),
        ("/me/activity", get(audit::my_activity)),
        ("/me", get(account::me_page)),
        ("/me/name", post(account::name_submit)),
        ("/me/password", post(account::password_submit)),
        ("/me/orgs/:org/leave", post(account::leave_submit)),
        ("/me/delete", post(account::delete_submit)),
        ("/me/mfa", get(account::mfa_page).post(account::mfa_start)),
        ("/me/mfa/confirm", post(account::mfa_confirm)),
        ("/me/mfa/disable", post(account::mfa_disable)),
        (
            "/me/mfa/recovery-codes",
            post(account::mfa_regenerate_recovery_codes),
        ),
        ("/me/sessions", get(account::sessions_page)),
        (
            "/me/sessions/end-others",
            post(account::sessions_end_others),
        ),
        ("/me/sessions/:id/end", post(account::session_end)),
        (
            "/me/tokens",
            get(account::tokens_page).post(account::token_create),
        ),
        ("/me/tokens/:id/revoke", post(account::token_revoke)),
        (
            "/orgs/:org/groups",
            get(groups::groups_page).post(groups::create),
        ),
        ("/orgs/:org/groups/:group", get(groups::group_page)),
        ("/orgs/:org/groups/:group/rename", post(groups::rename)),
        (
            "/orgs/:org/groups/:group/role-mapping",
            post(groups::map_role),
        ),
        (
            "/orgs/:org/groups/:group/members",
            post(groups::members_form),
        ),
        ("/orgs/:org/groups/:group/delete", post(groups::delete)),
        (
            "/orgs/:org/projects",
            get(projects::projects_page).post(projects::create),
        ),
        (
            "/orgs/:org/projects/:project/rename",
            post(projects::rename),
        ),
        (
            "/orgs/:org/projects/:project/delete",
            post(projects::delete),
        ),
        (
            "/orgs/:org/settings",
            get(settings::settings_page).post(settings::save),
        ),
        ("/orgs/:org/delete", post(settings::delete)),
        ("/orgs/:org/members/:member", get(members::member_page)),
        (
            "/orgs/:org/members/:member/role",
            post(members::change_role),
        ),
        (
            "/orgs/:org/members/:member/status",
            post(members::change_status),
        ),
        (
            "/orgs/:org/members/:member/rights",
            post(members::change_rights),
        ),
        (
            "/orgs/:org/members/:member/remove",
            post(members::remove_member),
        ),
        ("/static/console.css", get(stylesheet)),
        ("/static/console.js", get(script)),
    ]
}

/// Every console route's path below `/console`, in poem's syntax
/// (`/orgs/:org/members`): what a test walks to check that no form
/// skips the CSRF check.
pub fn route_paths() -> Vec<&'static str> {
    table().into_iter().map(|(path, _)| path).collect()
}

/// The console's routes, to nest under `/console`.
pub fn routes() -> Route {
    table()
        .into_iter()
        .fold(Route::new(), |route, (path, method)| route.at(path, method))
}

/// The route a console path (below `/console`) belongs to, with its
/// parameters named (`/orgs/{org}/members`), for metrics' labels; `None`
/// for a path no console route takes.
pub fn route_template(rest: &str) -> Option<String> {
    static PATHS: LazyLock<Vec<&'static str>> = LazyLock::new(route_paths);
    let rest = if rest.is_empty() { "/" } else { rest };
    let segments: Vec<&str> = rest.split('/').collect();
    PATHS.iter().find_map(|path| {
        let pattern: Vec<&str> = path.split('/').collect();
        let matches = pattern.len() == segments.len()
            && pattern
                .iter()
                .zip(&segments)
                .all(|(want, got)| want == got || (want.starts_with(':') && !got.is_empty()));
        matches.then(|| {
            let named: Vec<String> = pattern
                .iter()
                .map(|part| match part.strip_prefix(':') {
                    Some(name) => format!("{{{name}}}"),
                    None => (*part).to_owned(),
                })
                .collect();
            format!("/console{}", named.join("/").trim_end_matches('/'))
        })
    })
}

static PAGES: LazyLock<Result<Environment<'static>, String>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_filter("time", time);
    let shared = [
        (BASE, include_str!("../../templates/console/base.html")),
        (
            MESSAGE,
            include_str!("../../templates/console/message.html"),
        ),
    ];
    for &(name, source) in shared
        .iter()
        .chain(sign_in::TEMPLATES)
        .chain(orgs::TEMPLATES)
        .chain(members::TEMPLATES)
        .chain(invitations::TEMPLATES)
        .chain(integrations::TEMPLATES)
        .chain(audit::TEMPLATES)
        .chain(account::TEMPLATES)
        .chain(groups::TEMPLATES)
        .chain(projects::TEMPLATES)
        .chain(settings::TEMPLATES)
    {
        env.add_template(name, source)
            .map_err(|err| format!("template {name}: {err}"))?;
    }
    Ok(env)
});

/// A page: its template's content inside `console/base.html` (two
/// renders, as the minijinja build has no template inheritance), which
/// shows the sign-out button when `values` has a `csrf_session`, and the
/// organization's sections when it has an `org` (see [`InOrg::values`]).
fn html(status: StatusCode, template: &str, title: &str, values: minijinja::Value) -> Response {
    let render = |env: &Environment<'static>| -> Result<String, minijinja::Error> {
        let main = env.get_template(template)?.render(&values)?;
        env.get_template(BASE)?.render(context! {
            title,
            main => minijinja::Value::from_safe_string(main),
            csrf_session => values.get_attr("csrf_session").ok(),
            org => values.get_attr("org").ok(),
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
    // The cause goes to the log only, as with the API's problems.
    err.log_if_internal();
    let title = match err.status() {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::TOO_MANY_REQUESTS => "Too many requests",
        status if status.is_server_error() => "Something went wrong on our side",
        _ => "This cannot be done",
    };
    let page = message(err.status(), title, &err.problem().detail, signed_in);
    with_retry_after(page, Some(err))
}

/// `page`, with the API's `Retry-After` when the error it shows is one
/// that waiting cures (a quota, a busy database), so a browser or script
/// sees when to try again as an API client would.
fn with_retry_after(mut page: Response, refused: Option<&AppError>) -> Response {
    if let Some(secs) = refused.and_then(AppError::retry_after_secs) {
        page.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    }
    page
}

/// An error met outside a console handler (a quota, a body too large, a
/// path no console route takes, a panic) as a console page rather than
/// the API's problem JSON.
pub fn problem_page(err: &AppError) -> Response {
    error_page(err, None)
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

/// The page that says why not: a refusal, an error, or the way to the
/// sign-in page. Boxed, as a `Response` is large and most answers are not
/// refusals.
struct Refusal(Box<Response>);

impl From<Response> for Refusal {
    fn from(page: Response) -> Refusal {
        Refusal(Box::new(page))
    }
}

/// A handler's work, written with `?`.
type Answer<T = Response> = Result<T, Refusal>;

/// What a handler answers: the page, or the page that says why not.
fn respond(answer: Answer) -> Response {
    answer.unwrap_or_else(|Refusal(page)| *page)
}

/// `{{ at|time }}`: an instant (RFC 3339, as a `DateTime<Utc>` reaches a
/// template) as a `<time>` element reading in UTC, which `console.js`
/// shows in the viewer's time zone. Anything else is shown as it is.
fn time(at: String) -> minijinja::Value {
    match DateTime::parse_from_rfc3339(&at) {
        Ok(parsed) => {
            let utc = parsed.with_timezone(&Utc);
            let iso = utc.to_rfc3339_opts(SecondsFormat::Secs, true);
            let text = utc.format("%Y-%m-%d %H:%M UTC");
            minijinja::Value::from_safe_string(format!("<time datetime=\"{iso}\">{text}</time>"))
        }
        Err(_) => minijinja::Value::from(at),
    }
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

/// A form that carries nothing but its CSRF token (sign-out, revoke, …).
#[derive(Debug, Deserialize)]
pub struct TokenOnly {
    #[serde(default)]
    csrf: String,
}

/// A signed-in form's fields as the browser sent them
/// (`application/x-www-form-urlencoded`), repeated names kept: a form
/// with several checkboxes of one name sends each checked one.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(body: impl AsRef<[u8]>) -> Fields {
        Fields(form_urlencoded::parse(body.as_ref()).into_owned().collect())
    }

    /// The first value sent for `name`; empty when there is none.
    fn get(&self, name: &str) -> &str {
        self.all(name).next().unwrap_or("")
    }

    /// Every value sent for `name`, in order.
    fn all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(sent, _)| sent == name)
            .map(|(_, value)| value.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(sent, _)| sent == name)
    }
}

/// A form's fields as the API's request body `T`, parsed by the API's
/// own parser (poem-openapi's, with the same validators and unknown-field
/// rules), so a value the API refuses is refused here too, as the same
/// 400 the API answers for a body that does not parse.
fn api_request<T: poem_openapi::types::ParseFromJSON>(
    json: serde_json::Value,
) -> Result<T, AppError> {
    T::parse_from_json(Some(json)).map_err(|err| {
        AppError::BadRequest(format!(
            "failed to parse \"{}\": {}",
            T::name(),
            err.into_message()
        ))
    })
}

/// A form's number as JSON: a number when it reads as one, otherwise the
/// text, which the API's parser then refuses with its own message.
fn json_number(raw: &str) -> serde_json::Value {
    let raw = raw.trim();
    raw.parse::<u64>()
        .map(serde_json::Value::from)
        .unwrap_or_else(|_| serde_json::Value::from(raw))
}

/// A form's text field, trimmed; a blank one is an absent one, as the
/// API's optional fields are.
fn given(raw: &str) -> Option<&str> {
    Some(raw.trim()).filter(|raw| !raw.is_empty())
}

/// An instant from a form: RFC 3339, or a `datetime-local` value
/// (`2026-12-02T15:04`, seconds optional), which the fields' labels say
/// is UTC, so a page means one instant without a script. Blank is none.
fn utc_field(field: &'static str, raw: &str) -> Result<Option<DateTime<Utc>>, AppError> {
    let Some(raw) = given(raw) else {
        return Ok(None);
    };
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|format| chrono::NaiveDateTime::parse_from_str(raw, format).ok())
        .map(|at| Some(at.and_utc()))
        .ok_or_else(|| {
            AppError::invalid(
                field,
                "a date and time, such as 2026-12-02T15:04 (UTC) or 2026-12-02T15:04:00+01:00",
            )
        })
}

/// The notice for `?done=<slug>` after a form succeeded: only the page's
/// own slugs are shown, as fixed text, so a link cannot make the page
/// say anything else.
fn notice(done: Option<&str>, known: &[(&str, &'static str)]) -> Option<&'static str> {
    let done = done?;
    known
        .iter()
        .find(|(slug, _)| *slug == done)
        .map(|(_, text)| *text)
}

/// A console page's query: `?done=` after a form's redirect, and on a
/// list, `?cursor=`, the API's cursor of the page to show.
#[derive(Debug, Default, Deserialize)]
struct Done {
    done: Option<String>,
    cursor: Option<String>,
}

/// A refusal shown in the page, next to the form that caused it: which
/// form (`form`), the reason, and the API's status code for the answer.
struct Refused {
    form: &'static str,
    status: StatusCode,
    reason: String,
}

impl Refused {
    fn of(form: &'static str, err: &AppError) -> Refused {
        if err.status().is_server_error() {
            tracing::error!(error = %err, "a console form failed");
        }
        Refused {
            form,
            status: err.status(),
            reason: err.problem().detail,
        }
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

    /// The person signed in, or the way to the sign-in page.
    async fn required(state: &AppState, req: &Request) -> Answer<Console> {
        signed_in(state, req)
            .await
            .ok_or_else(|| see_other("/console/sign-in").into())
    }

    /// A signed-in form's POST may go on: its origin is ours and it
    /// carries this session's token.
    fn check_form(&self, state: &AppState, req: &Request, sent: &str) -> Answer<()> {
        if origin_allowed(state, req) && tokens_match(sent, &self.csrf()) {
            Ok(())
        } else {
            Err(forbidden_form().into())
        }
    }

    /// The page for an error of the API's use cases, signed in.
    fn error(&self, err: &AppError) -> Refusal {
        error_page(err, Some(self)).into()
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

/// One of an organization's pages, for the person signed in, past the
/// API's access check: `access` is the `OrgAccess` an API request to the
/// same organization would build (404 for a non-member, 403 for a member
/// who may not act or lacks the second factor the organization requires).
struct InOrg {
    console: Console,
    access: OrgAccess,
}

impl InOrg {
    async fn open(state: &AppState, req: &Request, org: &str) -> Answer<InOrg> {
        let console = Console::required(state, req).await?;
        match OrgAccess::load_for(state, &console.principal, req, org).await {
            Ok(access) => Ok(InOrg { console, access }),
            Err(err) => Err(console.error(&err)),
        }
    }

    /// A form posted to an organization's page: the page, then the form's
    /// fields once its token and origin pass (403, nothing done,
    /// otherwise). Reading the fields any other way would skip the check.
    async fn posted(
        state: &AppState,
        req: &Request,
        org: &str,
        body: impl AsRef<[u8]>,
    ) -> Answer<(InOrg, Fields)> {
        let page = InOrg::open(state, req, org).await?;
        let fields = Fields::parse(body);
        page.console.check_form(state, req, fields.get("csrf"))?;
        Ok((page, fields))
    }

    /// The API's permission check, refused as a page.
    fn require(&self, permission: Permission) -> Answer<Granted<'_>> {
        self.access
            .require(permission)
            .map_err(|err| self.error(&err))
    }

    fn error(&self, err: &AppError) -> Refusal {
        self.console.error(err)
    }

    /// What every organization page's template gets: the session's form
    /// token and the organization (its id and name, for the sections'
    /// links in `console/base.html`).
    fn values(&self) -> minijinja::Value {
        context! {
            csrf_session => self.console.csrf(),
            org => context! {
                id => self.access.org.id.to_string(),
                name => self.access.org.name.clone(),
            },
        }
    }
}

/// The console's one stylesheet, a file so pages need no inline style.
#[handler]
fn stylesheet() -> Response {
    Response::builder()
        .content_type("text/css; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=300")
        .body(include_str!("../../templates/console/console.css"))
}

/// The console's one script: times in the viewer's time zone, copy
/// buttons. Pages work without it.
#[handler]
fn script() -> Response {
    Response::builder()
        .content_type("text/javascript; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=300")
        .body(include_str!("../../templates/console/console.js"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_in_utc_until_the_script_localizes_them() {
        let env = PAGES.as_ref().expect("templates");
        let shown = |at: &str| {
            env.render_str("{{ at|time }}", context! { at })
                .expect("renders")
        };
        assert_eq!(
            shown("2026-12-02T15:04:05.123Z"),
            "<time datetime=\"2026-12-02T15:04:05Z\">2026-12-02 15:04 UTC</time>"
        );
        // Not an instant: shown as text, escaped.
        assert_eq!(shown("<b>"), "&lt;b&gt;");
    }

    #[test]
    fn only_a_page_s_own_slugs_show_a_notice() {
        let known = &[("role", "The role was changed.")];
        assert_eq!(notice(Some("role"), known), Some("The role was changed."));
        assert_eq!(notice(Some("<script>"), known), None);
        assert_eq!(notice(None, known), None);
    }

    #[test]
    fn form_instants_are_read_as_utc_unless_they_say_otherwise() {
        let at = |raw| utc_field("at", raw).ok().flatten();
        let expected = chrono::TimeZone::with_ymd_and_hms(&Utc, 2030, 1, 31, 9, 30, 0).single();
        assert_eq!(at("2030-01-31T09:30"), expected);
        assert_eq!(at(" 2030-01-31T09:30:00 "), expected);
        assert_eq!(at("2030-01-31T10:30:00+01:00"), expected);
        assert_eq!(utc_field("at", "").ok(), Some(None));
        assert!(utc_field("at", "tomorrow").is_err());
    }

    #[test]
    fn every_shared_page_renders() {
        assert!(PAGES.is_ok(), "{:?}", PAGES.as_ref().err());
        let page = html(
            StatusCode::OK,
            MESSAGE,
            "Title",
            context! { title => "t", detail => "d", csrf_session => "t", org => context! { id => "o", name => "O" } },
        );
        assert_eq!(page.status(), StatusCode::OK);
    }

    #[test]
    fn routes_are_labelled_from_the_table() {
        assert_eq!(route_template("").as_deref(), Some("/console"));
        assert_eq!(route_template("/").as_deref(), Some("/console"));
        assert_eq!(
            route_template("/orgs/org_0123/members").as_deref(),
            Some("/console/orgs/{org}/members")
        );
        assert_eq!(
            route_template("/sign-in").as_deref(),
            Some("/console/sign-in")
        );
        assert_eq!(
            route_template("/orgs/org_0123/invitations/inv_1/resend").as_deref(),
            Some("/console/orgs/{org}/invitations/{id}/resend")
        );
        assert_eq!(
            route_template("/orgs/org_0123/integrations/scim-tokens/t_1/revoke").as_deref(),
            Some("/console/orgs/{org}/integrations/scim-tokens/{id}/revoke")
        );
        assert_eq!(
            route_template("/orgs/org_0123/audit/export.csv").as_deref(),
            Some("/console/orgs/{org}/audit/export.csv")
        );
        assert_eq!(
            route_template("/me/activity").as_deref(),
            Some("/console/me/activity")
        );
        assert_eq!(
            route_template("/me/sessions/0194d571/end").as_deref(),
            Some("/console/me/sessions/{id}/end")
        );
        assert_eq!(
            route_template("/me/sessions/end-others").as_deref(),
            Some("/console/me/sessions/end-others")
        );
        assert_eq!(
            route_template("/orgs/org_0123/groups/grp_1/role-mapping").as_deref(),
            Some("/console/orgs/{org}/groups/{group}/role-mapping")
        );
        assert_eq!(
            route_template("/orgs/org_0123/settings").as_deref(),
            Some("/console/orgs/{org}/settings")
        );
        assert_eq!(
            route_template("/orgs/org_0123/members/m_1/role").as_deref(),
            Some("/console/orgs/{org}/members/{member}/role")
        );
        assert_eq!(route_template("/orgs/a/b/members"), None);
        assert_eq!(route_template("/orgs//members"), None);
        assert_eq!(route_template("/x"), None);
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
