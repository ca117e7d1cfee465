//! `/me/mfa/…`: a person turns two-factor authentication on and off for
//! their own account, and replaces its recovery codes. Session only: a personal token acts inside one
//! organization and must not change how its account signs in.

use chrono::{DateTime, Utc};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::examples::example_time;
use super::me::account_acting;
use super::text::Text;
use super::{ApiTags, SessionAuth};
use crate::app::mfa::{self, MfaProof};
use crate::error::AppError;
use crate::state::AppState;

pub struct MfaApi;

#[derive(Debug, Object)]
#[oai(example)]
pub struct TotpEnrolmentView {
    /// The secret in base32, for typing into an authenticator app. Shown
    /// only here.
    pub secret: String,
    /// The same as an `otpauth://` URI, which the QR code holds.
    pub otpauth_uri: String,
    /// The URI as a QR code: an SVG document to show to the person.
    pub qr_svg: String,
    /// Confirm with a code before this, or start again.
    pub confirm_before: DateTime<Utc>,
}

impl Example for TotpEnrolmentView {
    fn example() -> Self {
        TotpEnrolmentView {
            secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".to_owned(),
            otpauth_uri: "otpauth://totp/Muster%3Agrace%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Muster&algorithm=SHA1&digits=6&period=30".to_owned(),
            qr_svg: "<?xml version=\"1.0\" standalone=\"yes\"?><svg xmlns=\"http://www.w3.org/2000/svg\" …</svg>".to_owned(),
            confirm_before: example_time("2025-02-05T09:45:00Z"),
        }
    }
}

#[derive(ApiResponse)]
pub enum EnrolmentStarted {
    /// The enrolment waits for its first code; sign-in is unchanged until
    /// it is confirmed.
    #[oai(status = 201)]
    Started(Json<TotpEnrolmentView>),
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct ConfirmTotpRequest {
    /// A code the authenticator app shows for the new secret.
    #[oai(validator(max_length = 32))]
    pub code: Text,
    /// The account's password: a stolen session alone cannot put a second
    /// factor on the account.
    #[oai(validator(max_length = 1024))]
    pub password: Text,
}

impl Example for ConfirmTotpRequest {
    fn example() -> Self {
        ConfirmTotpRequest {
            code: "287082".into(),
            password: "correct horse battery staple".into(),
        }
    }
}

#[derive(Debug, Object)]
#[oai(example)]
pub struct RecoveryCodesView {
    /// Ten codes, each good once in place of a code from the app. Shown
    /// only here: keep them somewhere safe.
    pub recovery_codes: Vec<String>,
}

impl Example for RecoveryCodesView {
    fn example() -> Self {
        RecoveryCodesView {
            recovery_codes: vec!["7kq2-m9xd-a4tn".to_owned(), "p3hw-2zc8-vr6e".to_owned()],
        }
    }
}

/// Exactly one of `code` and `recovery_code`.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct MfaProofRequest {
    /// A code from the authenticator app.
    #[oai(validator(max_length = 32))]
    pub code: Option<Text>,
    /// One of the recovery codes.
    #[oai(validator(max_length = 64))]
    pub recovery_code: Option<Text>,
}

impl Example for MfaProofRequest {
    fn example() -> Self {
        MfaProofRequest {
            code: Some("287082".into()),
            recovery_code: None,
        }
    }
}

