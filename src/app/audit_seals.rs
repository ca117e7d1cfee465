//! Tamper evidence for the audit log: sealing each organization's events
//! into a hash chain, verifying it, and purging past retention without
//! breaking it. Writers of events take no part: only the sealer extends a
//! chain, so events are written as concurrently as any other document. See
//! "Tamper evidence" in docs/architecture.md for why the order and the
//! settle margin are safe.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::domain::OrgId;
use crate::error::AppError;
use crate::in_transaction;
use crate::store::audit_seals::{HashedEvent, Seal, SealedEvent};
use crate::store::{self, Inserted, Store};

/// How old an event's id must be before it is sealed. An event's id is
/// drawn before its transaction commits, so an event with a smaller id
/// can become visible after one with a larger id; once sealed past, it
/// could never be sealed. MongoDB aborts a transaction that runs longer
/// than `transactionLifetimeLimitSeconds` (60 s by default) and every
/// retry draws a new id, so no event commits more than 60 s after its id
/// was drawn; the other 30 s absorb clock skew between the hosts that
/// draw ids and the sealer's. Raise it with that server setting.
pub const SETTLE_MARGIN: Duration = Duration::seconds(90);

/// Events per seal: bounds a seal's document and the verifier's reads.
pub const BATCH: i64 = 1000;

/// Seals per read while verifying.
const SEALS_PER_READ: i64 = 100;

/// What a sealing run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sealed {
    pub seals: u64,
    pub events: u64,
}

impl std::ops::AddAssign for Sealed {
    fn add_assign(&mut self, other: Sealed) {
        self.seals += other.seals;
        self.events += other.events;
    }
}

/// The smallest id string of the millisecond `at`: every UUIDv7 drawn
/// before `at` sorts below it (ids are stored lowercase and hyphenated,
/// the timestamp first).
pub fn id_bound(at: DateTime<Utc>) -> String {
    let ms = at.timestamp_millis().max(0) as u64;
    format!("{:08x}-{:04x}-", ms >> 16, ms & 0xffff)
}

fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

