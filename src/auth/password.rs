//! Passwords: argon2id with the crate's recommended parameters.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

pub const MIN_PASSWORD_CHARS: usize = 10;
/// argon2 takes any length, but hashing megabytes is a denial of service.
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("the password must be at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("the password could not be hashed")]
    Hashing,
}

/// A PHC string (`$argon2id$v=19$...`).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHashString(String);

impl std::fmt::Debug for PasswordHashString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHashString(<redacted>)")
    }
}

impl PasswordHashString {
    pub fn from_stored(phc: String) -> Self {
        Self(phc)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub fn check_policy(password: &str) -> Result<(), PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    Ok(())
}

/// Checks the policy and hashes. CPU-bound (tens of milliseconds): call it
/// from `spawn_blocking` on a server.
pub fn hash_password(password: &str) -> Result<PasswordHashString, PasswordError> {
    check_policy(password)?;
    hash_unchecked(password)
}

/// Hashes without the length minimum: for passwords an identity provider
/// sets, whose policy is its own. The maximum still holds.
pub fn hash_idp_password(password: &str) -> Result<PasswordHashString, PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    hash_unchecked(password)
}

fn hash_unchecked(password: &str) -> Result<PasswordHashString, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| PasswordHashString(hash.to_string()))
        .map_err(|_| PasswordError::Hashing)
}

/// A hash of nothing anyone knows, verified against when the account does
/// not exist or has no password, so that "unknown email" and "wrong
/// password" take the same time.
static DUMMY_HASH: LazyLock<Option<PasswordHashString>> =
    LazyLock::new(|| hash_unchecked("muster-dummy-password-for-timing").ok());

/// Verifies in constant work whether or not there is a stored hash.
pub fn verify_password(stored: Option<&PasswordHashString>, password: &str) -> bool {
    let candidate = if password.len() > MAX_PASSWORD_BYTES {
        ""
    } else {
        password
    };
    let (phc, real) = match (stored, DUMMY_HASH.as_ref()) {
        (Some(stored), _) => (stored.as_str(), true),
        (None, Some(dummy)) => (dummy.as_str(), false),
        (None, None) => return false,
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let matches = Argon2::default()
        .verify_password(candidate.as_bytes(), &parsed)
        .is_ok();
    real && matches && !candidate.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_argon2id() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.as_str().starts_with("$argon2id$"));
        assert!(verify_password(Some(&hash), "correct horse battery"));
        assert!(!verify_password(Some(&hash), "wrong horse battery"));
    }

    #[test]
    fn a_missing_hash_never_verifies() {
        assert!(!verify_password(None, "muster-dummy-password-for-timing"));
        assert!(!verify_password(None, ""));
    }

    #[test]
    fn a_corrupt_hash_never_verifies() {
        let corrupt = PasswordHashString::from_stored("not a phc string".into());
        assert!(!verify_password(Some(&corrupt), "anything at all"));
    }

    #[test]
    fn policy() {
        assert_eq!(hash_password("short"), Err(PasswordError::TooShort));
        assert_eq!(
            hash_password(&"x".repeat(2000)),
            Err(PasswordError::TooLong)
        );
    }

    #[test]
    fn hashes_are_redacted_in_debug() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(!format!("{hash:?}").contains("argon2"));
    }
}
