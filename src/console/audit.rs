//! The audit log: an organization's (`/orgs/{org}/audit-events`, with its
//! CSV and JSONL export) and the signed-in person's own account-level
//! events (`/me/audit-events`: sign-ins, sign-outs, account changes).
//! Every read goes through the API's functions (`api::audit::org_page`,
//! `org_export_file`, `own_page`): the same filters' checks, the same use
//! cases and their `view_audit_log` check, the same export file.

use minijinja::context;
use minijinja::value::Serde;
use poem::http::{StatusCode, header};
use poem::web::{Data, Path, Query};
use poem::{Request, Response, handler};
use serde::Deserialize;

use super::{Answer, Console, InOrg, given, html, respond, utc_field};
use crate::api::audit::{
    ActionParam, AuditEventList, AuditPartyView, ExportFormat, Filters, org_export_file, org_page,
    own_page,
};
use crate::api::paging::DEFAULT_PAGE_SIZE;
use crate::error::AppError;
use crate::state::AppState;

const AUDIT: &str = "console/audit.html";

pub(super) const TEMPLATES: &[(&str, &str)] =
    &[(AUDIT, include_str!("../../templates/console/audit.html"))];

/// The filters form, as GET fields; an empty field filters nothing.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct AuditForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    target: String,
    /// RFC 3339, or an `<input type="datetime-local">`'s value read as UTC.
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    cursor: String,
}

impl AuditForm {
    /// The API's filters; the API checks them (an unknown action, a
    /// reversed range) as it checks its query parameters.
    fn filters(&self, with_cursor: bool) -> Result<Filters, AppError> {
        Ok(Filters {
            actor: given(&self.actor).map(str::to_owned),
            action: given(&self.action).map(str::to_owned).map(ActionParam),
            target: given(&self.target).map(str::to_owned),
            since: utc_field("since", &self.since)?,
            until: utc_field("until", &self.until)?,
            cursor: with_cursor
                .then(|| given(&self.cursor).map(str::to_owned))
                .flatten(),
            limit: DEFAULT_PAGE_SIZE,
        })
    }

    /// The filters as a query string (without the cursor), for the next
    /// page's and the downloads' links.
    fn query_string(&self, cursor: Option<&str>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("action", &self.action),
            ("actor", &self.actor),
            ("target", &self.target),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if let Some(value) = given(value).map(str::to_owned) {
                query.append_pair(name, &value);
            }
        }
        if let Some(cursor) = cursor {
            query.append_pair("cursor", cursor);
        }
        query.finish()
    }

    fn typed(&self) -> minijinja::Value {
        context! {
            action => self.action.clone(),
            actor => self.actor.clone(),
            target => self.target.clone(),
            since => self.since.clone(),
            until => self.until.clone(),
            filtered => given(&self.action).map(str::to_owned).is_some() || given(&self.actor).map(str::to_owned).is_some()
                || given(&self.target).map(str::to_owned).is_some() || given(&self.since).map(str::to_owned).is_some()
                || given(&self.until).map(str::to_owned).is_some(),
            paged => given(&self.cursor).map(str::to_owned).is_some(),
        }
    }
}

/// A refusal of the filters, answered with the form again; any other
/// error (no permission to read the log, a failed read) is the refusal's
/// page.
fn is_filter_error(err: &AppError) -> bool {
    matches!(err, AppError::Invalid { .. } | AppError::BadRequest(_))
}

fn party(party: &AuditPartyView) -> minijinja::Value {
    context! {
        kind => party.kind.clone(),
        id => party.id.clone(),
        label => party.label.clone(),
    }
}

fn rows(list: &AuditEventList) -> Vec<minijinja::Value> {
    list.items
        .iter()
        .map(|event| {
            context! {
                at => Serde(event.at),
                actor => party(&event.actor),
                action => event.action.0.clone(),
                target => party(&event.target),
                ip => event.ip.clone(),
                user_agent => event.user_agent.clone(),
            }
        })
        .collect()
}

/// The page for a read of the log: its rows and next page's link, or the
/// form again with the API's reason (422 for a wrong filter).
fn log_page(
    title: &str,
    base: &str,
    form: &AuditForm,
    read: Result<AuditEventList, AppError>,
    values: minijinja::Value,
) -> Answer {
    let (status, events, next, error) = match read {
        Ok(list) => {
            let next = list
                .next_cursor
                .as_deref()
                .map(|cursor| format!("{base}?{}", form.query_string(Some(cursor))));
            (StatusCode::OK, rows(&list), next, None)
        }
        Err(err) => (err.status(), Vec::new(), None, Some(err.problem().detail)),
    };
    let query = form.query_string(None);
    Ok(html(
        status,
        AUDIT,
        title,
        context! {
            heading => title,
            base,
            events,
            next,
            error,
            typed => form.typed(),
            query,
            actions => Serde(crate::domain::audit::ACTIONS),
            ..values
        },
    ))
}

