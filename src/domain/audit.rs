//! Audit events: who did what to what, with the state before and after.

use chrono::{DateTime, Utc};

use super::ids::{AccountId, OrgId, TokenId};

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in account (session).
    Account(AccountId),
    /// An account acting through one of its personal API tokens.
    ApiToken {
        account_id: AccountId,
        token_id: TokenId,
    },
    /// An identity provider through a SCIM token.
    ScimToken(TokenId),
    /// Muster itself: the CLI, the worker, expiry sweeps.
    System,
}

/// What was acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: &'static str,
    pub id: String,
}

/// Where the request came from, for events written by requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestOrigin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub org_id: OrgId,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    /// `subject.verb`, e.g. `member.role_changed`.
    pub action: &'static str,
    pub target: Target,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub origin: RequestOrigin,
}
