//! Who may do what to whom. Each rule is one function; every path that can
//! break a rule (API, SCIM, group mappings, bulk, leave) calls it inside the
//! transaction of the write it guards.

use super::member::MemberStatus;
use super::role::Role;

/// A member's role and status, before or after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub role: Role,
    pub status: MemberStatus,
}

impl Standing {
    pub fn is_active_owner(self) -> bool {
        self.role == Role::Owner && self.status == MemberStatus::Active
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "this member is the organization's last active owner; promote another member to owner first"
)]
pub struct LastOwner;

/// The last-owner rule: an organization always keeps an active owner.
/// `after` is `None` when the member is removed (or leaves);
/// `active_owners` counts the organization's active owners before the
/// change, read in the same transaction.
pub fn ensure_an_owner_remains(
    before: Standing,
    after: Option<Standing>,
    active_owners: u64,
) -> Result<(), LastOwner> {
    if loses_an_owner(before, after) && active_owners <= 1 {
        Err(LastOwner)
    } else {
        Ok(())
    }
}

/// Whether a change takes an active owner away; only then does the
/// last-owner rule need the count.
pub fn loses_an_owner(before: Standing, after: Option<Standing>) -> bool {
    before.is_active_owner() && !after.is_some_and(Standing::is_active_owner)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OwnerGrantError {
    #[error("only an owner may grant the owner role")]
    OnlyOwnerMayGrantOwner,
    #[error("only an owner may change or remove an owner")]
    OnlyOwnerMayChangeOwner,
}

/// The owner-grant rule: only an owner grants the owner role, or changes or
/// removes someone who holds it. `current` is `None` for a new member
/// (invitation, SCIM create) and `new` is `None` for a removal. Applies to
/// group role mappings too: mapping a group to owner grants owner.
pub fn ensure_may_assign_role(
    actor: Role,
    current: Option<Role>,
    new: Option<Role>,
) -> Result<(), OwnerGrantError> {
    if actor == Role::Owner || current == new {
        return Ok(());
    }
    if current == Some(Role::Owner) {
        return Err(OwnerGrantError::OnlyOwnerMayChangeOwner);
    }
    if new == Some(Role::Owner) {
        return Err(OwnerGrantError::OnlyOwnerMayGrantOwner);
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "only owners and admins may leave an organization on their own; ask an admin to remove you"
)]
pub struct MayNotLeave;

/// Only owners and admins may leave on their own (the last-owner rule
/// applies on top).
pub fn ensure_may_leave(role: Role) -> Result<(), MayNotLeave> {
    if matches!(role, Role::Owner | Role::Admin) {
        Ok(())
    } else {
        Err(MayNotLeave)
    }
}

#[cfg(test)]
mod tests {
    use super::MemberStatus::*;
    use super::Role::*;
    use super::*;

    fn standing(role: Role, status: MemberStatus) -> Standing {
        Standing { role, status }
    }

    #[test]
    fn the_last_active_owner_cannot_be_downgraded_removed_or_deactivated() {
        let owner = standing(Owner, Active);
        for after in [
            Some(standing(Admin, Active)),
            Some(standing(Owner, Inactive)),
            Some(standing(Owner, Suspended)),
            None,
        ] {
            assert_eq!(
                ensure_an_owner_remains(owner, after, 1),
                Err(LastOwner),
                "{after:?}"
            );
            assert_eq!(
                ensure_an_owner_remains(owner, after, 2),
                Ok(()),
                "{after:?}"
            );
        }
    }

    #[test]
    fn changes_that_keep_the_owner_are_fine() {
        let owner = standing(Owner, Active);
        assert_eq!(ensure_an_owner_remains(owner, Some(owner), 1), Ok(()));
    }

    #[test]
    fn members_who_are_not_active_owners_are_not_guarded() {
        for before in [
            standing(Owner, Inactive),
            standing(Admin, Active),
            standing(Viewer, Pending),
        ] {
            assert_eq!(ensure_an_owner_remains(before, None, 0), Ok(()));
            assert_eq!(ensure_an_owner_remains(before, None, 1), Ok(()));
        }
    }

    #[test]
    fn only_owners_grant_owner() {
        for actor in [Admin, Contributor, Viewer] {
            assert_eq!(
                ensure_may_assign_role(actor, None, Some(Owner)),
                Err(OwnerGrantError::OnlyOwnerMayGrantOwner)
            );
            assert_eq!(
                ensure_may_assign_role(actor, Some(Viewer), Some(Owner)),
                Err(OwnerGrantError::OnlyOwnerMayGrantOwner)
            );
        }
        assert_eq!(
            ensure_may_assign_role(Owner, Some(Admin), Some(Owner)),
            Ok(())
        );
        assert_eq!(ensure_may_assign_role(Owner, None, Some(Owner)), Ok(()));
    }

    #[test]
    fn only_owners_change_or_remove_owners() {
        assert_eq!(
            ensure_may_assign_role(Admin, Some(Owner), Some(Admin)),
            Err(OwnerGrantError::OnlyOwnerMayChangeOwner)
        );
        assert_eq!(
            ensure_may_assign_role(Admin, Some(Owner), None),
            Err(OwnerGrantError::OnlyOwnerMayChangeOwner)
        );
        assert_eq!(
            ensure_may_assign_role(Owner, Some(Owner), Some(Viewer)),
            Ok(())
        );
        // Touching an owner without changing the role (e.g. a profile
        // update over SCIM) is not a grant.
        assert_eq!(
            ensure_may_assign_role(Admin, Some(Owner), Some(Owner)),
            Ok(())
        );
    }

    #[test]
    fn non_owner_roles_are_not_the_business_of_this_rule() {
        assert_eq!(
            ensure_may_assign_role(Admin, Some(Viewer), Some(Admin)),
            Ok(())
        );
        assert_eq!(
            ensure_may_assign_role(Admin, None, Some(Contributor)),
            Ok(())
        );
    }

    #[test]
    fn only_owners_and_admins_may_leave() {
        assert_eq!(ensure_may_leave(Owner), Ok(()));
        assert_eq!(ensure_may_leave(Admin), Ok(()));
        assert_eq!(ensure_may_leave(Contributor), Err(MayNotLeave));
        assert_eq!(ensure_may_leave(Viewer), Err(MayNotLeave));
    }
}
