//! What every request handler shares.

use std::sync::Arc;

use crate::auth::mfa_key::MfaKey;
use crate::auth::password::HashingPermits;
use crate::auth::throttle::SignInThrottle;
use crate::config::Settings;
use crate::domain::{Clock, SystemClock};
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    settings: Settings,
    clock: Arc<dyn Clock>,
    hashing: HashingPermits,
    sign_in: SignInThrottle,
    mfa_key: Option<MfaKey>,
}

impl AppState {
    pub fn new(store: Store, settings: Settings) -> AppState {
        AppState::with_clock(store, settings, Arc::new(SystemClock))
    }

    pub fn with_clock(store: Store, settings: Settings, clock: Arc<dyn Clock>) -> AppState {
        let hashing = HashingPermits::new(
            settings.auth.password_hash_permits,
            std::time::Duration::from_millis(settings.auth.password_hash_wait_ms),
        );
        let sign_in = SignInThrottle::new(&settings.rate_limit);
        let mfa_key = settings.auth.mfa_key();
        store.token_cache().configure(
            std::time::Duration::from_millis(settings.auth.cache_ttl_ms),
            settings.auth.cache_size,
        );
        AppState {
            inner: Arc::new(Inner {
                store,
                settings,
                clock,
                hashing,
                sign_in,
                mfa_key,
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    /// Where every argon2 hash and verification of a request runs.
    pub fn hashing(&self) -> &HashingPermits {
        &self.inner.hashing
    }

    /// Failed sign-ins per account and per client IP.
    pub fn sign_in_throttle(&self) -> &SignInThrottle {
        &self.inner.sign_in
    }

    /// The key TOTP secrets are sealed with, if the server has one.
    pub fn mfa_key(&self) -> Option<&MfaKey> {
        self.inner.mfa_key.as_ref()
    }
}
