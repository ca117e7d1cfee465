//! Two-factor authentication with TOTP: a person enrols (a secret, shown
//! once as text, URI and QR code), confirms with a first code, gets ten
//! recovery codes, and from then on proves a code wherever the password
//! alone used to do: signing in, accepting an invitation, turning it off,
//! deleting the account.
//!
//! A code is checked before the write it allows and spent inside that
//! write's transaction ([`spend`]), so two requests racing with one code
//! cannot both pass. Wrong codes count per account, in the database, so
//! every server sees the same count.

use chrono::{DateTime, Utc};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::accounts::{AccountActing, gone};
use super::invitations::Passwords;
use crate::auth::mfa_key::MfaKey;
use crate::auth::password::MAX_PASSWORD_BYTES;
use crate::auth::totp::{RECOVERY_CODES, TotpSecret, generate_recovery_code, recovery_code_hash};
use crate::domain::mfa::{MfaError, MfaState, ensure_confirmable, ensure_not_locked, lock_after};
use crate::domain::{Account, AccountId, Actor, AuditEvent, RequestOrigin, TokenId};
use crate::error::AppError;
use crate::in_transaction;
use crate::store::{self, Store};

/// The name authenticator apps list the account under.
const ISSUER: &str = "Muster";

/// What a person offers as their second factor.
#[derive(Clone, PartialEq, Eq)]
pub enum MfaProof {
    /// The six digits the authenticator app shows.
    Code(String),
    /// One of the recovery codes handed out at enrolment.
    RecoveryCode(String),
}

impl std::fmt::Debug for MfaProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MfaProof::Code(_) => "Code(<redacted>)",
            MfaProof::RecoveryCode(_) => "RecoveryCode(<redacted>)",
        })
    }
}

impl MfaProof {
    /// The proof a request's `code` and `recovery_code` fields make: at
    /// most one of them, blank counting as absent.
    pub fn from_fields(
        code: Option<String>,
        recovery_code: Option<String>,
    ) -> Result<Option<MfaProof>, MfaError> {
        let filled = |field: Option<String>| field.filter(|value| !value.trim().is_empty());
        match (filled(code), filled(recovery_code)) {
            (Some(_), Some(_)) => Err(MfaError::TwoProofs),
            (Some(code), None) => Ok(Some(MfaProof::Code(code))),
            (None, Some(code)) => Ok(Some(MfaProof::RecoveryCode(code))),
            (None, None) => Ok(None),
        }
    }
}

/// A second factor that checked out, still to be spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proven {
    /// The time step of a TOTP code.
    Step(u64),
    /// The hash of a recovery code.
    RecoveryCode(String),
}

impl Proven {
    /// How the person proved it, for the audit log.
    pub fn via(&self) -> &'static str {
        match self {
            Proven::Step(_) => "totp",
            Proven::RecoveryCode(_) => "recovery_code",
        }
    }
}

/// Checks `proof` against an account's second factor (`mfa`, read before).
/// `None` when it is wrong, spent or malformed: the failure is counted
/// against the account, locking it after five in a row, and the caller
/// words the refusal for its face. Refused outright while locked, and
/// when no proof came.
pub async fn check(
    store: &Store,
    key: Option<&MfaKey>,
    now: DateTime<Utc>,
    account: &Account,
    mfa: &MfaState,
    proof: Option<MfaProof>,
    origin: &RequestOrigin,
) -> Result<Option<Proven>, AppError> {
    ensure_not_locked(mfa, now)?;
    let proof = proof.ok_or(MfaError::CodeRequired)?;
    let proven = match proof {
        MfaProof::Code(code) => {
            let secret = open_secret(key, &account.id, mfa)?;
            secret
                .matching_step(&code, now, mfa.last_step)
                .map(Proven::Step)
        }
        MfaProof::RecoveryCode(code) => {
            let hash = recovery_code_hash(&code);
            let unused = mfa
                .recovery_codes
                .iter()
                .any(|stored| bool::from(stored.as_bytes().ct_eq(hash.as_bytes())));
            unused.then_some(Proven::RecoveryCode(hash))
        }
    };
    if proven.is_none() {
        record_failure(store, now, account, origin).await?;
    }
    Ok(proven)
}

