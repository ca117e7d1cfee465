//! SCIM 2.0 (RFC 7643/7644) under `/scim/v2`. The bearer SCIM token
//! selects the organization; every handler receives a `ScimContext`,
//! which only a valid SCIM token can build.

pub mod bulk;
pub mod discovery;
pub mod groups;
pub mod params;
pub mod users;

use poem::http::header::{CONTENT_TYPE, ETAG, LOCATION};
use poem::http::{HeaderMap, StatusCode};
use poem::web::Data;
use poem::{
    Endpoint, EndpointExt, FromRequest, Request, RequestBody, Response, Route, get, handler, post,
};
use serde_json::Value;

use crate::app::Acting;
use crate::auth::{AuthError, Principal, authenticate, bearer_secret};
use crate::domain::{Actor, AuditEvent, OrgId, RequestOrigin, Role};
use crate::error::{AppError, SCIM_JSON, ScimType};
use crate::http::RequestId;
use crate::state::AppState;

/// An identity provider acting in one organization.
#[derive(Clone)]
pub struct ScimContext {
    pub state: AppState,
    /// The token's organization and powers, as use cases take them.
    pub acting: Acting,
    /// The absolute SCIM base URL, for `meta.location` and `$ref`s.
    pub base_url: String,
}

impl<'a> FromRequest<'a> for ScimContext {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let state = req
            .data::<AppState>()
            .ok_or_else(|| AppError::internal("application state missing"))?
            .clone();
        let header = req
            .headers()
            .get(poem::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        let secret = bearer_secret(header).map_err(AppError::from)?;
        let principal = authenticate(state.store(), secret, state.clock().now())
            .await
            .map_err(AppError::from)?;
        let Principal::Scim {
            org_id,
            token_id,
            name,
            allow_owner_changes,
        } = principal
        else {
            return Err(AppError::from(AuthError::Invalid).into());
        };
        crate::http::bearer_proven(req);
        crate::http::log_caller(&Actor::ScimToken(token_id.clone()), Some(&org_id));
        let base_url = format!("{}/scim/v2", state.settings().public_url());
        Ok(ScimContext {
            state,
            acting: Acting {
                org_id,
                actor: Actor::ScimToken(token_id),
                actor_label: name,
                // An identity provider manages members as an admin would;
                // over owners only when an owner gave its token that power.
                role: if allow_owner_changes {
                    Role::Owner
                } else {
                    Role::Admin
                },
                origin: origin_of(req),
            },
            base_url,
        })
    }
}

impl ScimContext {
    /// The audit event of a change this identity provider made.
    pub fn event(
        &self,
        action: &'static str,
        kind: &'static str,
        id: &str,
        before: Option<Value>,
        after: Option<Value>,
    ) -> AuditEvent {
        self.acting
            .event(self.state.clock().now(), action, (kind, id), before, after)
    }

    pub fn org_id(&self) -> &OrgId {
        &self.acting.org_id
    }
}

/// Where a request came from, for audit events.
pub fn origin_of(req: &Request) -> RequestOrigin {
    // A `/Bulk` sub-request carries its parent's origin.
    if let Some(origin) = req.extensions().get::<RequestOrigin>() {
        return origin.clone();
    }
    RequestOrigin {
        ip: crate::client_ip::of(req).map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get(poem::http::header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|agent| agent.chars().take(256).collect()),
        request_id: req.extensions().get::<RequestId>().map(|id| id.0.clone()),
    }
}

/// A JSON request body, accepted as `application/scim+json` or
/// `application/json`.
pub struct ScimBody(pub Value);

impl<'a> FromRequest<'a> for ScimBody {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        if let Some(content_type) = req.headers().get(CONTENT_TYPE) {
            let essence = content_type
                .to_str()
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if essence != "application/scim+json" && essence != "application/json" {
                return Err(AppError::UnsupportedMediaType(format!(
                    "send application/scim+json (or application/json), not `{essence}`"
                ))
                .into());
            }
        }
        let bytes = body.take()?.into_bytes().await.map_err(|err| {
            AppError::scim(
                ScimType::InvalidSyntax,
                format!("cannot read the body: {err}"),
            )
        })?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|err| {
            AppError::scim(
                ScimType::InvalidSyntax,
                format!("the body is not valid JSON: {err}"),
            )
        })?;
        Ok(ScimBody(value))
    }
}

