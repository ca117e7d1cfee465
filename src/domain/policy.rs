//! Who may do what to whom. Each rule is one function; every path that can
//! break a rule (API, SCIM, group mappings, bulk, leave) calls it inside the
//! transaction of the write it guards.

use chrono::{DateTime, Utc};

use super::member::{MemberStatus, StatusTransitionError};
use super::role::{Permission, Role};

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

/// Who may change whom: only an owner changes, suspends, deactivates or
/// removes a member who holds the owner role, whether directly or through a
/// group (`target` is the member's *effective* role).
pub fn ensure_may_change_member(actor: Role, target: Role) -> Result<(), OwnerGrantError> {
    if target == Role::Owner && actor != Role::Owner {
        Err(OwnerGrantError::OnlyOwnerMayChangeOwner)
    } else {
        Ok(())
    }
}

/// Who is in a group mapped to owner decides who is an owner: only owners
/// change its members or delete it.
pub fn ensure_may_change_group_members(
    actor: Role,
    group_role: Option<Role>,
) -> Result<(), OwnerGrantError> {
    if group_role == Some(Role::Owner) && actor != Role::Owner {
        Err(OwnerGrantError::OnlyOwnerMayGrantOwner)
    } else {
        Ok(())
    }
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

/// What an admin asks to change about a member; `None` leaves a field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberChange {
    pub role: Option<Role>,
    pub status: Option<MemberStatus>,
    /// `Some(None)` lifts the end of a suspension (suspended until further
    /// notice).
    pub suspended_until: Option<Option<DateTime<Utc>>>,
    pub touches_project_rights: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberChangeError {
    #[error(transparent)]
    OwnerGrant(#[from] OwnerGrantError),
    #[error(transparent)]
    Transition(#[from] StatusTransitionError),
    #[error("your role does not allow changing members")]
    NotPermitted,
    #[error("suspended_until only applies to a suspended member; send status \"suspended\" too")]
    UntilWithoutSuspension,
    #[error("suspended_until must be in the future")]
    UntilInThePast,
}

/// The member's role, status and end of suspension after `change`, if
/// `actor` may make it. `current` holds the member's direct role and
/// `effective` the role that counts (raised by groups): an owner through a
/// group is an owner. The last-owner rule is checked on top, against the
/// count read in the write's transaction.
pub fn plan_member_change(
    actor: Role,
    current: Standing,
    effective: Role,
    current_until: Option<DateTime<Utc>>,
    change: &MemberChange,
    now: DateTime<Utc>,
) -> Result<(Standing, Option<DateTime<Utc>>), MemberChangeError> {
    if !actor.allows(Permission::ManageNonOwnerMembers) {
        return Err(MemberChangeError::NotPermitted);
    }
    let role = change.role.unwrap_or(current.role);
    ensure_may_assign_role(actor, Some(current.role), Some(role))?;
    let changes_anything = role != current.role
        || change.status.is_some_and(|s| s != current.status)
        || change.suspended_until.is_some()
        || change.touches_project_rights;
    if changes_anything {
        ensure_may_change_member(actor, effective)?;
    }
    let status = match change.status {
        Some(to) => current.status.transition(to)?,
        None => current.status,
    };
    let until = match (status, change.suspended_until) {
        (MemberStatus::Suspended, Some(Some(until))) if until <= now => {
            return Err(MemberChangeError::UntilInThePast);
        }
        (MemberStatus::Suspended, Some(until)) => until,
        (MemberStatus::Suspended, None) if current.status == MemberStatus::Suspended => {
            current_until
        }
        (MemberStatus::Suspended, None) => None,
        (_, Some(_)) => return Err(MemberChangeError::UntilWithoutSuspension),
        (_, None) => None,
    };
    Ok((Standing { role, status }, until))
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

    fn change() -> MemberChange {
        MemberChange::default()
    }

    #[test]
    fn member_changes_follow_the_table() {
        let now = Utc::now();
        let viewer = standing(Viewer, Active);
        let owner = standing(Owner, Active);
        let to = |role| MemberChange {
            role: Some(role),
            ..change()
        };
        assert_eq!(
            plan_member_change(Admin, viewer, viewer.role, None, &to(Contributor), now),
            Ok((standing(Contributor, Active), None))
        );
        assert_eq!(
            plan_member_change(
                Contributor,
                viewer,
                viewer.role,
                None,
                &to(Contributor),
                now
            ),
            Err(MemberChangeError::NotPermitted)
        );
        assert_eq!(
            plan_member_change(Admin, viewer, viewer.role, None, &to(Owner), now),
            Err(OwnerGrantError::OnlyOwnerMayGrantOwner.into())
        );
        assert_eq!(
            plan_member_change(Admin, owner, owner.role, None, &to(Admin), now),
            Err(OwnerGrantError::OnlyOwnerMayChangeOwner.into())
        );
        let suspend = MemberChange {
            status: Some(Suspended),
            ..change()
        };
        assert_eq!(
            plan_member_change(Admin, owner, owner.role, None, &suspend, now),
            Err(OwnerGrantError::OnlyOwnerMayChangeOwner.into())
        );
        assert_eq!(
            plan_member_change(Owner, owner, owner.role, None, &suspend, now),
            Ok((standing(Owner, Suspended), None))
        );
    }

    #[test]
    fn an_owner_through_a_group_is_an_owner() {
        let now = Utc::now();
        let grouped_owner = standing(Viewer, Active);
        let suspend = MemberChange {
            status: Some(Suspended),
            ..change()
        };
        assert_eq!(
            plan_member_change(Admin, grouped_owner, Owner, None, &suspend, now),
            Err(OwnerGrantError::OnlyOwnerMayChangeOwner.into())
        );
        assert_eq!(
            plan_member_change(Owner, grouped_owner, Owner, None, &suspend, now),
            Ok((standing(Viewer, Suspended), None))
        );
        assert_eq!(
            ensure_may_change_member(Admin, Owner),
            Err(OwnerGrantError::OnlyOwnerMayChangeOwner)
        );
        assert_eq!(ensure_may_change_member(Admin, Admin), Ok(()));
        // Nothing changes, nothing to refuse (an IdP re-asserting a profile).
        assert_eq!(
            plan_member_change(Admin, grouped_owner, Owner, None, &change(), now),
            Ok((grouped_owner, None))
        );
    }

    #[test]
    fn only_owners_change_who_is_in_an_owner_group() {
        assert_eq!(
            ensure_may_change_group_members(Admin, Some(Owner)),
            Err(OwnerGrantError::OnlyOwnerMayGrantOwner)
        );
        assert_eq!(ensure_may_change_group_members(Owner, Some(Owner)), Ok(()));
        assert_eq!(ensure_may_change_group_members(Admin, Some(Admin)), Ok(()));
        assert_eq!(ensure_may_change_group_members(Admin, None), Ok(()));
    }

    #[test]
    fn suspensions_and_their_end() {
        let now = Utc::now();
        let later = now + chrono::Duration::hours(1);
        let member = standing(Contributor, Active);
        let until = |at| MemberChange {
            status: Some(Suspended),
            suspended_until: Some(at),
            ..change()
        };
        assert_eq!(
            plan_member_change(Admin, member, member.role, None, &until(Some(later)), now),
            Ok((standing(Contributor, Suspended), Some(later)))
        );
        assert_eq!(
            plan_member_change(Admin, member, member.role, None, &until(Some(now)), now),
            Err(MemberChangeError::UntilInThePast)
        );
        let only_until = MemberChange {
            suspended_until: Some(Some(later)),
            ..change()
        };
        assert_eq!(
            plan_member_change(Admin, member, member.role, None, &only_until, now),
            Err(MemberChangeError::UntilWithoutSuspension)
        );
        // A suspended member keeps the end of the suspension when only the
        // role changes, and loses it when reactivated.
        let suspended = standing(Contributor, Suspended);
        let to_viewer = MemberChange {
            role: Some(Viewer),
            ..change()
        };
        assert_eq!(
            plan_member_change(
                Admin,
                suspended,
                suspended.role,
                Some(later),
                &to_viewer,
                now
            ),
            Ok((standing(Viewer, Suspended), Some(later)))
        );
        let reactivate = MemberChange {
            status: Some(Active),
            ..change()
        };
        assert_eq!(
            plan_member_change(
                Admin,
                suspended,
                suspended.role,
                Some(later),
                &reactivate,
                now
            ),
            Ok((standing(Contributor, Active), None))
        );
        assert!(matches!(
            plan_member_change(
                Admin,
                member,
                member.role,
                None,
                &MemberChange {
                    status: Some(Pending),
                    ..change()
                },
                now
            ),
            Err(MemberChangeError::Transition(_))
        ));
    }
}