/// The organization's log, newest first, filtered, in the API's pages.
#[handler]
pub async fn audit_page(
    state: Data<&AppState>,
    req: &Request,
    Path(org): Path<String>,
    form: poem::Result<Query<AuditForm>>,
) -> Response {
    let form = form.map(|Query(form)| form).unwrap_or_default();
    respond(
        async {
            let page = InOrg::open(&state, req, &org).await?;
            let read = match form.filters(true) {
                Ok(filters) => org_page(&state, &page.access, filters).await,
                Err(err) => Err(err),
            };
            if let Err(err) = &read
                && !is_filter_error(err)
            {
                return Err(page.error(err));
            }
            let base = format!("/console/orgs/{}/audit", page.access.org.id);
            log_page(
                &format!("Audit log of {}", page.access.org.name),
                &base,
                &form,
                read,
                context! { export => true, ..page.values() },
            )
        }
        .await,
    )
}

/// The export as the API answers `format=csv` / `format=jsonl`, streamed,
/// with the page's filters (all matching events, no pages).
async fn export(
    state: &AppState,
    req: &Request,
    org: &str,
    form: AuditForm,
    format: ExportFormat,
) -> Answer {
    let page = InOrg::open(state, req, org).await?;
    let filters = form.filters(false).map_err(|err| page.error(&err))?;
    let (body, disposition) = org_export_file(state, &page.access, format, filters)
        .await
        .map_err(|err| page.error(&err))?;
    let content_type = match format {
        ExportFormat::Csv => "text/csv; charset=utf-8",
        _ => "application/x-ndjson",
    };
    Ok(Response::builder()
        .content_type(content_type)
        .header(header::CONTENT_DISPOSITION, disposition)
        .header(header::CACHE_CONTROL, "no-store")
        .body(body))
}

#[handler]
pub async fn export_csv(
    state: Data<&AppState>,
    req: &Request,
    Path(org): Path<String>,
    form: poem::Result<Query<AuditForm>>,
) -> Response {
    let form = form.map(|Query(form)| form).unwrap_or_default();
    respond(export(&state, req, &org, form, ExportFormat::Csv).await)
}

#[handler]
pub async fn export_jsonl(
    state: Data<&AppState>,
    req: &Request,
    Path(org): Path<String>,
    form: poem::Result<Query<AuditForm>>,
) -> Response {
    let form = form.map(|Query(form)| form).unwrap_or_default();
    respond(export(&state, req, &org, form, ExportFormat::Jsonl).await)
}

/// The person's own account-level events (sign-ins with their IP address
/// and browser, sign-outs, account changes), as `/me/audit-events`.
#[handler]
pub async fn my_activity(
    state: Data<&AppState>,
    req: &Request,
    form: poem::Result<Query<AuditForm>>,
) -> Response {
    let form = form.map(|Query(form)| form).unwrap_or_default();
    respond(
        async {
            let console = Console::required(&state, req).await?;
            let read = match form.filters(true) {
                Ok(filters) => own_page(&state, &console.account_id, filters).await,
                Err(err) => Err(err),
            };
            if let Err(err) = &read
                && !is_filter_error(err)
            {
                return Err(console.error(err));
            }
            log_page(
                "My activity",
                "/console/me/activity",
                &form,
                read,
                context! { mine => true, csrf_session => console.csrf() },
            )
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_renders_with_and_without_events() {
        let event = context! {
            at => "2026-12-02T15:04:05Z",
            actor => context! { kind => "account", id => "a", label => "ada@example.com" },
            action => "scim_token.created",
            target => context! { kind => "scim_token", id => "t", label => "Okta" },
            ip => "127.0.0.1",
            user_agent => "curl",
        };
        for values in [
            context! { events => vec![event], next => "/n", export => true, query => "a=b",
            org => context! { id => "o", name => "O" } },
            context! { events => Vec::<()>::new(), error => "e", mine => true },
        ] {
            let page = html(
                StatusCode::OK,
                AUDIT,
                "Title",
                context! { heading => "H", base => "/b", typed => AuditForm::default().typed(),
                csrf_session => "t", ..values },
            );
            assert_eq!(page.status(), StatusCode::OK);
        }
    }

    #[test]
    fn form_times_are_rfc_3339_or_local_fields_read_as_utc() {
        let at = |raw: &str| {
            utc_field("since", raw)
                .ok()
                .flatten()
                .map(|at| at.to_rfc3339())
        };
        assert_eq!(
            at("2026-12-02T15:04").as_deref(),
            Some("2026-12-02T15:04:00+00:00")
        );
        assert_eq!(
            at("2026-12-02T15:04:05+01:00").as_deref(),
            Some("2026-12-02T14:04:05+00:00")
        );
        assert_eq!(utc_field("since", "").ok(), Some(None));
        assert!(utc_field("since", "yesterday").is_err());
    }

    #[test]
    fn links_keep_the_filters_but_not_an_empty_field() {
        let form = AuditForm {
            action: "scim_token.".into(),
            since: "2026-12-02T15:04".into(),
            cursor: "c".into(),
            ..AuditForm::default()
        };
        assert_eq!(
            form.query_string(None),
            "action=scim_token.&since=2026-12-02T15%3A04"
        );
        assert!(form.query_string(Some("n")).ends_with("&cursor=n"));
    }
}