impl MfaProofRequest {
    pub fn proof(self) -> Result<Option<MfaProof>, AppError> {
        Ok(MfaProof::from_fields(
            self.code.map(Text::into_string),
            self.recovery_code.map(Text::into_string),
        )?)
    }
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct RegenerateRecoveryCodesRequest {
    /// A code the authenticator app shows now (not a recovery code).
    #[oai(validator(max_length = 32))]
    pub code: Text,
    /// The account's password: a stolen session alone cannot take the
    /// account's way back in.
    #[oai(validator(max_length = 1024))]
    pub password: Text,
}

impl Example for RegenerateRecoveryCodesRequest {
    fn example() -> Self {
        RegenerateRecoveryCodesRequest {
            code: "287082".into(),
            password: "correct horse battery staple".into(),
        }
    }
}

#[derive(ApiResponse)]
pub enum MfaDisabled {
    /// Two-factor authentication is off; the account's other sessions
    /// have ended.
    #[oai(status = 204)]
    Disabled,
}

#[OpenApi(tag = "ApiTags::Me")]
impl MfaApi {
    /// Start enrolling in two-factor authentication
    ///
    /// Answers a new TOTP secret (as text, `otpauth://` URI and QR code),
    /// shown only here. Nothing changes at sign-in until
    /// `POST /me/mfa/totp/confirm` proves the app holds it; starting again
    /// replaces an unconfirmed secret. 409 when it is on already; 501 when
    /// the server has no `auth.mfa_key`.
    #[oai(path = "/me/mfa/totp", method = "post")]
    async fn start(
        &self,
        state: poem::web::Data<&AppState>,
        auth: SessionAuth,
        req: &poem::Request,
    ) -> Result<EnrolmentStarted, AppError> {
        let now = state.clock().now();
        let enrolment = mfa::start_enrolment(
            state.store(),
            state.mfa_key(),
            now,
            &account_acting(&auth, req),
        )
        .await?;
        Ok(EnrolmentStarted::Started(Json(TotpEnrolmentView {
            secret: enrolment.secret,
            otpauth_uri: enrolment.otpauth_uri,
            qr_svg: enrolment.qr_svg,
            confirm_before: now + crate::domain::mfa::ENROLMENT_TTL,
        })))
    }

    /// Turn two-factor authentication on
    ///
    /// Confirms the enrolment with a code from the app and the account's
    /// password, and answers ten single-use recovery codes, shown only
    /// here. From now on signing in asks for a code. The account's other
    /// sessions end.
    #[oai(path = "/me/mfa/totp/confirm", method = "post")]
    async fn confirm(
        &self,
        state: poem::web::Data<&AppState>,
        auth: SessionAuth,
        req: &poem::Request,
        body: Json<ConfirmTotpRequest>,
    ) -> Result<Json<RecoveryCodesView>, AppError> {
        let ConfirmTotpRequest { code, password } = body.0;
        let recovery_codes = mfa::confirm(
            state.store(),
            state.0,
            state.clock().now(),
            &account_acting(&auth, req),
            auth.session_id(),
            mfa::Confirmation {
                code: code.into_string(),
                password: password.into_string(),
            },
        )
        .await?;
        Ok(Json(RecoveryCodesView { recovery_codes }))
    }

    /// Replace the recovery codes
    ///
    /// Needs the account's password and a code from the app (a recovery
    /// code is not enough). Answers ten new recovery codes, shown only
    /// here; every earlier one stops working. 409 when two-factor
    /// authentication is off.
    #[oai(path = "/me/mfa/recovery-codes", method = "post")]
    async fn regenerate_recovery_codes(
        &self,
        state: poem::web::Data<&AppState>,
        auth: SessionAuth,
        req: &poem::Request,
        body: Json<RegenerateRecoveryCodesRequest>,
    ) -> Result<Json<RecoveryCodesView>, AppError> {
        let RegenerateRecoveryCodesRequest { code, password } = body.0;
        let recovery_codes = mfa::regenerate_recovery_codes(
            state.store(),
            state.0,
            state.clock().now(),
            &account_acting(&auth, req),
            mfa::Regeneration {
                code: code.into_string(),
                password: password.into_string(),
            },
        )
        .await?;
        Ok(Json(RecoveryCodesView { recovery_codes }))
    }

    /// Turn two-factor authentication off
    ///
    /// Needs a code from the app or a recovery code. The account's other
    /// sessions end. An organization that requires two-factor
    /// authentication refuses the account until it is on again.
    #[oai(path = "/me/mfa/totp", method = "delete")]
    async fn disable(
        &self,
        state: poem::web::Data<&AppState>,
        auth: SessionAuth,
        req: &poem::Request,
        body: Json<MfaProofRequest>,
    ) -> Result<MfaDisabled, AppError> {
        mfa::disable(
            state.store(),
            state.mfa_key(),
            state.clock().now(),
            &account_acting(&auth, req),
            auth.session_id(),
            body.0.proof()?,
        )
        .await?;
        Ok(MfaDisabled::Disabled)
    }
}
