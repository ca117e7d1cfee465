//! Reading the audit log: an organization's (owners and admins) and a
//! person's own account-level events. Reads only, so no transaction; the
//! names of actors and targets are resolved as they are now, one query
//! per kind for a whole page.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use futures::stream::{self, Stream, TryChunksError, TryStreamExt};
use serde_json::Value;

use super::ensure_allowed;
use crate::domain::audit::{Change, changes};
use crate::domain::{AccountId, AuditEventId, OrgId, Permission, Role};
use crate::error::AppError;
use crate::store::audit::{LogQuery, LogScope, StoredEvent};
use crate::store::{self, Store};

/// What a reader sees in place of a name when the actor or target no
/// longer exists.
pub const GONE: &str = "deleted";
/// The same for a person's account: its id stays in the log, a
/// pseudonym, and nothing else of them.
pub const GONE_ACCOUNT: &str = "deleted account";

/// Who or what, with its current name.
#[derive(Debug, Clone, PartialEq)]
pub struct Named {
    pub kind: String,
    pub id: Option<String>,
    pub label: String,
    /// For a personal token: the account acting through it.
    pub account_id: Option<String>,
}

/// An event as the log shows it.
#[derive(Debug, Clone)]
pub struct LogItem {
    pub id: AuditEventId,
    pub org_id: Option<String>,
    pub at: DateTime<Utc>,
    pub actor: Named,
    pub action: String,
    pub target: Named,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub changes: Vec<Change>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LogPage {
    pub items: Vec<LogItem>,
    /// The last item's id when more follow.
    pub next_cursor: Option<String>,
}

/// One page of an organization's log, for a member whose role may view it.
pub async fn org_log(
    store: &Store,
    role: Role,
    org_id: &OrgId,
    query: LogQuery,
) -> Result<LogPage, AppError> {
    ensure_allowed(role, Permission::ViewAuditLog)?;
    read(
        store,
        LogQuery {
            scope: LogScope::Org(org_id.clone()),
            ..query
        },
    )
    .await
}

/// One page of the caller's own account-level events.
pub async fn own_log(
    store: &Store,
    account_id: &AccountId,
    query: LogQuery,
) -> Result<LogPage, AppError> {
    read(
        store,
        LogQuery {
            scope: LogScope::Account(account_id.clone()),
            ..query
        },
    )
    .await
}

/// How many events share one batched read of names while exporting: few
/// enough that memory stays flat, many enough that names cost a handful
/// of queries per thousand events.
pub const EXPORT_CHUNK: usize = 500;

/// Every event of an organization's log that `query` selects (no pages),
/// newest first, for a member whose role may view it. The events come
/// from one database cursor as the caller consumes the stream; names are
/// resolved per [`EXPORT_CHUNK`] events, so nothing grows with the log.
pub async fn org_export(
    store: &Store,
    role: Role,
    org_id: &OrgId,
    query: LogQuery,
) -> Result<impl Stream<Item = Result<LogItem, AppError>> + Send + use<>, AppError> {
    ensure_allowed(role, Permission::ViewAuditLog)?;
    let query = LogQuery {
        scope: LogScope::Org(org_id.clone()),
        ..query
    };
    let events = store::audit::stream(store, &query).await?;
    let store = store.clone();
    Ok(events
        .map_err(AppError::from)
        .try_chunks(EXPORT_CHUNK)
        .map_err(|TryChunksError(_, error)| error)
        .and_then(move |chunk| {
            let store = store.clone();
            async move {
                let names = names_for(&store, &chunk).await?;
                let items: Vec<Result<LogItem, AppError>> = chunk
                    .into_iter()
                    .map(|event| Ok(item(event, &names)))
                    .collect();
                Ok(stream::iter(items))
            }
        })
        .try_flatten())
}

async fn read(store: &Store, query: LogQuery) -> Result<LogPage, AppError> {
    let (events, more) = store::audit::page(store, &query).await?;
    let names = names_for(store, &events).await?;
    let next_cursor = more
        .then(|| events.last().map(|event| event.id.to_string()))
        .flatten();
    let items = events
        .into_iter()
        .map(|event| item(event, &names))
        .collect();
    Ok(LogPage { items, next_cursor })
}

/// Names by kind and id for every actor and target of the page.
type Names = HashMap<String, Option<HashMap<String, String>>>;

async fn names_for(store: &Store, events: &[StoredEvent]) -> Result<Names, AppError> {
    let mut wanted: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for event in events {
        // Personal tokens act as their account: the person is the name.
        if let Some(account) = &event.actor_account_id {
            wanted.entry("account").or_default().insert(account);
        }
        if let ("scim_token", Some(token)) = (event.actor_kind.as_str(), &event.actor_token_id) {
            wanted.entry("scim_token").or_default().insert(token);
        }
        wanted
            .entry(event.target_kind.as_str())
            .or_default()
            .insert(&event.target_id);
    }
    let mut names = Names::new();
    for (kind, ids) in wanted {
        let ids: Vec<&str> = ids.into_iter().collect();
        names.insert(
            kind.to_owned(),
            store::audit::labels(store, kind, &ids).await?,
        );
    }
    Ok(names)
}

fn label(names: &Names, kind: &str, id: &str) -> String {
    match names.get(kind) {
        Some(Some(found)) => found.get(id).cloned().unwrap_or_else(|| {
            if kind == "account" {
                GONE_ACCOUNT.to_owned()
            } else {
                GONE.to_owned()
            }
        }),
        // A kind without names (a future one): its id is all there is.
        _ => id.to_owned(),
    }
}

fn item(event: StoredEvent, names: &Names) -> LogItem {
    let actor = match (
        event.actor_kind.as_str(),
        &event.actor_account_id,
        &event.actor_token_id,
    ) {
        ("system", _, _) => Named {
            kind: "system".to_owned(),
            id: None,
            label: "Muster".to_owned(),
            account_id: None,
        },
        ("api_token", Some(account), Some(token)) => Named {
            kind: "api_token".to_owned(),
            id: Some(token.clone()),
            label: label(names, "account", account),
            account_id: Some(account.clone()),
        },
        ("scim_token", _, Some(token)) => Named {
            kind: "scim_token".to_owned(),
            id: Some(token.clone()),
            label: label(names, "scim_token", token),
            account_id: None,
        },
        (kind, Some(account), _) => Named {
            kind: kind.to_owned(),
            id: Some(account.clone()),
            label: label(names, "account", account),
            account_id: None,
        },
        (kind, None, token) => Named {
            kind: kind.to_owned(),
            id: token.clone(),
            label: GONE.to_owned(),
            account_id: None,
        },
    };
    let target = Named {
        label: label(names, &event.target_kind, &event.target_id),
        kind: event.target_kind,
        id: Some(event.target_id),
        account_id: None,
    };
    LogItem {
        changes: changes(event.before.as_ref(), event.after.as_ref()),
        id: event.id,
        org_id: event.org_id,
        at: event.at,
        actor,
        action: event.action,
        target,
        before: event.before,
        after: event.after,
        ip: event.ip,
        user_agent: event.user_agent,
        request_id: event.request_id,
    }
}
