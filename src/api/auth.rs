use chrono::{DateTime, Utc};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::examples::example_time;
use super::text::Text;
use super::{ApiTags, BearerAuth};
use crate::app::sessions;
// The invitation page starts and ends sessions too.
use crate::app::sessions::end_session;
use crate::auth::Principal;
use crate::error::AppError;
use crate::scim::origin_of;
use crate::state::AppState;

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
        req: &poem::Request,
        body: Json<LoginRequest>,
    ) -> Result<Json<LoginResponse>, AppError> {
        let LoginRequest { email, password } = body.0;
        let session = sessions::sign_in(&state, &email, password.0, origin_of(req)).await?;
        Ok(Json(LoginResponse {
            token: session.token,
            expires_at: session.expires_at,
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
