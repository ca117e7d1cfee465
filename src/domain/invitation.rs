//! Invitations: how a person gets into an organization. The rules here are
//! pure: who may invite whom, how an address list is read, what each
//! address's outcome is, and when an invitation may be accepted.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::account::Email;
use super::ids::{AccountId, InvitationId, MemberId, OrgId};
use super::member::ProjectGrant;
use super::policy::{OwnerGrantError, ensure_may_assign_role};
use super::role::Role;

/// Addresses one request may invite.
pub const MAX_ADDRESSES: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

impl InvitationStatus {
    pub const ALL: [InvitationStatus; 4] = [
        InvitationStatus::Pending,
        InvitationStatus::Accepted,
        InvitationStatus::Revoked,
        InvitationStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InvitationStatus::Pending => "pending",
            InvitationStatus::Accepted => "accepted",
            InvitationStatus::Revoked => "revoked",
            InvitationStatus::Expired => "expired",
        }
    }
}

impl fmt::Display for InvitationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown invitation status `{0}`; expected one of pending, accepted, revoked, expired")]
pub struct UnknownInvitationStatus(pub String);

impl FromStr for InvitationStatus {
    type Err = UnknownInvitationStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InvitationStatus::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownInvitationStatus(s.chars().take(64).collect()))
    }
}

/// Why an invitation was made: by an admin, or because an identity
/// provider created a member who has no login yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvitationKind {
    Invite,
    ScimActivation,
}

/// What happened to the sending of an invitation's mail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Sends asked for: 1 at creation, one more per resend. A mail job is
    /// keyed by (invitation, send number), so a retried job never mails
    /// twice.
    pub sends: u32,
    /// The latest send handed to the mail server (0: none yet).
    pub sent_send: u32,
    pub attempts: u32,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Invitation {
    pub id: InvitationId,
    pub org_id: OrgId,
    pub email: Email,
    pub role: Role,
    pub project_rights: Vec<ProjectGrant>,
    pub message: Option<String>,
    pub kind: InvitationKind,
    pub invited_by: Option<AccountId>,
    /// For a SCIM activation: the pending member it activates.
    pub member_id: Option<MemberId>,
    pub status: InvitationStatus,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub delivery: Delivery,
}

impl Invitation {
    /// The status that counts at `now`: a pending invitation past its
    /// expiry is expired even before the sweep marks it.
    pub fn effective_status(&self, now: DateTime<Utc>) -> InvitationStatus {
        if self.status == InvitationStatus::Pending && self.expires_at <= now {
            InvitationStatus::Expired
        } else {
            self.status
        }
    }
}

pub fn expiry(now: DateTime<Utc>, ttl_days: u32) -> DateTime<Utc> {
    now + Duration::days(i64::from(ttl_days))
}

/// Why an invitation cannot be accepted. Each is a 410 at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AcceptError {
    #[error("this invitation has expired; ask for a new one")]
    InvitationExpired,
    #[error("this invitation was revoked")]
    InvitationRevoked,
    #[error("this invitation has already been used")]
    InvitationUsed,
    #[error("the organization this invitation is for no longer exists")]
    OrganizationDeleted,
}

/// Whether the invitation may be accepted at `now`.
pub fn ensure_acceptable(invitation: &Invitation, now: DateTime<Utc>) -> Result<(), AcceptError> {
    match invitation.effective_status(now) {
        InvitationStatus::Pending => Ok(()),
        InvitationStatus::Expired => Err(AcceptError::InvitationExpired),
        InvitationStatus::Revoked => Err(AcceptError::InvitationRevoked),
        InvitationStatus::Accepted => Err(AcceptError::InvitationUsed),
    }
}

/// When an organization's next invitation mail may go out under its
/// hourly cap: now, unless `cap` mails are already due within an hour of
/// it; then an hour after the `cap`-th latest of them (`cap_th_latest`),
/// so that no hour ever holds more than `cap` mails.
pub fn next_mail_at(now: DateTime<Utc>, cap_th_latest: Option<DateTime<Utc>>) -> DateTime<Utc> {
    match cap_th_latest {
        Some(at) => (at + Duration::hours(1)).max(now),
        None => now,
    }
}

/// Splits what a person pastes into an address list: commas, semicolons,
/// new lines (and the spaces around them); empty entries are dropped.
pub fn split_addresses(raw: &str) -> Vec<String> {
    raw.split([',', ';', '\n', '\r'])
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What happened to one address of a bulk invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteOutcome {
    Invited,
    AlreadyPending,
    AlreadyMember,
    InvalidEmail,
    NotAllowed,
    DomainNotAllowed,
}

impl InviteOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            InviteOutcome::Invited => "invited",
            InviteOutcome::AlreadyPending => "already_pending",
            InviteOutcome::AlreadyMember => "already_member",
            InviteOutcome::InvalidEmail => "invalid_email",
            InviteOutcome::NotAllowed => "not_allowed",
            InviteOutcome::DomainNotAllowed => "domain_not_allowed",
        }
    }
}

/// Only an owner invites an owner (the owner-grant rule).
pub fn ensure_may_invite(actor: Role, role: Role) -> Result<(), OwnerGrantError> {
    ensure_may_assign_role(actor, None, Some(role))
}

