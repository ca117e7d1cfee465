//! Tokens: a person's own personal API tokens (`/me/tokens`) and an
//! organization's SCIM tokens (`/orgs/{org}/scim-tokens`). Secrets are
//! shown once, in the response that creates them; lists show a prefix.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::access::{Granted, OrgAccess};
use super::examples::{ORG_ID, example_time};
use super::me::account_acting;
use super::text::Text;
use super::{ApiTags, BearerAuth, SessionAuth};
use crate::app;
use crate::auth::token::{TokenKind, TokenRecord};
use crate::domain::{Permission, TokenId};
use crate::error::AppError;
use crate::state::AppState;
use crate::store;

pub struct TokensApi;
pub struct ScimTokensApi;

const EXAMPLE_PERSONAL_TOKEN_ID: &str = "0194694c-5dc0-70b7-9c7c-7c110ba5a316";
const EXAMPLE_SCIM_TOKEN_ID: &str = "01934895-d800-74ba-b57a-e146e8480c39";

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none, example)]
pub struct PersonalTokenView {
    pub id: String,
    /// The organization the token acts in.
    pub org_id: String,
    pub name: String,
    /// The first characters of the secret, to tell tokens apart.
    pub display_prefix: String,
    pub created_at: DateTime<Utc>,
    /// Null when the token does not expire.
    pub expires_at: Option<DateTime<Utc>>,
    /// Updated at most once a minute.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl Example for PersonalTokenView {
    fn example() -> Self {
        PersonalTokenView {
            id: EXAMPLE_PERSONAL_TOKEN_ID.to_owned(),
            org_id: ORG_ID.to_owned(),
            name: "deploy script".to_owned(),
            display_prefix: "mst_pat_3f9a".to_owned(),
            created_at: example_time("2025-01-15T09:30:00Z"),
            expires_at: Some(example_time("2030-01-01T00:00:00Z")),
            last_used_at: Some(example_time("2025-02-03T17:45:12Z")),
        }
    }
}

