use bson::{Bson, DateTime as BsonDateTime, doc};
use mongodb::error::Error as MongoError;
use mongodb::options::InsertOneModel;
use mongodb::{ClientSession, Collection};
use serde::{Deserialize, Serialize};

use super::docs::bson_time;
use super::{Store, index};
use crate::domain::audit::ActionFilter;
use crate::domain::{AccountId, Actor, AuditEvent, AuditEventId, OrgId};

const COLLECTION: &str = "audit_events";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AuditDoc {
    #[serde(rename = "_id")]
    id: String,
    /// Null for an account's own events.
    org_id: Option<String>,
    /// For an account's own events: whose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
    at: BsonDateTime,
    actor: ActorDoc,
    action: String,
    target: TargetDoc,
    before: Option<Bson>,
    after: Option<Bson>,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ActorDoc {
    /// `account`, `api_token`, `scim_token` or `system`.
    kind: String,
    account_id: Option<String>,
    token_id: Option<String>,
    /// The actor's name when it acted (a SCIM token's name, an account's
    /// email), where the writer knew it; absent in older events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TargetDoc {
    kind: String,
    id: String,
}

fn collection(store: &Store) -> Collection<AuditDoc> {
    store.database().collection(COLLECTION)
}

pub(super) async fn create_indexes(store: &Store) -> Result<(), MongoError> {
    let events = collection(store);
    events
        .create_index(index(doc! { "org_id": 1, "at": -1 }, false))
        .await?;
    events.create_index(index(doc! { "at": 1 }, false)).await?;
    events
        .create_index(index(doc! { "account_id": 1, "at": -1 }, false))
        .await?;
    // The log is read newest first in `_id` order (UUIDv7: stable while
    // events arrive), one index per filter so that a page reads only its
    // own events; `at` bounds are checked on the events those reach.
    for keys in [
        doc! { "org_id": 1, "_id": -1 },
        doc! { "org_id": 1, "action": 1, "_id": -1 },
        doc! { "org_id": 1, "target.id": 1, "_id": -1 },
        doc! { "org_id": 1, "actor.account_id": 1, "_id": -1 },
        doc! { "org_id": 1, "actor.token_id": 1, "_id": -1 },
        doc! { "account_id": 1, "_id": -1 },
    ] {
        events.create_index(index(keys, false)).await?;
    }
    Ok(())
}

fn actor_doc(actor: &Actor, label: Option<&str>) -> ActorDoc {
    let (kind, account_id, token_id) = match actor {
        Actor::Account(account) => ("account", Some(account.to_string()), None),
        Actor::ApiToken {
            account_id,
            token_id,
        } => (
            "api_token",
            Some(account_id.to_string()),
            Some(token_id.to_string()),
        ),
        Actor::ScimToken(token) => ("scim_token", None, Some(token.to_string())),
        Actor::System => ("system", None, None),
    };
    ActorDoc {
        kind: kind.to_owned(),
        account_id,
        token_id,
        label: label.map(str::to_owned),
    }
}

fn json_to_bson(value: &Option<serde_json::Value>) -> Result<Option<Bson>, MongoError> {
    value
        .as_ref()
        .map(|v| bson::to_bson(v).map_err(MongoError::custom))
        .transpose()
}

/// Writes one event, inside the transaction of the change it records.
pub async fn record(
    store: &Store,
    session: &mut ClientSession,
    event: &AuditEvent,
) -> Result<(), MongoError> {
    record_many(store, session, std::slice::from_ref(event)).await
}

/// [`record`] for many events, in one round trip.
pub async fn record_many(
    store: &Store,
    session: &mut ClientSession,
    events: &[AuditEvent],
) -> Result<(), MongoError> {
    if events.is_empty() {
        return Ok(());
    }
    let docs = events
        .iter()
        .map(audit_doc)
        .collect::<Result<Vec<_>, _>>()?;
    collection(store).insert_many(docs).session(session).await?;
    super::note_written(events.iter().map(|event| event.action));
    Ok(())
}

/// [`record_many`] as inserts to make with the other inserts of the
/// transaction whose change the events record (`store::insert_all`).
pub fn insert_models(
    store: &Store,
    events: &[AuditEvent],
) -> Result<Vec<InsertOneModel>, MongoError> {
    let models = events
        .iter()
        .map(|event| collection(store).insert_one_model(audit_doc(event)?))
        .collect::<Result<Vec<_>, _>>()?;
    super::note_written(events.iter().map(|event| event.action));
    Ok(models)
}

fn audit_doc(event: &AuditEvent) -> Result<AuditDoc, MongoError> {
    Ok(AuditDoc {
        id: uuid::Uuid::now_v7().to_string(),
        org_id: event.org_id.as_ref().map(ToString::to_string),
        account_id: match (&event.org_id, &event.actor) {
            (None, Actor::Account(id) | Actor::ApiToken { account_id: id, .. }) => {
                Some(id.to_string())
            }
            _ => None,
        },
        at: bson_time(event.at),
        actor: actor_doc(&event.actor, event.actor_label.as_deref()),
        action: event.action.to_owned(),
        target: TargetDoc {
            kind: event.target.kind.to_owned(),
            id: event.target.id.clone(),
        },
        before: json_to_bson(&event.before)?,
        after: json_to_bson(&event.after)?,
        ip: event.origin.ip.clone(),
        user_agent: event.origin.user_agent.clone(),
        request_id: event.origin.request_id.clone(),
    })
}

/// Events of an organization, newest first (for tests and, later, the
/// audit API).
pub async fn count_for_org(store: &Store, org_id: &str) -> Result<u64, MongoError> {
    collection(store)
        .count_documents(doc! { "org_id": org_id })
        .await
}

/// How many times the organization's events record `action` since
/// `since`, read in the caller's transaction (uses `{org_id, at}`).
pub async fn count_action_since(
    store: &Store,
    session: &mut ClientSession,
    org_id: &crate::domain::OrgId,
    action: &str,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<u64, MongoError> {
    collection(store)
        .count_documents(doc! {
            "org_id": org_id.as_str(),
            "at": { "$gte": bson_time(since) },
            "action": action,
        })
        .session(session)
        .await
}

/// Deletes an organization's events (accounts' own events with `None`)
/// from before `before`; returns how many.
pub async fn purge_before(
    store: &Store,
    session: Option<&mut ClientSession>,
    org_id: Option<&crate::domain::OrgId>,
    before: chrono::DateTime<chrono::Utc>,
) -> Result<u64, MongoError> {
    let result = super::with_session!(
        collection(store).delete_many(
            doc! { "org_id": org_id.map(|id| id.as_str()), "at": { "$lt": bson_time(before) } },
        ),
        session
    )?;
    Ok(result.deleted_count)
}

/// Drops the name its writer gave the account as actor (its email) from
/// the account's own events, which no seal covers: they keep the account's
/// id, and readers name a deleted account as such. Returns how many.
pub async fn forget_account_labels(
    store: &Store,
    session: &mut ClientSession,
    account_id: &AccountId,
) -> Result<u64, MongoError> {
    let result = collection(store)
        .update_many(
            doc! {
                "account_id": account_id.as_str(),
                "actor.label": { "$exists": true },
            },
            doc! { "$unset": { "actor.label": "" } },
        )
        .session(session)
        .await?;
    Ok(result.modified_count)
}

/// Whose log a read covers.
#[derive(Debug, Clone)]
pub enum LogScope {
    /// An organization's events.
    Org(OrgId),
    /// An account's own events, outside any organization.
    Account(AccountId),
}

/// A read of the log: its scope, filters and page.
#[derive(Debug, Clone)]
pub struct LogQuery {
    pub scope: LogScope,
    /// An account id (its events through sessions and personal tokens) or
    /// a token id (a personal or SCIM token's events).
    pub actor: Option<String>,
    pub action: Option<ActionFilter>,
    pub target: Option<String>,
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// The last event of the previous page: this page starts below it.
    pub before: Option<AuditEventId>,
    pub limit: u32,
}

/// An event as read back.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: AuditEventId,
    pub org_id: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
    /// `account`, `api_token`, `scim_token` or `system`.
    pub actor_kind: String,
    pub actor_account_id: Option<String>,
    pub actor_token_id: Option<String>,
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

fn bson_to_json(value: Option<Bson>) -> Option<serde_json::Value> {
    match value {
        None | Some(Bson::Null) => None,
        Some(value) => Some(value.into_relaxed_extjson()),
    }
}

impl From<AuditDoc> for StoredEvent {
    fn from(doc: AuditDoc) -> Self {
        StoredEvent {
            id: AuditEventId::from_stored(doc.id),
            org_id: doc.org_id,
            at: doc.at.to_chrono(),
            actor_kind: doc.actor.kind,
            actor_account_id: doc.actor.account_id,
            actor_token_id: doc.actor.token_id,
            action: doc.action,
            target_kind: doc.target.kind,
            target_id: doc.target.id,
            before: bson_to_json(doc.before),
            after: bson_to_json(doc.after),
            ip: doc.ip,
            user_agent: doc.user_agent,
            request_id: doc.request_id,
        }
    }
}

/// The queries of a page, without their sort: one, or with an actor, one
/// per field that may name it (`actor.account_id`, `actor.token_id`), each
/// on its own index. Two queries merged rather than one `$or`, which not
/// every planner serves from indexes in `_id` order.
pub fn log_filters(query: &LogQuery) -> Vec<bson::Document> {
    let mut filter = match &query.scope {
        LogScope::Org(org_id) => doc! { "org_id": org_id.as_str() },
        // `account_id` is stored only on events without an organization
        // (`audit_doc`), so it alone selects them, from its index.
        LogScope::Account(account_id) => doc! { "account_id": account_id.as_str() },
    };
    match query.action.as_ref().map(ActionFilter::actions).as_deref() {
        Some([action]) => {
            filter.insert("action", *action);
        }
        Some(actions) => {
            filter.insert("action", doc! { "$in": actions });
        }
        None => {}
    }
    if let Some(target) = &query.target {
        filter.insert("target.id", target);
    }
    let mut at = bson::Document::new();
    if let Some(since) = query.since {
        at.insert("$gte", bson_time(since));
    }
    if let Some(until) = query.until {
        at.insert("$lte", bson_time(until));
    }
    if !at.is_empty() {
        filter.insert("at", at);
    }
    if let Some(before) = &query.before {
        filter.insert("_id", doc! { "$lt": before.as_str() });
    }
    match &query.actor {
        Some(actor) => ["actor.account_id", "actor.token_id"]
            .into_iter()
            .map(|field| {
                let mut branch = filter.clone();
                branch.insert(field, actor);
                branch
            })
            .collect(),
        None => vec![filter],
    }
}

/// One page of the log, newest first, and whether more follow. Pages go
/// by `_id` (UUIDv7), so events written while a reader pages land before
/// its first page and never shift the pages after it.
pub async fn page(store: &Store, query: &LogQuery) -> Result<(Vec<StoredEvent>, bool), MongoError> {
    use futures::TryStreamExt;
    let mut docs: Vec<AuditDoc> = Vec::new();
    for filter in log_filters(query) {
        let found: Vec<AuditDoc> = collection(store)
            .find(filter)
            .sort(doc! { "_id": -1 })
            .limit(i64::from(query.limit) + 1)
            .await?
            .try_collect()
            .await?;
        docs.extend(found);
    }
    docs.sort_by(|a, b| b.id.cmp(&a.id));
    docs.dedup_by(|a, b| a.id == b.id);
    let more = docs.len() > query.limit as usize;
    docs.truncate(query.limit as usize);
    Ok((docs.into_iter().map(StoredEvent::from).collect(), more))
}

/// Every event `query` selects, newest first, decoded as the cursor
/// reads them (its `before` and `limit` are ignored: an export takes the
/// whole range). With an actor, the two queries of [`log_filters`] run as
/// two cursors merged as they are read, each served from its own index.
pub async fn stream(
    store: &Store,
    query: &LogQuery,
) -> Result<impl futures::Stream<Item = Result<StoredEvent, MongoError>> + Send + use<>, MongoError>
{
    use futures::{StreamExt, TryStreamExt};
    let filters = log_filters(&LogQuery {
        before: None,
        ..query.clone()
    });
    let mut cursors = Vec::with_capacity(filters.len());
    for filter in filters {
        let cursor = collection(store)
            .find(filter)
            .sort(doc! { "_id": -1 })
            .batch_size(1_000)
            .await?;
        cursors.push(cursor);
    }
    let merged = cursors
        .into_iter()
        .map(|cursor| cursor.boxed())
        .reduce(|a, b| merge_newest_first(a, b, |doc| doc.id.clone()).boxed());
    let merged = merged.unwrap_or_else(|| futures::stream::empty().boxed());
    Ok(merged.map_ok(StoredEvent::from))
}

/// Two streams, each newest first by `key`, as one newest-first stream
/// read as it is consumed; an item both hold (the same key) comes once.
/// An error is passed on; the consumer decides whether to go on.
fn merge_newest_first<T, E, K, S>(
    a: S,
    b: S,
    key: impl Fn(&T) -> K + Send + 'static,
) -> impl futures::Stream<Item = Result<T, E>> + Send
where
    T: Send + 'static,
    E: Send + 'static,
    K: Ord,
    S: futures::Stream<Item = Result<T, E>> + Unpin + Send + 'static,
{
    futures::stream::unfold(
        (Side::new(a), Side::new(b), key),
        |(mut a, mut b, key)| async move {
            if let Err(err) = a.fill().await {
                return Some((Err(err), (a, b, key)));
            }
            if let Err(err) = b.fill().await {
                return Some((Err(err), (a, b, key)));
            }
            let take_a = match (&a.head, &b.head) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(x), Some(y)) => {
                    let (kx, ky) = (key(x), key(y));
                    if kx == ky {
                        b.head = None;
                    }
                    kx >= ky
                }
            };
            let item = if take_a { a.head.take() } else { b.head.take() };
            item.map(|item| (Ok(item), (a, b, key)))
        },
    )
}