/// Whether `email` may be invited under the organization's allowed
/// domains (empty: any). A subdomain of an allowed domain is allowed.
pub fn domain_allowed(email: &Email, allowed: &[String]) -> bool {
    let domain = email.domain();
    allowed.is_empty()
        || allowed.iter().any(|allowed| {
            domain == allowed
                || domain
                    .strip_suffix(allowed.as_str())
                    .is_some_and(|rest| rest.ends_with('.'))
        })
}

/// The outcome of one address before the store is asked (the store then
/// tells `AlreadyPending` and `AlreadyMember` from `Invited`).
pub fn screen_address(raw: &str, allowed_domains: &[String]) -> Result<Email, InviteOutcome> {
    let email = Email::parse(raw).map_err(|_| InviteOutcome::InvalidEmail)?;
    if domain_allowed(&email, allowed_domains) {
        Ok(email)
    } else {
        Err(InviteOutcome::DomainNotAllowed)
    }
}

/// The longest note an inviter may add to the mail, in characters.
pub const MAX_MESSAGE_CHARS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("at most {MAX_MESSAGE_CHARS} characters")]
pub struct MessageTooLong;

/// The inviter's note, trimmed; a blank one is no note.
pub fn message(raw: Option<&str>) -> Result<Option<String>, MessageTooLong> {
    let Some(message) = raw.map(str::trim).filter(|m| !m.is_empty()) else {
        return Ok(None);
    };
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(MessageTooLong);
    }
    Ok(Some(message.to_owned()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressCount {
    #[error("no address given")]
    None,
    #[error("at most {MAX_ADDRESSES} addresses per request")]
    TooMany,
}

/// One request invites 1 to [`MAX_ADDRESSES`] addresses.
pub fn ensure_address_count(count: usize) -> Result<(), AddressCount> {
    match count {
        0 => Err(AddressCount::None),
        n if n > MAX_ADDRESSES => Err(AddressCount::TooMany),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invitation(status: InvitationStatus, expires_at: DateTime<Utc>) -> Invitation {
        let now = Utc::now();
        Invitation {
            id: InvitationId::new(),
            org_id: OrgId::new(),
            email: Email::parse("a@example.com").expect("email"),
            role: Role::Viewer,
            project_rights: Vec::new(),
            message: None,
            kind: InvitationKind::Invite,
            invited_by: None,
            member_id: None,
            status,
            created_at: now,
            expires_at,
            updated_at: now,
            accepted_at: None,
            delivery: Delivery::default(),
        }
    }

    #[test]
    fn address_lists_split_on_commas_semicolons_and_lines() {
        assert_eq!(
            split_addresses(" a@x.io, b@x.io;c@x.io\n\nd@x.io\r\n,, "),
            vec!["a@x.io", "b@x.io", "c@x.io", "d@x.io"]
        );
        assert!(split_addresses(" ,;\n").is_empty());
    }

    #[test]
    fn allowed_domains_include_subdomains_only() {
        let email = |raw| Email::parse(raw).expect("email");
        let allowed = vec!["acme.com".to_owned()];
        assert!(domain_allowed(&email("a@acme.com"), &allowed));
        assert!(domain_allowed(&email("a@eu.acme.com"), &allowed));
        assert!(!domain_allowed(&email("a@notacme.com"), &allowed));
        assert!(!domain_allowed(&email("a@acme.com.evil.io"), &allowed));
        assert!(domain_allowed(&email("a@anything.io"), &[]));
        assert_eq!(
            screen_address("nope", &allowed),
            Err(InviteOutcome::InvalidEmail)
        );
        assert_eq!(
            screen_address("a@other.io", &allowed),
            Err(InviteOutcome::DomainNotAllowed)
        );
    }

    #[test]
    fn only_owners_invite_owners() {
        assert!(ensure_may_invite(Role::Owner, Role::Owner).is_ok());
        assert!(ensure_may_invite(Role::Admin, Role::Owner).is_err());
        assert!(ensure_may_invite(Role::Admin, Role::Admin).is_ok());
    }

    #[test]
    fn a_mail_over_the_cap_waits_an_hour_after_the_cap_th_latest() {
        let now = Utc::now();
        assert_eq!(next_mail_at(now, None), now);
        let earlier = now - Duration::minutes(20);
        assert_eq!(
            next_mail_at(now, Some(earlier)),
            earlier + Duration::hours(1)
        );
        let later = now + Duration::hours(3);
        assert_eq!(next_mail_at(now, Some(later)), later + Duration::hours(1));
        assert_eq!(next_mail_at(now, Some(now - Duration::hours(2))), now);
    }

    #[test]
    fn acceptance_by_status_and_time() {
        let now = Utc::now();
        let later = now + Duration::hours(1);
        assert_eq!(
            ensure_acceptable(&invitation(InvitationStatus::Pending, later), now),
            Ok(())
        );
        assert_eq!(
            ensure_acceptable(&invitation(InvitationStatus::Pending, now), now),
            Err(AcceptError::InvitationExpired)
        );
        assert_eq!(
            ensure_acceptable(&invitation(InvitationStatus::Revoked, later), now),
            Err(AcceptError::InvitationRevoked)
        );
        assert_eq!(
            ensure_acceptable(&invitation(InvitationStatus::Accepted, later), now),
            Err(AcceptError::InvitationUsed)
        );
    }
}
