//! How the backend behaves: one small, cloneable value shared by the
//! push functions, the index migration and the workers.

use std::time::Duration;

use crate::DEFAULT_JOBS_COLLECTION;
use crate::error::JobError;

/// Configuration of the jobs collection and of the workers that drain it.
///
/// Every field has a sensible default (see [`JobsConfig::default`]); change
/// only what you need:
///
/// ```
/// # use std::time::Duration;
/// # use muster_worker::JobsConfig;
/// let config = JobsConfig {
///     poll_interval: Duration::from_secs(2),
///     ..JobsConfig::default()
/// };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobsConfig {
    /// The collection jobs live in; several queues share it.
    pub collection: String,
    /// How long a claimed job belongs to its worker without a heartbeat.
    /// A job whose lease has expired is returned to `pending` (or declared
    /// `dead` when it has no attempt left) by the next sweep.
    pub lease: Duration,
    /// How often a worker renews the leases of the jobs it runs and sweeps
    /// expired leases. Must be shorter than `lease`, by a margin: a third
    /// of it by default.
    pub heartbeat_interval: Duration,
    /// How often an idle worker looks for due jobs when nothing wakes it:
    /// the fallback when the change stream is unavailable, and what picks
    /// up delayed jobs and retries once their `run_at` has passed.
    pub poll_interval: Duration,
    /// Delay before the first retry of a failed job; each further retry
    /// doubles it.
    pub backoff_base: Duration,
    /// The longest delay between two attempts.
    pub backoff_cap: Duration,
    /// Attempts a job gets when its push does not say otherwise.
    pub default_max_attempts: u32,
    /// How long a `done` job stays in the collection before the TTL index
    /// removes it.
    pub done_retention: Duration,
    /// How long a `dead` job stays; `None` (the default) keeps it until
    /// someone deletes it.
    pub dead_retention: Option<Duration>,
    /// Whether idle workers listen to a change stream on the collection to
    /// start on a new job at once. When the server refuses change streams
    /// the workers poll, whatever this says.
    pub change_stream: bool,
    /// The most announced jobs a worker claims with one update. Claimed
    /// jobs wait leased to it until it has room for them, so at most its
    /// concurrency: more would keep them from other workers.
    pub claim_batch: usize,
}

impl Default for JobsConfig {
    /// Collection `jobs`, 60 s leases renewed every 20 s, a 5 s polling
    /// fallback, retries after 5 s, 10 s, 20 s … capped at one hour, 10
    /// attempts, done jobs kept a week, dead jobs kept until deleted,
    /// change streams on, one job claimed at a time.
    fn default() -> Self {
        JobsConfig {
            collection: DEFAULT_JOBS_COLLECTION.to_owned(),
            lease: Duration::from_secs(60),
            heartbeat_interval: Duration::from_secs(20),
            poll_interval: Duration::from_secs(5),
            backoff_base: Duration::from_secs(5),
            backoff_cap: Duration::from_secs(60 * 60),
            default_max_attempts: 10,
            done_retention: Duration::from_secs(7 * 24 * 60 * 60),
            dead_retention: None,
            change_stream: true,
            claim_batch: 1,
        }
    }
}

impl JobsConfig {
    /// Checks the values that would make the backend misbehave: empty
    /// names, zero durations, no attempts, and a heartbeat that does not
    /// come round before the lease it renews runs out.
    pub fn validate(&self) -> Result<(), JobError> {
        let invalid = |why: &str| Err(JobError::InvalidConfig(why.to_owned()));
        if self.collection.is_empty() {
            return invalid("the collection name is empty");
        }
        if self.lease.is_zero() || self.heartbeat_interval.is_zero() || self.poll_interval.is_zero()
        {
            return invalid("lease, heartbeat_interval and poll_interval must be positive");
        }
        if self.heartbeat_interval >= self.lease {
            return invalid("heartbeat_interval must be shorter than lease");
        }
        if self.backoff_cap < self.backoff_base {
            return invalid("backoff_cap must not be shorter than backoff_base");
        }
        if self.default_max_attempts == 0 {
            return invalid("default_max_attempts must be at least 1");
        }
        if self.claim_batch == 0 {
            return invalid("claim_batch must be at least 1");
        }
        Ok(())
    }

    /// The delay before the next attempt of a job that has failed
    /// `attempts` times: `backoff_base * 2^(attempts - 1)`, at most
    /// `backoff_cap`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(31);
        self.backoff_base
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.backoff_cap)
            .min(self.backoff_cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(JobsConfig::default().validate().is_ok());
        assert_eq!(JobsConfig::default().collection, DEFAULT_JOBS_COLLECTION);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let config = JobsConfig {
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(10),
            ..JobsConfig::default()
        };
        assert_eq!(config.backoff(0), Duration::from_secs(1));
        assert_eq!(config.backoff(1), Duration::from_secs(1));
        assert_eq!(config.backoff(2), Duration::from_secs(2));
        assert_eq!(config.backoff(4), Duration::from_secs(8));
        assert_eq!(config.backoff(5), Duration::from_secs(10));
        assert_eq!(config.backoff(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn heartbeat_must_beat_the_lease() {
        let config = JobsConfig {
            lease: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(10),
            ..JobsConfig::default()
        };
        assert!(matches!(config.validate(), Err(JobError::InvalidConfig(_))));
    }
}
