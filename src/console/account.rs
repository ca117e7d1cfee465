//! My account (`/console/me…`): the person's name, password, second
//! factor, sessions, personal tokens, memberships and the account itself.
//!
//! Every form runs what the API's `/me` routes run (`api::me::update_me`
//! and `delete_me`, `app::mfa`, `app::sessions`, `api::tokens`'
//! `list_personal`/`create_personal`, `app::tokens::revoke_personal`,
//! `api::members::leave`), always with the console's session, so the
//! same password re-checks, throttling and audit events apply, and
//! nothing is allowed here that the API refuses. A success answers 303
//! back to the page with `?done=<slug>`; a refusal answers the page again
//! with the API's status and its reason. Secrets (a new token, the TOTP
//! secret, recovery codes) appear only in the answer to the POST that
//! made them: never in a URL, never logged.

use base64::Engine as _;
use minijinja::context;
use minijinja::value::Serde;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{Request, Response, handler};
use poem_openapi::types::MaybeUndefined;
use serde::Deserialize;

use super::{
    Answer, Console, SESSION_COOKIE, TokenOnly, console_cookie, html, notice, respond, see_other,
    with_cookie,
};
use crate::api::access::OrgAccess;
use crate::api::me::{DeleteMeRequest, PasswordChange, UpdateMeRequest, me_response};
use crate::api::text::Text;
use crate::app::accounts::AccountActing;
use crate::app::mfa::{self, MfaProof};
use crate::app::sessions::{self, SessionEnd};
use crate::domain::TokenId;
use crate::error::AppError;
use crate::scim::origin_of;
use crate::state::AppState;

const ME: &str = "console/me.html";
const ME_MFA: &str = "console/me_mfa.html";
const ME_SESSIONS: &str = "console/me_sessions.html";
const ME_TOKENS: &str = "console/me_tokens.html";

pub(super) const TEMPLATES: &[(&str, &str)] = &[
    (ME, include_str!("../../templates/console/me.html")),
    (ME_MFA, include_str!("../../templates/console/me_mfa.html")),
    (
        ME_SESSIONS,
        include_str!("../../templates/console/me_sessions.html"),
    ),
    (
        ME_TOKENS,
        include_str!("../../templates/console/me_tokens.html"),
    ),
];

/// What each `?done=` slug says after an account form.
const DONE: &[(&str, &str)] = &[
    ("name", "Your name is saved."),
    (
        "password",
        "Your password is changed. Your other sessions have ended.",
    ),
    ("left", "You have left the organization."),
    (
        "mfa-off",
        "Two-factor authentication is off. Your other sessions have ended.",
    ),
    ("session-ended", "The session has ended."),
    ("others-ended", "Your other sessions have ended."),
    ("token-revoked", "The token is revoked: it no longer works."),
];

#[derive(Debug, Default, Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// What a page shows above its forms: what was just done, or why not
/// (with the status the API answers for the same refusal).
struct Outcome {
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
}

impl Outcome {
    fn shown(query: poem::Result<Query<Done>>) -> Outcome {
        let notice = query
            .ok()
            .and_then(|Query(done)| done.done)
            .and_then(|slug| notice(Some(&slug), DONE));
        Outcome::ok(notice)
    }

    /// A page shown as asked, with what was just done if anything.
    fn ok(notice: Option<&'static str>) -> Outcome {
        Outcome {
            status: StatusCode::OK,
            notice,
            error: None,
        }
    }

    fn refused(err: &AppError) -> Outcome {
        Outcome {
            status: err.status(),
            notice: None,
            error: Some(err.problem().detail),
        }
    }

    fn invalid(reason: &str) -> Outcome {
        Outcome {
            status: StatusCode::BAD_REQUEST,
            notice: None,
            error: Some(reason.to_owned()),
        }
    }
}

/// The signed-in account acting for itself, as the API's `/me` routes
/// build it from their session.
fn acting(console: &Console, req: &Request) -> AccountActing {
    AccountActing {
        account_id: console.account_id.clone(),
        actor: console.principal.actor(),
        origin: origin_of(req),
    }
}

