//! Two-factor authentication's rules: when an enrolment takes effect, how
//! many wrong codes an account may see before it locks, and who must have
//! a second factor.

use chrono::{DateTime, Duration, Utc};

/// An account's second factor, as stored (its secret still sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaState {
    /// The TOTP secret, sealed with `auth.mfa_key`.
    pub sealed_secret: String,
    pub started_at: DateTime<Utc>,
    /// `None` while the enrolment waits for its first code: until then
    /// the account signs in with its password alone.
    pub enabled_at: Option<DateTime<Utc>>,
    /// The latest time step whose code was accepted: that code and every
    /// earlier one are spent.
    pub last_step: Option<u64>,
    /// SHA-256 of each recovery code not used yet.
    pub recovery_codes: Vec<String>,
    /// Wrong codes in a row.
    pub failures: u32,
    pub locked_until: Option<DateTime<Utc>>,
}

impl MfaState {
    pub fn is_enabled(&self) -> bool {
        self.enabled_at.is_some()
    }
}

/// Wrong codes in a row before the account's second factor locks. Six
/// digits are a million codes, three of which are good at any moment;
/// five guesses per lock keep a guesser near one in 70,000 a day.
pub const MAX_CODE_FAILURES: u32 = 5;
/// How long a lock lasts.
pub const CODE_LOCK: Duration = Duration::minutes(15);
/// How long an enrolment waits for its first code.
pub const ENROLMENT_TTL: Duration = Duration::minutes(15);
/// How long the password step of a sign-in waits for the code.
pub const CHALLENGE_TTL: Duration = Duration::minutes(5);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MfaError {
    #[error(
        "two-factor authentication is not configured on this server: its operator must set auth.mfa_key"
    )]
    NotConfigured,
    #[error("two-factor authentication is already on; turn it off before enrolling again")]
    AlreadyEnabled,
    #[error(
        "no enrolment is waiting for a code (or it is older than 15 minutes): start one with POST /api/v1/me/mfa/totp"
    )]
    NoEnrolment,
    #[error("two-factor authentication is not on for this account")]
    NotEnabled,
    /// A wrong, spent or malformed code from a person already signed in.
    #[error("the code is wrong or was already used")]
    WrongCode,
    #[error("enter the code from your authenticator app, or one of your recovery codes")]
    CodeRequired,
    #[error("send either a code or a recovery code, not both")]
    TwoProofs,
    #[error("too many wrong codes; try again in {retry_after_secs} s")]
    Locked { retry_after_secs: u64 },
    #[error(
        "this organization requires two-factor authentication: turn it on with POST /api/v1/me/mfa/totp and POST /api/v1/me/mfa/totp/confirm, then try again"
    )]
    RequiredByOrganization,
    #[error(
        "turn on two-factor authentication for your own account before requiring it of everyone"
    )]
    EnableItYourselfFirst,
}

/// Refused while the account's second factor is locked.
pub fn ensure_not_locked(state: &MfaState, now: DateTime<Utc>) -> Result<(), MfaError> {
    match state.locked_until {
        Some(until) if until > now => Err(MfaError::Locked {
            retry_after_secs: u64::try_from((until - now).num_seconds().max(1)).unwrap_or(1),
        }),
        _ => Ok(()),
    }
}

/// The lock a wrong code brings, given the failures in a row it makes.
pub fn lock_after(failures: u32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (failures >= MAX_CODE_FAILURES).then(|| now + CODE_LOCK)
}

/// The enrolment a code may confirm: started, not yet on, and recent.
pub fn ensure_confirmable(state: Option<&MfaState>, now: DateTime<Utc>) -> Result<(), MfaError> {
    match state {
        Some(state) if state.is_enabled() => Err(MfaError::AlreadyEnabled),
        Some(state) if now - state.started_at <= ENROLMENT_TTL => Ok(()),
        _ => Err(MfaError::NoEnrolment),
    }
}

/// Whether a member may act in an organization that requires a second
/// factor (or does not).
pub fn ensure_meets_org_requirement(
    org_requires_mfa: bool,
    account_has_mfa: bool,
) -> Result<(), MfaError> {
    if org_requires_mfa && !account_has_mfa {
        return Err(MfaError::RequiredByOrganization);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(enabled: bool, started_at: DateTime<Utc>) -> MfaState {
        MfaState {
            sealed_secret: "v1:x".into(),
            started_at,
            enabled_at: enabled.then_some(started_at),
            last_step: None,
            recovery_codes: Vec::new(),
            failures: 0,
            locked_until: None,
        }
    }

    #[test]
    fn five_wrong_codes_lock_for_a_quarter_hour() {
        let now = Utc::now();
        assert_eq!(lock_after(MAX_CODE_FAILURES - 1, now), None);
        let until = lock_after(MAX_CODE_FAILURES, now).expect("locked");
        let mut locked = state(true, now);
        locked.locked_until = Some(until);
        assert_eq!(
            ensure_not_locked(&locked, now),
            Err(MfaError::Locked {
                retry_after_secs: 900
            })
        );
        assert_eq!(ensure_not_locked(&locked, until), Ok(()));
    }

    #[test]
    fn only_a_recent_pending_enrolment_is_confirmable() {
        let now = Utc::now();
        assert_eq!(ensure_confirmable(None, now), Err(MfaError::NoEnrolment));
        assert_eq!(
            ensure_confirmable(Some(&state(true, now)), now),
            Err(MfaError::AlreadyEnabled)
        );
        assert_eq!(ensure_confirmable(Some(&state(false, now)), now), Ok(()));
        let stale = state(false, now - ENROLMENT_TTL - Duration::seconds(1));
        assert_eq!(
            ensure_confirmable(Some(&stale), now),
            Err(MfaError::NoEnrolment)
        );
    }

    #[test]
    fn an_organization_requiring_mfa_refuses_members_without() {
        assert_eq!(ensure_meets_org_requirement(false, false), Ok(()));
        assert_eq!(ensure_meets_org_requirement(true, true), Ok(()));
        assert_eq!(
            ensure_meets_org_requirement(true, false),
            Err(MfaError::RequiredByOrganization)
        );
    }
}