fn open_secret(
    key: Option<&MfaKey>,
    account_id: &AccountId,
    mfa: &MfaState,
) -> Result<TotpSecret, AppError> {
    let key = key.ok_or(MfaError::NotConfigured)?;
    // A secret that does not open means the key changed under the data:
    // an operator's problem, logged, never the person's.
    key.open(account_id, &mfa.sealed_secret)
        .map_err(AppError::internal)
}

/// Spends what [`check`] proved, inside the transaction of the write it
/// allows. Refused if the code (or a later one) or the recovery code was
/// spent meanwhile.
pub async fn spend(
    store: &Store,
    session: &mut mongodb::ClientSession,
    account_id: &AccountId,
    proven: &Proven,
) -> Result<bool, AppError> {
    Ok(match proven {
        Proven::Step(step) => {
            store::accounts::spend_totp_step(store, session, account_id, *step).await?
        }
        Proven::RecoveryCode(hash) => {
            store::accounts::spend_recovery_code(store, session, account_id, hash).await?
        }
    })
}

/// A wrong code: counted, perhaps locking, and the account's own
/// `account.mfa_failed` event, so its owner can spot attempts that were
/// not theirs. A transaction of its own: nothing else changed.
async fn record_failure(
    store: &Store,
    now: DateTime<Utc>,
    account: &Account,
    origin: &RequestOrigin,
) -> Result<(), AppError> {
    in_transaction!(store, |session| -> Result<(), AppError> {
        let failures = store::accounts::count_mfa_failure(store, session, &account.id).await?;
        let locked_until = lock_after(failures, now);
        if let Some(until) = locked_until {
            store::accounts::lock_mfa(store, session, &account.id, until).await?;
        }
        let event = AuditEvent::of_account(
            Actor::Account(account.id.clone()),
            &account.id,
            now,
            "account.mfa_failed",
            Some(json!({ "failures": failures, "locked_until": locked_until })),
            origin.clone(),
        );
        store::audit::record(store, session, &event).await?;
        Ok(())
    })
}

/// An enrolment just started: the secret three ways, shown once.
pub struct Enrolment {
    /// Base32, for typing into an app.
    pub secret: String,
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment(<redacted>)")
    }
}

/// Starts enrolling the caller's account, replacing an enrolment not yet
/// confirmed. Nothing changes at sign-in until [`confirm`].
pub async fn start_enrolment(
    store: &Store,
    key: Option<&MfaKey>,
    now: DateTime<Utc>,
    caller: &AccountActing,
) -> Result<Enrolment, AppError> {
    let key = key.ok_or(MfaError::NotConfigured)?;
    let account_id = &caller.account_id;
    let credentials = store::accounts::get_credentials(store, None, account_id)
        .await?
        .ok_or_else(gone)?;
    if credentials.enabled_mfa().is_some() {
        return Err(MfaError::AlreadyEnabled.into());
    }
    let secret = TotpSecret::generate();
    let sealed = key.seal(account_id, &secret);
    let otpauth_uri = secret.otpauth_uri(ISSUER, credentials.account.email.as_str());
    let qr_svg = qrcode::QrCode::new(otpauth_uri.as_bytes())
        .map_err(AppError::internal)?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    in_transaction!(store, |session| -> Result<(), AppError> {
        if !store::accounts::begin_mfa(store, session, account_id, &sealed, now).await? {
            return Err(MfaError::AlreadyEnabled.into());
        }
        let event = AuditEvent::of_account(
            caller.actor.clone(),
            account_id,
            now,
            "account.mfa_enrolment_started",
            None,
            caller.origin.clone(),
        );
        store::audit::record(store, session, &event).await?;
        Ok(())
    })?;
    Ok(Enrolment {
        secret: secret.to_base32(),
        otpauth_uri,
        qr_svg,
    })
}

