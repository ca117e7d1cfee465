//! An organization's identity-provider integrations: the SCIM base URL
//! and the SCIM tokens of `/orgs/{org}/scim-tokens`, listed, created and
//! revoked through the API's own functions (`api::tokens::list_scim`,
//! `create_scim`, `revoke_scim`) behind the API's `manage_integrations`
//! check. A new token's secret is shown once, in the answer to the form
//! (201, never a redirect: it must not land in a URL or a later page).

use chrono::{DateTime, NaiveDate, Utc};
use minijinja::context;
use minijinja::value::{Serde, merge_maps};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{Request, Response, handler};
use serde::Deserialize;

use super::{InOrg, TokenOnly, html, respond, see_other};
use crate::api::tokens::{ScimTokenView, create_scim, list_scim, revoke_scim};
use crate::domain::Permission;
use crate::error::AppError;
use crate::state::AppState;

const INTEGRATIONS: &str = "console/integrations.html";
const CREATED: &str = "console/integrations_created.html";
const REVOKE: &str = "console/integrations_revoke.html";

pub(super) const TEMPLATES: &[(&str, &str)] = &[
    (
        INTEGRATIONS,
        include_str!("../../templates/console/integrations.html"),
    ),
    (
        CREATED,
        include_str!("../../templates/console/integrations_created.html"),
    ),
    (
        REVOKE,
        include_str!("../../templates/console/integrations_revoke.html"),
    ),
];

/// The SCIM base URL identity providers are given, as `/scim/v2` builds
/// its own `meta.location`s.
fn scim_base_url(state: &AppState) -> String {
    format!("{}/scim/v2", state.settings().public_url())
}

fn token_row(token: &ScimTokenView) -> minijinja::Value {
    context! {
        id => token.id.clone(),
        name => token.name.clone(),
        display_prefix => token.display_prefix.clone(),
        created_at => Serde(token.created_at),
        last_used_at => Serde(token.last_used_at),
        expires_at => Serde(token.expires_at),
        allow_owner_changes => token.allow_owner_changes,
    }
}

/// What the page says after a form: `?revoked=1` after a revocation.
#[derive(Debug, Default, Deserialize)]
pub struct Notice {
    #[serde(default)]
    revoked: Option<String>,
}

/// The integrations page, with the form's values and error when a
/// creation was refused.
async fn page_with(
    state: &AppState,
    page: &InOrg,
    status: StatusCode,
    extra: minijinja::Value,
) -> Result<Response, super::Refusal> {
    let granted = page.require(Permission::ManageIntegrations)?;
    let tokens = list_scim(state, &granted)
        .await
        .map_err(|err| page.error(&err))?;
    let rows: Vec<_> = tokens.iter().map(token_row).collect();
    Ok(html(
        status,
        INTEGRATIONS,
        &format!("Integrations of {}", page.access.org.name),
        context! {
            scim_base_url => scim_base_url(state),
            tokens => rows,
            ..merge_maps([extra, page.values()])
        },
    ))
}

/// The SCIM base URL, the organization's SCIM tokens and the form that
/// creates one.
#[handler]
pub async fn integrations_page(
    state: Data<&AppState>,
    req: &Request,
    Path(org): Path<String>,
    notice: poem::Result<Query<Notice>>,
) -> Response {
    // A query string that is not ours shows the page without a notice.
    let notice = notice.map(|Query(notice)| notice).unwrap_or_default();
    respond(
        async {
            let page = InOrg::open(&state, req, &org).await?;
            let notice = notice
                .revoked
                .is_some()
                .then_some("The token was revoked: the identity provider using it now gets 401.");
            page_with(&state, &page, StatusCode::OK, context! { notice }).await
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    /// `YYYY-MM-DD` (an `<input type="date">`), or empty for none.
    #[serde(default)]
    expires_on: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    allow_owner_changes: Option<String>,
}

/// The expiry a date field names: the token stops working at 00:00 UTC
/// that day. The API's own check (in the future) follows.
fn expiry_of(raw: &str) -> Result<Option<DateTime<Utc>>, AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|at| Some(at.and_utc()))
        .ok_or_else(|| {
            AppError::invalid(
                "expires_at",
                "the expiry must be a date (YYYY-MM-DD); leave it empty for a token that does not expire",
            )
        })
}

