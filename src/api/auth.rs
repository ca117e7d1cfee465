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
use crate::domain::Email;
use crate::error::AppError;
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
    /// the same answer in the same time.
    #[oai(path = "/auth/login", method = "post")]
    async fn login(
        &self,
        state: poem::web::Data<&AppState>,
        body: Json<LoginRequest>,
    ) -> Result<Json<LoginResponse>, AppError> {
        let LoginRequest { email, password } = body.0;
        let store = state.store();
        let credentials = match Email::parse(&email) {
            Ok(email) => store::accounts::find_by_email(store, None, &email).await?,
            Err(_) => None,
        };
        let hash = credentials.as_ref().and_then(|c| c.password_hash.clone());
        // argon2 is CPU-bound; keep it off the async workers.
        let verified =
            tokio::task::spawn_blocking(move || verify_password(hash.as_ref(), &password))
                .await
                .map_err(AppError::internal)?;
        let Some(credentials) = credentials.filter(|_| verified) else {
            return Err(AppError::Unauthorized(BAD_CREDENTIALS.into()));
        };
        let now = state.clock().now();
        let expires_at = now + Duration::hours(i64::from(state.settings().auth.session_ttl_hours));
        let issued = IssuedToken::generate(TokenKind::Session);
        let record = TokenRecord::new(
            &issued,
            None,
            Some(credentials.account.id),
            None,
            now,
            Some(expires_at),
        );
        if store::tokens::insert(store, None, &record).await? == Inserted::AlreadyExists {
            return Err(AppError::internal(
                "a fresh session token collided with a stored one",
            ));
        }
        Ok(Json(LoginResponse {
            token: issued.secret.into_exposed(),
            expires_at,
        }))
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
    ) -> Result<LogoutResponse, AppError> {
        let Principal::Session { session_id, .. } = &auth.0 else {
            return Err(AppError::Forbidden(
                "only session tokens can log out; delete personal tokens under /me/tokens".into(),
            ));
        };
        store::tokens::delete(state.store(), TokenKind::Session, session_id).await?;
        Ok(LogoutResponse::LoggedOut)
    }
}