pub fn scim_response(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .content_type(SCIM_JSON)
        .body(body.to_string())
}

/// A resource answer with its `ETag` (and `Location` after a create).
pub fn resource_response(
    status: StatusCode,
    body: &Value,
    version: i64,
    location: Option<&str>,
) -> Response {
    let mut response = scim_response(status, body);
    if let Ok(etag) = crate::protocol::user::etag(version).parse() {
        response.headers_mut().insert(ETAG, etag);
    }
    if let Some(location) = location.and_then(|l| l.parse().ok()) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

/// 304 for a matching `If-None-Match`: no body, the current ETag.
pub fn not_modified_response(version: i64) -> Response {
    let mut response = Response::builder()
        .status(StatusCode::NOT_MODIFIED)
        .finish();
    if let Ok(etag) = crate::protocol::user::etag(version).parse() {
        response.headers_mut().insert(ETAG, etag);
    }
    response
}

/// The ETags an `If-Match` or `If-None-Match` header lists (`*` included).
fn listed_etags(headers: &HeaderMap, name: &str) -> Option<Vec<String>> {
    let value = headers.get(name)?.to_str().ok()?;
    Some(
        value
            .split(',')
            .map(|tag| tag.trim().trim_start_matches("W/").to_owned())
            .collect(),
    )
}

/// Checks `If-Match` against the current version: 412 when it names
/// another version. Weak comparison, as RFC 7644 §3.14 uses weak tags.
pub fn check_if_match(headers: &HeaderMap, version: i64) -> Result<(), AppError> {
    let Some(tags) = listed_etags(headers, "if-match") else {
        return Ok(());
    };
    let current = format!("\"{version}\"");
    if tags.iter().any(|tag| tag == "*" || *tag == current) {
        Ok(())
    } else {
        Err(AppError::PreconditionFailed(format!(
            "the resource has changed: its version is now W/{current}"
        )))
    }
}

/// Whether `If-None-Match` names the current version (answer 304).
pub fn not_modified(headers: &HeaderMap, version: i64) -> bool {
    let current = format!("\"{version}\"");
    listed_etags(headers, "if-none-match")
        .is_some_and(|tags| tags.iter().any(|tag| tag == "*" || *tag == current))
}

pub fn routes() -> impl Endpoint<Output = Response> {
    let route = Route::new()
        .at(
            "/ServiceProviderConfig",
            get(discovery::service_provider_config),
        )
        .at("/ResourceTypes", get(discovery::resource_types))
        .at("/ResourceTypes/:id", get(discovery::resource_type))
        .at("/Schemas", get(discovery::list_schemas))
        .at("/Schemas/:id", get(discovery::read_schema))
        .at("/.search", post(params::root_search))
        .at("/Bulk", post(bulk::bulk))
        .at("/Me", me);
    with_resource_routes(route).map_to_response()
}

/// Users and Groups alone: what `/Bulk` operations may address.
pub fn resource_routes() -> impl Endpoint<Output = Response> {
    with_resource_routes(Route::new()).map_to_response()
}

fn with_resource_routes(route: Route) -> Route {
    route
        .at("/Users", get(users::list).post(users::create))
        .at("/Users/.search", post(users::search))
        .at(
            "/Users/:id",
            get(users::read)
                .put(users::replace)
                .patch(users::patch)
                .delete(users::delete),
        )
        .at("/Groups", get(groups::list).post(groups::create))
        .at("/Groups/.search", post(groups::search))
        .at(
            "/Groups/:id",
            get(groups::read)
                .put(groups::replace)
                .patch(groups::patch)
                .delete(groups::delete),
        )
}

/// SCIM tokens belong to an organization, not to a user: there is no "me".
#[handler]
async fn me(_context: ScimContext, _state: Data<&AppState>) -> poem::Result<Response> {
    Err(AppError::NotImplemented("/Me is not supported: SCIM tokens are not users".into()).into())
}
