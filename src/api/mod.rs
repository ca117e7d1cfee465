//! The management API (poem-openapi): every route is documented in the
//! generated spec, which `muster openapi` prints and `openapi/` commits.

pub mod access;
pub mod auth;
pub mod me;
pub mod orgs;
pub mod projects;
pub mod tokens;

use poem::Request;
use poem_openapi::auth::Bearer;
use poem_openapi::{OpenApiService, SecurityScheme, Tags};

use crate::auth::{AuthError, Principal};
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
    Ok(principal)
}

pub type Apis = (
    auth::AuthApi,
    me::MeApi,
    orgs::OrgsApi,
    projects::ProjectsApi,
    tokens::TokensApi,
    tokens::ScimTokensApi,
);

pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            auth::AuthApi,
            me::MeApi,
            orgs::OrgsApi,
            projects::ProjectsApi,
            tokens::TokensApi,
            tokens::ScimTokensApi,
        ),
        "Muster management API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Administer organizations, projects, members, roles, groups, invitations and tokens. \
         Authenticate with a session token from `POST /auth/login` or a personal API token \
         (`Authorization: Bearer mst_pat_…`). Errors are RFC 9457 problem JSON.",
    )
    .server("/api/v1")
}

/// The spec as committed in `openapi/management.json`.
pub fn spec_json() -> String {
    service().spec()
}