/// The caller's personal tokens, oldest first.
#[derive(Debug, Object)]
#[oai(example)]
pub struct PersonalTokenList {
    pub items: Vec<PersonalTokenView>,
    /// Always null: the list is never split into pages.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

impl Example for PersonalTokenList {
    fn example() -> Self {
        PersonalTokenList {
            items: vec![PersonalTokenView::example()],
            next_cursor: None,
        }
    }
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct CreatePersonalTokenRequest {
    /// The organization the token will act in; the caller must be an
    /// active member allowed to create personal tokens there.
    pub org_id: Text,
    /// 1 to 100 characters after trimming, e.g. what the token is for.
    pub name: Text,
    /// When the token stops working; in the future. Omit for a token that
    /// does not expire.
    #[oai(nullable)]
    pub expires_at: Option<DateTime<Utc>>,
}

impl Example for CreatePersonalTokenRequest {
    fn example() -> Self {
        CreatePersonalTokenRequest {
            org_id: ORG_ID.into(),
            name: "deploy script".into(),
            expires_at: Some(example_time("2030-01-01T00:00:00Z")),
        }
    }
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none, example)]
pub struct CreatedPersonalTokenView {
    pub id: String,
    pub org_id: String,
    pub name: String,
    /// The secret (`mst_pat_…`). Shown only here: store it now.
    pub token: String,
    pub display_prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Example for CreatedPersonalTokenView {
    fn example() -> Self {
        CreatedPersonalTokenView {
            id: EXAMPLE_PERSONAL_TOKEN_ID.to_owned(),
            org_id: ORG_ID.to_owned(),
            name: "deploy script".to_owned(),
            token: "mst_pat_3f9ab421715c5bc6dc80dcb42a5e4141822a55376f0fa9d5394ef3a62b737d86"
                .to_owned(),
            display_prefix: "mst_pat_3f9a".to_owned(),
            created_at: example_time("2025-01-15T09:30:00Z"),
            expires_at: Some(example_time("2030-01-01T00:00:00Z")),
        }
    }
}

#[derive(ApiResponse)]
pub enum CreatedPersonalToken {
    /// The token, with its secret shown this once.
    #[oai(status = 201)]
    Created(Json<CreatedPersonalTokenView>),
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none, example)]
pub struct ScimTokenView {
    pub id: String,
    pub name: String,
    /// The first characters of the secret, to tell tokens apart.
    pub display_prefix: String,
    pub created_at: DateTime<Utc>,
    /// Null when the token does not expire.
    pub expires_at: Option<DateTime<Utc>>,
    /// Updated at most once a minute.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Whether the identity provider may add and remove owners (members
    /// of groups mapped to owner, members who are owners).
    pub allow_owner_changes: bool,
}

impl Example for ScimTokenView {
    fn example() -> Self {
        ScimTokenView {
            id: EXAMPLE_SCIM_TOKEN_ID.to_owned(),
            name: "Okta".to_owned(),
            display_prefix: "mst_scim_1e63".to_owned(),
            created_at: example_time("2024-11-20T08:00:00Z"),
            expires_at: None,
            last_used_at: Some(example_time("2025-02-04T02:00:00Z")),
            allow_owner_changes: false,
        }
    }
}

/// The organization's SCIM tokens, oldest first.
#[derive(Debug, Object)]
#[oai(example)]
pub struct ScimTokenList {
    pub items: Vec<ScimTokenView>,
    /// Always null: the list is never split into pages.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

impl Example for ScimTokenList {
    fn example() -> Self {
        ScimTokenList {
            items: vec![ScimTokenView::example()],
            next_cursor: None,
        }
    }
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct CreateScimTokenRequest {
    /// 1 to 100 characters after trimming, e.g. the identity provider.
    pub name: Text,
    /// When the token stops working; in the future. Omit for a token that
    /// does not expire.
    #[oai(nullable)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Lets the identity provider add and remove owners: change the
    /// members of groups mapped to owner, deactivate or delete members who
    /// are owners. Only owners may set it; without it such a write answers
    /// 403. Default false.
    #[oai(nullable)]
    pub allow_owner_changes: Option<bool>,
}

impl Example for CreateScimTokenRequest {
    fn example() -> Self {
        CreateScimTokenRequest {
            name: "Okta".into(),
            expires_at: None,
            allow_owner_changes: Some(false),
        }
    }
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none, example)]
pub struct CreatedScimTokenView {
    pub id: String,
    pub name: String,
    /// The secret (`mst_scim_…`) to configure in the identity provider.
    /// Shown only here: store it now.
    pub token: String,
    pub display_prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub allow_owner_changes: bool,
}

impl Example for CreatedScimTokenView {
    fn example() -> Self {
        CreatedScimTokenView {
            id: EXAMPLE_SCIM_TOKEN_ID.to_owned(),
            name: "Okta".to_owned(),
            token: "mst_scim_1e63951d36149cd5eee9e2191d739292f6712a01d65eed3f9b346e1baa09eef4"
                .to_owned(),
            display_prefix: "mst_scim_1e63".to_owned(),
            created_at: example_time("2024-11-20T08:00:00Z"),
            expires_at: None,
            allow_owner_changes: false,
        }
    }
}

#[derive(ApiResponse)]
pub enum CreatedScimToken {
    /// The token, with its secret shown this once.
    #[oai(status = 201)]
    Created(Json<CreatedScimTokenView>),
}

#[derive(ApiResponse)]
pub enum DeletedToken {
    /// The token is gone and stops working at once.
    #[oai(status = 204)]
    Deleted,
}

fn token_not_found() -> AppError {
    AppError::NotFound("token")
}

/// A token id from the path: anything malformed names no token.
pub fn token_id(raw: &str) -> Result<TokenId, AppError> {
    TokenId::parse(raw).map_err(|_| token_not_found())
}

fn personal_view(record: TokenRecord) -> Option<PersonalTokenView> {
    Some(PersonalTokenView {
        id: record.id.into_string(),
        org_id: record.org_id?.into_string(),
        name: record.name.unwrap_or_default(),
        display_prefix: record.display_prefix,
        created_at: record.created_at,
        expires_at: record.expires_at,
        last_used_at: record.last_used_at,
    })
}

/// `GET /me/tokens`'s list, for the API and the console alike.
pub async fn list_personal(
    state: &AppState,
    account_id: &crate::domain::AccountId,
) -> Result<PersonalTokenList, AppError> {
    let records =
        store::tokens::list_for_account(state.store(), TokenKind::Personal, account_id, None)
            .await?;
    Ok(PersonalTokenList {
        items: records.into_iter().filter_map(personal_view).collect(),
        next_cursor: None,
    })
}

/// `POST /me/tokens`'s work once the organization's access is loaded, for
/// the API and the console alike: the permission, the name and expiry
/// checks, then the use case. The answer holds the secret, shown once.
pub async fn create_personal(
    state: &AppState,
    access: &OrgAccess,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<CreatedPersonalTokenView, AppError> {
    access.require(Permission::CreatePersonalTokens)?;
    let name = app::tokens::checked_name(name)?;
    let now = state.clock().now();
    let expires_at = app::tokens::checked_expiry(expires_at, now)?;
    let (record, issued) =
        app::tokens::issue_personal(state.store(), now, &access.acting(), name, expires_at).await?;
    Ok(CreatedPersonalTokenView {
        id: record.id.to_string(),
        org_id: access.org_id().to_string(),
        name: record.name.unwrap_or_default(),
        token: issued.secret.into_exposed(),
        display_prefix: record.display_prefix,
        created_at: now,
        expires_at,
    })
}

fn scim_view(record: TokenRecord) -> ScimTokenView {
    ScimTokenView {
        id: record.id.into_string(),
        name: record.name.unwrap_or_default(),
        display_prefix: record.display_prefix,
        created_at: record.created_at,
        expires_at: record.expires_at,
        last_used_at: record.last_used_at,
        allow_owner_changes: record.allow_owner_changes,
    }
}

#[OpenApi(tag = "ApiTags::Tokens")]
impl TokensApi {
    /// List your personal API tokens
    ///
    /// Across all your organizations. Secrets are never shown again, only
    /// their first characters. A session only (a personal token gets 403).
    #[oai(path = "/me/tokens", method = "get")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
    ) -> Result<Json<PersonalTokenList>, AppError> {
        Ok(Json(list_personal(&state, auth.account_id()).await?))
    }

    /// Create a personal API token
    ///
    /// For one organization you are an active member of and whose role
    /// allows personal tokens (not viewers). The token acts as you in that
    /// organization only. The secret is in this response and nowhere else.
    /// A session only: a personal token cannot mint others (403).
    #[oai(path = "/me/tokens", method = "post")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        req: &Request,
        body: Json<CreatePersonalTokenRequest>,
    ) -> Result<CreatedPersonalToken, AppError> {
        let CreatePersonalTokenRequest {
            org_id,
            name,
            expires_at,
        } = body.0;
        let access = OrgAccess::load(&state, &auth.bearer(), req, &org_id).await?;
        Ok(CreatedPersonalToken::Created(Json(
            create_personal(&state, &access, &name, expires_at).await?,
        )))
    }

