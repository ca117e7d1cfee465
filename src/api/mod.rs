//! The management API (poem-openapi): every route is documented in the
//! generated spec, which `muster openapi` prints and `openapi/` commits.

pub mod access;
pub mod audit;
pub mod audit_verify;
pub mod auth;
pub mod examples;
pub mod groups;
pub mod invitations;
pub mod me;
pub mod members;
pub mod mfa;
pub mod orgs;
pub mod paging;
pub mod projects;
pub mod roles;
pub mod sessions;
pub mod text;
pub mod tokens;

use poem::Request;
use poem_openapi::auth::Bearer;
use poem_openapi::{OpenApiService, SecurityScheme, Tags};

use crate::auth::{AuthError, Principal};
use crate::domain::{AccountId, TokenId};
use crate::error::AppError;
use crate::state::AppState;

#[derive(Tags)]
pub enum ApiTags {
    /// Sign-in and sessions.
    Auth,
    /// The caller's own account and memberships.
    Me,
    /// Organizations (tenants) and their settings.
    Organizations,
    /// Projects of an organization.
    Projects,
    /// Members: roles, statuses, per-project rights; leaving.
    Members,
    /// The role and permission matrix.
    Roles,
    /// Groups (the ones SCIM provisions) and the roles they map to.
    Groups,
    /// Personal API tokens.
    Tokens,
    /// SCIM tokens that connect an identity provider.
    ScimTokens,
    /// Invitations: invite, resend, revoke, accept.
    Invitations,
    /// The audit log: who did what, when, from where.
    Audit,
}

/// A bearer token: a session (`mst_ses_…`, from `POST /auth/login`) or a
/// personal API token (`mst_pat_…`).
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_bearer")]
pub struct BearerAuth(Principal);

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
    let state = req
        .data::<AppState>()
        .ok_or_else(|| AppError::internal("application state missing"))?;
    let principal =
        crate::auth::authenticate(state.store(), bearer.token.trim(), state.clock().now())
            .await
            .map_err(AppError::from)?;
    if let Principal::Scim { .. } = principal {
        return Err(AppError::from(AuthError::Invalid).into());
    }
    crate::http::bearer_proven(req);
    let token_org = match &principal {
        Principal::PersonalToken { org_id, .. } => Some(org_id),
        _ => None,
    };
    crate::http::log_caller(&principal.actor(), token_org);
    Ok(principal)
}

// A type rather than a check in each handler, so that an account-level
// route states it in its signature (and the spec) and cannot forget it.
/// A session token (`mst_ses_…`, from `POST /auth/login`) only: the
/// scheme of account-level routes (creating organizations, changing the
/// account, managing personal tokens and sessions). A personal API token
/// acts only inside its organization and is refused here with 403.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_session")]
pub struct SessionAuth(SignedIn);

/// A signed-in account, proven by a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub account_id: AccountId,
    pub session_id: TokenId,
}

impl SessionAuth {
    pub fn account_id(&self) -> &AccountId {
        &self.0.account_id
    }

    pub fn session_id(&self) -> &TokenId {
        &self.0.session_id
    }

    pub fn principal(&self) -> Principal {
        Principal::Session {
            account_id: self.0.account_id.clone(),
            session_id: self.0.session_id.clone(),
        }
    }

    /// The same caller, for helpers that take any bearer (`OrgAccess`).
    pub fn bearer(&self) -> BearerAuth {
        BearerAuth(self.principal())
    }
}

/// Why a personal token is refused on an account-level route, and the fix.
pub const SESSION_REQUIRED: &str = "a personal API token acts only inside its organization; \
     this route acts for the whole account: sign in (POST /api/v1/auth/login) and use the \
     session token";

async fn check_session(req: &Request, bearer: Bearer) -> poem::Result<SignedIn> {
    match check_bearer(req, bearer).await? {
        Principal::Session {
            account_id,
            session_id,
        } => Ok(SignedIn {
            account_id,
            session_id,
        }),
        _ => Err(AppError::Forbidden(SESSION_REQUIRED.into()).into()),
    }
}