/// What confirms an enrolment: a first code from the app, and the
/// account's password (so a stolen session alone cannot put a second
/// factor only the thief holds on the account).
pub struct Confirmation {
    pub code: String,
    pub password: String,
}

/// Turns the enrolment on. Ends the account's other sessions, all but
/// `keep`, and answers the ten recovery codes, shown only here.
pub async fn confirm(
    store: &Store,
    passwords: &impl Passwords,
    now: DateTime<Utc>,
    caller: &AccountActing,
    keep: &TokenId,
    Confirmation { code, password }: Confirmation,
) -> Result<Vec<String>, AppError> {
    let account_id = &caller.account_id;
    let credentials = store::accounts::get_credentials(store, None, account_id)
        .await?
        .ok_or_else(gone)?;
    ensure_confirmable(credentials.mfa.as_ref(), now)?;
    let Some(mfa) = credentials.mfa.as_ref() else {
        return Err(MfaError::NoEnrolment.into());
    };
    ensure_not_locked(mfa, now)?;
    ensure_password(
        passwords,
        &credentials.account,
        &caller.origin,
        credentials.password_hash.clone(),
        password,
    )
    .await?;
    let secret = open_secret(passwords.mfa_key(), account_id, mfa)?;
    let Some(step) = secret.matching_step(&code, now, None) else {
        record_failure(store, now, &credentials.account, &caller.origin).await?;
        return Err(MfaError::WrongCode.into());
    };
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| generate_recovery_code())
        .collect();
    let hashes: Vec<String> = codes.iter().map(|code| recovery_code_hash(code)).collect();
    in_transaction!(store, |session| -> Result<(), AppError> {
        let enabled = store::accounts::enable_mfa(
            store,
            session,
            account_id,
            &mfa.sealed_secret,
            step,
            &hashes,
            now,
        )
        .await?;
        if !enabled {
            return Err(MfaError::NoEnrolment.into());
        }
        let sessions_ended =
            store::tokens::delete_sessions_except(store, session, account_id, Some(keep)).await?;
        let event = AuditEvent::of_account(
            caller.actor.clone(),
            account_id,
            now,
            "account.mfa_enabled",
            Some(json!({
                "recovery_codes": RECOVERY_CODES,
                "sessions_ended": sessions_ended,
            })),
            caller.origin.clone(),
        );
        store::audit::record(store, session, &event).await?;
        Ok(())
    })?;
    Ok(codes)
}

/// Turns the second factor off, proven with a code or a recovery code.
/// Ends the account's other sessions, all but `keep`.
pub async fn disable(
    store: &Store,
    key: Option<&MfaKey>,
    now: DateTime<Utc>,
    caller: &AccountActing,
    keep: &TokenId,
    proof: Option<MfaProof>,
) -> Result<(), AppError> {
    let account_id = &caller.account_id;
    let credentials = store::accounts::get_credentials(store, None, account_id)
        .await?
        .ok_or_else(gone)?;
    let mfa = credentials.enabled_mfa().ok_or(MfaError::NotEnabled)?;
    let proven = check(
        store,
        key,
        now,
        &credentials.account,
        mfa,
        proof,
        &caller.origin,
    )
    .await?
    .ok_or(MfaError::WrongCode)?;
    in_transaction!(store, |session| -> Result<(), AppError> {
        if !spend(store, session, account_id, &proven).await?
            || !store::accounts::disable_mfa(store, session, account_id, now).await?
        {
            return Err(MfaError::WrongCode.into());
        }
        let sessions_ended =
            store::tokens::delete_sessions_except(store, session, account_id, Some(keep)).await?;
        let event = AuditEvent::of_account(
            caller.actor.clone(),
            account_id,
            now,
            "account.mfa_disabled",
            Some(json!({ "via": proven.via(), "sessions_ended": sessions_ended })),
            caller.origin.clone(),
        );
        store::audit::record(store, session, &event).await?;
        Ok(())
    })
}

/// What allows new recovery codes: the account's password and a code
/// from the app, as confirming asks. A recovery code is not enough: one
/// leaked code must not buy ten fresh ones.
pub struct Regeneration {
    pub code: String,
    pub password: String,
}