/// One input of [`merge_newest_first`] and the item it has read ahead.
struct Side<S, T> {
    stream: futures::stream::Fuse<S>,
    head: Option<T>,
}

impl<S, T, E> Side<S, T>
where
    S: futures::Stream<Item = Result<T, E>> + Unpin,
{
    fn new(stream: S) -> Self {
        use futures::StreamExt;
        Side {
            stream: stream.fuse(),
            head: None,
        }
    }

    /// Reads the next item ahead unless one is waiting.
    async fn fill(&mut self) -> Result<(), E> {
        use futures::StreamExt;
        if self.head.is_none() {
            self.head = self.stream.next().await.transpose()?;
        }
        Ok(())
    }
}

/// What an event's actor or target of `kind` is called, for each of `ids`
/// that still exists: one query per kind. `None` for a kind without names.
pub async fn labels(
    store: &Store,
    kind: &str,
    ids: &[&str],
) -> Result<Option<std::collections::HashMap<String, String>>, MongoError> {
    use futures::TryStreamExt;
    // The collection and the field that names its documents, by kind.
    let (name, fields): (&str, &[&str]) = match kind {
        "account" => ("accounts", &["email", "display_name"]),
        "organization" => ("organizations", &["name"]),
        "member" => ("members", &["user_name"]),
        "group" => ("groups", &["display_name"]),
        "project" => ("projects", &["name"]),
        "invitation" => ("invitations", &["email"]),
        "personal_token" => ("api_tokens", &["name"]),
        "scim_token" => ("scim_tokens", &["name"]),
        _ => return Ok(None),
    };
    let mut found = std::collections::HashMap::new();
    if ids.is_empty() {
        return Ok(Some(found));
    }
    let mut projection = doc! {};
    for field in fields {
        projection.insert(*field, 1);
    }
    let mut cursor = store
        .database()
        .collection::<bson::Document>(name)
        .find(doc! { "_id": { "$in": ids } })
        .projection(projection)
        .await?;
    while let Some(doc) = cursor.try_next().await? {
        let label = fields
            .iter()
            .find_map(|field| doc.get_str(field).ok().filter(|s| !s.is_empty()));
        if let (Ok(id), Some(label)) = (doc.get_str("_id"), label) {
            found.insert(id.to_owned(), label.to_owned());
        }
    }
    Ok(Some(found))
}