/// A signed-in form, past the CSRF and Origin checks: the person and the
/// form's fields. A form that does not parse counts as a forged one.
async fn posted<T>(
    state: &AppState,
    req: &Request,
    form: poem::Result<Form<T>>,
    csrf: impl FnOnce(&T) -> &str,
) -> Answer<(Console, T)> {
    let console = Console::required(state, req).await?;
    let Ok(Form(form)) = form else {
        return Err(super::forbidden_form().into());
    };
    console.check_form(state, req, csrf(&form))?;
    Ok((console, form))
}

/// A blank field is an absent one, as the API's optional fields are.
fn filled(value: String) -> Option<String> {
    (!value.trim().is_empty()).then_some(value)
}

// ---- /console/me ----------------------------------------------------

/// `/console/me`: what `GET /me` answers, with the forms that change it.
async fn me_view(state: &AppState, console: &Console, outcome: Outcome) -> Response {
    let me = match me_response(state, &console.principal).await {
        Ok(me) => me,
        Err(err) => return super::error_page(&err, Some(console)),
    };
    let orgs: Vec<_> = me
        .memberships
        .iter()
        .map(|m| {
            context! {
                id => m.org_id.clone(),
                name => m.org_name.clone(),
                role => m.role.clone(),
                status => m.status.clone(),
            }
        })
        .collect();
    html(
        outcome.status,
        ME,
        "My account",
        context! {
            csrf_session => console.csrf(),
            notice => outcome.notice,
            error => outcome.error,
            email => me.account.email,
            display_name => me.account.display_name,
            mfa_enabled => me.account.mfa_enabled,
            orgs,
        },
    )
}

#[handler]
pub async fn me_page(
    state: Data<&AppState>,
    req: &Request,
    query: poem::Result<Query<Done>>,
) -> Response {
    respond(
        async {
            let console = Console::required(&state, req).await?;
            Ok(me_view(&state, &console, Outcome::shown(query)).await)
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct NameForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    display_name: String,
}

/// `PATCH /me` with a name; a blank one clears it, as `null` does.
#[handler]
pub async fn name_submit(
    state: Data<&AppState>,
    req: &Request,
    form: poem::Result<Form<NameForm>>,
) -> Response {
    respond(
        async {
            let (console, form) = posted(&state, req, form, |f| &f.csrf).await?;
            let display_name = match filled(form.display_name) {
                None => MaybeUndefined::Null,
                Some(name) => MaybeUndefined::Value(Text(name)),
            };
            let body = UpdateMeRequest {
                display_name,
                password: None,
            };
            match crate::api::me::update_me(
                &state,
                &acting(&console, req),
                &console.session_id,
                body,
            )
            .await
            {
                Ok(()) => Ok(see_other("/console/me?done=name")),
                Err(err) => Err(me_view(&state, &console, Outcome::refused(&err))
                    .await
                    .into()),
            }
        }
        .await,
    )
}

/// No `Debug`: it holds a password or a code, which must never reach a
/// log.
#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    repeat: String,
}

/// `PATCH /me` with a password change: the current password is checked
/// (and a wrong one throttled) as a sign-in is; the other sessions end.
#[handler]
pub async fn password_submit(
    state: Data<&AppState>,
    req: &Request,
    form: poem::Result<Form<PasswordForm>>,
) -> Response {
    respond(
        async {
            let (console, form) = posted(&state, req, form, |f| &f.csrf).await?;
            // Only the page asks twice, against typos; the rules on the
            // password itself are the use case's.
            if form.new != form.repeat {
                return Err(me_view(
                    &state,
                    &console,
                    Outcome::invalid("The new password and its repetition differ."),
                )
                .await
                .into());
            }
            let body = UpdateMeRequest {
                display_name: MaybeUndefined::Undefined,
                password: Some(PasswordChange {
                    current: Text(form.current),
                    new: Text(form.new),
                }),
            };
            match crate::api::me::update_me(
                &state,
                &acting(&console, req),
                &console.session_id,
                body,
            )
            .await
            {
                Ok(()) => Ok(see_other("/console/me?done=password")),
                Err(err) => Err(me_view(&state, &console, Outcome::refused(&err))
                    .await
                    .into()),
            }
        }
        .await,
    )
}

/// `POST /orgs/{org}/leave`: the API's access check, then its use case
/// (the last active owner is refused, 409, shown on the page).
#[handler]
pub async fn leave_submit(
    state: Data<&AppState>,
    req: &Request,
    Path(org): Path<String>,
    form: poem::Result<Form<TokenOnly>>,
) -> Response {
    respond(
        async {
            let (console, _) = posted(&state, req, form, |f| &f.csrf).await?;
            let left = match OrgAccess::load_for(&state, &console.principal, req, &org).await {
                Ok(access) => crate::api::members::leave(&state, &access).await,
                Err(err) => Err(err),
            };
            match left {
                Ok(()) => Ok(see_other("/console/me?done=left")),
                Err(err) => Err(me_view(&state, &console, Outcome::refused(&err))
                    .await
                    .into()),
            }
        }
        .await,
    )
}

/// No `Debug`: it holds a password or a code, which must never reach a
/// log.
#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    recovery_code: String,
}

