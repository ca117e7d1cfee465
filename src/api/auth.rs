use chrono::{DateTime, Duration, Utc};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::examples::example_time;
use super::text::Text;
use super::{ApiTags, BearerAuth};
use crate::auth::Principal;
use crate::auth::password::verify_password;
use crate::auth::token::{IssuedToken, TokenKind, TokenRecord};
use crate::domain::{AccountId, Actor, AuditEvent, Email, MemberStatus, RequestOrigin, TokenId};
use crate::error::AppError;
use crate::scim::origin_of;
use crate::state::AppState;
use crate::store::{self, Inserted};

pub struct AuthApi;

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct LoginRequest {
    /// The account's email address (case does not matter).
    #[oai(validator(max_length = 254))]
    pub email: Text,
    #[oai(validator(max_length = 1024))]
    pub password: Text,
}

impl Example for LoginRequest {
    fn example() -> Self {
        LoginRequest {
            email: "grace@example.com".into(),
            password: "correct horse battery staple".into(),
        }
    }
}

#[derive(Debug, Object)]
#[oai(example)]
pub struct LoginResponse {
    /// A session token (`mst_ses_…`), shown only here.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl Example for LoginResponse {
    fn example() -> Self {
        LoginResponse {
            token: "mst_ses_9876442fa574235860024782e5210ea0b6aefde73d7449e80fdb94a62ed056ea"
                .to_owned(),
            expires_at: example_time("2025-02-05T21:30:00Z"),
        }
    }
}

#[derive(ApiResponse)]
pub enum LogoutResponse {
    /// The session has ended.
    #[oai(status = 204)]
    LoggedOut,
}

const BAD_CREDENTIALS: &str = "invalid email or password";

#[OpenApi(tag = "ApiTags::Auth")]
impl AuthApi {
    /// Sign in with email and password
    ///
    /// Returns a session token. An unknown email and a wrong password get
    /// the same answer in the same time. Memberships still pending (created
    /// by an identity provider for this login) become active with the
    /// first sign-in.
    #[oai(path = "/auth/login", method = "post")]
    async fn login(
        &self,
        state: poem::web::Data<&AppState>,
        req: &poem::Request,
        body: Json<LoginRequest>,
    ) -> Result<Json<LoginResponse>, AppError> {
        let LoginRequest { email, password } = body.0;
        let store = state.store();
        let throttle = state.sign_in_throttle();
        let ip = req.remote_addr().as_socket_addr().map(|addr| addr.ip());
        // Before any work: a locked account costs no argon2 and answers the
        // same whether or not it exists.
        throttle.check(&email, ip, state.clock().now())?;
        let credentials = match Email::parse(&email) {
            Ok(email) => store::accounts::find_by_email(store, None, &email).await?,
            Err(_) => None,
        };
        let hash = credentials.as_ref().and_then(|c| c.password_hash.clone());
        let verified = state
            .hashing()
            .run(move || verify_password(hash.as_ref(), &password))
            .await?;
        let Some(credentials) = credentials.filter(|_| verified) else {
            throttle.failed(&email, ip, state.clock().now());
            return Err(AppError::Unauthorized(BAD_CREDENTIALS.into()));
        };
        throttle.succeeded(&email);
        let now = state.clock().now();
        activate_pending_memberships(&state, &credentials.account.id, origin_of(req), now).await?;
        let (token, expires_at) =
            start_session(&state, &credentials.account.id, origin_of(req)).await?;
        Ok(Json(LoginResponse { token, expires_at }))
    }