/// Creates a SCIM token as `POST /orgs/{org}/scim-tokens` does, and shows
/// its secret this once with what to configure in Okta and Entra ID.
#[handler]
pub async fn create_token(
    state: Data<&AppState>,
    req: &Request,
    Path(org): Path<String>,
    form: poem::Result<Form<CreateForm>>,
) -> Response {
    respond(
        async {
            let page = InOrg::open(&state, req, &org).await?;
            let form = form.ok().map(|Form(form)| form);
            let sent = form.as_ref().map(|f| f.csrf.as_str()).unwrap_or_default();
            page.console.check_form(&state, req, sent)?;
            let Some(form) = form else {
                return Err(page
                    .console
                    .error(&AppError::invalid("name", "the form is incomplete")));
            };
            let granted = page.require(Permission::ManageIntegrations)?;
            let created = match expiry_of(&form.expires_on) {
                Ok(expires_at) => {
                    create_scim(
                        &state,
                        &granted,
                        &form.name,
                        expires_at,
                        form.allow_owner_changes.is_some(),
                    )
                    .await
                }
                Err(err) => Err(err),
            };
            match created {
                Ok(created) => Ok(html(
                    StatusCode::CREATED,
                    CREATED,
                    &format!("SCIM token {} created", created.name),
                    context! {
                        scim_base_url => scim_base_url(&state),
                        name => created.name,
                        token => created.token,
                        expires_at => Serde(created.expires_at),
                        ..page.values()
                    },
                )),
                // The form again, with what was typed and why not.
                Err(err) => {
                    page_with(
                        &state,
                        &page,
                        err.status(),
                        context! {
                            error => err.problem().detail,
                            typed => context! {
                                name => form.name,
                                expires_on => form.expires_on,
                                allow_owner_changes => form.allow_owner_changes.is_some(),
                            },
                        },
                    )
                    .await
                }
            }
        }
        .await,
    )
}

/// Asks before revoking: a page naming the token, whose button does it.
/// A page rather than a script's `confirm()`, so it works without
/// JavaScript and with any assistive technology.
#[handler]
pub async fn revoke_page(
    state: Data<&AppState>,
    req: &Request,
    Path((org, id)): Path<(String, String)>,
) -> Response {
    respond(
        async {
            let page = InOrg::open(&state, req, &org).await?;
            let granted = page.require(Permission::ManageIntegrations)?;
            let tokens = list_scim(&state, &granted)
                .await
                .map_err(|err| page.error(&err))?;
            let token = tokens
                .iter()
                .find(|token| token.id == id)
                .ok_or_else(|| page.error(&AppError::NotFound("token")))?;
            Ok(html(
                StatusCode::OK,
                REVOKE,
                &format!("Revoke the SCIM token {}", token.name),
                context! { token => token_row(token), ..page.values() },
            ))
        }
        .await,
    )
}

/// Revokes a SCIM token as `DELETE /orgs/{org}/scim-tokens/{id}` does.
#[handler]
pub async fn revoke_token(
    state: Data<&AppState>,
    req: &Request,
    Path((org, id)): Path<(String, String)>,
    form: poem::Result<Form<TokenOnly>>,
) -> Response {
    respond(
        async {
            let page = InOrg::open(&state, req, &org).await?;
            let sent = form.map(|Form(form)| form.csrf).unwrap_or_default();
            page.console.check_form(&state, req, &sent)?;
            let granted = page.require(Permission::ManageIntegrations)?;
            revoke_scim(&state, &granted, &id)
                .await
                .map_err(|err| page.error(&err))?;
            Ok(see_other(&format!(
                "/console/orgs/{}/integrations?revoked=1",
                page.access.org.id
            )))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> minijinja::Value {
        context! {
            csrf_session => "t",
            org => context! { id => "o", name => "O" },
            scim_base_url => "https://m.example/scim/v2",
        }
    }

    #[test]
    fn the_pages_render() {
        let token = context! {
            id => "i", name => "Okta", display_prefix => "mst_scim_1e63",
            created_at => "2026-12-02T15:04:05Z", last_used_at => (), expires_at => (),
            allow_owner_changes => false,
        };
        for (template, extra) in [
            (INTEGRATIONS, context! { tokens => vec![token.clone()] }),
            (
                INTEGRATIONS,
                context! { tokens => Vec::<()>::new(), error => "e" },
            ),
            (CREATED, context! { name => "Okta", token => "mst_scim_x" }),
            (REVOKE, context! { token => token.clone() }),
        ] {
            let page = html(
                StatusCode::OK,
                template,
                "Title",
                context! { ..merge_maps([extra, values()]) },
            );
            assert_eq!(page.status(), StatusCode::OK, "{template}");
        }
    }

    #[test]
    fn an_expiry_is_a_date_or_nothing() {
        assert_eq!(expiry_of(" ").ok(), Some(None));
        assert_eq!(
            expiry_of("2030-01-02")
                .ok()
                .flatten()
                .map(|at| at.to_rfc3339()),
            Some("2030-01-02T00:00:00+00:00".to_owned())
        );
        assert!(expiry_of("tomorrow").is_err());
    }
}