/// `DELETE /me`: the password (and the second factor when it is on), the
/// last-owner rule; then the cookie goes and the sign-in page says so.
#[handler]
pub async fn delete_submit(
    state: Data<&AppState>,
    req: &Request,
    form: poem::Result<Form<DeleteForm>>,
) -> Response {
    respond(
        async {
            let (console, form) = posted(&state, req, form, |f| &f.csrf).await?;
            // The typed confirmation is the page's own guard against a
            // slip; the use case decides everything else.
            let me = me_response(&state, &console.principal)
                .await
                .map_err(|err| console.error(&err))?;
            if !form.confirm.trim().eq_ignore_ascii_case(&me.account.email) {
                return Err(me_view(
                    &state,
                    &console,
                    Outcome::invalid("Type your email address exactly to confirm the deletion."),
                )
                .await
                .into());
            }
            let body = DeleteMeRequest {
                password: Text(form.password),
                code: filled(form.code).map(Text),
                recovery_code: filled(form.recovery_code).map(Text),
            };
            match crate::api::me::delete_me(&state, &acting(&console, req), body).await {
                Ok(()) => Ok(with_cookie(
                    see_other("/console/sign-in?done=account-deleted"),
                    console_cookie(&state, SESSION_COOKIE, "", 0),
                )),
                Err(err) => Err(me_view(&state, &console, Outcome::refused(&err))
                    .await
                    .into()),
            }
        }
        .await,
    )
}

// ---- /console/me/mfa ------------------------------------------------

/// Where the second factor stands, for `me_mfa.html`.
enum MfaStep {
    /// Off or on, as `GET /me` says.
    Status,
    /// Just started: the secret, shown this once, and the confirm form.
    Enrolling(mfa::Enrolment),
    /// A confirmation was refused: the form again (the secret is not
    /// shown again; starting over makes a new one).
    ConfirmAgain,
    /// Just turned on, or new codes made: the recovery codes, shown this
    /// once.
    RecoveryCodes(Vec<String>),
}

/// The QR code as an `<img>` source: a data URL, which the console's
/// policy allows (`img-src data:`) whatever the SVG's markup holds.
fn qr_data_url(svg: &str) -> String {
    format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    )
}

