//! Seals of the audit log: each covers a batch of one organization's events
//! by id and hash and is chained to the seal before it. Only the sealer
//! writes here; writers of events never read or update a chain head, so
//! they never contend with one another (see "Tamper evidence" in
//! docs/architecture.md).

use bson::{Bson, DateTime as BsonDateTime, Document, doc};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::error::Error as MongoError;
use mongodb::{ClientSession, Collection};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::docs::bson_time;
use super::{Inserted, Store, index, inserted};
use crate::domain::OrgId;

const COLLECTION: &str = "audit_seals";

/// One sealed event: its id and the hash of its stored document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedEvent {
    pub id: String,
    /// [`event_hash`] of the event as it was stored when sealed.
    pub hash: String,
}

/// An event as read for sealing or verifying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedEvent {
    pub id: String,
    pub hash: String,
    /// Its `at`, when it has one of the right type.
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Seal {
    pub id: String,
    pub org_id: OrgId,
    /// 1 for an organization's first seal, then one more each.
    pub seq: i64,
    pub first_event_id: String,
    pub last_event_id: String,
    pub count: i64,
    /// The latest `at` of its events: the whole batch is past retention
    /// when this is.
    pub newest_at: DateTime<Utc>,
    pub events: Vec<SealedEvent>,
    /// Hex SHA-256 over the previous digest and this batch
    /// (`app::audit_seals::batch_digest`).
    pub digest: String,
    /// `None` for the first seal.
    pub previous_digest: Option<String>,
    pub sealed_at: DateTime<Utc>,
    /// When the retention purge deleted its events; the seal stays, so the
    /// chain still links past it.
    pub purged_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SealDoc {
    #[serde(rename = "_id")]
    id: String,
    org_id: String,
    seq: i64,
    first_event_id: String,
    last_event_id: String,
    count: i64,
    newest_at: BsonDateTime,
    events: Vec<SealedEvent>,
    digest: String,
    previous_digest: Option<String>,
    sealed_at: BsonDateTime,
    #[serde(default)]
    purged_at: Option<BsonDateTime>,
}

impl From<&Seal> for SealDoc {
    fn from(seal: &Seal) -> Self {
        SealDoc {
            id: seal.id.clone(),
            org_id: seal.org_id.to_string(),
            seq: seal.seq,
            first_event_id: seal.first_event_id.clone(),
            last_event_id: seal.last_event_id.clone(),
            count: seal.count,
            newest_at: bson_time(seal.newest_at),
            events: seal.events.clone(),
            digest: seal.digest.clone(),
            previous_digest: seal.previous_digest.clone(),
            sealed_at: bson_time(seal.sealed_at),
            purged_at: seal.purged_at.map(bson_time),
        }
    }
}

impl From<SealDoc> for Seal {
    fn from(doc: SealDoc) -> Self {
        Seal {
            id: doc.id,
            org_id: OrgId::from_stored(doc.org_id),
            seq: doc.seq,
            first_event_id: doc.first_event_id,
            last_event_id: doc.last_event_id,
            count: doc.count,
            newest_at: doc.newest_at.to_chrono(),
            events: doc.events,
            digest: doc.digest,
            previous_digest: doc.previous_digest,
            sealed_at: doc.sealed_at.to_chrono(),
            purged_at: doc.purged_at.map(BsonDateTime::to_chrono),
        }
    }
}

fn collection(store: &Store) -> Collection<SealDoc> {
    store.database().collection(COLLECTION)
}

pub(super) async fn create_indexes(store: &Store) -> Result<(), MongoError> {
    // The chain cannot fork: of two sealers extending the same head, the
    // second insert fails on this index.
    collection(store)
        .create_index(index(doc! { "org_id": 1, "seq": 1 }, true))
        .await?;
    // The sealer and the verifier read an organization's events in id
    // order: `store::audit` indexes `{org_id, _id}` for the log already.
    Ok(())
}

/// The canonical form of a stored document: keys sorted at every depth,
/// then BSON-encoded. Independent of field order (which a rewrite of the
/// document may change), sensitive to every name, value and type.
fn canonical(document: &Document) -> Document {
    fn value(bson: &Bson) -> Bson {
        match bson {
            Bson::Document(inner) => Bson::Document(canonical(inner)),
            Bson::Array(items) => Bson::Array(items.iter().map(value).collect()),
            other => other.clone(),
        }
    }
    let mut keys: Vec<&String> = document.keys().collect();
    keys.sort();
    keys.into_iter()
        .map(|key| (key.clone(), value(&document[key.as_str()])))
        .collect()
}

/// Hex SHA-256 of an event's stored document, every field included (the
/// `_id` too): the one definition of what a seal vouches for.
pub fn event_hash(document: &Document) -> Result<String, MongoError> {
    let mut bytes = Vec::new();
    canonical(document)
        .to_writer(&mut bytes)
        .map_err(MongoError::custom)?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

fn hashed(document: &Document) -> Result<HashedEvent, MongoError> {
    let id = match document.get("_id") {
        Some(Bson::String(id)) => id.clone(),
        // Not an id Muster writes: named by its extended JSON so that
        // verify can still point at it.
        Some(other) => other.clone().into_relaxed_extjson().to_string(),
        None => String::new(),
    };
    Ok(HashedEvent {
        id,
        hash: event_hash(document)?,
        at: document.get_datetime("at").ok().map(|at| at.to_chrono()),
    })
}

/// The organization's events after the id `after`, up to the id `through`
/// included, in id order, hashed, at most `limit`.
pub async fn hashed_events(
    store: &Store,
    org_id: &OrgId,
    after: Option<&str>,
    through: Option<&str>,
    limit: Option<i64>,
) -> Result<Vec<HashedEvent>, MongoError> {
    super::audit::raw_in_id_order(store, org_id, after, through, limit)
        .await?
        .iter()
        .map(hashed)
        .collect()
}

/// The organization's latest seal: the chain head.
pub async fn head(store: &Store, org_id: &OrgId) -> Result<Option<Seal>, MongoError> {
    Ok(collection(store)
        .find_one(doc! { "org_id": org_id.as_str() })
        .sort(doc! { "seq": -1 })
        .await?
        .map(Seal::from))
}

/// The organization's seals after sequence number `after`, oldest first,
/// at most `limit`.
pub async fn after_seq(
    store: &Store,
    org_id: &OrgId,
    after: i64,
    limit: i64,
) -> Result<Vec<Seal>, MongoError> {
    let docs: Vec<SealDoc> = collection(store)
        .find(doc! { "org_id": org_id.as_str(), "seq": { "$gt": after } })
        .sort(doc! { "seq": 1 })
        .limit(limit)
        .await?
        .try_collect()
        .await?;
    Ok(docs.into_iter().map(Seal::from).collect())
}

/// Stores a new seal; `AlreadyExists` when another sealer stored this
/// sequence number first.
pub async fn insert(store: &Store, seal: &Seal) -> Result<Inserted, MongoError> {
    inserted(collection(store).insert_one(SealDoc::from(seal)).await)
}

/// The oldest seals not purged yet, oldest first, at most `limit`.
pub async fn oldest_unpurged(
    store: &Store,
    org_id: &OrgId,
    limit: i64,
) -> Result<Vec<Seal>, MongoError> {
    let docs: Vec<SealDoc> = collection(store)
        .find(doc! { "org_id": org_id.as_str(), "purged_at": null })
        .sort(doc! { "seq": 1 })
        .limit(limit)
        .await?
        .try_collect()
        .await?;
    Ok(docs.into_iter().map(Seal::from).collect())
}

/// Records that a seal's events were purged, in the caller's transaction.
pub async fn mark_purged(
    store: &Store,
    session: &mut ClientSession,
    seal_id: &str,
    at: DateTime<Utc>,
) -> Result<(), MongoError> {
    collection(store)
        .update_one(
            doc! { "_id": seal_id, "purged_at": null },
            doc! { "$set": { "purged_at": bson_time(at) } },
        )
        .session(session)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Document {
        doc! {
            "_id": "0192f0c4-6a1b-7660-b54f-47527a37e5d3",
            "org_id": "o",
            "action": "member.role_changed",
            "after": { "role": "admin", "since": 3_i64 },
            "ip": Bson::Null,
        }
    }

    #[test]
    fn the_hash_ignores_field_order_at_every_depth() {
        let reordered = doc! {
            "ip": Bson::Null,
            "after": { "since": 3_i64, "role": "admin" },
            "action": "member.role_changed",
            "org_id": "o",
            "_id": "0192f0c4-6a1b-7660-b54f-47527a37e5d3",
        };
        assert_eq!(event_hash(&event()).ok(), event_hash(&reordered).ok());
    }

    #[test]
    fn the_hash_covers_every_value_name_and_type() {
        let original = event_hash(&event()).ok();
        let mut changed_value = event();
        changed_value.insert("action", "member.removed");
        let mut changed_type = event();
        changed_type.insert("after", doc! { "role": "admin", "since": 3_i32 });
        let mut added = event();
        added.insert("extra", true);
        let mut removed = event();
        removed.remove("ip");
        for changed in [changed_value, changed_type, added, removed] {
            assert_ne!(original, event_hash(&changed).ok(), "{changed:?}");
        }
    }
}
