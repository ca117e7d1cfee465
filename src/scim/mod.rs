//! SCIM 2.0 (RFC 7643/7644) under `/scim/v2`. The bearer SCIM token
//! selects the organization. The resource endpoints land with the SCIM
//! issue; until then every authenticated request is answered 501 in the
//! SCIM error format, so identity providers get an honest answer.

use poem::{Endpoint, EndpointExt, Request, Response, Route, handler};

use crate::auth::{AuthError, Principal, authenticate, bearer_secret};
use crate::domain::{OrgId, TokenId};
use crate::error::AppError;
use crate::state::AppState;

/// An identity provider acting in one organization; only `scim_context`
/// builds it, after checking a SCIM token.
#[derive(Debug, Clone)]
pub struct ScimContext {
    pub org_id: OrgId,
    pub token_id: TokenId,
}

pub async fn scim_context(state: &AppState, req: &Request) -> Result<ScimContext, AppError> {
    let header = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let secret = bearer_secret(header)?;
    match authenticate(state.store(), secret, state.clock().now()).await? {
        Principal::Scim { org_id, token_id } => Ok(ScimContext { org_id, token_id }),
        _ => Err(AuthError::Invalid.into()),
    }
}

pub fn routes() -> impl Endpoint<Output = Response> {
    Route::new().at("/*path", not_yet).map_to_response()
}

#[handler]
async fn not_yet(req: &Request, state: poem::web::Data<&AppState>) -> poem::Result<Response> {
    scim_context(&state, req).await?;
    Err(AppError::NotImplemented("this SCIM endpoint is not implemented yet".into()).into())
}