    /// Delete one of your personal API tokens
    ///
    /// It stops working at once. Tokens of other accounts are never found.
    /// A session only (a personal token gets 403).
    #[oai(path = "/me/tokens/:id", method = "delete")]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: SessionAuth,
        req: &Request,
        /// The token's id.
        id: Path<String>,
    ) -> Result<DeletedToken, AppError> {
        let id = token_id(&id)?;
        let caller = account_acting(&auth, req);
        app::tokens::revoke_personal(state.store(), state.clock().now(), &caller, &id).await?;
        Ok(DeletedToken::Deleted)
    }
}

#[OpenApi(tag = "ApiTags::ScimTokens")]
impl ScimTokensApi {
    /// List an organization's SCIM tokens
    ///
    /// Owners and admins. Secrets are never shown again, only their first
    /// characters.
    #[oai(path = "/orgs/:org/scim-tokens", method = "get")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
    ) -> Result<Json<ScimTokenList>, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        let granted = access.require(Permission::ManageIntegrations)?;
        Ok(Json(ScimTokenList {
            items: list_scim(&state, &granted).await?,
            next_cursor: None,
        }))
    }

    /// Create a SCIM token
    ///
    /// Owners and admins. Configure the secret in the identity provider as
    /// the bearer token of `/scim/v2`; it is in this response and nowhere
    /// else.
    #[oai(path = "/orgs/:org/scim-tokens", method = "post")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        body: Json<CreateScimTokenRequest>,
    ) -> Result<CreatedScimToken, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        let granted = access.require(Permission::ManageIntegrations)?;
        let CreateScimTokenRequest {
            name,
            expires_at,
            allow_owner_changes,
        } = body.0;
        let created = create_scim(
            &state,
            &granted,
            &name,
            expires_at,
            allow_owner_changes.unwrap_or(false),
        )
        .await?;
        Ok(CreatedScimToken::Created(Json(created)))
    }

    /// Delete a SCIM token
    ///
    /// Owners and admins. The identity provider using it gets 401 from
    /// then on.
    #[oai(path = "/orgs/:org/scim-tokens/:id", method = "delete")]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &Request,
        /// The organization's id.
        org: Path<String>,
        /// The token's id.
        id: Path<String>,
    ) -> Result<DeletedToken, AppError> {
        let access = OrgAccess::load(&state, &auth, req, &org).await?;
        let granted = access.require(Permission::ManageIntegrations)?;
        revoke_scim(&state, &granted, &id).await?;
        Ok(DeletedToken::Deleted)
    }
}

