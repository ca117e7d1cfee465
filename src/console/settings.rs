//! An organization's name and settings, as `GET /orgs/{org}` shows them
//! to any member, with the form of `PATCH /orgs/{org}` and the deletion of
//! `DELETE /orgs/{org}` (both owners only: the use cases refuse anyone
//! else, here as on the API).

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Path, Query};
use poem::{Request, Response, handler};
use serde_json::{Map, Value, json};

use super::{
    Answer, Done, Fields, InOrg, Refused, api_request, html, json_number, notice, respond,
    see_other,
};
use crate::api::orgs::OrgView;
use crate::error::AppError;
use crate::state::AppState;

const SETTINGS: &str = "console/settings.html";

pub(super) const TEMPLATES: &[(&str, &str)] = &[(
    SETTINGS,
    include_str!("../../templates/console/settings.html"),
)];

const DONE: &[(&str, &str)] = &[("settings-saved", "The settings were saved.")];

/// The page; after a refusal, the form shows what was sent (`sent`), so
/// nothing typed is lost, next to the reason.
async fn show(
    state: &AppState,
    page: &InOrg,
    done: Option<&str>,
    refused: Option<Refused>,
    sent: Option<&Fields>,
) -> Answer {
    let org = crate::api::orgs::org_of(state, &page.access)
        .await
        .map_err(|err| page.error(&err))?;
    let settings = &org.settings;
    let mut form = context! {
        name => org.name.clone(),
        invitation_ttl_days => settings.invitation_ttl_days.to_string(),
        audit_retention_days => settings.audit_retention_days.to_string(),
        allowed_email_domains => settings.allowed_email_domains.join("\n"),
        scim_activation_emails => settings.scim_activation_emails,
        require_mfa => settings.require_mfa,
    };
    if let (
        Some(sent),
        Some(Refused {
            form: "settings", ..
        }),
    ) = (sent, &refused)
    {
        form = context! {
            name => sent.get("name"),
            invitation_ttl_days => sent.get("invitation_ttl_days"),
            audit_retention_days => sent.get("audit_retention_days"),
            allowed_email_domains => sent.get("allowed_email_domains"),
            scim_activation_emails => sent.has("scim_activation_emails"),
            require_mfa => sent.has("require_mfa"),
        };
    }
    let status = refused.as_ref().map_or(StatusCode::OK, |r| r.status);
    let (error_form, error) = match refused {
        Some(r) => (Some(r.form), Some(r.reason)),
        None => (None, None),
    };
    Ok(html(
        status,
        SETTINGS,
        &format!("Settings of {}", org.name),
        context! {
            form,
            your_role => org.your_role.clone(),
            warnings => org.warnings.clone(),
            notice => notice(done, DONE),
            error_form,
            error,
            ..page.values()
        },
    ))
}

#[handler]
pub async fn settings_page(
    state: Data<&AppState>,
    req: &Request,
    Path(org): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    respond(
        async {
            let page = InOrg::open(&state, req, &org).await?;
            show(&state, &page, done.done.as_deref(), None, None).await
        }
        .await,
    )
}

/// The body of `PATCH /orgs/{org}` for the form: only the fields that
/// differ from what the page showed, as the API changes only the fields
/// sent, so a save does not undo a concurrent change of another field.
fn update_body(current: &OrgView, fields: &Fields) -> Value {
    let mut body = Map::new();
    let mut settings = Map::new();
    let now = &current.settings;
    if fields.get("name") != current.name {
        body.insert("name".into(), fields.get("name").into());
    }
    for (field, shown) in [
        ("invitation_ttl_days", now.invitation_ttl_days),
        ("audit_retention_days", now.audit_retention_days),
    ] {
        if fields.get(field).trim() != shown.to_string() {
            settings.insert(field.into(), json_number(fields.get(field)));
        }
    }
    // One domain a line (or separated by commas or spaces).
    let domains: Vec<&str> = fields
        .get("allowed_email_domains")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|domain| !domain.is_empty())
        .collect();
    if domains != now.allowed_email_domains {
        settings.insert("allowed_email_domains".into(), json!(domains));
    }
    // An unchecked box is not sent at all.
    for (field, shown) in [
        ("scim_activation_emails", now.scim_activation_emails),
        ("require_mfa", now.require_mfa),
    ] {
        if fields.has(field) != shown {
            settings.insert(field.into(), fields.has(field).into());
        }
    }
    if !settings.is_empty() {
        body.insert("settings".into(), Value::Object(settings));
    }
    Value::Object(body)
}

