//! Sign-in attempt limits. After `max_failures` failed sign-ins for one
//! account, or from one client IP, attempts for it are refused until a
//! lockout has passed; every further failure doubles the lockout, up to a
//! ceiling. Only a whole quiet window after the last lockout forgets the
//! failures, so waiting out each lockout buys one guess at a time.
//!
//! The account is the email as asked for, whether or not an account has
//! it: an unknown address is counted and refused exactly like a known one,
//! so the limiter tells nobody which addresses exist.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use crate::config::RateLimitSettings;

/// Most keys one table remembers. Past it, what expires soonest goes
/// first: an attacker who floods the table with made-up emails pushes
/// out their own entries before a locked account's.
const MAX_TRACKED: usize = 100_000;
/// Every so many failures a table drops what it no longer needs, so memory
/// follows the keys that matter without a background task.
const PRUNE_EVERY: u32 = 4096;

/// A sign-in refused because its account or its client IP is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed sign-ins; retry in {retry_after_secs} s")]
pub struct Locked {
    pub retry_after_secs: u64,
}

/// The rule for one kind of key.
#[derive(Debug, Clone, Copy)]
pub struct FailureLimit {
    pub max_failures: u32,
    pub window: Duration,
    pub lockout: Duration,
    pub max_lockout: Duration,
}

/// What is remembered of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    count: u32,
    last: DateTime<Utc>,
    locked_until: Option<DateTime<Utc>>,
}

impl FailureLimit {
    /// Until when attempts for a key stay refused, if they are now.
    pub fn locked_until(&self, failures: &Failures, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        failures.locked_until.filter(|until| *until > now)
    }

    /// The record after one more failure at `now`.
    pub fn after_failure(&self, before: Option<&Failures>, now: DateTime<Utc>) -> Failures {
        let count = match before {
            Some(before) if now < self.forgotten_at(before) => before.count.saturating_add(1),
            _ => 1,
        };
        let locked_until = (count >= self.max_failures).then(|| {
            let doublings = (count - self.max_failures).min(30);
            let lockout = self
                .lockout
                .checked_mul(1 << doublings)
                .unwrap_or(self.max_lockout)
                .min(self.max_lockout);
            now + lockout
        });
        Failures {
            count,
            last: now,
            locked_until,
        }
    }

    /// When a record no longer matters: a whole window after the last
    /// failure or the end of its lockout, whichever is later.
    pub fn forgotten_at(&self, failures: &Failures) -> DateTime<Utc> {
        failures
            .locked_until
            .map_or(failures.last, |until| until.max(failures.last))
            + self.window
    }
}

/// One table of keys under one rule. Keys are hashed with a per-process
/// random key: the table holds no emails, and nobody can aim collisions.
struct Table {
    limit: FailureLimit,
    hasher: RandomState,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_key: HashMap<u64, Failures>,
    since_pruned: u32,
}

impl Entries {
    fn prune(&mut self, limit: FailureLimit, now: DateTime<Utc>) {
        self.by_key
            .retain(|_, failures| now < limit.forgotten_at(failures));
        self.since_pruned = 0;
    }
}

impl Table {
    fn new(limit: FailureLimit) -> Table {
        Table {
            limit,
            hasher: RandomState::new(),
            entries: Mutex::new(Entries::default()),
        }
    }

    fn key(&self, value: &str) -> u64 {
        self.hasher.hash_one(value)
    }

    fn locked_until(&self, value: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let entries = self.entries.lock().ok()?;
        let failures = entries.by_key.get(&self.key(value))?;
        self.limit.locked_until(failures, now)
    }

    fn failed(&self, value: &str, now: DateTime<Utc>) {
        let key = self.key(value);
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let limit = self.limit;
        entries.since_pruned += 1;
        if entries.since_pruned >= PRUNE_EVERY {
            entries.prune(limit, now);
        }
        if !entries.by_key.contains_key(&key) && entries.by_key.len() >= MAX_TRACKED {
            entries.prune(limit, now);
            if entries.by_key.len() >= MAX_TRACKED
                && let Some(soonest) = entries
                    .by_key
                    .iter()
                    .min_by_key(|(_, failures)| limit.forgotten_at(failures))
                    .map(|(key, _)| *key)
            {
                entries.by_key.remove(&soonest);
            }
        }
        let next = limit.after_failure(entries.by_key.get(&key), now);
        entries.by_key.insert(key, next);
    }

    fn clear(&self, value: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.by_key.remove(&self.key(value));
        }
    }
}

/// The sign-in limits of one server: per account and per client IP.
pub struct SignInThrottle {
    accounts: Table,
    ips: Table,
}

fn account_key(email: &str) -> String {
    email.trim().to_lowercase()
}