// The SCIM tokens' use cases as the API runs them, shared with the
// console (issue 15), so that both faces check and answer alike.

/// The organization's SCIM tokens, oldest first, for a caller granted
/// `manage_integrations`.
pub async fn list_scim(
    state: &AppState,
    granted: &Granted<'_>,
) -> Result<Vec<ScimTokenView>, AppError> {
    let records =
        store::tokens::list_for_org(state.store(), TokenKind::Scim, granted.org_id()).await?;
    Ok(records.into_iter().map(scim_view).collect())
}

/// A new SCIM token, its secret exposed this once: the name and expiry
/// checked as `POST /orgs/{org}/scim-tokens` checks them.
pub async fn create_scim(
    state: &AppState,
    granted: &Granted<'_>,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
    allow_owner_changes: bool,
) -> Result<CreatedScimTokenView, AppError> {
    let name = app::tokens::checked_name(name)?;
    let now = state.clock().now();
    let expires_at = app::tokens::checked_expiry(expires_at, now)?;
    let (record, issued) = app::tokens::issue_scim(
        state.store(),
        now,
        &granted.acting(),
        name.clone(),
        expires_at,
        allow_owner_changes,
    )
    .await?;
    Ok(CreatedScimTokenView {
        id: record.id.to_string(),
        name,
        token: issued.secret.into_exposed(),
        display_prefix: record.display_prefix,
        created_at: now,
        expires_at,
        allow_owner_changes: record.allow_owner_changes,
    })
}

/// Revokes the SCIM token `id` names (404 for a malformed id).
pub async fn revoke_scim(
    state: &AppState,
    granted: &Granted<'_>,
    id: &str,
) -> Result<(), AppError> {
    let id = token_id(id)?;
    app::tokens::revoke_scim(state.store(), state.clock().now(), &granted.acting(), &id).await
}