async fn mfa_view(
    state: &AppState,
    console: &Console,
    step: MfaStep,
    outcome: Outcome,
) -> Response {
    let me = match me_response(state, &console.principal).await {
        Ok(me) => me,
        Err(err) => return super::error_page(&err, Some(console)),
    };
    let (step_name, enrolment, recovery_codes) = match step {
        MfaStep::Status => ("status", None, None),
        MfaStep::Enrolling(enrolment) => (
            "enrolling",
            Some(context! {
                secret => enrolment.secret,
                // Base64 and a fixed prefix, nothing to escape: kept as
                // is so the attribute reads as a data URL in the source.
                qr => minijinja::Value::from_safe_string(qr_data_url(&enrolment.qr_svg)),
            }),
            None,
        ),
        MfaStep::ConfirmAgain => ("enrolling", None, None),
        MfaStep::RecoveryCodes(codes) => ("recovery_codes", None, Some(codes)),
    };
    html(
        outcome.status,
        ME_MFA,
        "Two-factor authentication",
        context! {
            csrf_session => console.csrf(),
            notice => outcome.notice,
            error => outcome.error,
            step => step_name,
            enrolment,
            recovery_codes,
            mfa_enabled => me.account.mfa_enabled,
            recovery_codes_left => me.account.recovery_codes_left,
        },
    )
}

#[handler]
pub async fn mfa_page(
    state: Data<&AppState>,
    req: &Request,
    query: poem::Result<Query<Done>>,
) -> Response {
    respond(
        async {
            let console = Console::required(&state, req).await?;
            Ok(mfa_view(&state, &console, MfaStep::Status, Outcome::shown(query)).await)
        }
        .await,
    )
}

/// `POST /me/mfa/totp`: a new secret, answered on this page (not a
/// redirect: it is shown once, and never in a URL).
#[handler]
pub async fn mfa_start(
    state: Data<&AppState>,
    req: &Request,
    form: poem::Result<Form<TokenOnly>>,
) -> Response {
    respond(
        async {
            let (console, _) = posted(&state, req, form, |f| &f.csrf).await?;
            let started = mfa::start_enrolment(
                state.store(),
                state.mfa_key(),
                state.clock().now(),
                &acting(&console, req),
            )
            .await;
            Ok(match started {
                Ok(enrolment) => {
                    let ok = Outcome::ok(None);
                    mfa_view(&state, &console, MfaStep::Enrolling(enrolment), ok).await
                }
                Err(err) => {
                    mfa_view(&state, &console, MfaStep::Status, Outcome::refused(&err)).await
                }
            })
        }
        .await,
    )
}

/// No `Debug`: it holds a password or a code, which must never reach a
/// log.
#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
}

/// `POST /me/mfa/totp/confirm`: a code and the password; the recovery
/// codes are answered on this page, once.
#[handler]
pub async fn mfa_confirm(
    state: Data<&AppState>,
    req: &Request,
    form: poem::Result<Form<ConfirmForm>>,
) -> Response {
    respond(
        async {
            let (console, form) = posted(&state, req, form, |f| &f.csrf).await?;
            let confirmed = mfa::confirm(
                state.store(),
                state.0,
                state.clock().now(),
                &acting(&console, req),
                &console.session_id,
                mfa::Confirmation {
                    code: form.code,
                    password: form.password,
                },
            )
            .await;
            Ok(match confirmed {
                Ok(codes) => {
                    let ok = Outcome::ok(Some(
                        "Two-factor authentication is on. Your other sessions have ended.",
                    ));
                    mfa_view(&state, &console, MfaStep::RecoveryCodes(codes), ok).await
                }
                Err(err) => {
                    mfa_view(
                        &state,
                        &console,
                        MfaStep::ConfirmAgain,
                        Outcome::refused(&err),
                    )
                    .await
                }
            })
        }
        .await,
    )
}

/// `POST /me/mfa/recovery-codes`: the password and a code (the same form
/// as confirming); the new codes are answered on this page, once, never
/// redirected to.
#[handler]
pub async fn mfa_regenerate_recovery_codes(
    state: Data<&AppState>,
    req: &Request,
    form: poem::Result<Form<ConfirmForm>>,
) -> Response {
    respond(
        async {
            let (console, form) = posted(&state, req, form, |f| &f.csrf).await?;
            let regenerated = mfa::regenerate_recovery_codes(
                state.store(),
                state.0,
                state.clock().now(),
                &acting(&console, req),
                mfa::Regeneration {
                    code: form.code,
                    password: form.password,
                },
            )
            .await;
            Ok(match regenerated {
                Ok(codes) => {
                    let ok = Outcome::ok(Some("New recovery codes: the old ones no longer work."));
                    mfa_view(&state, &console, MfaStep::RecoveryCodes(codes), ok).await
                }
                Err(err) => {
                    mfa_view(&state, &console, MfaStep::Status, Outcome::refused(&err)).await
                }
            })
        }
        .await,
    )
}