// Reads and deletes for tamper evidence (`store::audit_seals`): events as
// stored, every field, in id order, so that a seal hashes what is really
// in the database rather than what this version of Muster would decode.

/// An organization's events as raw documents, in `_id` order: after the id
/// `after` (from the first when `None`), up to the id `through` included,
/// at most `limit`.
pub async fn raw_in_id_order(
    store: &Store,
    org_id: &crate::domain::OrgId,
    after: Option<&str>,
    through: Option<&str>,
    limit: Option<i64>,
) -> Result<Vec<bson::Document>, MongoError> {
    use futures::TryStreamExt;
    let mut range = bson::Document::new();
    if let Some(after) = after {
        range.insert("$gt", after);
    }
    if let Some(through) = through {
        range.insert("$lte", through);
    }
    let mut filter = doc! { "org_id": org_id.as_str() };
    if !range.is_empty() {
        filter.insert("_id", range);
    }
    let events = store.database().collection::<bson::Document>(COLLECTION);
    let find = events.find(filter).sort(doc! { "_id": 1 });
    let find = match limit {
        Some(limit) => find.limit(limit),
        None => find,
    };
    find.await?.try_collect().await
}

/// How many of an organization's events have an id after `after` (all of
/// them when `None`).
pub async fn count_after(
    store: &Store,
    org_id: &crate::domain::OrgId,
    after: Option<&str>,
) -> Result<u64, MongoError> {
    let mut filter = doc! { "org_id": org_id.as_str() };
    if let Some(after) = after {
        filter.insert("_id", doc! { "$gt": after });
    }
    collection(store).count_documents(filter).await
}