pub type Apis = (
    auth::AuthApi,
    sessions::SessionsApi,
    me::MeApi,
    mfa::MfaApi,
    orgs::OrgsApi,
    members::MembersApi,
    groups::GroupsApi,
    invitations::InvitationsApi,
    roles::RolesApi,
    projects::ProjectsApi,
    tokens::TokensApi,
    tokens::ScimTokensApi,
    audit::AuditApi,
    audit_verify::AuditVerifyApi,
);

pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            auth::AuthApi,
            sessions::SessionsApi,
            me::MeApi,
            mfa::MfaApi,
            orgs::OrgsApi,
            members::MembersApi,
            groups::GroupsApi,
            invitations::InvitationsApi,
            roles::RolesApi,
            projects::ProjectsApi,
            tokens::TokensApi,
            tokens::ScimTokensApi,
            audit::AuditApi,
            audit_verify::AuditVerifyApi,
        ),
        "Muster management API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Administer organizations, projects, members, roles, groups, invitations and tokens. \
         Authenticate with a session token from `POST /auth/login` or a personal API token \
         (`Authorization: Bearer mst_pat_…`), which acts only inside its organization: \
         account-level routes (`POST /orgs`, `PATCH /me`, `/me/tokens`, `/me/sessions`) \
         need a session. \
         Errors are RFC 9457 problem JSON.",
    )
    .server("/api/v1")
}

/// The spec as served at `/openapi.json` and committed in
/// `openapi/management.json`.
pub fn spec_json() -> String {
    static SPEC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SPEC.get_or_init(|| {
        let generated = service().spec();
        match serde_json::from_str::<serde_json::Value>(&generated) {
            Ok(mut spec) => {
                close_request_schemas(&mut spec);
                serde_json::to_string_pretty(&spec).unwrap_or(generated)
            }
            Err(_) => generated,
        }
    })
    .clone()
}

/// Every request body refuses unknown fields (`deny_unknown_fields`), but
/// poem-openapi does not say so in the schema: mark each object schema a
/// request body reaches with `additionalProperties: false`, so that
/// clients and spec-driven testers know. Unions of a string and an array
/// lose the `type: object` poem-openapi gives them.
fn close_request_schemas(spec: &mut serde_json::Value) {
    use serde_json::Value;
    fn refs(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("$ref", Value::String(target)) => {
                            if let Some(name) = target.strip_prefix("#/components/schemas/") {
                                found.push(name.to_owned());
                            }
                        }
                        _ => refs(value, found),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| refs(item, found)),
            _ => {}
        }
    }
    let mut pending = Vec::new();
    if let Some(paths) = spec.get("paths").and_then(Value::as_object) {
        for operation in paths
            .values()
            .filter_map(Value::as_object)
            .flat_map(|o| o.values())
        {
            if let Some(body) = operation.get("requestBody") {
                refs(body, &mut pending);
            }
        }
    }
    let Some(schemas) = spec
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let mut closed = std::collections::HashSet::new();
    while let Some(name) = pending.pop() {
        if !closed.insert(name.clone()) {
            continue;
        }
        if let Some(Value::Object(schema)) = schemas.get_mut(&name) {
            refs(&Value::Object(schema.clone()), &mut pending);
            if schema.contains_key("anyOf") || schema.contains_key("oneOf") {
                // A poem-openapi `Union` of non-objects (a string or an
                // array) is typed `object`, which no value satisfies.
                if !schema.contains_key("properties") {
                    schema.remove("type");
                }
            } else if schema.get("type").and_then(Value::as_str) == Some("object") {
                schema.insert("additionalProperties".into(), Value::Bool(false));
            }
        }
    }
}

/// A management API route: its path template, split into segments (`None`
/// for a `{parameter}`), and its methods.
struct Route {
    template: String,
    segments: Vec<Option<String>>,
    methods: Vec<String>,
}

type RouteTable = Vec<Route>;