/// Replaces all the account's recovery codes with ten new ones, answered
/// only here; the old ones stop working in the same transaction. The
/// password counts against the sign-in limits and a wrong code against
/// the second factor's, as confirming does.
pub async fn regenerate_recovery_codes(
    store: &Store,
    passwords: &impl Passwords,
    now: DateTime<Utc>,
    caller: &AccountActing,
    Regeneration { code, password }: Regeneration,
) -> Result<Vec<String>, AppError> {
    let account_id = &caller.account_id;
    let credentials = store::accounts::get_credentials(store, None, account_id)
        .await?
        .ok_or_else(gone)?;
    let mfa = credentials.enabled_mfa().ok_or(MfaError::NotEnabled)?;
    // Locked first: a locked factor must not turn into a password oracle.
    ensure_not_locked(mfa, now)?;
    ensure_password(
        passwords,
        &credentials.account,
        &caller.origin,
        credentials.password_hash.clone(),
        password,
    )
    .await?;
    // Only a code from the app, never a recovery code (see `Regeneration`);
    // blank asks for one without counting a failure.
    let proof = MfaProof::from_fields(Some(code), None)?;
    let proven = check(
        store,
        passwords.mfa_key(),
        now,
        &credentials.account,
        mfa,
        proof,
        &caller.origin,
    )
    .await?
    .ok_or(MfaError::WrongCode)?;
    let replaced = mfa.recovery_codes.len();
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| generate_recovery_code())
        .collect();
    let hashes: Vec<String> = codes.iter().map(|code| recovery_code_hash(code)).collect();
    in_transaction!(store, |session| -> Result<(), AppError> {
        // Spending the step first refuses a replay of the same code; a
        // factor turned off meanwhile leaves nothing to replace.
        if !spend(store, session, account_id, &proven).await?
            || !store::accounts::replace_recovery_codes(store, session, account_id, &hashes, now)
                .await?
        {
            return Err(MfaError::WrongCode.into());
        }
        let event = AuditEvent::of_account(
            caller.actor.clone(),
            account_id,
            now,
            "account.mfa_recovery_codes_regenerated",
            Some(json!({
                "recovery_codes": RECOVERY_CODES,
                "recovery_codes_replaced": replaced,
            })),
            caller.origin.clone(),
        );
        store::audit::record(store, session, &event).await?;
        Ok(())
    })?;
    Ok(codes)
}

/// The account's password, checked as a sign-in is (the argon2 permits,
/// and the failure limits on its email and the client's address, so a
/// stolen session cannot guess it here either); refused with 403 when
/// wrong, 409 when the account has none.
pub async fn ensure_password(
    passwords: &impl Passwords,
    account: &Account,
    origin: &RequestOrigin,
    stored: Option<crate::auth::password::PasswordHashString>,
    password: String,
) -> Result<(), AppError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::invalid(
            "password",
            format!("a password is at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    let Some(stored) = stored else {
        return Err(AppError::Conflict {
            problem: "no-password",
            detail: "this account has no password yet; set one by accepting an invitation".into(),
        });
    };
    let verified = passwords
        .verify(&account.email, origin, stored, password)
        .await?;
    if !verified {
        return Err(AppError::Forbidden("the password is wrong".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_one_field_or_none() {
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            MfaProof::from_fields(some("123456"), None),
            Ok(Some(MfaProof::Code("123456".into())))
        );
        assert_eq!(
            MfaProof::from_fields(None, some("abcd-efgh-jkmn")),
            Ok(Some(MfaProof::RecoveryCode("abcd-efgh-jkmn".into())))
        );
        assert_eq!(MfaProof::from_fields(some(" "), None), Ok(None));
        assert_eq!(MfaProof::from_fields(None, None), Ok(None));
        assert_eq!(
            MfaProof::from_fields(some("123456"), some("abcd-efgh-jkmn")),
            Err(MfaError::TwoProofs)
        );
        assert_eq!(
            format!("{:?}", MfaProof::Code("123456".into())),
            "Code(<redacted>)"
        );
    }
}