/// Deletes the organization's events with these ids, in the caller's
/// transaction; returns how many.
pub async fn delete_ids(
    store: &Store,
    session: &mut ClientSession,
    org_id: &crate::domain::OrgId,
    ids: &[&str],
) -> Result<u64, MongoError> {
    let result = collection(store)
        .delete_many(doc! { "org_id": org_id.as_str(), "_id": { "$in": ids } })
        .session(session)
        .await?;
    Ok(result.deleted_count)
}

/// Deletes the organization's events from before `before` whose ids are
/// above `above`; returns how many.
pub async fn purge_before_above_id(
    store: &Store,
    org_id: &crate::domain::OrgId,
    before: chrono::DateTime<chrono::Utc>,
    above: &str,
) -> Result<u64, MongoError> {
    let result = collection(store)
        .delete_many(doc! {
            "org_id": org_id.as_str(),
            "_id": { "$gt": above },
            "at": { "$lt": bson_time(before) },
        })
        .await?;
    Ok(result.deleted_count)
}

#[cfg(test)]
mod tests {
    use futures::{StreamExt, TryStreamExt, stream};

    use super::merge_newest_first;

    fn merged(a: Vec<u32>, b: Vec<u32>) -> Vec<u32> {
        let side = |items: Vec<u32>| stream::iter(items.into_iter().map(Ok::<_, ()>)).boxed();
        futures::executor::block_on(
            merge_newest_first(side(a), side(b), |item: &u32| *item).try_collect(),
        )
        .unwrap_or_default()
    }

    #[test]
    fn two_newest_first_streams_merge_newest_first_without_doubles() {
        assert_eq!(
            merged(vec![9, 7, 4, 1], vec![8, 7, 2]),
            vec![9, 8, 7, 4, 2, 1]
        );
        assert_eq!(merged(vec![], vec![3, 2]), vec![3, 2]);
        assert_eq!(merged(vec![5], vec![]), vec![5]);
        assert_eq!(merged(vec![], vec![]), Vec::<u32>::new());
    }

    #[test]
    fn an_error_is_passed_on_in_its_place() {
        let a = stream::iter(vec![Ok(5), Err("broken"), Ok(1)]).boxed();
        let b = stream::iter(vec![Ok::<u32, &str>(3)]).boxed();
        let items: Vec<_> =
            futures::executor::block_on(merge_newest_first(a, b, |item: &u32| *item).collect());
        assert_eq!(items, vec![Ok(5), Err("broken"), Ok(3), Ok(1)]);
    }
}
