//! Sessions: sign-in with email and password, and sign-out. The
//! management API's `/auth/login` and `/auth/logout` and the invitation
//! page call these; `/me/sessions` lists an account's sessions and ends
//! them.

use chrono::{DateTime, Duration, Utc};

use super::accounts::AccountActing;
use super::mfa::{self, MfaProof, Proven};
use crate::auth::password::verify_password;
use crate::auth::token::{
    IssuedToken, TokenHash, TokenKind, TokenRecord, generate_mfa_challenge,
    is_well_formed_mfa_challenge,
};
use crate::domain::mfa::CHALLENGE_TTL;
use crate::domain::{Account, AccountId, Actor, AuditEvent, Email, RequestOrigin, TokenId};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{self, Inserted, Store};

const BAD_CREDENTIALS: &str = "invalid email or password";

/// A session just started: its secret, shown once, and its end.
pub struct NewSession {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// What a right password gets: a session, or, for an account with
/// two-factor authentication, a challenge its code completes.
pub enum SignIn {
    Session(NewSession),
    SecondFactorNeeded(MfaChallenge),
}

/// The password step of a sign-in with two-factor authentication: its
/// secret (shown once) completes the sign-in with a code, until
/// `expires_at`. Never a bearer token.
pub struct MfaChallenge {
    pub challenge: String,
    pub expires_at: DateTime<Utc>,
}

const BAD_CHALLENGE: &str =
    "the sign-in challenge is unknown, used or expired; sign in with your password again";
const BAD_CODE: &str = "the code is wrong or was already used";

/// Signs in with email and password. Refused alike (401, or 429 while the
/// failure limits lock the email or the client IP) whether or not the
/// email has an account, in the same time: an unknown email is checked
/// against a dummy hash. The first sign-in activates memberships an
/// identity provider created for this login.
///
/// A wrong password for an existing account is the account's own event,
/// `account.sign_in_failed`, so its owner can spot attempts that were not
/// theirs. An unknown email has nobody to tell, and is written nowhere.
///
/// With two-factor authentication on, the right password starts no
/// session: it answers a challenge for [`complete_sign_in`].
pub async fn sign_in(
    state: &AppState,
    email: &str,
    password: String,
    origin: RequestOrigin,
) -> Result<SignIn, AppError> {
    let store = state.store();
    let throttle = state.sign_in_throttle();
    let ip = origin.ip.as_deref().and_then(|ip| ip.parse().ok());
    // Before any work: a locked email costs no argon2.
    throttle.check(email, ip, state.clock().now())?;
    let credentials = match Email::parse(email) {
        Ok(email) => store::accounts::find_by_email(store, None, &email).await?,
        Err(_) => None,
    };
    let hash = credentials.as_ref().and_then(|c| c.password_hash.clone());
    let verified = state
        .hashing()
        .run(move || verify_password(hash.as_ref(), &password))
        .await?;
    let credentials = match credentials {
        Some(credentials) if verified => credentials,
        known => {
            throttle.failed(email, ip, state.clock().now());
            if let Some(known) = known {
                record_failure(state, known.account, origin);
            }
            return Err(AppError::Unauthorized(BAD_CREDENTIALS.into()));
        }
    };
    throttle.succeeded(email);
    if credentials.enabled_mfa().is_some() {
        let now = state.clock().now();
        let expires_at = now + CHALLENGE_TTL;
        let (secret, hash) = generate_mfa_challenge();
        store::mfa_challenges::insert(store, &hash, &credentials.account.id, now, expires_at)
            .await?;
        return Ok(SignIn::SecondFactorNeeded(MfaChallenge {
            challenge: secret.into_exposed(),
            expires_at,
        }));
    }
    let label = credentials.account.email.to_string();
    let (token, expires_at) =
        open_session(state, &credentials.account.id, Some(label), None, origin).await?;
    Ok(SignIn::Session(NewSession { token, expires_at }))
}

/// Completes a sign-in with two-factor authentication: the challenge the
/// password answered, and a code or recovery code. Both are spent in the
/// session's transaction, so neither works twice. A wrong code counts
/// against the account (five in a row lock it for a while) and leaves the
/// challenge usable until it expires.
pub async fn complete_sign_in(
    state: &AppState,
    challenge: &str,
    proof: Option<MfaProof>,
    origin: RequestOrigin,
) -> Result<NewSession, AppError> {
    let store = state.store();
    let now = state.clock().now();
    if !is_well_formed_mfa_challenge(challenge) {
        return Err(AppError::Unauthorized(BAD_CHALLENGE.into()));
    }
    let hash = TokenHash::of(challenge);
    let account_id = store::mfa_challenges::account_of(store, &hash, now)
        .await?
        .ok_or_else(|| AppError::Unauthorized(BAD_CHALLENGE.into()))?;
    let credentials = store::accounts::get_credentials(store, None, &account_id)
        .await?
        .ok_or_else(|| AppError::Unauthorized(BAD_CHALLENGE.into()))?;
    // Turned off since the password step: that step asked for a code the
    // account no longer has, so it starts again.
    let mfa = credentials
        .enabled_mfa()
        .ok_or_else(|| AppError::Unauthorized(BAD_CHALLENGE.into()))?;
    let proven = mfa::check(
        store,
        state.mfa_key(),
        now,
        &credentials.account,
        mfa,
        proof,
        &origin,
    )
    .await?
    .ok_or_else(|| AppError::Unauthorized(BAD_CODE.into()))?;
    let label = credentials.account.email.to_string();
    let factor = SecondFactor {
        challenge: hash,
        proven,
    };
    let (token, expires_at) =
        open_session(state, &account_id, Some(label), Some(factor), origin).await?;
    Ok(NewSession { token, expires_at })
}

/// The second factor a session is opened with, spent in its transaction.
struct SecondFactor {
    challenge: TokenHash,
    proven: Proven,
}

/// Writes `account.sign_in_failed` off the request: awaiting the write
/// would make a wrong password for an existing account answer later than
/// one for an unknown email, telling which emails have accounts. A failed
/// write is logged, and the caller gets its 401 all the same.
fn record_failure(state: &AppState, account: Account, origin: RequestOrigin) {
    let state = state.clone();
    tokio::spawn(async move {
        let now = state.clock().now();
        if let Err(err) = sign_in_failed(state.store(), now, &account, None, origin).await {
            tracing::warn!(account_id = %account.id, error = %err, "a failed sign-in was not audited");
        }
    });
}

/// The account's own `account.sign_in_failed`: someone offered a wrong
/// password for it (at `/auth/login`, or accepting an invitation, `after`
/// then naming it). Nothing changed, so it is a transaction of its own.
pub(crate) async fn sign_in_failed(
    store: &Store,
    now: DateTime<Utc>,
    account: &Account,
    after: Option<serde_json::Value>,
    origin: RequestOrigin,
) -> Result<(), AppError> {
    let event = AuditEvent::of_account(
        Actor::Account(account.id.clone()),
        &account.id,
        now,
        "account.sign_in_failed",
        after,
        origin,
    )
    .labelled(account.email.to_string());
    crate::in_transaction!(store, |session| -> Result<(), AppError> {
        store::audit::record(store, session, &event).await?;
        Ok(())
    })
}

/// Starts a session for an account that proved who it is: the session's
/// secret (shown once) and when it expires. Audited as
/// `account.signed_in`.
pub(crate) async fn start_session(
    state: &AppState,
    account_id: &AccountId,
    origin: RequestOrigin,
) -> Result<(String, DateTime<Utc>), AppError> {
    open_session(state, account_id, None, None, origin).await
}

/// [`start_session`], with the account's email for the event when the
/// caller knows it.
async fn open_session(
    state: &AppState,
    account_id: &AccountId,
    label: Option<String>,
    second_factor: Option<SecondFactor>,
    origin: RequestOrigin,
) -> Result<(String, DateTime<Utc>), AppError> {
    let store = state.store();
    let now = state.clock().now();
    let expires_at = now + Duration::hours(i64::from(state.settings().auth.session_ttl_hours));
    let issued = IssuedToken::generate(TokenKind::Session);
    let record = TokenRecord {
        ip: origin.ip.clone(),
        user_agent: origin.user_agent.clone(),
        ..TokenRecord::new(
            &issued,
            None,
            Some(account_id.clone()),
            None,
            now,
            Some(expires_at),
        )
    };
    let mut signed_in = AuditEvent::of_account(
        Actor::Account(account_id.clone()),
        account_id,
        now,
        "account.signed_in",
        Some(serde_json::json!({
            "session_id": record.id.as_str(),
            "expires_at": expires_at,
            "second_factor": second_factor.as_ref().map(|factor| factor.proven.via()),
        })),
        origin,
    );
    signed_in.actor_label = label;
    crate::in_transaction!(store, |session| -> Result<(), AppError> {
        if let Some(factor) = &second_factor
            && !(store::mfa_challenges::spend(store, session, &factor.challenge).await?
                && mfa::spend(store, session, account_id, &factor.proven).await?)
        {
            // Another request spent the challenge or the code meanwhile.
            return Err(AppError::Unauthorized(BAD_CODE.into()));
        }
        if store::tokens::insert(store, Some(&mut *session), &record).await?
            == Inserted::AlreadyExists
        {
            return Err(AppError::internal(
                "a fresh session token collided with a stored one",
            ));
        }
        store::members::record_sign_in(store, session, account_id, now).await?;
        store::audit::record(store, session, &signed_in).await?;
        Ok(())
    })?;
    Ok((issued.secret.into_exposed(), expires_at))
}

/// What [`end_session`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    Ended,
    /// The account has no session with that id (another account's
    /// session is never touched).
    NotFound,
}

