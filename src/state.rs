//! What every request handler shares.

use std::sync::Arc;

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
}

impl AppState {
    pub fn new(store: Store, settings: Settings) -> AppState {
        AppState::with_clock(store, settings, Arc::new(SystemClock))
    }

    pub fn with_clock(store: Store, settings: Settings, clock: Arc<dyn Clock>) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                store,
                settings,
                clock,
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
}