/// No `Debug`: it holds a password or a code, which must never reach a
/// log.
#[derive(Deserialize)]
pub struct ProofForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    recovery_code: Option<String>,
}

/// `DELETE /me/mfa/totp`: a code or a recovery code.
#[handler]
pub async fn mfa_disable(
    state: Data<&AppState>,
    req: &Request,
    form: poem::Result<Form<ProofForm>>,
) -> Response {
    respond(
        async {
            let (console, form) = posted(&state, req, form, |f| &f.csrf).await?;
            let disabled = match MfaProof::from_fields(form.code, form.recovery_code) {
                Ok(proof) => {
                    mfa::disable(
                        state.store(),
                        state.mfa_key(),
                        state.clock().now(),
                        &acting(&console, req),
                        &console.session_id,
                        proof,
                    )
                    .await
                }
                Err(err) => Err(err.into()),
            };
            match disabled {
                Ok(()) => Ok(see_other("/console/me/mfa?done=mfa-off")),
                Err(err) => {
                    Err(
                        mfa_view(&state, &console, MfaStep::Status, Outcome::refused(&err))
                            .await
                            .into(),
                    )
                }
            }
        }
        .await,
    )
}

// ---- /console/me/sessions -------------------------------------------

async fn sessions_view(
    state: &AppState,
    req: &Request,
    console: &Console,
    outcome: Outcome,
) -> Response {
    let listed = sessions::list_sessions(
        state.store(),
        state.clock().now(),
        &acting(console, req),
        &console.session_id,
    )
    .await;
    let listed = match listed {
        Ok(listed) => listed,
        Err(err) => return super::error_page(&err, Some(console)),
    };
    let rows: Vec<_> = listed
        .into_iter()
        .map(|session| {
            context! {
                id => session.id.as_str().to_owned(),
                created_at => Serde(session.created_at),
                last_used_at => Serde(session.last_used_at),
                expires_at => Serde(session.expires_at),
                ip => session.ip,
                user_agent => session.user_agent,
                current => session.current,
            }
        })
        .collect();
    html(
        outcome.status,
        ME_SESSIONS,
        "My sessions",
        context! {
            csrf_session => console.csrf(),
            notice => outcome.notice,
            error => outcome.error,
            sessions => rows,
        },
    )
}

#[handler]
pub async fn sessions_page(
    state: Data<&AppState>,
    req: &Request,
    query: poem::Result<Query<Done>>,
) -> Response {
    respond(
        async {
            let console = Console::required(&state, req).await?;
            Ok(sessions_view(&state, req, &console, Outcome::shown(query)).await)
        }
        .await,
    )
}

/// `DELETE /me/sessions/{id}`; ending this browser's own session signs
/// it out, as the API's does.
#[handler]
pub async fn session_end(
    state: Data<&AppState>,
    req: &Request,
    Path(id): Path<String>,
    form: poem::Result<Form<TokenOnly>>,
) -> Response {
    respond(
        async {
            let (console, _) = posted(&state, req, form, |f| &f.csrf).await?;
            let ended = match TokenId::parse(&id) {
                Ok(id) => {
                    sessions::end_session(&state, &console.account_id, &id, origin_of(req)).await
                }
                Err(_) => Ok(SessionEnd::NotFound),
            };
            match ended {
                Ok(SessionEnd::Ended) if id == console.session_id.as_str() => Ok(with_cookie(
                    see_other("/console/sign-in"),
                    console_cookie(&state, SESSION_COOKIE, "", 0),
                )),
                Ok(SessionEnd::Ended) => Ok(see_other("/console/me/sessions?done=session-ended")),
                // The API's answer for another account's or a gone session.
                Ok(SessionEnd::NotFound) => {
                    let err = AppError::NotFound("session");
                    Err(sessions_view(&state, req, &console, Outcome::refused(&err))
                        .await
                        .into())
                }
                Err(err) => Err(sessions_view(&state, req, &console, Outcome::refused(&err))
                    .await
                    .into()),
            }
        }
        .await,
    )
}

