use chrono::{DateTime, Utc};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::examples::example_time;
use super::text::Text;
use super::{ApiTags, BearerAuth};
use crate::app::mfa::MfaProof;
use crate::app::sessions::{self, NewSession, SignIn};
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

/// The password step of a sign-in with two-factor authentication.
#[derive(Debug, Object)]
#[oai(example)]
pub struct MfaChallengeResponse {
    /// Always true: send a code to `POST /auth/login/mfa` with `challenge`.
    pub mfa_required: bool,
    /// The challenge (`mst_mfa_…`): good for one sign-in, never a bearer
    /// token.
    pub challenge: String,
    pub expires_at: DateTime<Utc>,
    /// What completes it: `totp` (a code from the authenticator app) or
    /// `recovery_code`.
    pub methods: Vec<String>,
}

impl Example for MfaChallengeResponse {
    fn example() -> Self {
        MfaChallengeResponse {
            mfa_required: true,
            challenge: "mst_mfa_3f0b7c2e9d4a61588c7e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e"
                .to_owned(),
            expires_at: example_time("2025-02-05T09:35:00Z"),
            methods: vec!["totp".to_owned(), "recovery_code".to_owned()],
        }
    }
}

#[derive(ApiResponse)]
pub enum LoginAnswer {
    /// Signed in: a session token.
    #[oai(status = 200)]
    Session(Json<LoginResponse>),
    /// The password is right and the account has two-factor
    /// authentication: no session yet, a challenge for the code.
    #[oai(status = 202)]
    SecondFactorNeeded(Json<MfaChallengeResponse>),
}

/// Exactly one of `code` and `recovery_code`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct LoginMfaRequest {
    /// The `challenge` that `POST /auth/login` answered.
    #[oai(validator(max_length = 100))]
    pub challenge: Text,
    /// The six digits the authenticator app shows.
    #[oai(validator(max_length = 32))]
    pub code: Option<Text>,
    /// One of the recovery codes given at enrolment; each works once.
    #[oai(validator(max_length = 64))]
    pub recovery_code: Option<Text>,
}

impl Example for LoginMfaRequest {
    fn example() -> Self {
        LoginMfaRequest {
            challenge: MfaChallengeResponse::example().challenge.as_str().into(),
            code: Some("287082".into()),
            recovery_code: None,
        }
    }
}

#[derive(ApiResponse)]
pub enum LogoutResponse {
    /// The session has ended.
    #[oai(status = 204)]
    LoggedOut,
}

fn session_view(session: NewSession) -> LoginResponse {
    LoginResponse {
        token: session.token,
        expires_at: session.expires_at,
    }
}

#[OpenApi(tag = "ApiTags::Auth")]
impl AuthApi {
    /// Sign in with email and password
    ///
    /// Returns a session token (200). An unknown email and a wrong
    /// password get the same answer in the same time. For an account with
    /// two-factor authentication the right password answers 202 with a
    /// challenge instead, which `POST /auth/login/mfa` completes with a
    /// code within five minutes.
    #[oai(path = "/auth/login", method = "post")]
    async fn login(
        &self,
        state: poem::web::Data<&AppState>,
        req: &poem::Request,
        body: Json<LoginRequest>,
    ) -> Result<LoginAnswer, AppError> {
        let LoginRequest { email, password } = body.0;
        Ok(
            match sessions::sign_in(&state, &email, password.0, origin_of(req)).await? {
                SignIn::Session(session) => LoginAnswer::Session(Json(session_view(session))),
                SignIn::SecondFactorNeeded(challenge) => {
                    LoginAnswer::SecondFactorNeeded(Json(MfaChallengeResponse {
                        mfa_required: true,
                        challenge: challenge.challenge,
                        expires_at: challenge.expires_at,
                        methods: vec!["totp".to_owned(), "recovery_code".to_owned()],
                    }))
                }
            },
        )
    }

    /// Complete a sign-in with a second factor
    ///
    /// Sends the challenge of `POST /auth/login` with a code from the
    /// authenticator app (each code works once) or a recovery code (each
    /// works once), and returns a session token. A wrong code is 401 and
    /// leaves the challenge usable until it expires; five wrong codes in a
    /// row lock the account's second factor for 15 minutes (429).
    #[oai(path = "/auth/login/mfa", method = "post")]
    async fn login_mfa(
        &self,
        state: poem::web::Data<&AppState>,
        req: &poem::Request,
        body: Json<LoginMfaRequest>,
    ) -> Result<Json<LoginResponse>, AppError> {
        let LoginMfaRequest {
            challenge,
            code,
            recovery_code,
        } = body.0;
        let proof = MfaProof::from_fields(
            code.map(Text::into_string),
            recovery_code.map(Text::into_string),
        )?;
        let session = sessions::complete_sign_in(&state, &challenge, proof, origin_of(req)).await?;
        Ok(Json(session_view(session)))
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
