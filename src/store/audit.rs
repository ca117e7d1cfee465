use bson::{Bson, DateTime as BsonDateTime, doc};
use mongodb::error::Error as MongoError;
use mongodb::{ClientSession, Collection};
use serde::{Deserialize, Serialize};

use super::docs::bson_time;
use super::{Store, index};
use crate::domain::{Actor, AuditEvent};

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
    Ok(())
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
