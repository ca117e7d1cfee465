//! Authorization as types. A handler of an organization's route first
//! builds an [`OrgAccess`] (only possible for an active member of that
//! organization: everyone else gets 404, so organizations cannot be
//! discovered), then asks it for a [`Granted`] permission. Writes that need
//! a permission take the `Granted`, which only `OrgAccess::require` makes.

use std::collections::HashMap;

use poem::Request;

use super::BearerAuth;
use crate::app::Acting;
use crate::auth::Principal;
use crate::domain::member::may_authenticate;
use crate::domain::mfa::ensure_meets_org_requirement;
use crate::domain::role::effective_role;
use crate::domain::{AccountId, Member, OrgId, Organization, Permission, RequestOrigin, Role};
use crate::error::AppError;
use crate::scim::origin_of;
use crate::state::AppState;
use crate::store;
use crate::store::groups::MappedRole;

/// The caller, acting in one organization they are an active member of.
#[derive(Debug)]
pub struct OrgAccess {
    pub principal: Principal,
    pub account_id: AccountId,
    pub org: Organization,
    pub member: Member,
    /// The highest of the member's direct role and the roles of the groups
    /// they belong to.
    pub role: Role,
    pub origin: RequestOrigin,
}

/// Proof that the caller holds `permission` in the organization.
#[derive(Debug, Clone, Copy)]
pub struct Granted<'a> {
    access: &'a OrgAccess,
    permission: Permission,
}

pub fn org_not_found() -> AppError {
    AppError::NotFound("organization")
}

impl OrgAccess {
    /// Resolves `{org}` for the authenticated caller. A caller who is not a
    /// member, a personal token of another organization and a malformed id
    /// all get the same 404. A member who may not act (inactive, or
    /// suspended) gets 403: they know the organization already. So does a
    /// member without two-factor authentication in an organization that
    /// requires it, with a problem (`mfa-required`) that says how to fix it.
    pub async fn load(
        state: &AppState,
        auth: &BearerAuth,
        req: &Request,
        org: &str,
    ) -> Result<OrgAccess, AppError> {
        Self::load_for(state, &auth.0, req, org).await
    }

    /// [`OrgAccess::load`] for a principal authenticated another way: the
    /// console's session cookie gets exactly the API's checks.
    pub async fn load_for(
        state: &AppState,
        principal: &Principal,
        req: &Request,
        org: &str,
    ) -> Result<OrgAccess, AppError> {
        let org_id = OrgId::parse(org).map_err(|_| org_not_found())?;
        let account_id = caller_account(principal)?.clone();
        if let Principal::PersonalToken {
            org_id: token_org, ..
        } = principal
            && token_org != &org_id
        {
            return Err(org_not_found());
        }
        let store = state.store();
        let member = store::members::find_by_account(store, None, &org_id, &account_id)
            .await?
            .ok_or_else(org_not_found)?;
        let status = member.effective_status(state.clock().now());
        if !may_authenticate(status) {
            return Err(AppError::Forbidden(format!(
                "your membership in this organization is {status}; an admin can reactivate it"
            )));
        }
        let org = store::orgs::get(store, None, &org_id)
            .await?
            .ok_or_else(org_not_found)?;
        // Sessions and personal tokens alike: a token must not outlast
        // the second factor its organization requires of its person.
        if org.settings.mfa_required {
            let has_mfa = store::accounts::has_mfa(store, None, &account_id).await?;
            ensure_meets_org_requirement(true, has_mfa)?;
        }
        let role = role_of(state, &member).await?;
        crate::http::log_org(&org_id);
        Ok(OrgAccess {
            principal: principal.clone(),
            account_id,
            org,
            member,
            role,
            origin: origin_of(req),
        })
    }

    pub fn require(&self, permission: Permission) -> Result<Granted<'_>, AppError> {
        crate::app::ensure_allowed(self.role, permission)?;
        Ok(Granted {
            access: self,
            permission,
        })
    }

    /// The caller as use cases take it.
    pub fn acting(&self) -> Acting {
        Acting {
            org_id: self.org.id.clone(),
            actor: self.principal.actor(),
            actor_label: None,
            role: self.role,
            origin: self.origin.clone(),
        }
    }

    pub fn org_id(&self) -> &OrgId {
        &self.org.id
    }
}

impl std::ops::Deref for Granted<'_> {
    type Target = OrgAccess;

    fn deref(&self) -> &OrgAccess {
        self.access
    }
}

impl Granted<'_> {
    pub fn permission(&self) -> Permission {
        self.permission
    }
}

/// The account behind a session or personal token (SCIM tokens never get
/// past the bearer check of the management API).
pub fn caller_account(principal: &Principal) -> Result<&AccountId, AppError> {
    principal
        .account_id()
        .ok_or_else(|| AppError::Forbidden("SCIM tokens are not accounts".into()))
}

/// The member's effective role: direct, raised by their groups' mappings.
pub async fn role_of(state: &AppState, member: &Member) -> Result<Role, AppError> {
    let mapped = store::groups::mapped_roles_of(state.store(), &[member.id.as_str()]).await?;
    Ok(role_with(member, &mapped))
}

/// The member's effective role, given the group mappings read for it
/// (and perhaps others) with `store::groups::mapped_roles_of`.
pub fn role_with(member: &Member, mapped: &HashMap<String, Vec<MappedRole>>) -> Role {
    let group_roles = mapped.get(member.id.as_str()).into_iter().flatten();
    effective_role(member.role, group_roles.map(|group| group.role))
}