/// Ends one of an account's sessions. Audited as `account.signed_out`,
/// only when there was such a session to end.
pub(crate) async fn end_session(
    state: &AppState,
    account_id: &AccountId,
    session_id: &TokenId,
    origin: RequestOrigin,
) -> Result<SessionEnd, AppError> {
    let store = state.store();
    let event = AuditEvent::of_account(
        Actor::Account(account_id.clone()),
        account_id,
        state.clock().now(),
        "account.signed_out",
        Some(serde_json::json!({ "session_id": session_id.as_str() })),
        origin,
    );
    let owner = store::tokens::TokenOwner::Account {
        account_id,
        org_id: None,
    };
    crate::in_transaction!(store, |session| -> Result<SessionEnd, AppError> {
        let deleted =
            store::tokens::delete_owned(store, session, TokenKind::Session, session_id, owner)
                .await?;
        if deleted.is_none() {
            return Ok(SessionEnd::NotFound);
        }
        store::audit::record(store, session, &event).await?;
        Ok(SessionEnd::Ended)
    })
}

/// One of an account's sessions, as its owner sees it: enough to tell a
/// laptop from a phone from a stranger, never the secret or its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    pub id: TokenId,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The session the request was made with.
    pub current: bool,
}

/// The caller's sessions that still work, oldest first, `current` marking
/// the one making the request. Expired sessions the database has not
/// deleted yet are left out: they no longer sign anyone in.
pub async fn list_sessions(
    store: &Store,
    now: DateTime<Utc>,
    caller: &AccountActing,
    current: &TokenId,
) -> Result<Vec<SessionSummary>, AppError> {
    let records =
        store::tokens::list_for_account(store, TokenKind::Session, &caller.account_id, None)
            .await?;
    Ok(records
        .into_iter()
        .filter(|record| !record.is_expired(now))
        .map(|record| SessionSummary {
            current: &record.id == current,
            id: record.id,
            created_at: record.created_at,
            last_used_at: record.last_used_at,
            expires_at: record.expires_at,
            ip: record.ip,
            user_agent: record.user_agent,
        })
        .collect())
}

/// Ends every session of the caller's account but `keep`, the one making
/// the request: "sign out everywhere else", for a person who sees a
/// session they do not recognise. Audited as
/// `account.signed_out_elsewhere`, saying how many ended (none is still a
/// request the person made, and is recorded).
pub async fn end_other_sessions(
    store: &Store,
    now: DateTime<Utc>,
    caller: &AccountActing,
    keep: &TokenId,
) -> Result<u64, AppError> {
    let account_id = &caller.account_id;
    crate::in_transaction!(store, |session| -> Result<u64, AppError> {
        let ended =
            store::tokens::delete_sessions_except(store, session, account_id, Some(keep)).await?;
        let event = AuditEvent::of_account(
            caller.actor.clone(),
            account_id,
            now,
            "account.signed_out_elsewhere",
            Some(serde_json::json!({
                "sessions_ended": ended,
                "kept_session_id": keep.as_str(),
            })),
            caller.origin.clone(),
        );
        store::audit::record(store, session, &event).await?;
        Ok(ended)
    })
}