/// Hex SHA-256 of a batch chained to the previous seal's digest. Every
/// field is length-prefixed, so no two batches serialise alike.
pub fn batch_digest(
    org_id: &OrgId,
    seq: i64,
    previous: Option<&str>,
    newest_at: DateTime<Utc>,
    events: &[SealedEvent],
) -> String {
    let mut hasher = Sha256::new();
    field(&mut hasher, b"muster.audit_seal.v1");
    field(&mut hasher, org_id.as_str().as_bytes());
    field(&mut hasher, &seq.to_be_bytes());
    field(&mut hasher, previous.unwrap_or("").as_bytes());
    field(&mut hasher, &newest_at.timestamp_millis().to_be_bytes());
    field(&mut hasher, &(events.len() as u64).to_be_bytes());
    for event in events {
        field(&mut hasher, event.id.as_bytes());
        field(&mut hasher, event.hash.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The seal after `head` covering `events` (in id order, not empty).
fn next_seal(
    org_id: &OrgId,
    head: Option<&Seal>,
    events: Vec<HashedEvent>,
    now: DateTime<Utc>,
) -> Option<Seal> {
    let first = events.first()?.id.clone();
    let last = events.last()?.id.clone();
    // An event without a readable time ages with the seal.
    let newest_at = events
        .iter()
        .map(|event| event.at.unwrap_or(now))
        .max()
        .unwrap_or(now);
    let events: Vec<SealedEvent> = events
        .into_iter()
        .map(|event| SealedEvent {
            id: event.id,
            hash: event.hash,
        })
        .collect();
    let seq = head.map_or(1, |head| head.seq + 1);
    let previous = head.map(|head| head.digest.clone());
    Some(Seal {
        id: uuid::Uuid::now_v7().to_string(),
        org_id: org_id.clone(),
        seq,
        first_event_id: first,
        last_event_id: last,
        count: events.len() as i64,
        newest_at,
        digest: batch_digest(org_id, seq, previous.as_deref(), newest_at, &events),
        events,
        previous_digest: previous,
        sealed_at: now,
        purged_at: None,
    })
}

/// Seals every organization's settled events; `now` is the sealer's clock.
/// One organization's failure does not hold back the others' seals: it is
/// logged, and the first one is returned once all were tried.
pub async fn seal_all(store: &Store, now: DateTime<Utc>) -> Result<Sealed, AppError> {
    let mut sealed = Sealed::default();
    let mut first_error = None;
    for (org_id, _) in store::orgs::audit_retentions(store).await? {
        match seal_org(store, &org_id, now).await {
            Ok(done) => sealed += done,
            Err(err) => {
                tracing::warn!(org_id = %org_id, error = %err, "sealing audit events failed");
                first_error.get_or_insert(err);
            }
        }
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok(sealed),
    }
}

/// Seals the organization's events whose ids are older than
/// [`SETTLE_MARGIN`] and that follow its last seal, in batches of
/// [`BATCH`]. When another sealer extends the chain first, it stops: that
/// sealer covers the same events, and the next run continues from its
/// seal.
pub async fn seal_org(
    store: &Store,
    org_id: &OrgId,
    now: DateTime<Utc>,
) -> Result<Sealed, AppError> {
    let through = id_bound(now - SETTLE_MARGIN);
    let mut head = store::audit_seals::head(store, org_id).await?;
    let mut sealed = Sealed::default();
    loop {
        let after = head.as_ref().map(|head| head.last_event_id.as_str());
        let events =
            store::audit_seals::hashed_events(store, org_id, after, Some(&through), Some(BATCH))
                .await?;
        let full = events.len() as i64 == BATCH;
        let Some(seal) = next_seal(org_id, head.as_ref(), events, now) else {
            return Ok(sealed);
        };
        match store::audit_seals::insert(store, &seal).await? {
            Inserted::Yes => {
                sealed.seals += 1;
                sealed.events += seal.count as u64;
            }
            Inserted::AlreadyExists => return Ok(sealed),
        }
        head = Some(seal);
        if !full {
            return Ok(sealed);
        }
    }
}

/// What differs first, in chain order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DifferenceKind {
    Event,
    Seal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub kind: DifferenceKind,
    /// The event's id, or the seal's.
    pub id: String,
    pub reason: String,
}

impl Difference {
    fn seal(seal: &Seal, reason: String) -> Difference {
        Difference {
            kind: DifferenceKind::Seal,
            id: seal.id.clone(),
            reason,
        }
    }

    fn event(id: &str, reason: String) -> Difference {
        Difference {
            kind: DifferenceKind::Event,
            id: id.to_owned(),
            reason,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub seals: u64,
    /// Events covered by seals and still stored (not purged).
    pub sealed_events: u64,
    /// Events after the last seal: recent ones, not sealed yet.
    pub unsealed_events: u64,
    pub first_difference: Option<Difference>,
    /// The last seal's digest: kept elsewhere, it proves later that the
    /// chain up to it was not rewritten as a whole.
    pub head_digest: Option<String>,
}

impl Verification {
    pub fn intact(&self) -> bool {
        self.first_difference.is_none()
    }
}

/// What is wrong with `seal` as the successor of `previous`, judged on the
/// seals alone.
fn seal_difference(seal: &Seal, previous: Option<&Seal>) -> Option<Difference> {
    let expected_seq = previous.map_or(1, |previous| previous.seq + 1);
    if seal.seq != expected_seq {
        return Some(Difference::seal(
            seal,
            format!(
                "seal {} follows seal {}: a seal is missing",
                seal.seq,
                expected_seq - 1
            ),
        ));
    }
    let expected_previous = previous.map(|previous| previous.digest.as_str());
    if seal.previous_digest.as_deref() != expected_previous {
        return Some(Difference::seal(
            seal,
            format!(
                "seal {} does not chain to the digest of the seal before it",
                seal.seq
            ),
        ));
    }
    let recomputed = batch_digest(
        &seal.org_id,
        seal.seq,
        seal.previous_digest.as_deref(),
        seal.newest_at,
        &seal.events,
    );
    let after = previous.map(|previous| previous.last_event_id.as_str());
    let ordered = seal.events.windows(2).all(|pair| pair[0].id < pair[1].id)
        && seal
            .events
            .first()
            .is_some_and(|first| after.is_none_or(|after| first.id.as_str() > after));
    let summary_matches = seal.count == seal.events.len() as i64
        && seal.events.first().map(|e| e.id.as_str()) == Some(seal.first_event_id.as_str())
        && seal.events.last().map(|e| e.id.as_str()) == Some(seal.last_event_id.as_str());
    if recomputed != seal.digest || !ordered || !summary_matches {
        return Some(Difference::seal(
            seal,
            format!(
                "seal {} does not match its digest: it was altered",
                seal.seq
            ),
        ));
    }
    if previous.is_some_and(|previous| previous.purged_at.is_none()) && seal.purged_at.is_some() {
        return Some(Difference::seal(
            seal,
            format!(
                "seal {} is marked purged after a seal that is not: retention purges the \
                 oldest batches first",
                seal.seq
            ),
        ));
    }
    None
}

/// The first difference, in id order, between the events a seal lists
/// and the events stored in its range (both in id order).
pub fn events_difference(sealed: &[SealedEvent], stored: &[HashedEvent]) -> Option<Difference> {
    let (mut s, mut d) = (0, 0);
    loop {
        match (sealed.get(s), stored.get(d)) {
            (None, None) => return None,
            (Some(listed), Some(found)) if listed.id == found.id => {
                if listed.hash != found.hash {
                    return Some(Difference::event(
                        &found.id,
                        "altered after it was sealed: its stored fields no longer match \
                         the sealed hash"
                            .to_owned(),
                    ));
                }
                s += 1;
                d += 1;
            }
            (Some(listed), found) if found.is_none_or(|found| listed.id < found.id) => {
                return Some(Difference::event(
                    &listed.id,
                    "deleted after it was sealed".to_owned(),
                ));
            }
            (_, Some(found)) => {
                return Some(Difference::event(
                    &found.id,
                    "inserted after its range was sealed: no seal lists it".to_owned(),
                ));
            }
            (Some(_), None) => return None,
        }
    }
}

/// Recomputes the organization's chain from its stored seals and events,
/// and names the first event or seal that differs.
pub async fn verify(store: &Store, org_id: &OrgId) -> Result<Verification, AppError> {
    let mut verification = Verification {
        seals: 0,
        sealed_events: 0,
        unsealed_events: 0,
        first_difference: None,
        head_digest: None,
    };
    let mut previous: Option<Seal> = None;
    'chain: loop {
        let after = previous.as_ref().map_or(0, |previous| previous.seq);
        let seals = store::audit_seals::after_seq(store, org_id, after, SEALS_PER_READ).await?;
        let last_page = (seals.len() as i64) < SEALS_PER_READ;
        for seal in seals {
            verification.seals += 1;
            if let Some(difference) = seal_difference(&seal, previous.as_ref()) {
                verification.first_difference = Some(difference);
                break 'chain;
            }
            // One more than listed is enough to see an insertion without
            // reading everything an intruder may have added.
            let stored = store::audit_seals::hashed_events(
                store,
                org_id,
                previous.as_ref().map(|p| p.last_event_id.as_str()),
                Some(&seal.last_event_id),
                Some(seal.count + 1),
            )
            .await?;
            let listed: &[SealedEvent] = if seal.purged_at.is_some() {
                &[]
            } else {
                &seal.events
            };
            if let Some(difference) = events_difference(listed, &stored) {
                verification.first_difference = Some(difference);
                break 'chain;
            }
            verification.sealed_events += listed.len() as u64;
            previous = Some(seal);
        }
        if last_page {
            break;
        }
    }
    if verification.first_difference.is_none() {
        verification.head_digest = previous.as_ref().map(|head| head.digest.clone());
    }
    let head = store::audit_seals::head(store, org_id).await?;
    verification.unsealed_events = store::audit::count_after(
        store,
        org_id,
        head.as_ref().map(|head| head.last_event_id.as_str()),
    )
    .await?;
    Ok(verification)
}

/// Retention without breaking the chain: deletes the events of the
/// organization's oldest seals whose events are all older than `before`,
/// whole batches only, oldest first up to the first batch still within
/// retention, and marks those seals purged (they stay, so the
/// chain still links past them). An event too recent to be sealed whose
/// time is nonetheless past retention (written with a back-dated clock,
/// or imported) is in no seal and is deleted alone; the sealer will not
/// reach those ids before this run's settle margin, so it never lists an
/// event this deletes. Returns how many events were deleted.
pub async fn purge(
    store: &Store,
    org_id: &OrgId,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<u64, AppError> {
    // Above the head too: a sealer whose clock runs ahead may have sealed
    // past this run's margin.
    let head = store::audit_seals::head(store, org_id).await?;
    let above = std::cmp::max(
        id_bound(now - SETTLE_MARGIN),
        head.map(|head| head.last_event_id).unwrap_or_default(),
    );
    let mut purged = store::audit::purge_before_above_id(store, org_id, before, &above).await?;
    loop {
        let seals = store::audit_seals::oldest_unpurged(store, org_id, SEALS_PER_READ).await?;
        let last_page = (seals.len() as i64) < SEALS_PER_READ;
        for seal in &seals {
            // Purged seals stay a prefix of the chain (verify insists): a
            // batch past retention behind one that is not waits for it.
            if seal.newest_at >= before {
                return Ok(purged);
            }
            let ids: Vec<&str> = seal.events.iter().map(|e| e.id.as_str()).collect();
            purged += in_transaction!(store, |session| -> Result<u64, AppError> {
                let deleted = store::audit::delete_ids(store, session, org_id, &ids).await?;
                store::audit_seals::mark_purged(store, session, &seal.id, now).await?;
                Ok(deleted)
            })?;
        }
        if last_page {
            return Ok(purged);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(id: &str, hash: &str) -> SealedEvent {
        SealedEvent {
            id: id.to_owned(),
            hash: hash.to_owned(),
        }
    }

    fn stored(id: &str, hash: &str) -> HashedEvent {
        HashedEvent {
            id: id.to_owned(),
            hash: hash.to_owned(),
            at: None,
        }
    }

    #[test]
    fn the_first_event_that_differs_is_named() {
        let sealed = [listed("a", "1"), listed("c", "3"), listed("e", "5")];
        let same = [stored("a", "1"), stored("c", "3"), stored("e", "5")];
        assert_eq!(events_difference(&sealed, &same), None);

        let altered = [stored("a", "1"), stored("c", "x"), stored("e", "y")];
        let deleted = [stored("a", "1"), stored("e", "5")];
        let inserted = [stored("a", "1"), stored("b", "2"), stored("c", "3")];
        let last_deleted = [stored("a", "1"), stored("c", "3")];
        for (found, id, reason) in [
            (&altered[..], "c", "altered"),
            (&deleted[..], "c", "deleted"),
            (&inserted[..], "b", "inserted"),
            (&last_deleted[..], "e", "deleted"),
        ] {
            let difference = events_difference(&sealed, found).expect("a difference");
            assert_eq!(difference.kind, DifferenceKind::Event);
            assert_eq!(difference.id, id);
            assert!(difference.reason.starts_with(reason), "{difference:?}");
        }
    }

    #[test]
    fn id_bounds_sort_between_the_ids_of_neighbouring_milliseconds() {
        let at = DateTime::from_timestamp_millis(1_764_000_000_123).expect("a time");
        let ms = |ms: i64| DateTime::from_timestamp_millis(ms).expect("a time");
        let id_at = |at: DateTime<Utc>| {
            let ts = uuid::Timestamp::from_unix(
                uuid::NoContext,
                at.timestamp() as u64,
                at.timestamp_subsec_nanos(),
            );
            uuid::Uuid::new_v7(ts).to_string()
        };
        let bound = id_bound(at);
        assert!(id_at(ms(1_764_000_000_122)) < bound);
        assert!(id_at(at) > bound);
    }

    #[test]
    fn a_digest_depends_on_the_chain_and_every_event() {
        let org = OrgId::from_stored("o".to_owned());
        let at = DateTime::from_timestamp_millis(0).expect("a time");
        let events = [listed("a", "1"), listed("b", "2")];
        let digest = batch_digest(&org, 2, Some("p"), at, &events);
        assert_ne!(digest, batch_digest(&org, 2, Some("q"), at, &events));
        assert_ne!(digest, batch_digest(&org, 3, Some("p"), at, &events));
        assert_ne!(digest, batch_digest(&org, 2, Some("p"), at, &events[..1]));
        let swapped = [listed("a", "2"), listed("b", "1")];
        assert_ne!(digest, batch_digest(&org, 2, Some("p"), at, &swapped));
    }
}
