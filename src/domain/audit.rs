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
    /// The organization the change happened in; `None` for a change to an
    /// account itself (its sign-ins, its name or password), which belongs
    /// to no organization.
    pub org_id: Option<OrgId>,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    /// How the actor was known when it acted (a SCIM token's name, an
    /// account's email), where the writer knew it: the log stays readable
    /// after the token is deleted or the email changes.
    pub actor_label: Option<String>,
    /// `subject.verb`, e.g. `member.role_changed`.
    pub action: &'static str,
    pub target: Target,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub origin: RequestOrigin,
}

impl AuditEvent {
    /// An event about an account itself, outside any organization.
    pub fn of_account(
        actor: Actor,
        account_id: &AccountId,
        at: DateTime<Utc>,
        action: &'static str,
        after: Option<serde_json::Value>,
        origin: RequestOrigin,
    ) -> AuditEvent {
        AuditEvent {
            org_id: None,
            at,
            actor,
            actor_label: None,
            action,
            target: Target {
                kind: "account",
                id: account_id.to_string(),
            },
            before: None,
            after,
            origin,
        }
    }

    /// This event, with the name its actor went by.
    pub fn labelled(mut self, label: impl Into<String>) -> AuditEvent {
        self.actor_label = Some(label.into());
        self
    }
}