/// `PATCH /orgs/{org}` from the settings form.
#[handler]
pub async fn save(
    state: Data<&AppState>,
    req: &Request,
    Path(org): Path<String>,
    body: String,
) -> Response {
    respond(
        async {
            let (page, fields) = InOrg::posted(&state, req, &org, &body).await?;
            let saved = async {
                let current = crate::api::orgs::org_of(&state, &page.access).await?;
                let request = api_request(update_body(&current, &fields))?;
                crate::api::orgs::update_org(&state, &page.access, request).await
            }
            .await;
            match saved {
                Ok(_) => Ok(see_other(&format!(
                    "/console/orgs/{}/settings?done=settings-saved",
                    page.access.org.id
                ))),
                Err(err) => {
                    show(
                        &state,
                        &page,
                        None,
                        Some(Refused::of("settings", &err)),
                        Some(&fields),
                    )
                    .await
                }
            }
        }
        .await,
    )
}

/// `DELETE /orgs/{org}`, once the organization's name is typed: the
/// console's own guard against a slip of the hand (the API's DELETE is a
/// deliberate call already), refused as 422 like a field the API refuses.
#[handler]
pub async fn delete(
    state: Data<&AppState>,
    req: &Request,
    Path(org): Path<String>,
    body: String,
) -> Response {
    respond(
        async {
            let (page, fields) = InOrg::posted(&state, req, &org, &body).await?;
            let deleted = if fields.get("confirm").trim() == page.access.org.name {
                crate::api::orgs::delete_org(&state, &page.access).await
            } else {
                Err(AppError::invalid(
                    "confirm",
                    format!(
                        "type the organization's name, {}, to delete it",
                        page.access.org.name
                    ),
                ))
            };
            match deleted {
                Ok(()) => Ok(see_other("/console?done=organization-deleted")),
                Err(err) => {
                    show(&state, &page, None, Some(Refused::of("delete", &err)), None).await
                }
            }
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::orgs::OrgSettingsView;
    use chrono::Utc;

    fn current() -> OrgView {
        OrgView {
            id: "o".into(),
            name: "Acme".into(),
            slug: "acme".into(),
            settings: OrgSettingsView {
                invitation_ttl_days: 7,
                audit_retention_days: 365,
                allowed_email_domains: vec!["acme.example".into()],
                scim_activation_emails: true,
                require_mfa: false,
            },
            your_role: "owner".into(),
            warnings: Vec::new(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn an_unchanged_form_sends_nothing() {
        let fields = Fields::parse(
            "csrf=t&name=Acme&invitation_ttl_days=7&audit_retention_days=365\
             &allowed_email_domains=acme.example%0D%0A&scim_activation_emails=on",
        );
        assert_eq!(update_body(&current(), &fields), json!({}));
    }

    #[test]
    fn only_changed_fields_are_sent_as_the_api_takes_them() {
        let fields = Fields::parse(
            "name=Acme&invitation_ttl_days=14&audit_retention_days=365\
             &allowed_email_domains=a.example%0D%0Ab.example&require_mfa=on",
        );
        assert_eq!(
            update_body(&current(), &fields),
            json!({ "settings": {
                "invitation_ttl_days": 14,
                "allowed_email_domains": ["a.example", "b.example"],
                "scim_activation_emails": false,
                "require_mfa": true,
            } })
        );
        // Not a number: passed on as text for the API's parser to refuse.
        let fields = Fields::parse("name=Acme&invitation_ttl_days=soon&audit_retention_days=365");
        let body = update_body(&current(), &fields);
        assert_eq!(body["settings"]["invitation_ttl_days"], json!("soon"));
        let parsed: Result<crate::api::orgs::UpdateOrgRequest, _> = api_request(body);
        assert_eq!(
            parsed.err().map(|err| err.status()),
            Some(StatusCode::BAD_REQUEST)
        );
    }

    #[test]
    fn the_page_renders() {
        let page = html(
            StatusCode::FORBIDDEN,
            SETTINGS,
            "Title",
            context! {
                csrf_session => "t",
                org => context! { id => "o", name => "O" },
                form => context! { name => "O", invitation_ttl_days => "7", audit_retention_days => "365", allowed_email_domains => "", scim_activation_emails => true, require_mfa => false },
                your_role => "admin",
                warnings => vec!["w"],
                error_form => "settings",
                error => "owners only",
            },
        );
        assert_eq!(page.status(), StatusCode::FORBIDDEN);
    }
}
