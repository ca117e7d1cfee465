//! Passwords: argon2id with the crate's recommended parameters, run under
//! a bounded number of permits.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

/// Every argon2 hash or verification a server runs goes through here.
/// Each holds about 19 MiB while it runs, and the blocking pool would start
/// one per request on up to 512 threads: so at most `permits` run at once
/// (one per core by default, which is all the CPU they can use anyway),
/// and a request that cannot get a permit within `wait` is refused rather
/// than queued without end.
#[derive(Debug, Clone)]
pub struct HashingPermits {
    permits: Arc<Semaphore>,
    wait: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    /// Every permit stayed taken for the whole wait.
    #[error("the server is busy checking passwords; retry shortly")]
    Busy,
    /// The hashing task panicked.
    #[error("password hashing failed")]
    Failed(#[source] tokio::task::JoinError),
}

impl HashingPermits {
    /// `permits` 0 means one per available core.
    pub fn new(permits: usize, wait: Duration) -> HashingPermits {
        let permits = match permits {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        HashingPermits {
            permits: Arc::new(Semaphore::new(permits)),
            wait,
        }
    }

    /// Runs CPU-bound password work on the blocking pool once a permit is
    /// free. The permit moves into the task: a request that gives up
    /// (client gone) does not free it while argon2 still runs.
    pub async fn run<T, F>(&self, work: F) -> Result<T, HashingError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // `timeout` polls the acquisition first, so a zero wait still takes
        // a free permit.
        let permit =
            match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) | Err(_) => return Err(HashingError::Busy),
            };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(HashingError::Failed)
    }

    /// Takes a permit without doing any work, if one is free: how a test
    /// makes the permits run out without racing real hashes.
    pub fn try_hold(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }
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

    #[tokio::test]
    async fn work_beyond_the_permits_is_refused_after_the_wait() {
        let permits = HashingPermits::new(1, Duration::from_millis(20));
        let held = permits.try_hold().expect("a free permit");
        assert!(matches!(
            permits.run(|| hash_password("correct horse battery")).await,
            Err(HashingError::Busy)
        ));
        drop(held);
        let hash = permits
            .run(|| hash_password("correct horse battery"))
            .await
            .expect("a permit once it is free")
            .expect("hash");
        assert!(hash.as_str().starts_with("$argon2id$"));
    }

    #[tokio::test]
    async fn a_zero_wait_still_takes_a_free_permit() {
        let permits = HashingPermits::new(1, Duration::ZERO);
        assert_eq!(permits.run(|| 7).await.ok(), Some(7));
    }

    #[tokio::test]
    async fn the_permit_is_held_until_the_work_ends() {
        let permits = HashingPermits::new(1, Duration::ZERO);
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (finish_tx, finish_rx) = std::sync::mpsc::channel::<()>();
        let running = permits.clone();
        let work = tokio::spawn(async move {
            running
                .run(move || {
                    let _ = started_tx.send(());
                    let _ = finish_rx.recv();
                })
                .await
        });
        started_rx.await.expect("the work started");
        // The request that started the work is gone; argon2 would still run.
        work.abort();
        assert!(work.await.is_err_and(|err| err.is_cancelled()));
        assert!(permits.try_hold().is_none());
        let _ = finish_tx.send(());
    }

    #[test]
    fn hashes_are_redacted_in_debug() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(!format!("{hash:?}").contains("argon2"));
    }
}
