//! The edge: every error a request can meet becomes an `AppError` here, and
//! an `AppError` becomes RFC 9457 problem JSON on the management API or an
//! RFC 7644 error on SCIM routes. Domain errors are mapped to statuses in
//! this file and nowhere else.

use std::error::Error as StdError;

use poem::http::StatusCode;
use poem::http::header::RETRY_AFTER;
use poem::{IntoResponse, Response};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Object};
use serde::Serialize;

use crate::app::orgs::FoundingError;
use crate::auth::AuthError;
use crate::domain::account::AccountDeletionError;
use crate::domain::invitation::AcceptError;
use crate::domain::mfa::MfaError;
use crate::domain::policy::{MayNotLeave, MemberChangeError};
use crate::domain::role::MissingProjectRight;
use crate::domain::{LastOwner, OwnerGrantError, StatusTransitionError};
pub use crate::protocol::{ScimError, ScimType};

pub const PROBLEM_JSON: &str = "application/problem+json";
pub const SCIM_JSON: &str = "application/scim+json";
const SCIM_ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Malformed input that no field can be blamed for (bad JSON, a bad
    /// query string).
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed input with an invalid value, naming the field.
    #[error("{field}: {detail}")]
    Invalid { field: String, detail: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// A refusal with a name clients can match on and act upon (a
    /// second factor the organization requires, say).
    #[error("{detail}")]
    Denied {
        problem: &'static str,
        detail: String,
    },
    /// `what` names the kind of thing, e.g. "organization".
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// `problem` is the short name that becomes the problem `type`.
    #[error("{detail}")]
    Conflict {
        problem: &'static str,
        detail: String,
    },
    /// A unique name or id another resource holds: a problem named
    /// `problem` on the API, `uniqueness` on SCIM.
    #[error("{detail}")]
    Taken {
        problem: &'static str,
        detail: String,
    },
    /// Something that existed and is gone for good (an expired, revoked or
    /// used invitation).
    #[error("{detail}")]
    Gone {
        problem: &'static str,
        detail: String,
    },
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many requests; retry in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("{0}")]
    NotImplemented(String),
    /// An `If-Match` precondition that does not hold.
    #[error("{0}")]
    PreconditionFailed(String),
    /// A SCIM error with its `scimType` (RFC 7644 §3.12).
    #[error("{detail}")]
    Scim {
        status: StatusCode,
        scim_type: ScimType,
        detail: String,
    },
    #[error("{0}")]
    Unavailable(String),
    /// Shedding load the server cannot take now (argon2 permits all in
    /// use): 503 with `Retry-After`.
    #[error("the server is busy; retry in {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
    /// A database error: 503 when the database is unreachable or the
    /// resource is contended, otherwise an internal error. Kept whole so
    /// that transactions can see whether it is worth retrying.
    #[error("database error")]
    Store(#[source] mongodb::error::Error),
    /// Never shown: logged with the request id, answered generically.
    #[error("internal error")]
    Internal(#[source] Box<dyn StdError + Send + Sync>),
}

impl AppError {
    pub fn internal(err: impl Into<Box<dyn StdError + Send + Sync>>) -> AppError {
        AppError::Internal(err.into())
    }

    pub fn invalid(field: impl Into<String>, detail: impl ToString) -> AppError {
        AppError::Invalid {
            field: field.into(),
            detail: detail.to_string(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::Denied { .. } => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Conflict { .. } | AppError::Taken { .. } => StatusCode::CONFLICT,
            AppError::Gone { .. } => StatusCode::GONE,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            AppError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            AppError::Scim { status, .. } => *status,
            AppError::Unavailable(_) | AppError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Store(err) if store_is_unavailable(err) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Store(_) | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The short name of the problem, stable for clients to match on.
    fn problem_name(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad-request",
            AppError::Invalid { .. } => "invalid-value",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not-found",
            AppError::MethodNotAllowed(_) => "method-not-allowed",
            AppError::Conflict { problem, .. } | AppError::Taken { problem, .. } => problem,
            AppError::Denied { problem, .. } => problem,
            AppError::Gone { problem, .. } => problem,
            AppError::PayloadTooLarge => "payload-too-large",
            AppError::UnsupportedMediaType(_) => "unsupported-media-type",
            AppError::TooManyRequests { .. } => "rate-limited",
            AppError::NotImplemented(_) => "not-implemented",
            AppError::PreconditionFailed(_) => "precondition-failed",
            AppError::Scim { scim_type, .. } => scim_type.problem_name(),
            AppError::Unavailable(_) => "unavailable",
            AppError::Busy { .. } => "busy",
            AppError::Store(err) if store_is_unavailable(err) => "unavailable",
            AppError::Store(_) | AppError::Internal(_) => "internal",
        }
    }

    fn detail(&self) -> String {
        match self {
            AppError::Store(err) if store_is_unavailable(err) => {
                "the database is unavailable or busy; try again shortly".to_owned()
            }
            AppError::Store(_) | AppError::Internal(_) => {
                "an internal error occurred; quote the X-Request-Id response header when reporting it"
                    .to_owned()
            }
            AppError::Invalid { detail, .. } => detail.clone(),
            other => other.to_string(),
        }
    }

    /// Logs what the client is not told: an internal or database error.
    pub(crate) fn log_if_internal(&self) {
        match self {
            // Runs inside the request's span, so the line carries its id.
            AppError::Internal(source) => {
                tracing::error!(error = %source, debug = ?source, "internal error")
            }
            AppError::Store(err) if store_is_unavailable(err) => {
                tracing::warn!(error = %err, "database unavailable or busy")
            }
            AppError::Store(err) => tracing::error!(error = %err, debug = ?err, "database error"),
            _ => {}
        }
    }

    pub fn problem(&self) -> Problem {
        let status = self.status();
        Problem {
            type_: format!("urn:muster:problem:{}", self.problem_name()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.detail(),
            field: match self {
                AppError::Invalid { field, .. } => Some(field.clone()),
                _ => None,
            },
        }
    }

    /// The problem JSON response of the management API.
    pub fn problem_response(&self) -> Response {
        self.log_if_internal();
        let body = self.problem().to_json_string();
        self.with_headers(Response::builder().status(self.status()))
            .content_type(PROBLEM_JSON)
            .body(body)
    }

    /// The RFC 7644 §3.12 error response of the SCIM surface.
    pub fn scim_response(&self) -> Response {
        self.log_if_internal();
        let body = ScimErrorBody {
            schemas: [SCIM_ERROR_SCHEMA],
            status: self.status().as_u16().to_string(),
            scim_type: match self {
                AppError::Scim { scim_type, .. } => Some(scim_type.as_str()),
                AppError::Taken { .. } => Some(ScimType::Uniqueness.as_str()),
                _ => None,
            },
            detail: self.detail(),
        };
        let body = serde_json::to_string(&body).unwrap_or_default();
        self.with_headers(Response::builder().status(self.status()))
            .content_type(SCIM_JSON)
            .body(body)
    }

    fn with_headers(&self, builder: poem::ResponseBuilder) -> poem::ResponseBuilder {
        match (self, self.retry_after_secs()) {
            (_, Some(secs)) => builder.header(RETRY_AFTER, secs.to_string()),
            (AppError::Unauthorized(_), _) => builder.header("WWW-Authenticate", "Bearer"),
            _ => builder,
        }
    }

    /// How long a client should wait before trying again, when waiting
    /// helps: a quota, or a database that is away or busy (a client that
    /// waits a moment will likely succeed).
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            AppError::TooManyRequests { retry_after_secs }
            | AppError::Busy { retry_after_secs } => Some(*retry_after_secs),
            AppError::Unavailable(_) => Some(1),
            AppError::Store(err) if store_is_unavailable(err) => Some(1),
            _ => None,
        }
    }

    /// Classifies an error raised by poem or poem-openapi (a body that does
    /// not parse, a missing header, an unknown route). Their messages name
    /// the offending part and carry no internals, so 4xx keep them.
    pub fn from_poem(err: poem::Error) -> AppError {
        if err.is::<AppError>() {
            return match err.downcast::<AppError>() {
                Ok(app) => app,
                Err(err) => AppError::internal(err.to_string()),
            };
        }
        let status = err.status();
        let message = err.to_string();
        match status {
            StatusCode::NOT_FOUND => AppError::NotFound("resource"),
            StatusCode::METHOD_NOT_ALLOWED => {
                AppError::MethodNotAllowed("this method is not allowed on this resource".into())
            }
            StatusCode::UNAUTHORIZED => AppError::Unauthorized(AuthError::Missing.to_string()),
            StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::UnsupportedMediaType(message),
            status if status.is_client_error() => AppError::BadRequest(message),
            _ => AppError::internal(message),
        }
    }
}

impl poem::error::ResponseError for AppError {
    fn status(&self) -> StatusCode {
        AppError::status(self)
    }

    fn as_response(&self) -> Response {
        self.problem_response()
    }
}

/// How the edge answers a `scimType`: the status RFC 7644 pairs with it, and
/// its problem name on the management API.
trait ScimTypeAtTheEdge {
    fn status(self) -> StatusCode;
    fn problem_name(self) -> &'static str;
}

impl ScimTypeAtTheEdge for ScimType {
    fn status(self) -> StatusCode {
        match self {
            ScimType::Uniqueness => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn problem_name(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "scim-invalid-filter",
            ScimType::TooMany => "scim-too-many",
            ScimType::Uniqueness => "scim-uniqueness",
            ScimType::Mutability => "scim-mutability",
            ScimType::InvalidSyntax => "scim-invalid-syntax",
            ScimType::InvalidPath => "scim-invalid-path",
            ScimType::NoTarget => "scim-no-target",
            ScimType::InvalidValue => "scim-invalid-value",
            ScimType::InvalidVers => "scim-invalid-vers",
            ScimType::Sensitive => "scim-sensitive",
        }
    }
}

impl From<MfaError> for AppError {
    fn from(err: MfaError) -> Self {
        let detail = err.to_string();
        let conflict = |problem| AppError::Conflict {
            problem,
            detail: detail.clone(),
        };
        match err {
            MfaError::NotConfigured => AppError::NotImplemented(detail),
            MfaError::AlreadyEnabled => conflict("mfa-already-enabled"),
            MfaError::NoEnrolment => conflict("mfa-no-enrolment"),
            MfaError::NotEnabled => conflict("mfa-not-enabled"),
            MfaError::EnableItYourselfFirst => conflict("mfa-enable-yours-first"),
            MfaError::WrongCode => AppError::Denied {
                problem: "mfa-code-wrong",
                detail,
            },
            MfaError::RequiredByOrganization => AppError::Denied {
                problem: "mfa-required",
                detail,
            },
            MfaError::CodeRequired => AppError::invalid("code", detail),
            MfaError::TwoProofs => AppError::invalid("recovery_code", detail),
            MfaError::Locked { retry_after_secs } => AppError::TooManyRequests { retry_after_secs },
        }
    }
}

impl From<ScimError> for AppError {
    fn from(err: ScimError) -> Self {
        AppError::scim(err.scim_type, err.detail)
    }
}

impl AppError {
    pub fn scim(scim_type: ScimType, detail: impl Into<String>) -> AppError {
        AppError::Scim {
            status: scim_type.status(),
            scim_type,
            detail: detail.into(),
        }
    }
}

/// RFC 9457 problem details.
#[derive(Debug, Clone, Object)]
pub struct Problem {
    /// A URN naming the kind of problem, e.g. `urn:muster:problem:last-owner`.
    #[oai(rename = "type")]
    pub type_: String,
    /// The HTTP reason phrase of the status.
    pub title: String,
    pub status: u16,
    /// What went wrong and, where there is one, how to fix it.
    pub detail: String,
    /// The request field at fault, for invalid values.
    #[oai(skip_serializing_if_is_none)]
    pub field: Option<String>,
}

#[derive(Serialize)]
struct ScimErrorBody {
    schemas: [&'static str; 1],
    status: String,
    #[serde(rename = "scimType", skip_serializing_if = "Option::is_none")]
    scim_type: Option<&'static str>,
    detail: String,
}

/// The error statuses every management route may answer, documented once.
const DOCUMENTED_ERRORS: [(u16, &str); 12] = [
    (400, "The request is malformed."),
    (401, "No valid bearer token."),
    (403, "The caller may not do this."),
    (404, "No such resource, or not visible to the caller."),
    (
        409,
        "The change conflicts with the current state (e.g. the last owner).",
    ),
    (
        410,
        "Gone for good: an expired, revoked or used invitation.",
    ),
    (413, "The request body is too large."),
    (
        415,
        "The body is not JSON (send `Content-Type: application/json`).",
    ),
    (422, "A field has an invalid value; `field` names it."),
    (429, "Rate limited; see the Retry-After header."),
    (500, "Internal error; quote the X-Request-Id header."),
    (503, "The database is unavailable or busy; retry shortly."),
];

impl ApiResponse for AppError {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: DOCUMENTED_ERRORS
                .iter()
                .map(|(status, description)| MetaResponse {
                    description,
                    status: Some(*status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: PROBLEM_JSON,
                        schema: <Problem as poem_openapi::types::Type>::schema_ref(),
                    }],
                    headers: vec![],
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        <Problem as poem_openapi::types::Type>::register(registry);
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.problem_response()
    }
}

impl From<mongodb::error::Error> for AppError {
    fn from(err: mongodb::error::Error) -> Self {
        AppError::Store(err)
    }
}

/// Unreachable (no server selected) or contended past the retry budget:
/// worth retrying later, not a bug.
fn store_is_unavailable(err: &mongodb::error::Error) -> bool {
    crate::store::is_unreachable(err)
        || err.contains_label(mongodb::error::TRANSIENT_TRANSACTION_ERROR)
}

impl crate::store::TxError for AppError {
    fn as_mongo(&self) -> Option<&mongodb::error::Error> {
        match self {
            AppError::Store(err) => Some(err),
            _ => None,
        }
    }
}

impl From<crate::auth::password::HashingError> for AppError {
    fn from(err: crate::auth::password::HashingError) -> Self {
        use crate::auth::password::HashingError;
        match err {
            // A permit frees within tens of milliseconds; a second is the
            // shortest wait the header can say.
            HashingError::Busy => AppError::Busy {
                retry_after_secs: 1,
            },
            HashingError::Failed(join) => AppError::internal(join),
        }
    }
}

impl From<crate::auth::throttle::Locked> for AppError {
    fn from(locked: crate::auth::throttle::Locked) -> Self {
        // The plain rate-limit answer: a locked account must look like any
        // other refusal, known email or not.
        AppError::TooManyRequests {
            retry_after_secs: locked.retry_after_secs,
        }
    }
}

impl From<AuthError> for AppError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Store(err) => err.into(),
            other => AppError::Unauthorized(other.to_string()),
        }
    }
}

impl From<crate::domain::audit::AuditFilterError> for AppError {
    fn from(err: crate::domain::audit::AuditFilterError) -> Self {
        use crate::domain::audit::AuditFilterError;
        let field = match err {
            AuditFilterError::UnknownAction(_) => "action",
            AuditFilterError::ReversedRange => "since",
        };
        AppError::invalid(field, err)
    }
}

impl From<LastOwner> for AppError {
    fn from(err: LastOwner) -> Self {
        AppError::Conflict {
            problem: "last-owner",
            detail: err.to_string(),
        }
    }
}

impl From<AccountDeletionError> for AppError {
    fn from(err: AccountDeletionError) -> Self {
        AppError::Conflict {
            problem: "last-owner",
            detail: err.to_string(),
        }
    }
}

impl From<OwnerGrantError> for AppError {
    fn from(err: OwnerGrantError) -> Self {
        AppError::Forbidden(err.to_string())
    }
}

impl From<MissingProjectRight> for AppError {
    fn from(err: MissingProjectRight) -> Self {
        AppError::Forbidden(err.to_string())
    }
}

impl From<MayNotLeave> for AppError {
    fn from(err: MayNotLeave) -> Self {
        AppError::Forbidden(err.to_string())
    }
}

impl From<FoundingError> for AppError {
    fn from(err: FoundingError) -> Self {
        match err {
            FoundingError::NameTaken { .. } => AppError::Conflict {
                problem: "organization-name-taken",
                detail: "an organization with this name already exists; choose another name".into(),
            },
            FoundingError::Concurrent => AppError::internal(err),
            FoundingError::Store(err) => err.into(),
        }
    }
}

impl From<AcceptError> for AppError {
    fn from(err: AcceptError) -> Self {
        AppError::Gone {
            problem: match err {
                AcceptError::InvitationExpired => "invitation-expired",
                AcceptError::InvitationRevoked => "invitation-revoked",
                AcceptError::InvitationUsed => "invitation-used",
                AcceptError::OrganizationDeleted => "organization-deleted",
            },
            detail: err.to_string(),
        }
    }
}

impl From<MemberChangeError> for AppError {
    fn from(err: MemberChangeError) -> Self {
        match err {
            MemberChangeError::OwnerGrant(err) => err.into(),
            MemberChangeError::Transition(err) => err.into(),
            MemberChangeError::NotPermitted => AppError::Forbidden(err.to_string()),
            MemberChangeError::UntilWithoutSuspension | MemberChangeError::UntilInThePast => {
                AppError::invalid("suspended_until", err)
            }
        }
    }
}

impl From<StatusTransitionError> for AppError {
    fn from(err: StatusTransitionError) -> Self {
        AppError::Conflict {
            problem: "invalid-status-transition",
            detail: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_errors_map_to_their_statuses() {
        assert_eq!(AppError::from(LastOwner).status(), StatusCode::CONFLICT);
        assert_eq!(
            AppError::from(OwnerGrantError::OnlyOwnerMayGrantOwner).status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(AppError::from(MayNotLeave).status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn internal_errors_do_not_leak() {
        let err = AppError::internal("connection string mongodb://user:secret@db");
        let problem = err.problem();
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("secret"));
    }

    #[test]
    fn problems_name_their_type_and_field() {
        let problem = AppError::invalid("email", "`x` is not a valid email address").problem();
        assert_eq!(problem.type_, "urn:muster:problem:invalid-value");
        assert_eq!(problem.status, 422);
        assert_eq!(problem.field.as_deref(), Some("email"));
    }

    #[test]
    fn a_wrapped_app_error_survives_a_trip_through_poem() {
        let err: poem::Error = AppError::from(LastOwner).into();
        let back = AppError::from_poem(err);
        assert_eq!(back.problem().type_, "urn:muster:problem:last-owner");
    }
}
