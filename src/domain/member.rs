//! Membership: an account inside one organization, and its status machine.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{AccountId, MemberId, OrgId, ProjectId};
use super::role::{ProjectRight, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    Active,
    /// Deprovisioned (SCIM `active: false`).
    Inactive,
    /// Invited or created over SCIM, not signed in yet.
    Pending,
    /// Blocked by an admin, optionally until a time.
    Suspended,
}

impl MemberStatus {
    pub const ALL: [MemberStatus; 4] = [
        MemberStatus::Active,
        MemberStatus::Inactive,
        MemberStatus::Pending,
        MemberStatus::Suspended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Active => "active",
            MemberStatus::Inactive => "inactive",
            MemberStatus::Pending => "pending",
            MemberStatus::Suspended => "suspended",
        }
    }

    /// The allowed transitions. Setting the current status again is allowed
    /// because identity providers repeat themselves. Nothing goes back to
    /// `pending` except an inactive member who never signed in and is
    /// reactivated, which the caller decides by asking for `Pending`.
    pub fn transition(self, to: MemberStatus) -> Result<MemberStatus, StatusTransitionError> {
        use MemberStatus::*;
        let allowed = self == to
            || matches!(
                (self, to),
                (Pending, Active | Inactive | Suspended)
                    | (Active, Inactive | Suspended)
                    | (Inactive, Active | Pending)
                    | (Suspended, Active | Inactive)
            );
        if allowed {
            Ok(to)
        } else {
            Err(StatusTransitionError { from: self, to })
        }
    }
}

impl fmt::Display for MemberStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown member status `{0}`; expected one of active, inactive, pending, suspended")]
pub struct UnknownStatus(pub String);

impl FromStr for MemberStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MemberStatus::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownStatus(s.chars().take(64).collect()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a member cannot go from {from} to {to}")]
pub struct StatusTransitionError {
    pub from: MemberStatus,
    pub to: MemberStatus,
}

/// Rights on one project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectGrant {
    pub project_id: ProjectId,
    pub rights: Vec<ProjectRight>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub id: MemberId,
    pub org_id: OrgId,
    /// The login behind the membership. `None` for a person an identity
    /// provider created who has no login yet: the account is linked when
    /// they accept their activation invitation.
    pub account_id: Option<AccountId>,
    pub role: Role,
    pub status: MemberStatus,
    pub suspended_until: Option<DateTime<Utc>>,
    pub project_rights: Vec<ProjectGrant>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the account behind the membership last signed in (in any
    /// organization: a sign-in is the person's, not the membership's).
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

impl Member {
    /// The status that counts at `now`: a suspension with an end lifts by
    /// itself once that time has passed, without a write.
    pub fn effective_status(&self, now: DateTime<Utc>) -> MemberStatus {
        effective_status(self.status, self.suspended_until, now)
    }
}

pub fn effective_status(
    status: MemberStatus,
    suspended_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> MemberStatus {
    match (status, suspended_until) {
        (MemberStatus::Suspended, Some(until)) if until <= now => MemberStatus::Active,
        _ => status,
    }
}

/// Whether a member in this status may act in their organization. Pending
/// members may: they become active on first sign-in, which happens through
/// exactly this authentication.
pub fn may_authenticate(status: MemberStatus) -> bool {
    matches!(status, MemberStatus::Active | MemberStatus::Pending)
}

/// The status an identity provider's `active` flag leads to. Deactivation
/// always wins; reactivation restores an active member if they have a
/// login, a pending one otherwise, and leaves a suspension (Muster's own
/// decision) in place.
pub fn status_for_idp_active(current: MemberStatus, active: bool, has_login: bool) -> MemberStatus {
    match (active, current) {
        (false, _) => MemberStatus::Inactive,
        (true, MemberStatus::Inactive) if has_login => MemberStatus::Active,
        (true, MemberStatus::Inactive) => MemberStatus::Pending,
        (true, other) => other,
    }
}

#[cfg(test)]
mod tests {
    use super::MemberStatus::*;
    use super::*;
    use chrono::Duration;

    #[test]
    fn transitions() {
        let allowed = [
            (Pending, Active),
            (Pending, Inactive),
            (Pending, Suspended),
            (Active, Inactive),
            (Active, Suspended),
            (Inactive, Active),
            (Inactive, Pending),
            (Suspended, Active),
            (Suspended, Inactive),
        ];
        for from in MemberStatus::ALL {
            for to in MemberStatus::ALL {
                let expected = from == to || allowed.contains(&(from, to));
                assert_eq!(from.transition(to).is_ok(), expected, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn a_timed_suspension_lifts_by_itself() {
        let now = Utc::now();
        assert_eq!(
            effective_status(Suspended, Some(now + Duration::hours(1)), now),
            Suspended
        );
        assert_eq!(effective_status(Suspended, Some(now), now), Active);
        assert_eq!(effective_status(Suspended, None, now), Suspended);
        assert_eq!(
            effective_status(Inactive, Some(now - Duration::hours(1)), now),
            Inactive
        );
    }

    #[test]
    fn only_active_and_pending_members_authenticate() {
        assert!(may_authenticate(Active));
        assert!(may_authenticate(Pending));
        assert!(!may_authenticate(Inactive));
        assert!(!may_authenticate(Suspended));
    }

    #[test]
    fn identity_provider_activation() {
        for current in MemberStatus::ALL {
            assert_eq!(status_for_idp_active(current, false, true), Inactive);
            let next = status_for_idp_active(current, true, true);
            assert!(current.transition(next).is_ok(), "{current} -> {next}");
        }
        assert_eq!(status_for_idp_active(Inactive, true, true), Active);
        assert_eq!(status_for_idp_active(Inactive, true, false), Pending);
        assert_eq!(status_for_idp_active(Suspended, true, true), Suspended);
        assert_eq!(status_for_idp_active(Pending, true, false), Pending);
    }

    #[test]
    fn statuses_parse() {
        assert_eq!("Suspended".parse::<MemberStatus>(), Ok(Suspended));
        assert!("deleted".parse::<MemberStatus>().is_err());
    }
}