/// `DELETE /me/sessions`: sign out everywhere else.
#[handler]
pub async fn sessions_end_others(
    state: Data<&AppState>,
    req: &Request,
    form: poem::Result<Form<TokenOnly>>,
) -> Response {
    respond(
        async {
            let (console, _) = posted(&state, req, form, |f| &f.csrf).await?;
            match sessions::end_other_sessions(
                state.store(),
                state.clock().now(),
                &acting(&console, req),
                &console.session_id,
            )
            .await
            {
                Ok(_) => Ok(see_other("/console/me/sessions?done=others-ended")),
                Err(err) => Err(sessions_view(&state, req, &console, Outcome::refused(&err))
                    .await
                    .into()),
            }
        }
        .await,
    )
}

// ---- /console/me/tokens ---------------------------------------------

/// The personal tokens, the form for a new one, and `created` (with its
/// secret) only in the answer to that form.
async fn tokens_view(
    state: &AppState,
    console: &Console,
    outcome: Outcome,
    created: Option<crate::api::tokens::CreatedPersonalTokenView>,
) -> Response {
    let listed = match crate::api::tokens::list_personal(state, &console.account_id).await {
        Ok(listed) => listed,
        Err(err) => return super::error_page(&err, Some(console)),
    };
    let me = match me_response(state, &console.principal).await {
        Ok(me) => me,
        Err(err) => return super::error_page(&err, Some(console)),
    };
    let org_name = |org_id: &str| {
        me.memberships
            .iter()
            .find(|m| m.org_id == org_id)
            .map_or_else(|| org_id.to_owned(), |m| m.org_name.clone())
    };
    let rows: Vec<_> = listed
        .items
        .iter()
        .map(|token| {
            context! {
                id => token.id.clone(),
                name => token.name.clone(),
                org => org_name(&token.org_id),
                display_prefix => token.display_prefix.clone(),
                created_at => Serde(token.created_at),
                expires_at => Serde(token.expires_at),
                last_used_at => Serde(token.last_used_at),
            }
        })
        .collect();
    let orgs: Vec<_> = me
        .memberships
        .iter()
        .map(|m| context! { id => m.org_id.clone(), name => m.org_name.clone() })
        .collect();
    let created = created.map(|token| {
        context! {
            name => token.name,
            org => org_name(&token.org_id),
            token => token.token,
        }
    });
    html(
        outcome.status,
        ME_TOKENS,
        "My API tokens",
        context! {
            csrf_session => console.csrf(),
            notice => outcome.notice,
            error => outcome.error,
            tokens => rows,
            orgs,
            created,
        },
    )
}