impl SignInThrottle {
    pub fn new(settings: &RateLimitSettings) -> SignInThrottle {
        let seconds = |s: u64| Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000));
        let limit = |max_failures| FailureLimit {
            max_failures,
            window: seconds(settings.login_failure_window_seconds),
            lockout: seconds(settings.login_lockout_seconds),
            max_lockout: seconds(settings.login_lockout_max_seconds),
        };
        SignInThrottle {
            accounts: Table::new(limit(settings.login_failures_per_account)),
            ips: Table::new(limit(settings.login_failures_per_ip)),
        }
    }

    /// Refuses an attempt while its account or its client IP is locked,
    /// before any password work is done.
    pub fn check(&self, email: &str, ip: Option<IpAddr>, now: DateTime<Utc>) -> Result<(), Locked> {
        let account = self.accounts.locked_until(&account_key(email), now);
        let ip = ip.and_then(|ip| self.ips.locked_until(&ip.to_string(), now));
        match account.max(ip) {
            None => Ok(()),
            Some(until) => {
                let wait = (until - now).num_milliseconds().max(0) as u64;
                Err(Locked {
                    retry_after_secs: wait.div_ceil(1000).max(1),
                })
            }
        }
    }

    pub fn failed(&self, email: &str, ip: Option<IpAddr>, now: DateTime<Utc>) {
        self.accounts.failed(&account_key(email), now);
        if let Some(ip) = ip {
            self.ips.failed(&ip.to_string(), now);
        }
    }

    /// A successful sign-in forgets the account's failures. Not the IP's:
    /// one account of their own must not let an attacker reset the count
    /// of their guesses at others.
    pub fn succeeded(&self, email: &str) {
        self.accounts.clear(&account_key(email));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit() -> FailureLimit {
        FailureLimit {
            max_failures: 3,
            window: Duration::minutes(15),
            lockout: Duration::seconds(30),
            max_lockout: Duration::minutes(4),
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(seconds)
    }

    #[test]
    fn the_lockout_starts_at_the_limit_and_doubles_up_to_the_ceiling() {
        let limit = limit();
        let mut failures = None;
        let mut lockouts = Vec::new();
        let mut now = at(0);
        for _ in 0..8 {
            let next = limit.after_failure(failures.as_ref(), now);
            let lockout = limit.locked_until(&next, now).map(|until| until - now);
            lockouts.push(lockout.map(|l| l.num_seconds()));
            now = limit.locked_until(&next, now).unwrap_or(now) + Duration::seconds(1);
            failures = Some(next);
        }
        assert_eq!(
            lockouts,
            [
                None,
                None,
                Some(30),
                Some(60),
                Some(120),
                Some(240),
                Some(240),
                Some(240)
            ]
        );
    }

    #[test]
    fn failures_are_forgotten_a_window_after_the_last_lockout_ends() {
        let limit = limit();
        let mut failures = None;
        for second in 0..3 {
            failures = Some(limit.after_failure(failures.as_ref(), at(second)));
        }
        let locked = failures.expect("three failures");
        let until = limit.locked_until(&locked, at(2)).expect("locked");
        let just_before = until + limit.window - Duration::seconds(1);
        assert_eq!(limit.after_failure(Some(&locked), just_before).count, 4);
        assert_eq!(
            limit
                .after_failure(Some(&locked), until + limit.window)
                .count,
            1
        );
    }

    fn settings() -> RateLimitSettings {
        RateLimitSettings {
            login_failures_per_account: 2,
            login_failures_per_ip: 5,
            login_failure_window_seconds: 900,
            login_lockout_seconds: 30,
            login_lockout_max_seconds: 900,
            ..RateLimitSettings::default()
        }
    }

    #[test]
    fn known_and_unknown_accounts_are_one_and_the_same_to_the_throttle() {
        let throttle = SignInThrottle::new(&settings());
        let now = at(100);
        for email in ["Grace@Example.com ", "nobody@example.com"] {
            throttle.failed(email, None, now);
            throttle.failed(email, None, now);
            assert_eq!(
                throttle.check(email, None, now),
                Err(Locked {
                    retry_after_secs: 30
                })
            );
        }
        assert!(throttle.check("grace@example.com", None, now).is_err());
        assert!(throttle.check("someone@example.com", None, now).is_ok());
    }

    #[test]
    fn success_clears_the_account_but_not_the_ip() {
        let throttle = SignInThrottle::new(&settings());
        let ip: IpAddr = [192, 0, 2, 7].into();
        let now = at(100);
        for n in 0..4 {
            throttle.failed(&format!("guess-{n}@example.com"), Some(ip), now);
        }
        throttle.failed("mine@example.com", Some(ip), now);
        throttle.succeeded("mine@example.com");
        let refused = throttle.check("mine@example.com", Some(ip), now);
        assert_eq!(
            refused,
            Err(Locked {
                retry_after_secs: 30
            })
        );
        let elsewhere: IpAddr = [198, 51, 100, 1].into();
        assert!(
            throttle
                .check("mine@example.com", Some(elsewhere), now)
                .is_ok()
        );
    }

    #[test]
    fn the_table_stays_bounded() {
        let table = Table::new(limit());
        let now = at(0);
        table.failed("target", now);
        table.failed("target", now);
        table.failed("target", now);
        for n in 0..MAX_TRACKED + 10 {
            table.failed(&format!("junk-{n}"), now);
        }
        let entries = table.entries.lock().expect("lock");
        assert!(entries.by_key.len() <= MAX_TRACKED);
        drop(entries);
        assert!(table.locked_until("target", now).is_some());
    }
}
