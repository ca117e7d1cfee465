//! Use cases: one function per business operation. Every face (the
//! management API, SCIM and `/Bulk`, the invite page, jobs, the CLI) parses
//! its input, authenticates, builds an [`Acting`] and calls the same use
//! case, which asks the domain, writes in one transaction with its audit
//! event, and returns a typed result. No face opens a transaction itself,
//! so a rule enforced for one face is enforced for all.

pub mod accounts;
pub mod audit;
pub mod audit_seals;
pub mod groups;
pub mod invitations;
pub mod jobs;
pub mod members;
pub mod mfa;
pub mod orgs;
pub mod projects;
pub mod retention;
pub mod sessions;
pub mod tokens;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::{
    Actor, AuditEvent, OrgId, OwnerGrantError, Permission, RequestOrigin, Role, Target,
};
use crate::error::AppError;

/// A face's precondition on the version of what a use case changes (SCIM's
/// `If-Match`), checked against the version read in the transaction.
pub type VersionCheck<'a> = &'a (dyn Fn(i64) -> Result<(), AppError> + Sync);

/// For faces without preconditions.
pub fn any_version(_: i64) -> Result<(), AppError> {
    Ok(())
}

/// The permission matrix's refusal, worded the same for every face.
pub fn ensure_allowed(role: Role, permission: Permission) -> Result<(), AppError> {
    if role.allows(permission) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "your role ({role}) does not allow this: it needs the `{}` permission",
            permission.as_str()
        )))
    }
}

/// Who acts in an organization, and with what powers. Built by a face only
/// after it authenticated the caller: the API from an `OrgAccess`, SCIM
/// from its token.
#[derive(Debug, Clone)]
pub struct Acting {
    pub org_id: OrgId,
    /// Who, for the audit log.
    pub actor: Actor,
    /// The actor's name when the face knows it (a SCIM token's).
    pub actor_label: Option<String>,
    /// The powers the policy weighs: a member's effective role; for a SCIM
    /// token, admin, or owner when an owner gave it authority over owners.
    pub role: Role,
    pub origin: RequestOrigin,
}

impl Acting {
    /// Muster itself in an organization: the worker's sweeps. It acts on
    /// the rules (an invitation past its expiry), never on a person's
    /// grant, so the policy has nothing to weigh and it holds every power;
    /// only a use case that checks its own rule is called with it.
    pub fn system(org_id: OrgId) -> Acting {
        Acting {
            org_id,
            actor: Actor::System,
            actor_label: None,
            role: Role::Owner,
            origin: RequestOrigin::default(),
        }
    }

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
            actor_label: self.actor_label.clone(),
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

    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        ensure_allowed(self.role, permission)
    }

    /// A refusal by the owner rules, saying what would allow it: for an
    /// identity provider, a token an owner creates with authority over
    /// owners.
    pub fn refused(&self, err: OwnerGrantError) -> AppError {
        if self.is_scim() {
            AppError::Forbidden(format!(
                "{err}: this SCIM token may not add or remove owners; an owner can create \
                 a SCIM token with `allow_owner_changes: true` for an identity provider that \
                 manages owners"
            ))
        } else {
            err.into()
        }
    }
}