    /// End the current session
    ///
    /// Deletes the session the request is authenticated with. Personal API
    /// tokens are deleted under `/me/tokens` instead.
    #[oai(path = "/auth/logout", method = "post")]
    async fn logout(
        &self,
        state: poem::web::Data<&AppState>,
        auth: BearerAuth,
        req: &poem::Request,
    ) -> Result<LogoutResponse, AppError> {
        let Principal::Session {
            session_id,
            account_id,
        } = &auth.0
        else {
            return Err(AppError::Forbidden(
                "only session tokens can log out; delete personal tokens under /me/tokens".into(),
            ));
        };
        end_session(&state, account_id, session_id, origin_of(req)).await?;
        Ok(LogoutResponse::LoggedOut)
    }
}

/// Starts a session for an account that proved who it is: the session's
/// secret (shown once) and when it expires. Audited as
/// `account.signed_in`.
pub(crate) async fn start_session(
    state: &AppState,
    account_id: &AccountId,
    origin: RequestOrigin,
) -> Result<(String, DateTime<Utc>), AppError> {
    let store = state.store();
    let now = state.clock().now();
    let expires_at = now + Duration::hours(i64::from(state.settings().auth.session_ttl_hours));
    let issued = IssuedToken::generate(TokenKind::Session);
    let record = TokenRecord::new(
        &issued,
        None,
        Some(account_id.clone()),
        None,
        now,
        Some(expires_at),
    );
    let signed_in = AuditEvent::of_account(
        Actor::Account(account_id.clone()),
        account_id,
        now,
        "account.signed_in",
        Some(serde_json::json!({ "session_id": record.id.as_str(), "expires_at": expires_at })),
        origin,
    );
    crate::in_transaction!(store, |session| -> Result<(), AppError> {
        if store::tokens::insert(store, Some(&mut *session), &record).await?
            == Inserted::AlreadyExists
        {
            return Err(AppError::internal(
                "a fresh session token collided with a stored one",
            ));
        }
        store::audit::record(store, session, &signed_in).await?;
        Ok(())
    })?;
    Ok((issued.secret.into_exposed(), expires_at))
}

/// Ends one of an account's sessions. Audited as `account.signed_out`.
pub(crate) async fn end_session(
    state: &AppState,
    account_id: &AccountId,
    session_id: &TokenId,
    origin: RequestOrigin,
) -> Result<(), AppError> {
    let store = state.store();
    let event = AuditEvent::of_account(
        Actor::Account(account_id.clone()),
        account_id,
        state.clock().now(),
        "account.signed_out",
        Some(serde_json::json!({ "session_id": session_id.as_str() })),
        origin,
    );
    let owner = store::tokens::TokenOwner::Account {
        account_id,
        org_id: None,
    };
    crate::in_transaction!(store, |session| -> Result<(), AppError> {
        store::tokens::delete_owned(store, session, TokenKind::Session, session_id, owner).await?;
        store::audit::record(store, session, &event).await?;
        Ok(())
    })?;
    Ok(())
}

/// A member an identity provider created for an existing login is pending
/// until that person first signs in: this is that sign-in. One audit event
/// per membership, in the transaction that activates it.
async fn activate_pending_memberships(
    state: &AppState,
    account_id: &crate::domain::AccountId,
    origin: crate::domain::RequestOrigin,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let store = state.store();
    let pending = store::members::list_for_account(store, account_id)
        .await?
        .into_iter()
        .filter(|member| member.status == MemberStatus::Pending);
    for member in pending {
        crate::in_transaction!(store, |session| -> Result<(), AppError> {
            if !store::members::activate_pending(store, session, &member.id, now).await? {
                return Ok(());
            }
            let event = crate::domain::AuditEvent {
                org_id: Some(member.org_id.clone()),
                at: now,
                actor: crate::domain::Actor::Account(account_id.clone()),
                action: "member.activated",
                target: crate::domain::Target {
                    kind: "member",
                    id: member.id.to_string(),
                },
                before: Some(serde_json::json!({ "status": "pending" })),
                after: Some(serde_json::json!({ "status": "active" })),
                origin: origin.clone(),
            };
            store::audit::record(store, session, &event).await?;
            Ok(())
        })?;
    }
    Ok(())
}