#[handler]
pub async fn tokens_page(
    state: Data<&AppState>,
    req: &Request,
    query: poem::Result<Query<Done>>,
) -> Response {
    respond(
        async {
            let console = Console::required(&state, req).await?;
            Ok(tokens_view(&state, &console, Outcome::shown(query), None).await)
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    org_id: String,
    #[serde(default)]
    name: String,
    /// A day (`YYYY-MM-DD`, as `<input type="date">` sends it), the token
    /// working until its start in UTC; blank for no expiry.
    #[serde(default)]
    expires_on: String,
}

/// `POST /me/tokens`: the secret is in this answer and nowhere else.
#[handler]
pub async fn token_create(
    state: Data<&AppState>,
    req: &Request,
    form: poem::Result<Form<TokenForm>>,
) -> Response {
    respond(
        async {
            let (console, form) = posted(&state, req, form, |f| &f.csrf).await?;
            let expires_at = match filled(form.expires_on) {
                None => None,
                Some(day) => match chrono::NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d") {
                    Ok(day) => Some(day.and_time(chrono::NaiveTime::MIN).and_utc()),
                    Err(_) => {
                        let refused =
                            Outcome::invalid("The expiry date is not a date (YYYY-MM-DD).");
                        return Ok(tokens_view(&state, &console, refused, None).await);
                    }
                },
            };
            let created =
                match OrgAccess::load_for(&state, &console.principal, req, &form.org_id).await {
                    Ok(access) => {
                        crate::api::tokens::create_personal(&state, &access, &form.name, expires_at)
                            .await
                    }
                    Err(err) => Err(err),
                };
            Ok(match created {
                Ok(created) => {
                    let ok = Outcome::ok(Some(
                        "The token is created. Copy it now: it is not shown again.",
                    ));
                    tokens_view(&state, &console, ok, Some(created)).await
                }
                Err(err) => tokens_view(&state, &console, Outcome::refused(&err), None).await,
            })
        }
        .await,
    )
}

/// `DELETE /me/tokens/{id}`.
#[handler]
pub async fn token_revoke(
    state: Data<&AppState>,
    req: &Request,
    Path(id): Path<String>,
    form: poem::Result<Form<TokenOnly>>,
) -> Response {
    respond(
        async {
            let (console, _) = posted(&state, req, form, |f| &f.csrf).await?;
            let revoked = match crate::api::tokens::token_id(&id) {
                Ok(id) => {
                    crate::app::tokens::revoke_personal(
                        state.store(),
                        state.clock().now(),
                        &acting(&console, req),
                        &id,
                    )
                    .await
                }
                Err(err) => Err(err),
            };
            match revoked {
                Ok(()) => Ok(see_other("/console/me/tokens?done=token-revoked")),
                Err(err) => Err(tokens_view(&state, &console, Outcome::refused(&err), None)
                    .await
                    .into()),
            }
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::PAGES;

    #[test]
    fn done_slugs_are_fixed_text() {
        assert!(notice(Some("name"), DONE).is_some());
        assert_eq!(notice(Some("<script>"), DONE), None);
    }

    #[test]
    fn the_qr_code_is_a_data_url() {
        let url = qr_data_url("<svg/>");
        assert_eq!(url, "data:image/svg+xml;base64,PHN2Zy8+");
    }

    #[test]
    fn every_account_page_renders_in_each_state() {
        assert!(PAGES.is_ok(), "{:?}", PAGES.as_ref().err());
        let pages = [
            (
                ME,
                context! { csrf_session => "t", email => "a@example.com", display_name => "A",
                orgs => vec![context! { id => "o", name => "O", role => "owner", status => "active" }],
                notice => "n", error => "e", mfa_enabled => true },
            ),
            (
                ME_MFA,
                context! { csrf_session => "t", step => "status", mfa_enabled => true, recovery_codes_left => 3 },
            ),
            (
                ME_MFA,
                context! { csrf_session => "t", step => "enrolling", enrolment => context! { secret => "S", qr => "data:," } },
            ),
            (
                ME_MFA,
                context! { csrf_session => "t", step => "recovery_codes", recovery_codes => vec!["a-b-c"] },
            ),
            (
                ME_SESSIONS,
                context! { csrf_session => "t", sessions => vec![context! { id => "i", created_at => "2026-12-02T15:04:05Z", current => true }] },
            ),
            (
                ME_TOKENS,
                context! { csrf_session => "t", tokens => vec![context! { id => "i", name => "n", org => "O", display_prefix => "mst_pat_1", created_at => "2026-12-02T15:04:05Z" }],
                orgs => vec![context! { id => "o", name => "O" }], created => context! { name => "n", org => "O", token => "mst_pat_x" } },
            ),
        ];
        for (template, values) in pages {
            let page = html(StatusCode::OK, template, "Title", values);
            assert_eq!(page.status(), StatusCode::OK, "{template}");
        }
    }
}