fn route_table() -> &'static RouteTable {
    static TABLE: std::sync::OnceLock<RouteTable> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let spec: serde_json::Value = serde_json::from_str(&spec_json()).unwrap_or_default();
        let Some(paths) = spec.get("paths").and_then(|p| p.as_object()) else {
            return Vec::new();
        };
        paths
            .iter()
            .map(|(template, operations)| {
                let segments = template
                    .split('/')
                    .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                    .collect();
                let methods = operations
                    .as_object()
                    .map(|ops| ops.keys().map(|m| m.to_ascii_uppercase()).collect())
                    .unwrap_or_default();
                Route {
                    template: template.clone(),
                    segments,
                    methods,
                }
            })
            .collect()
    })
}

/// The `Allow` header value for a path under `/api/v1`, if it is a route.
pub fn allowed_methods(path: &str) -> Option<String> {
    route_of(path).map(|route| route.methods.join(", "))
}

/// The template of the route a path under `/api/v1` matches, with the
/// prefix (`/api/v1/orgs/{org}/members`).
pub fn route_template(path: &str) -> Option<String> {
    route_of(path).map(|route| format!("/api/v1{}", route.template))
}

/// The route `path` matches: of those whose segments fit, the one with
/// the most literal segments (`/me/sessions` before `/{x}/sessions`).
fn route_of(path: &str) -> Option<&'static Route> {
    let relative = path.strip_prefix("/api/v1")?;
    let segments: Vec<&str> = relative.split('/').collect();
    route_table()
        .iter()
        .filter(|route| {
            route.segments.len() == segments.len()
                && route
                    .segments
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t.as_deref().is_none_or(|t| t == *s))
        })
        .max_by_key(|route| route.segments.iter().filter(|s| s.is_some()).count())
}

#[cfg(test)]
mod tests {
    #[test]
    fn allow_lists_the_methods_of_a_route() {
        assert_eq!(
            super::allowed_methods("/api/v1/orgs/abc").as_deref(),
            Some("GET, PATCH, DELETE")
        );
        assert_eq!(super::allowed_methods("/api/v1/nothing/here"), None);
        assert_eq!(super::allowed_methods("/scim/v2/Users"), None);
    }

    #[test]
    fn paths_map_to_their_route_templates() {
        for (path, template) in [
            ("/api/v1/orgs/abc", "/api/v1/orgs/{org}"),
            (
                "/api/v1/orgs/abc/members/def",
                "/api/v1/orgs/{org}/members/{member}",
            ),
            ("/api/v1/me/sessions", "/api/v1/me/sessions"),
            ("/api/v1/me/sessions/xyz", "/api/v1/me/sessions/{id}"),
            ("/api/v1/auth/login/mfa", "/api/v1/auth/login/mfa"),
        ] {
            assert_eq!(
                super::route_template(path).as_deref(),
                Some(template),
                "{path}"
            );
        }
        assert_eq!(super::route_template("/api/v1/orgs/a/b/c/d/e"), None);
    }

    #[test]
    fn account_level_routes_take_a_session_only() {
        let spec: serde_json::Value =
            serde_json::from_str(&super::spec_json()).expect("the spec is JSON");
        let paths = spec["paths"].as_object().expect("paths");
        let mut account_level = Vec::new();
        for (path, operations) in paths {
            for (method, operation) in operations.as_object().expect("operations") {
                let scheme = operation["security"][0]
                    .as_object()
                    .and_then(|s| s.keys().next().cloned());
                let is_account_level = (path.starts_with("/me")
                    && !(path == "/me" && method == "get"))
                    || (path == "/orgs" && method == "post");
                if is_account_level {
                    assert_eq!(scheme.as_deref(), Some("SessionAuth"), "{method} {path}");
                    account_level.push(format!("{method} {path}"));
                }
            }
        }
        assert_eq!(account_level.len(), 14, "{account_level:?}");
    }

    #[test]
    fn request_schemas_refuse_unknown_fields_in_the_spec() {
        let spec: serde_json::Value =
            serde_json::from_str(&super::spec_json()).expect("the spec is JSON");
        for name in ["LoginRequest", "UpdateOrgRequest", "UpdateOrgSettings"] {
            assert_eq!(
                spec["components"]["schemas"][name]["additionalProperties"], false,
                "{name}"
            );
        }
        assert!(
            spec["components"]["schemas"]["OrgView"]
                .get("additionalProperties")
                .is_none()
        );
    }
}
