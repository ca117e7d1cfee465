//! Use cases: one function per business operation. Every face (the
//! management API, SCIM and `/Bulk`, the invite page, jobs, the CLI) parses
//! its input, authenticates, builds an [`Acting`] and calls the same use
//! case, which asks the domain, writes in one transaction with its audit
//! event, and returns a typed result. No face opens a transaction itself,
//! so a rule enforced for one face is enforced for all.

pub mod sessions;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::{Actor, AuditEvent, OrgId, RequestOrigin, Role, Target};

/// Who acts in an organization, and with what powers. Built by a face only
/// after it authenticated the caller: the API from an `OrgAccess`, SCIM
/// from its token.
#[derive(Debug, Clone)]
pub struct Acting {
    pub org_id: OrgId,
    /// Who, for the audit log.
    pub actor: Actor,
    /// The powers the policy weighs: a member's effective role; for a SCIM
    /// token, admin, or owner when an owner gave it authority over owners.
    pub role: Role,
    pub origin: RequestOrigin,
}

impl Acting {
    /// The audit event of a change this actor made in the organization.
    pub fn event(
        &self,
        at: DateTime<Utc>,
        action: &'static str,
        (kind, id): (&'static str, &str),
        before: Option<Value>,
        after: Option<Value>,
    ) -> AuditEvent {
        AuditEvent {
            org_id: Some(self.org_id.clone()),
            at,
            actor: self.actor.clone(),
            action,
            target: Target {
                kind,
                id: id.to_owned(),
            },
            before,
            after,
            origin: self.origin.clone(),
        }
    }

    /// Whether an identity provider acts (its refusals read differently).
    pub fn is_scim(&self) -> bool {
        matches!(self.actor, Actor::ScimToken(_))
    }
}
